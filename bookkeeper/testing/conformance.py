"""Reusable checks every venue adapter must pass (modelled on trio's ``check_one_way_stream``).

Use them in your own adapter's tests::

    from bookkeeper.testing.conformance import check_adapter
    check_adapter(MY_ADAPTER)          # raises AssertionError with the first violation

They check the contract of :class:`bookkeeper.ports.Adapter`: a decoder per connection;
frames of unknown channels yield ``[]``; malformed input raises
:class:`~bookkeeper.errors.AdapterError` (never another exception, never a partial result);
REST bodies that are not order books raise ``AdapterError``; every snapshot the adapter
produces is flagged complete and every delta keeps ``first_seq <= last_seq``.
:func:`check_live_spec` checks what the live driver needs of a :class:`~bookkeeper.ports.LiveSpec`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import AdapterError, UsageError
from ..events import BookDelta, BookSnapshot
from ..ports import Adapter, Decoder, LiveSpec

__all__ = ["GARBAGE_FRAMES", "check_adapter", "check_decoder_on_garbage", "check_events", "check_live_spec"]

#: Frames no venue sends: each must give ``[]`` or ``AdapterError``.
GARBAGE_FRAMES: tuple[bytes, ...] = (
    b"", b"{", b"[", b"null", b"true", b"42", b'"text"', b"[]", b"{}", b"\xff\xfe", b"{\"a\":",
    b'{"channel":"no-such-channel","data":[1,2,3]}', b'{"topic":"no.such.topic","data":{}}',
    b'{"e":"no_such_event","s":"X"}', b'[1,{"x":1},"no-such-channel","X/Y"]',
    b'{"arg":{"channel":"no-such","instId":"X"},"data":[]}', b'{"table":"noSuchTable","data":[]}',
    b'{"method":"subscription","params":{"channel":"no.such.channel","data":{}}}',
    b"1" * 5000, b'{"x":' + b"9" * 400 + b"}",
)  # fmt: skip


def check_events(events: Iterable[object]) -> None:
    """Invariants of what a decoder returns."""
    for ev in events:
        if isinstance(ev, BookSnapshot):
            assert ev.complete, f"snapshot of {ev.symbol} is not flagged complete"
        if isinstance(ev, BookDelta) and ev.first_seq is not None and ev.last_seq is not None:
            assert ev.first_seq <= ev.last_seq, f"delta of {ev.symbol}: first_seq > last_seq"


def check_decoder_on_garbage(decoder: Decoder, frames: Iterable[bytes] = GARBAGE_FRAMES) -> None:
    """Every garbage frame gives ``[]`` or :class:`AdapterError`, as bytes and as text."""
    for raw in frames:
        variants: list[bytes | str] = [raw]
        try:
            variants.append(raw.decode())
        except UnicodeDecodeError:
            pass
        for frame in variants:
            try:
                events = decoder.decode(frame, 0)
            except AdapterError:
                continue
            except Exception as exc:
                raise AssertionError(f"decode({frame[:60]!r}) raised {type(exc).__name__}: {exc}") from exc
            assert isinstance(events, list), f"decode({frame[:60]!r}) returned {type(events).__name__}"
            check_events(events)


def check_adapter(adapter: Adapter) -> None:
    """Run every generic check on one adapter (raises AssertionError on the first failure)."""
    assert isinstance(adapter.name, str) and adapter.name, "adapter needs a name"
    check_live_spec(adapter)
    caps = adapter.capabilities
    assert caps.venue, "capabilities need a venue"
    decoder = adapter.new_decoder()
    assert isinstance(decoder, Decoder), "new_decoder() must return a Decoder"
    assert adapter.new_decoder() is not decoder, "each connection needs its own decoder"
    check_decoder_on_garbage(decoder)
    for body in (b"", b"{}", b"[]", b"null", b'{"unexpected": true}', b"\xff"):
        try:
            snap = adapter.parse_rest_snapshot(body, symbol="X")
        except AdapterError:
            continue
        except Exception as exc:
            raise AssertionError(f"parse_rest_snapshot({body!r}) raised {type(exc).__name__}: {exc}") from exc
        # a venue whose REST book is a bare list of rows (BitMEX) may read ``[]`` as an empty book
        if body == b"[]" and not snap.bids and not snap.asks:
            continue
        raise AssertionError(f"parse_rest_snapshot({body!r}) accepted a body that is not an order book")


def check_live_spec(adapter: Adapter) -> None:
    """What the I/O layer relies on in a venue's live dialogue (no-op for an adapter without
    one): a ``ws://``/``wss://`` production root, or a bootstrap call that gives the URL, or a
    :class:`UsageError` saying why the venue cannot be reached; subscribe and unsubscribe
    frames for the same ``depth``; a REST snapshot call exactly when the capabilities declare
    a spliceable REST book, and a ccxt URL rule for it."""
    if not isinstance(adapter, LiveSpec):
        return
    try:
        root = adapter.default_ws_url()
    except UsageError as exc:
        assert str(exc), f"{adapter.name}: default_ws_url refused without saying why"
        return
    if root is None:
        assert adapter.ws_bootstrap_call() is not None, f"{adapter.name}: no default URL and no bootstrap call"
    else:
        assert root.startswith(("ws://", "wss://")), f"{adapter.name}: default root {root!r} is not a WebSocket URL"
    for depth in (None, 1, 10, 25, 10_000):
        for what, frames in (("subscribe", adapter.subscribe_messages(["X", "Y"], depth)),
                             ("unsubscribe", adapter.unsubscribe_messages(["X", "Y"], depth))):
            assert isinstance(frames, list) and all(isinstance(f, str) for f in frames), (
                f"{adapter.name}: {what}_messages(depth={depth}) must be a list of text frames")
        call = adapter.rest_snapshot_call("X", depth)
        assert (call is not None) is adapter.capabilities.rest_snapshot, (
            f"{adapter.name}: a REST snapshot call must exist exactly when capabilities.rest_snapshot")
    if adapter.capabilities.rest_snapshot or adapter.ws_bootstrap_call() is not None:
        config = adapter.ccxt_config_for("http://127.0.0.1:1")
        assert "urls" in config, f"{adapter.name}: ccxt_config_for must override ccxt's urls"
