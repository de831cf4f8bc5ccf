"""Mutation fuzzing of venue adapters against synced books (shipped test kit).

Real frames are mutated the ways a broken proxy, a venue bug or an attacker would (truncated,
fields of the wrong type, NaN/inf, ids past int64, JSON nested a thousand deep, invalid
UTF-8, fields dropped or repeated...) and fed to an adapter's decoder and to one
:class:`~bookkeeper.session.BookSession` per symbol, first synced from the real frames, so
mutations hit a SYNCED book. The contract checked, for every mutated frame:

- the decoder returns events or raises :class:`~bookkeeper.errors.AdapterError`, nothing else
  (anything else is an *untyped exception*: it would kill a live driver);
- no exception comes out of the session (a *crash*);
- a rejected frame (``AdapterError``; the session then gets ``on_invalid_input``) leaves every
  book's levels exactly as they were;
- where the adapter has a fused C fast path (``adapter.fused``), a frame it applies is one the
  decoder accepts with the same resulting book (else a *fast-path mismatch*).

Everything is seeded: the same ``seed`` gives the same frames, and the seed is in every
failure message. Like :mod:`bookkeeper.testing.conformance`, this module never imports
``adapters``: hand it the adapter::

    from bookkeeper.adapters import get_adapter
    from bookkeeper.testing.fuzz import fuzz_adapter, load_seed_frames

    seeds = load_seed_frames(["capture.jsonl"], limit=300)
    report = fuzz_adapter(get_adapter("okx"), seeds, frames=2_000, seed=1)
    report.check()          # AssertionError naming the seed and the first failures

Each mutated frame starts from the same state (the sessions and decoder as the real stream
left them just before the frame being mutated): the kit checkpoints them with ``pickle``
and restores them after every mutant, then feeds the real frame and moves on.
"""

from __future__ import annotations

import copy
import enum
import math
import os
import pickle
import random
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import AdapterError
from ..events import BookDelta, BookSnapshot, BookTicker
from ..ports import Adapter
from ..session import BookSession

__all__ = [
    "FailureKind", "FrameKind", "FuzzFailure", "FuzzReport", "Mutation", "SeedFrame",
    "fuzz_adapter", "load_seed_frames", "mutate", "mutations",
]  # fmt: skip


class Mutation(enum.Enum):
    """One way of breaking a frame."""

    TRUNCATE = "truncate"  # cut anywhere (mid-string, mid-number, mid-escape)
    SWAP_TYPE = "swap_type"  # a value replaced by one of another JSON type
    NON_FINITE = "non_finite"  # NaN / Infinity / -Infinity / 1e308, bare or quoted
    HUGE_INT = "huge_int"  # 2**63, 2**64, 2**70, negative, 10**30, bare or quoted
    DEEP_NEST = "deep_nest"  # a value (or the frame) nested 100..5000 deep
    UNICODE = "unicode"  # non-ASCII, NUL, lone surrogates, a 10k-character string
    INVALID_UTF8 = "invalid_utf8"  # bytes that are not UTF-8, inside a string or anywhere
    DROP_FIELD = "drop_field"  # a key (or a list element) removed
    DUPLICATE_FIELD = "duplicate_field"  # a key repeated with another value
    EMPTY_CONTAINER = "empty_container"  # a value replaced by [], {}, "" or null
    STRING_NUMBER = "string_number"  # "1.5" <-> 1.5
    BYTE_NOISE = "byte_noise"  # a few random bytes overwritten


class FrameKind(enum.Enum):
    """Where a seed frame came from."""

    WS = "ws"  # a stream frame: goes to the decoder
    REST = "rest"  # a REST order-book body: goes to ``parse_rest_snapshot``


class FailureKind(enum.Enum):
    UNTYPED_EXCEPTION = "untyped_exception"  # the adapter raised something else than AdapterError
    CRASH = "crash"  # an exception came out of the BookSession
    BOOK_CHANGED_ON_REJECT = "book_changed_on_reject"  # a rejected frame changed a book
    FAST_PATH_MISMATCH = "fast_path_mismatch"  # the fused path applied what the decoder refuses


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedFrame:
    """One real frame to mutate (and to feed unmutated, to keep the books synced)."""

    data: bytes
    kind: FrameKind = FrameKind.WS
    url: str | None = None
    ts_recv_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzFailure:
    """One broken contract, with what is needed to reproduce it."""

    kind: FailureKind
    venue: str
    seed: int
    #: the mutant's number in the run (0-based); ``-1`` for an unmutated seed frame
    index: int
    mutation: tuple[Mutation, ...]
    frame_kind: FrameKind
    frame: bytes
    error: str
    traceback: str = ""

    def describe(self) -> str:
        kinds = "+".join(m.value for m in self.mutation) or "none (real frame)"
        call = ("adapter.parse_rest_snapshot" if self.frame_kind is FrameKind.REST
                else "adapter.new_decoder().decode")
        return (f"[{self.venue}] {self.kind.value} (seed={self.seed}, mutant #{self.index}, mutation {kinds}): "
                f"{self.error}\n  reproduce: {call}({self.frame[:300]!r}{'...' if len(self.frame) > 300 else ''})"
                + (f"\n  {self.traceback}" if self.traceback else ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzReport:
    """Counts of one :func:`fuzz_adapter` run."""

    venue: str
    seed: int
    #: mutated frames tried
    frames: int
    #: of which while at least one book was SYNCED
    frames_on_synced: int
    #: decoded (or parsed) without error
    accepted: int
    #: rejected with AdapterError (the expected outcome for most mutants)
    typed_errors: int
    #: of which the adapter's guard typed a stray exception (``AdapterError.__cause__`` is
    #: e.g. a ``RecursionError``): contract kept, but a parser check is missing
    guarded_errors: int
    untyped_exceptions: int
    crashes: int
    books_changed_on_reject: int
    fast_path_mismatches: int
    #: mutated frames the fused fast path applied (each checked against the decoder)
    fast_path_applied: int = 0
    #: the first failures (bounded)
    failures: tuple[FuzzFailure, ...] = ()
    by_mutation: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.untyped_exceptions or self.crashes or self.books_changed_on_reject
                    or self.fast_path_mismatches)

    def as_dict(self) -> dict[str, Any]:
        """The counts (for ``--json`` output); failures as their descriptions."""
        return {
            "venue": self.venue, "seed": self.seed, "frames": self.frames,
            "frames_on_synced": self.frames_on_synced, "accepted": self.accepted,
            "typed_errors": self.typed_errors, "guarded_errors": self.guarded_errors,
            "untyped_exceptions": self.untyped_exceptions,
            "crashes": self.crashes, "books_changed_on_reject": self.books_changed_on_reject,
            "fast_path_mismatches": self.fast_path_mismatches, "fast_path_applied": self.fast_path_applied,
            "failures": [f.describe() for f in self.failures],
        }  # fmt: skip

    def summary(self) -> str:
        return (f"{self.venue}: seed={self.seed} frames={self.frames} (on synced books {self.frames_on_synced}) "
                f"accepted={self.accepted} typed_errors={self.typed_errors} (guarded {self.guarded_errors}) "
                f"untyped_exceptions={self.untyped_exceptions} crashes={self.crashes} "
                f"books_changed_on_reject={self.books_changed_on_reject} "
                f"fast_path_mismatches={self.fast_path_mismatches}")

    def check(self) -> None:
        """Raise ``AssertionError`` (seed, counts and the first failures) unless :attr:`ok`."""
        if not self.ok:
            details = "\n".join(f.describe() for f in self.failures)
            raise AssertionError(f"fuzz contract broken: {self.summary()}\n"
                                 f"rerun with BOOKKEEPER_FUZZ_SEED={self.seed}\n{details}")


# ------------------------------------------------------------------ mutations
_RAW = "@@bookkeeper-fuzz-raw-{}@@"  # placeholder string, replaced by raw bytes after dumps
_DEPTHS = (100, 500, 992, 1000, 1023, 1024, 1100, 5000)
_NON_FINITE = (b"NaN", b"Infinity", b"-Infinity", b"1e308", b"-1e308", b"1e309", b'"NaN"', b'"nan"', b'"inf"',
               b'"-inf"', b'"Infinity"', b'"1e308"', b"5e-324", b"-0.0", b'"-0"', b"1E400")
_HUGE = (2**63, 2**63 - 1, 2**64, 2**64 - 1, 2**70, -1, -(2**63), -(2**63) - 1, 10**30, 0, 10**300)
_UNICODE = ("é", "€", "😀", "\x00", "BTC\u200bUSDT", "\u202eDSUCTB", "A" * 10_000, "ＢＴＣ", "\ufeff")
_UNICODE_RAW = (b'"\\ud800"', b'"\\udfff\\ud800"', b'"\\u0000"', b'"\xed\xa0\x80"')
_BAD_UTF8 = (b"\xff", b"\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82")
_SWAP_POOL: tuple[Any, ...] = (None, True, False, 0, -1, 1.5, "", "x", "1", [], {}, [1], {"a": 1}, [[]], [None])
_TREE_KINDS = frozenset({Mutation.SWAP_TYPE, Mutation.NON_FINITE, Mutation.HUGE_INT, Mutation.UNICODE,
                         Mutation.DROP_FIELD, Mutation.DUPLICATE_FIELD, Mutation.EMPTY_CONTAINER,
                         Mutation.STRING_NUMBER})


def _slots(root: Any) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """Every ``(container, key)`` of the tree (iteratively), and those whose container is a dict."""
    out: list[tuple[Any, Any]] = []
    keyed: list[tuple[Any, Any]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                out.append((node, k))
                keyed.append((node, k))
                if isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                out.append((node, i))
                if isinstance(v, (dict, list)):
                    stack.append(v)
    return out, keyed


def _dumps(root: Any, raws: dict[str, bytes]) -> bytes:
    data = orjson.dumps(root)
    for name, raw in raws.items():
        data = data.replace(orjson.dumps(name), raw, 1)
    return data


def _mutate_bytes(frame: bytes, rng: random.Random, kind: Mutation) -> bytes:
    n = len(frame)
    if kind is Mutation.TRUNCATE:
        return frame[: rng.randrange(n)] if n else b""
    if kind is Mutation.INVALID_UTF8:
        at = rng.randrange(n + 1)
        return frame[:at] + rng.choice(_BAD_UTF8) + frame[at:]
    if kind is Mutation.DEEP_NEST:
        d = rng.choice(_DEPTHS)
        if rng.random() < 0.5:
            return b"[" * d + frame + b"]" * d
        return b'{"a":' * d + frame + b"}" * d
    # BYTE_NOISE (and tree mutations of a frame that is not JSON)
    out = bytearray(frame or b" ")
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _mutate_tree(root: Any, rng: random.Random, kind: Mutation) -> bytes | None:
    slots, keyed = _slots(root)
    if not slots:
        return None
    # Half the time pick a named field (ids, channel, type, symbol...): in a big frame, uniform
    # picks would almost always land on one of thousands of price levels.
    parent, key = rng.choice(keyed) if keyed and rng.random() < 0.5 else rng.choice(slots)
    value = parent[key]
    raws: dict[str, bytes] = {}

    def raw(token: bytes) -> str:
        name = _RAW.format(len(raws))
        raws[name] = token
        return name

    if kind is Mutation.SWAP_TYPE:
        pool = [v for v in _SWAP_POOL if type(v) is not type(value)]
        parent[key] = rng.choice(pool)
    elif kind is Mutation.NON_FINITE:
        parent[key] = raw(rng.choice(_NON_FINITE))
    elif kind is Mutation.HUGE_INT:
        big = rng.choice(_HUGE)
        parent[key] = raw(str(big).encode() if rng.random() < 0.7 else b'"%d"' % big)
    elif kind is Mutation.UNICODE:
        if rng.random() < 0.3:
            parent[key] = raw(rng.choice(_UNICODE_RAW))
        else:
            text = rng.choice(_UNICODE)
            parent[key] = (value[: rng.randrange(len(value) + 1)] + text) if isinstance(value, str) else text
    elif kind is Mutation.DROP_FIELD:
        del parent[key]
    elif kind is Mutation.DUPLICATE_FIELD:
        dicts = [p for p, _ in keyed]
        target = rng.choice(dicts) if dicts else None
        if target is None:
            return None
        dup_key = rng.choice(list(target))
        other = rng.choice(_SWAP_POOL) if rng.random() < 0.7 else target[dup_key]
        target[raw(orjson.dumps(dup_key))] = other
    elif kind is Mutation.EMPTY_CONTAINER:
        if isinstance(value, (list, dict)) and value:
            value.clear()
        else:  # already empty, or a scalar: another kind of nothing
            nothing: tuple[Any, ...] = ([], {}, "", None)
            parent[key] = rng.choice([v for v in nothing if v != value or type(v) is not type(value)])
    elif kind is Mutation.STRING_NUMBER:
        if isinstance(value, str):
            parent[key] = raw(value.encode("utf-8", "surrogatepass") or b"0")  # unquoted: maybe a number
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[key] = str(value)
        else:
            parent[key] = rng.choice(("1", 1, "0.1", 0.1))
    return _dumps(root, raws)


def _deep_value(root: Any, rng: random.Random) -> bytes | None:
    """A value inside the frame nested ``d`` deep (the whole frame: see ``_mutate_bytes``)."""
    slots, keyed = _slots(root)
    if not slots:
        return None
    parent, key = rng.choice(keyed) if keyed and rng.random() < 0.5 else rng.choice(slots)
    d = rng.choice(_DEPTHS)
    inner = orjson.dumps(parent[key])
    token = (b"[" * d + inner + b"]" * d) if rng.random() < 0.5 else (b'{"a":' * d + inner + b"}" * d)
    name = _RAW.format(0)
    parent[key] = name
    return _dumps(root, {name: token})


def mutate(frame: bytes, rng: random.Random, kind: Mutation | None = None) -> bytes:
    """One mutant of ``frame`` (``kind`` chosen by ``rng`` when not given).

    Args:
        frame: a real frame (JSON or not; mutations that need JSON fall back to byte noise).
        rng: the seeded source of every choice.
        kind: the mutation to apply.

    Returns:
        The mutated bytes (possibly not JSON, not UTF-8, or very deep).
    """
    if kind is None:
        kind = rng.choice(tuple(Mutation))
    if kind in _TREE_KINDS or kind is Mutation.DEEP_NEST:
        try:
            root = orjson.loads(frame)
        except orjson.JSONDecodeError:
            root = None
        if isinstance(root, (dict, list)):
            try:
                out = (_deep_value(root, rng) if kind is Mutation.DEEP_NEST and rng.random() < 0.6
                       else None if kind is Mutation.DEEP_NEST else _mutate_tree(root, rng, kind))
            except (TypeError, orjson.JSONEncodeError):
                out = None  # e.g. a value orjson cannot write back: fall through to bytes
            if out is not None:
                return out
        if kind is not Mutation.DEEP_NEST:
            kind = Mutation.BYTE_NOISE
    return _mutate_bytes(frame, rng, kind)


def mutations(frame: bytes, rng: random.Random,
              kinds: Sequence[Mutation] = tuple(Mutation)) -> Iterator[tuple[tuple[Mutation, ...], bytes]]:
    """An endless stream of ``(kinds applied, mutant)``: one mutation, sometimes two stacked.

    Args:
        frame: the real frame.
        rng: the seeded source of every choice.
        kinds: the mutations to draw from.
    """
    while True:
        first = rng.choice(kinds)
        data = mutate(frame, rng, first)
        if rng.random() < 0.15:
            second = rng.choice(kinds)
            yield (first, second), mutate(data, rng, second)
        else:
            yield (first,), data


# ------------------------------------------------------------------ seeds
def load_seed_frames(paths: Sequence[str | os.PathLike[str]], *, limit: int = 300) -> list[SeedFrame]:
    """The first ``limit`` received frames and REST bodies of one recorded session (any format
    ``bookkeeper replay`` reads: bookkeeper recordings, cryptofeed captures, hftbacktest, JSON
    lines).

    Raises:
        UsageError: a file that does not exist or cannot be read.
    """
    from ..io.recording import (  # lazy: the kit's import stays light
        RecordKind,
        read_records,
    )

    out: list[SeedFrame] = []
    for rec in read_records(paths):
        if rec.kind is RecordKind.RECV:
            out.append(SeedFrame(data=rec.data, kind=FrameKind.WS, ts_recv_ns=rec.ts_recv_ns))
        elif rec.kind is RecordKind.REST:
            out.append(SeedFrame(data=rec.data, kind=FrameKind.REST, url=rec.url, ts_recv_ns=rec.ts_recv_ns))
        if len(out) >= limit:
            break
    return out


# ------------------------------------------------------------------ the harness
_BOOK_EVENTS = (BookDelta, BookSnapshot, BookTicker)


def _tb(exc: BaseException) -> str:
    """The last frames of a traceback, one line."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))


def _freeze(obj: Any) -> Any:
    """A restorable copy: pickled (fast), or a deep copy for what pickle refuses (a decoder
    class defined inside a test function)."""
    try:
        return pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError):
        return _Copy(copy.deepcopy(obj))


def _thaw(frozen: Any) -> Any:
    return copy.deepcopy(frozen.obj) if type(frozen) is _Copy else pickle.loads(frozen)


@dataclass(frozen=True, slots=True)
class _Copy:
    obj: Any


class _Feed:
    """The decoder, the sessions and the fast-path symbol of one simulated connection.

    Mutants must all start from the same state, so ``touch(symbol)`` keeps a pickled copy of a
    session before a mutant first changes it and ``restore()`` puts the copies (and the
    decoder, checkpointed once per seed frame) back: copy-on-write, because pickling every
    book of a ten-pair venue for every mutant would cost milliseconds each.
    """

    __slots__ = ("_copies", "_dec_ck", "_fast_ck", "_touched", "decoder", "fast", "sessions")

    def __init__(self, adapter: Adapter) -> None:
        self.decoder = adapter.new_decoder()
        self.sessions: dict[str, BookSession] = {}
        self.fast: str | None = None  # the symbol the last delta went to (as the driver does)
        self._copies: dict[str, bytes] = {}  # pickled sessions as at the checkpoint
        self._touched: set[str] = set()
        self._dec_ck: Any = None
        self._fast_ck: str | None = None

    def checkpoint(self) -> None:
        self._dec_ck = _freeze(self.decoder)
        self._fast_ck = self.fast
        self._copies = {}
        self._touched = set()

    def keep(self, symbol: str) -> None:
        """Make sure a checkpoint copy of ``symbol``'s session exists (once per checkpoint)."""
        if symbol not in self._copies:
            self._copies[symbol] = pickle.dumps(self.sessions[symbol])

    def touch(self, symbol: str) -> None:
        """``symbol``'s session is about to change: restore it after this mutant."""
        self.keep(symbol)
        self._touched.add(symbol)

    def saved_session(self, symbol: str) -> BookSession:
        """A copy of ``symbol``'s session as it was at the checkpoint (after ``keep``)."""
        return pickle.loads(self._copies[symbol])

    def checkpoint_decoder(self) -> Any:
        return _thaw(self._dec_ck)

    def restore(self) -> None:
        for symbol in self._touched:
            self.sessions[symbol] = pickle.loads(self._copies[symbol])
        self._touched = set()
        self.decoder = _thaw(self._dec_ck)
        self.fast = self._fast_ck


def _levels(session: BookSession) -> tuple[Any, ...]:
    return session.book.bids(), session.book.asks(), session.last_seq


def _fingerprint(session: BookSession) -> tuple[Any, ...]:
    """Cheap evidence of a change (the fused path's only way to change a book is to apply)."""
    book = session.book
    return book.bid_count, book.ask_count, book.best_bid(), book.best_ask(), session.last_seq, session.state


class _Fuzzer:
    def __init__(self, adapter: Adapter, seed: int, max_failures: int) -> None:
        self.adapter = adapter
        self.seed = seed
        self.max_failures = max_failures
        self.fused = getattr(adapter, "fused", None)
        self.failures: list[FuzzFailure] = []
        self.counts = dict.fromkeys(
            ("frames", "frames_on_synced", "accepted", "typed_errors", "guarded_errors", "untyped_exceptions",
             "crashes", "books_changed_on_reject", "fast_path_mismatches", "fast_path_applied"), 0)
        self.by_mutation: dict[str, int] = {}

    def fail(self, kind: FailureKind, index: int, muts: tuple[Mutation, ...], seed_frame: SeedFrame, frame: bytes,
             exc: BaseException | None, error: str = "") -> None:
        key = {FailureKind.UNTYPED_EXCEPTION: "untyped_exceptions", FailureKind.CRASH: "crashes",
               FailureKind.BOOK_CHANGED_ON_REJECT: "books_changed_on_reject",
               FailureKind.FAST_PATH_MISMATCH: "fast_path_mismatches"}[kind]
        self.counts[key] += 1
        if len(self.failures) < self.max_failures:
            text = error or (f"{type(exc).__name__}: {str(exc)[:300]}" if exc is not None else "")
            self.failures.append(FuzzFailure(
                kind=kind, venue=self.adapter.name, seed=self.seed, index=index, mutation=muts,
                frame_kind=seed_frame.kind, frame=frame, error=text, traceback=_tb(exc) if exc is not None else ""))

    def _typed(self, exc: AdapterError, muts: tuple[Mutation, ...]) -> None:
        if not muts:
            return
        self.counts["typed_errors"] += 1
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, AdapterError):
            self.counts["guarded_errors"] += 1  # a parser's stray exception, typed by the guard
        name = muts[0].value
        self.by_mutation[name] = self.by_mutation.get(name, 0) + 1

    def feed(self, feed: _Feed, sf: SeedFrame, frame: bytes, *, create: bool, index: int,
             muts: tuple[Mutation, ...]) -> None:
        """One frame through the adapter and the sessions, as ``StreamDriver._on_frame`` and
        ``replay`` do (``create``: open a session for a new symbol, for the real frames)."""
        if sf.kind is FrameKind.REST:
            self._feed_rest(feed, sf, frame, create=create, index=index, muts=muts)
            return
        data: bytes | str = frame
        if muts and (index % 4) == 3 and len(frame) < 100_000:
            try:
                data = frame.decode()  # a text frame, as websockets hands text messages over
            except UnicodeDecodeError:
                pass
        try:
            events = feed.decoder.decode(data, sf.ts_recv_ns)
        except AdapterError as exc:
            self._typed(exc, muts)
            sym = exc.symbol  # type: ignore[attr-defined]
            if sym and sym in feed.sessions:
                if muts:
                    feed.touch(sym)
                session = feed.sessions[sym]
                before = _levels(session)
                try:
                    session.on_invalid_input(str(exc))
                except Exception as exc2:  # noqa: BLE001 - recorded as a crash
                    self.fail(FailureKind.CRASH, index, muts, sf, frame, exc2)
                    return
                if _levels(session) != before:
                    self.fail(FailureKind.BOOK_CHANGED_ON_REJECT, index, muts, sf, frame, None,
                              f"book {sym} changed on a rejected frame ({exc})")
            return
        except Exception as exc:  # noqa: BLE001 - the point: name anything but AdapterError
            self.fail(FailureKind.UNTYPED_EXCEPTION, index, muts, sf, frame, exc)
            return
        if type(events) is not list:
            self.fail(FailureKind.UNTYPED_EXCEPTION, index, muts, sf, frame, None,
                      f"decode returned {type(events).__name__}, not a list")
            return
        if muts:
            self.counts["accepted"] += 1
        for ev in events:
            if not isinstance(ev, _BOOK_EVENTS):
                continue
            sym = ev.symbol
            found = feed.sessions.get(sym)
            if found is None:
                if not create:
                    continue  # the driver only has sessions for the symbols it subscribed
                found = feed.sessions[sym] = BookSession(sym, self.adapter.capabilities)
            elif muts:
                feed.touch(sym)
            try:
                found.handle(ev)
            except Exception as exc:  # noqa: BLE001 - recorded as a crash
                self.fail(FailureKind.CRASH, index, muts, sf, frame, exc)
                return
            if type(ev) is BookDelta:
                feed.fast = sym

    def _feed_rest(self, feed: _Feed, sf: SeedFrame, frame: bytes, *, create: bool, index: int,
                   muts: tuple[Mutation, ...]) -> None:
        try:
            snap = self.adapter.parse_rest_snapshot(frame, url=sf.url, ts_recv_ns=sf.ts_recv_ns)
        except AdapterError as exc:
            self._typed(exc, muts)
            return
        except Exception as exc:  # noqa: BLE001
            self.fail(FailureKind.UNTYPED_EXCEPTION, index, muts, sf, frame, exc)
            return
        if muts:
            self.counts["accepted"] += 1
        sym = snap.symbol or next(iter(feed.sessions), None)
        if sym is None:
            return
        session = feed.sessions.get(sym)
        if session is None:
            if not create:
                return
            session = feed.sessions[sym] = BookSession(sym, self.adapter.capabilities)
        elif muts:
            feed.touch(sym)
        try:
            # the answer to the session's own request when one is out (as the driver tags it)
            session.on_snapshot(snap, epoch=session.epoch or None)
        except Exception as exc:  # noqa: BLE001
            self.fail(FailureKind.CRASH, index, muts, sf, frame, exc)

    def try_fast(self, feed: _Feed, sf: SeedFrame, frame: bytes, index: int, muts: tuple[Mutation, ...]) -> bool:
        """The driver's fused fast path first (when the adapter has one). True: it applied the
        frame, and the kit checked that the decoder accepts it with the same resulting book."""
        if self.fused is None or sf.kind is not FrameKind.WS or feed.fast is None:
            return False
        sym = feed.fast
        session = feed.sessions.get(sym)
        if session is None or not session.is_synced:
            return False
        feed.keep(sym)
        before = _fingerprint(session)
        try:
            applied = session.apply_frame_fast(frame, self.fused)
        except Exception as exc:  # noqa: BLE001
            feed.touch(sym)
            self.fail(FailureKind.CRASH, index, muts, sf, frame, exc)
            return True
        if not applied:
            if _fingerprint(session) != before:
                feed.touch(sym)
                self.fail(FailureKind.FAST_PATH_MISMATCH, index, muts, sf, frame, None,
                          "the fused path declined the frame but changed the book")
            return False
        feed.touch(sym)
        self.counts["fast_path_applied"] += 1
        self.counts["accepted"] += 1
        slow = feed.saved_session(sym)
        try:
            events = feed.checkpoint_decoder().decode(frame, sf.ts_recv_ns)
            for ev in events:
                if isinstance(ev, _BOOK_EVENTS) and ev.symbol == sym:
                    slow.handle(ev)
        except Exception as exc:  # noqa: BLE001
            self.fail(FailureKind.FAST_PATH_MISMATCH, index, muts, sf, frame, exc,
                      f"the fused path applied a frame the normal path refuses: {type(exc).__name__}: {exc}")
            return True
        if _levels(slow) != _levels(session):
            self.fail(FailureKind.FAST_PATH_MISMATCH, index, muts, sf, frame, None,
                      "the fused path and the decoder disagree on the resulting book")
        return True


def _any_synced(feed: _Feed) -> bool:
    return any(s.is_synced for s in feed.sessions.values())


def fuzz_adapter(adapter: Adapter, seed_frames: Iterable[SeedFrame], *, frames: int, seed: int,
                 kinds: Sequence[Mutation] = tuple(Mutation), max_failures: int = 10) -> FuzzReport:
    """Feed ``frames`` mutants of ``seed_frames`` to ``adapter`` and synced sessions.

    The seed frames are replayed in order through one decoder and one ``BookSession`` per
    symbol (as ``bookkeeper replay`` does); once a book is SYNCED, each seed frame is preceded
    by a few mutants of itself, each tried from the same state. The seed list is replayed
    again from scratch until ``frames`` mutants were tried.

    Args:
        adapter: the adapter under test (e.g. ``bookkeeper.adapters.get_adapter("okx")``).
        seed_frames: real frames of one session, in order (see :func:`load_seed_frames`).
        frames: how many mutated frames to try.
        seed: seeds every random choice (with the venue name); printed in every failure.
        kinds: the mutations to draw from.
        max_failures: failures kept (with their frames) in the report.

    Returns:
        The counts; :meth:`FuzzReport.check` raises when the contract was broken.

    Raises:
        ValueError: no seed frames, or ``frames < 0``.
    """
    seeds = list(seed_frames)
    if not seeds:
        raise ValueError("fuzz_adapter needs at least one seed frame")
    if frames < 0:
        raise ValueError("frames must be >= 0")
    rng = random.Random(f"{seed}:{adapter.name}")
    fz = _Fuzzer(adapter, seed, max_failures)
    c = fz.counts
    per_frame = max(1, math.ceil(frames / len(seeds)))
    none: tuple[Mutation, ...] = ()
    rounds = 0
    while c["frames"] < frames and rounds < 1000:
        rounds += 1
        feed = _Feed(adapter)
        for sf in seeds:
            synced = _any_synced(feed)
            todo = min(per_frame, frames - c["frames"])
            # Mutate once a book is synced (the point of the kit), REST bodies always, and from
            # the second round every frame if the seeds never sync a book (the decoder still
            # gets fuzzed).
            if todo and (synced or sf.kind is FrameKind.REST or (rounds > 1 and not c["frames_on_synced"])):
                feed.checkpoint()
                stream = mutations(sf.data, rng, kinds)
                for _ in range(todo):
                    muts, data = next(stream)
                    index = c["frames"]
                    c["frames"] += 1
                    c["frames_on_synced"] += synced
                    if not fz.try_fast(feed, sf, data, index, muts):
                        fz.feed(feed, sf, data, create=False, index=index, muts=muts)
                    feed.restore()
            # the real frame: keeps the books synced for the next mutants
            fz.feed(feed, sf, sf.data, create=True, index=-1, muts=none)
            if c["frames"] >= frames:
                break
    return FuzzReport(venue=adapter.name, seed=seed, failures=tuple(fz.failures), by_mutation=dict(fz.by_mutation),
                      **c)
