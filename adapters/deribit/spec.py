"""Deribit capabilities and wire dialogue.

Sources: docs.deribit.com "book.{instrument_name}.{interval}", "Notifications",
"public/set_heartbeat" (exchange-protocols.md §9). Sequence model ``PREV_POINTER`` on
``change_id``/``prev_change_id``; the first notification after (re)subscribing is a full
snapshot, so recovery is a resubscribe and the WS snapshot is spliced with ``PREV_EXACT``
(the first change kept names the snapshot's ``change_id``). No REST splice: it is
undocumented (§9.2 ⚠). Heartbeats are opt-in: we ask for them on connect
(``public/set_heartbeat``, interval >= 10 s) and must answer every ``test_request`` with
``public/test``, or the server closes the connection at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.events import NoticeKind, VenueNotice
from bookkeeper.ports import Market

HEARTBEAT_INTERVAL_S = 10  # Deribit's minimum

CAPABILITIES = ExchangeCapabilities(
    venue="deribit",
    sequence_model=SequenceModel.PREV_POINTER,  # prev_change_id == local
    splice_rule=SpliceRule.NONE,  # no REST splice (see module docstring)
    ws_splice_rule=SpliceRule.PREV_EXACT,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=False,
    rest_snapshot_depth=10_000,
    # The server's heartbeat every HEARTBEAT_INTERVAL_S proves liveness; books of illiquid
    # options can be silent for minutes, so no per-channel data timer.
    idle_timeout_s=None,
)

WS_URL = "wss://www.deribit.com/ws/api/v2"  # §9.1 production; one endpoint for every instrument
WS_ROOTS: Mapping[Market, str] = dict.fromkeys(Market, WS_URL)


def channels(symbols: Sequence[str], interval: str = "100ms") -> list[str]:
    """``book.{instrument}.{interval}``; ``raw`` needs an authenticated connection."""
    return [f"book.{s}.{interval}" for s in symbols]


def ws_url(base: str, symbols: Sequence[str]) -> str:
    return base.rstrip("/")


def _rpc(method: str, params: dict[str, object], request_id: int) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).decode()


def subscribe_messages(symbols: Sequence[str], depth: int | None = None, interval: str = "100ms") -> list[str]:
    """Turn heartbeats on, then subscribe (one request; Deribit caps frames at 32 KiB)."""
    return [
        _rpc("public/set_heartbeat", {"interval": HEARTBEAT_INTERVAL_S}, 1),
        _rpc("public/subscribe", {"channels": channels(symbols, interval)}, 2),
    ]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None, interval: str = "100ms") -> list[str]:
    return [_rpc("public/unsubscribe", {"channels": channels(symbols, interval)}, 3)]


def test_message(request_id: int = 9) -> str:
    """The answer to a ``test_request`` heartbeat (also usable as an app-level ping)."""
    return _rpc("public/test", {}, request_id)


def reply_to(notice: VenueNotice) -> str | None:
    """Deribit closes a connection whose ``test_request`` heartbeat goes unanswered: the
    answer is ``public/test`` (Deribit API, "public/set_heartbeat")."""
    return test_message() if notice.kind is NoticeKind.TEST_REQUEST else None
