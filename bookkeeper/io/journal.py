"""Delta journals: the "replay deltas" rung of the recovery ladder (architecture.md §2).

Theory of operation
-------------------
A journal both *serves* missed deltas (the :class:`~bookkeeper.io.execute.Journal` port:
``fetch(symbol, from_seq, to_seq)``, asked by the executor for ``ReplayDeltas``) and, when it
is also a :class:`JournalWriter`, is *fed* the deltas a driver applied to synced books.

- **Writing never slows the feed.** :meth:`JournalWriter.append` (a decoded delta) and
  :meth:`JournalWriter.append_frame` (a frame the fused fast path applied: decoded later, by
  the journal's own decoder) only put an item on a bounded queue; a flush task drains it in
  batches, decodes and serializes (msgspec) and sends one round trip per batch (one Lua call
  looping the ``XADD``s server-side: far cheaper than a redis-py pipeline of them). A
  full queue drops the new item (counted): the journal is a best effort, the book is not.
- **Ids are derived from the sequence id** (:func:`~bookkeeper.coordination.journal_entry_id`):
  ``XADD <last_seq>-0``. Several instances append the same deltas; Redis refuses an id that is
  not above the stream's top, so the copies after the first are rejected and counted as
  duplicates. Each append trims the stream to the last ``window`` ids (``MINID``).
- **A replay is served only when it is provably whole**: ``XRANGE`` from ``from_seq``, then
  :func:`~bookkeeper.coordination.check_journal_range` walks the entries by the venue's own
  sequence rule; a hole (a writer was down), a trimmed start or a range not reached yet within
  ``fetch_wait_s`` (the peers' appends may be a few ms behind this instance's gap) answers
  ``None`` and the ladder takes its next rung.
- **Degradation.** A Redis that is down or slow drops the batch (counted ``failed``), logs one
  warning per episode, marks the journal degraded (``bookkeeper_journal_degraded``) and answers
  every fetch with ``None`` until ``retry_s`` has passed; the feed never waits on it longer
  than ``op_timeout_s`` and never crashes.

:class:`MemoryJournal` is the in-process implementation (a redundant A/B line in the same
process appends to it; tests use it as the reference). :class:`JournalChain` puts several
behind one port: appends go to each, a replay is asked of each in turn (the A/B lines' own
memory first, then the fleet's Redis) and the first provably whole answer wins.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgspec

from bookkeeper.capabilities import SequenceModel
from bookkeeper.coordination import check_journal_range, journal_entry_id, journal_min_seq, journal_seq_of, journaled
from bookkeeper.errors import InvalidEvent, UsageError
from bookkeeper.events import BookDelta
from bookkeeper.ports import Adapter

from .clock import SYSTEM_CLOCK, Clock
from .coord import fleet_key

__all__ = ["JournalChain", "JournalStats", "JournalWriter", "MemoryJournal", "RedisJournal"]

log = logging.getLogger("bookkeeper.io.journal")

_NS = 1_000_000_000
_DUPLICATE = "equal or smaller than the target stream top item"
#: One batch of appends. KEYS: the batch's streams. ARGV[1]: "1" = approximate MINID trimming;
#: then per entry (stream index, id, MINID, payload, "1" = the venue restarted its ids: drop the
#: stream first). An id at or below the stream's top is a duplicate (another writer stored it).
#: Returns {written, duplicates, failed}.
_APPEND = """
local approx = ARGV[1] == '1'
local written, dup, failed = 0, 0, 0
for i = 2, #ARGV, 5 do
  local key = KEYS[tonumber(ARGV[i])]
  if ARGV[i + 4] == '1' then redis.call('DEL', key) end
  local res
  if approx then
    res = redis.pcall('XADD', key, 'MINID', '~', ARGV[i + 2], ARGV[i + 1], 'd', ARGV[i + 3])
  else
    res = redis.pcall('XADD', key, 'MINID', ARGV[i + 2], ARGV[i + 1], 'd', ARGV[i + 3])
  end
  if type(res) == 'table' and res.err then
    if string.find(res.err, 'equal or smaller', 1, true) then dup = dup + 1 else failed = failed + 1 end
  else
    written = written + 1
  end
end
return {written, dup, failed}
"""


@dataclass(slots=True)
class JournalStats:
    """What a journal did (read by the metrics at scrape time: ``bookkeeper_journal_*``).

    Attributes:
        written: entries stored.
        duplicates: appends refused because another writer (or this one) stored that id.
        dropped: appends dropped because the queue was full.
        failed: appends lost because the store failed.
        served: replays answered with deltas.
        refused: replays answered ``None`` (not provably whole, or the store failed).
        degraded: true while the store is unusable.
        degradations: episodes of degradation so far.
    """

    written: int = 0
    duplicates: int = 0
    dropped: int = 0
    failed: int = 0
    served: int = 0
    refused: int = 0
    degraded: bool = False
    degradations: int = 0


@runtime_checkable
class JournalWriter(Protocol):
    """The driver's side of a journal: fed the deltas a synced book applied. Never blocks,
    never raises."""

    def attach(self, adapter: Adapter) -> None:
        """Bind to a venue (its sequence model, and a decoder for :meth:`append_frame`).

        Raises:
            UsageError: already bound to another venue.
        """
        ...

    def append(self, delta: BookDelta) -> None:
        """Journal ``delta`` (a synced book applied it)."""
        ...

    def append_frame(self, symbol: str, frame: bytes | str, ts_recv_ns: int) -> None:
        """Journal the delta of ``symbol`` in ``frame`` (the fast path applied it undecoded)."""
        ...

    @property
    def stats(self) -> JournalStats: ...


class _Attached:
    """The venue binding shared by both journals."""

    def __init__(self) -> None:
        self.venue: str | None = None
        self.model: SequenceModel | None = None
        self._new_decoder: Callable[[], Any] | None = None
        self._decode: Callable[[bytes | str, int], list[Any]] | None = None

    def attach(self, adapter: Adapter) -> None:
        if self.venue is not None and self.venue != adapter.name:
            raise UsageError(f"this journal serves {self.venue!r}, not {adapter.name!r}", venue=adapter.name)
        self.venue = adapter.name
        self.model = adapter.capabilities.sequence_model
        self._new_decoder = adapter.new_decoder

    def decode_frame(self, symbol: str, frame: bytes | str, ts_recv_ns: int) -> list[BookDelta]:
        """The deltas of ``symbol`` in a fast-path frame (the fused path only exists for
        venues whose frames decode on their own, so a private decoder reads them)."""
        if self._decode is None:
            if self._new_decoder is None:
                return []
            self._decode = self._new_decoder().decode
        try:
            events = self._decode(frame, ts_recv_ns)
        except Exception:  # noqa: BLE001 - the fast path applied it; a journal never fails the feed
            log.debug("journal: fast-path frame did not decode", exc_info=True)
            return []
        return [e for e in events if type(e) is BookDelta and e.symbol == symbol]


class MemoryJournal(_Attached):
    """An in-process journal: per symbol, the deltas of the last ``window`` ids (the same id
    and trimming rules as :class:`RedisJournal`).

    Args:
        window: ids kept per symbol.
        max_entries: entries kept per symbol at most (bounds memory whatever the ids do).
    """

    def __init__(self, *, window: int = 100_000, max_entries: int = 100_000) -> None:
        super().__init__()
        self._window = window
        self._entries: dict[str, deque[tuple[int, BookDelta]]] = {}
        self._max = max_entries
        self._stats = JournalStats()

    @property
    def stats(self) -> JournalStats:
        return self._stats

    def append(self, delta: BookDelta) -> None:
        try:
            journal_entry_id(delta)
        except InvalidEvent:
            return
        last = delta.last_seq
        assert last is not None
        q = self._entries.setdefault(delta.symbol, deque(maxlen=self._max))
        if delta.prev_seq is not None and last < delta.prev_seq:
            q.clear()  # the venue restarted its ids: the old ones mean nothing now
        if q and last <= q[-1][0]:
            self._stats.duplicates += 1
            return
        q.append((last, delta))
        self._stats.written += 1
        low = journal_min_seq(last, self._window)
        while q and q[0][0] < low:
            q.popleft()

    def append_frame(self, symbol: str, frame: bytes | str, ts_recv_ns: int) -> None:
        for d in self.decode_frame(symbol, frame, ts_recv_ns):
            self.append(d)

    def seqs(self, symbol: str) -> list[int]:
        """The ids held for ``symbol``, oldest first (tests)."""
        return [s for s, _ in self._entries.get(symbol, ())]

    async def fetch(self, symbol: str, from_seq: int, to_seq: int | None) -> list[BookDelta] | None:
        """Deltas covering ``from_seq..to_seq``, or ``None`` when not provably whole."""
        model = self.model
        held = [d for s, d in self._entries.get(symbol, ()) if s >= from_seq]
        out = check_journal_range(held, model=model, from_seq=from_seq, to_seq=to_seq) if model else None
        if out is None:
            self._stats.refused += 1
        else:
            self._stats.served += 1
        return out


class RedisJournal(_Attached):
    """A delta journal on Redis Streams, one stream per (venue, symbol):
    ``bookkeeper:{venue}:journal:<symbol>`` (see the module docstring).

    Args:
        url: ``redis://host:port/db`` (ignored when ``client`` is given).
        client: a ready ``redis.asyncio.Redis`` (not closed by :meth:`close`).
        window: ids kept per symbol (``MINID`` trimming on every append).
        approximate_trim: let Redis trim whole macro nodes (``MINID ~``: cheaper, keeps a few
            more entries); ``False`` trims exactly.
        stream_tag: instances subscribing different variants of a stream (another update
            speed) must not share a journal: each variant gets its own tag.
        queue_max: appends waiting for the flush task at most (beyond: dropped, counted).
        batch_max: appends per pipelined round trip at most.
        op_timeout_s: the longest any Redis call may take.
        retry_s: while degraded, how long to wait before trying Redis again.
        fetch_wait_s: how long a fetch waits for peers to append the end of a range.
        max_replay: the most entries one fetch reads.
        clock: monotonic time (degradation episodes).

    Raises:
        UsageError: redis-py is not installed (``pip install 'bookkeeper[redis]'``).
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, client: Any = None, window: int = 100_000,
                 approximate_trim: bool = True, stream_tag: str = "", queue_max: int = 65_536, batch_max: int = 512,
                 op_timeout_s: float = 0.25, retry_s: float = 5.0, fetch_wait_s: float = 0.25,
                 max_replay: int = 10_000, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        try:
            import redis.asyncio as aioredis
            import redis.exceptions
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UsageError("RedisJournal needs redis-py: pip install 'bookkeeper[redis]'") from exc
        self._owns = client is None
        self._r = client if client is not None else aioredis.Redis.from_url(
            url, socket_timeout=max(op_timeout_s, fetch_wait_s + op_timeout_s), socket_connect_timeout=op_timeout_s)
        self._failures: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError, TimeoutError)
        self._response_error = redis.exceptions.ResponseError
        self._window = window
        self._approx = approximate_trim
        self._tag = stream_tag
        self._queue: deque[BookDelta | tuple[str, bytes | str, int]] = deque()
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._timeout = op_timeout_s
        self._retry_ns = int(retry_s * _NS)
        self._fetch_wait_s = fetch_wait_s
        self._max_replay = max_replay
        self._clock = clock
        self._stats = JournalStats()
        self._degraded_until: int | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None
        self._busy = False
        self._closed = False
        self._encode = msgspec.msgpack.Encoder().encode
        self._append = self._r.register_script(_APPEND)
        self._decode_delta = msgspec.msgpack.Decoder(BookDelta).decode

    @property
    def stats(self) -> JournalStats:
        return self._stats

    @property
    def client(self) -> Any:
        """The redis-py client (tests use it to look at streams)."""
        return self._r

    def key(self, symbol: str) -> str:
        """The stream of ``symbol``."""
        assert self.venue is not None, "attach() the journal to a venue first"
        return fleet_key(self.venue, "journal", symbol) + (f":{self._tag}" if self._tag else "")

    # ------------------------------------------------------------------ writing (hot path)
    def append(self, delta: BookDelta) -> None:
        self._put(delta)

    def append_frame(self, symbol: str, frame: bytes | str, ts_recv_ns: int) -> None:
        self._put((symbol, frame, ts_recv_ns))

    def _put(self, item: BookDelta | tuple[str, bytes | str, int]) -> None:
        if self._closed:
            return
        q = self._queue
        if len(q) >= self._queue_max:
            self._stats.dropped += 1
            return
        q.append(item)
        wake = self._wake
        if wake is None:
            self._start()
        elif not wake.is_set():
            wake.set()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()
        self._drained = asyncio.Event()
        self._task = loop.create_task(self._flusher(), name="bookkeeper-journal-flush")

    async def _flusher(self) -> None:
        wake, drained = self._wake, self._drained
        assert wake is not None and drained is not None
        q = self._queue
        while True:
            if not q:
                drained.set()
                wake.clear()
                await wake.wait()
                continue
            batch: list[BookDelta | tuple[str, bytes | str, int]] = []
            while q and len(batch) < self._batch_max:
                batch.append(q.popleft())
            self._busy = True
            try:
                await self._flush(batch)
            except Exception:  # noqa: BLE001 - a journal never takes the feed down; logged, counted
                log.exception("journal flush failed")
                self._stats.failed += len(batch)
            finally:
                self._busy = False

    async def flush(self) -> None:
        """Wait until everything appended so far was sent (tests, benchmarks, shutdown)."""
        drained = self._drained
        if drained is None:
            return
        while self._queue or self._busy:
            drained.clear()
            await drained.wait()

    def _deltas(self, batch: list[BookDelta | tuple[str, bytes | str, int]]) -> list[BookDelta]:
        out: list[BookDelta] = []
        for item in batch:
            if type(item) is tuple:
                out.extend(self.decode_frame(*item))
            else:
                out.append(item)  # type: ignore[arg-type]
        return out

    async def _flush(self, batch: list[BookDelta | tuple[str, bytes | str, int]]) -> None:
        deltas = [d for d in self._deltas(batch) if d.last_seq is not None and d.last_seq >= 0]
        if not deltas:
            return
        if not self._use_redis():
            self._stats.failed += len(deltas)
            return
        # One EVALSHA per batch (the XADDs looped server-side) instead of a pipeline of XADDs:
        # redis-py builds and parses each pipelined command in Python (~20 us apiece); here a
        # batch costs one argv list and one reply of three counts.
        keys: dict[str, int] = {}
        argv: list[Any] = ["1" if self._approx else "0"]
        for d in deltas:
            key = self.key(d.symbol)
            assert d.last_seq is not None
            slot = keys.setdefault(key, len(keys) + 1)
            restart = "1" if d.prev_seq is not None and d.last_seq < d.prev_seq else "0"
            argv += (slot, journal_entry_id(d), f"{journal_min_seq(d.last_seq, self._window)}-0", self._encode(d),
                     restart)
        try:
            async with asyncio.timeout(self._timeout):
                counts = await self._append(keys=list(keys), args=argv)
        except self._failures as exc:
            self._failed("append", exc)
            self._stats.failed += len(deltas)
            return
        self._recovered()
        written, duplicates, failed = (int(c) for c in counts)
        self._stats.written += written
        self._stats.duplicates += duplicates
        self._stats.failed += failed

    # ------------------------------------------------------------------ reading (the Journal port)
    async def fetch(self, symbol: str, from_seq: int, to_seq: int | None) -> list[BookDelta] | None:
        """Deltas covering ``from_seq..to_seq``, or ``None`` when the journal cannot prove it
        holds the whole range (or Redis is unusable). Never raises on Redis failures."""
        model = self.model
        if model is None or not journaled(model) or not self._use_redis():
            self._stats.refused += 1
            return None
        key = self.key(symbol)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._fetch_wait_s
        try:
            while True:
                async with asyncio.timeout(self._timeout):
                    rows = await self._r.xrange(key, min=f"{max(from_seq, 0)}-0", max="+", count=self._max_replay)
                deltas = [self._decode_delta(fields[b"d"]) for _, fields in rows]
                out = check_journal_range(deltas, model=model, from_seq=from_seq, to_seq=to_seq)
                if out is not None or to_seq is None or len(rows) >= self._max_replay:
                    break
                top = journal_seq_of(rows[-1][0]) if rows else from_seq - 1
                left = deadline - loop.time()
                if top >= to_seq or left <= 0:
                    break  # the range is held but broken (a hole), or the peers never caught up
                # the peers may be a few ms behind us: block until the stream grows, then look again
                last_id = rows[-1][0] if rows else "0-0"
                async with asyncio.timeout(left + self._timeout):
                    await self._r.xread({key: last_id}, count=1, block=max(1, int(left * 1000)))
        except self._failures as exc:
            self._failed("fetch", exc)
            self._stats.refused += 1
            return None
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:  # a foreign or corrupt entry
            log.warning("journal %s: unreadable entry (%s); not replaying", key, exc)
            self._stats.refused += 1
            return None
        self._recovered()
        if out is None:
            self._stats.refused += 1
        else:
            self._stats.served += 1
        return out

    # ------------------------------------------------------------------ degradation, lifecycle
    def _use_redis(self) -> bool:
        until = self._degraded_until
        return until is None or self._clock.monotonic_ns() >= until

    def _failed(self, what: str, exc: BaseException) -> None:
        if self._degraded_until is None:
            self._stats.degradations += 1
            log.warning("redis journal unavailable (%s: %s: %s); replays fall back to snapshots",
                        what, type(exc).__name__, exc)
        self._stats.degraded = True
        self._degraded_until = self._clock.monotonic_ns() + self._retry_ns

    def _recovered(self) -> None:
        if self._degraded_until is not None:
            log.warning("redis journal reachable again")
            self._degraded_until = None
            self._stats.degraded = False

    async def close(self) -> None:
        """Send what is queued (bounded by ``op_timeout_s``), stop the flush task, close the
        client (when this journal made it). Idempotent."""
        if self._closed:
            return
        try:
            async with asyncio.timeout(self._timeout * 4):
                await self.flush()
        except TimeoutError:
            log.warning("journal close: %d appends not sent", len(self._queue))
        self._closed = True
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=self._timeout)
        if self._owns:
            try:
                await self._r.aclose()
            except self._failures:  # closing a dead connection: nothing left to release
                pass


class JournalChain:
    """Several journals as one: every append goes to each writer, a fetch asks each journal in
    order and returns the first provably whole answer (``None`` when none has one).

    Args:
        journals: in the order a replay asks them (cheapest first: an in-process
            :class:`MemoryJournal` before a :class:`RedisJournal`).

    Raises:
        UsageError: no journal given.
    """

    def __init__(self, *journals: Any) -> None:
        if not journals:
            raise UsageError("a JournalChain needs at least one journal")
        self.journals = journals
        self._writers = [j for j in journals if isinstance(j, JournalWriter)]
        self._stats = JournalStats()

    def attach(self, adapter: Adapter) -> None:
        for j in self.journals:
            attach = getattr(j, "attach", None)
            if attach is not None:
                attach(adapter)

    def append(self, delta: BookDelta) -> None:
        for w in self._writers:
            w.append(delta)

    def append_frame(self, symbol: str, frame: bytes | str, ts_recv_ns: int) -> None:
        for w in self._writers:
            w.append_frame(symbol, frame, ts_recv_ns)

    @property
    def stats(self) -> JournalStats:
        """The members' stats summed (``degraded`` when any member is)."""
        out = self._stats
        for name in ("written", "duplicates", "dropped", "failed", "served", "refused", "degradations"):
            setattr(out, name, sum(getattr(w.stats, name) for w in self._writers))
        out.degraded = any(w.stats.degraded for w in self._writers)
        return out

    async def fetch(self, symbol: str, from_seq: int, to_seq: int | None) -> list[BookDelta] | None:
        """The first member's provably whole answer, or ``None``."""
        for j in self.journals:
            out = await j.fetch(symbol, from_seq, to_seq)
            if out is not None:
                return out
        return None
