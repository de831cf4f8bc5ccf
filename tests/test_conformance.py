"""Every registered adapter passes the shipped conformance checks."""

from __future__ import annotations

import pytest
from bookkeeper.adapters import VENUES, get_adapter

from bookkeeper.errors import AdapterError
from bookkeeper.testing.conformance import (
    check_adapter,
    check_decoder_on_garbage,
    check_live_spec,
)


@pytest.mark.parametrize("venue", VENUES)
def test_adapter_conformance(venue: str) -> None:
    check_adapter(get_adapter(venue))


def test_conformance_catches_a_decoder_that_crashes() -> None:
    class Crashing:
        def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[object]:
            raise KeyError("boom")

    with pytest.raises(AssertionError, match="KeyError"):
        check_decoder_on_garbage(Crashing())  # type: ignore[arg-type]


def test_conformance_accepts_adapter_errors() -> None:
    class Strict:
        def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[object]:
            raise AdapterError("no", exchange="x", raw=frame)

    check_decoder_on_garbage(Strict())  # type: ignore[arg-type]


def test_live_spec_conformance_catches_a_rest_call_the_capabilities_do_not_declare() -> None:
    from dataclasses import replace

    from bookkeeper.adapters._common import VenueAdapter

    from bookkeeper.ports import RestCall

    okx = get_adapter("okx")
    bad = VenueAdapter("bad", replace(okx.capabilities, rest_snapshot=False), decoder=okx.new_decoder,
                       live=_OkxDialogue(), ws_root="wss://example.invalid",
                       rest_call=lambda s, d: RestCall(ccxt_id="okx", method="m", params={}))
    with pytest.raises(AssertionError, match="exactly when capabilities.rest_snapshot"):
        check_live_spec(bad)


class _OkxDialogue:
    def ws_url(self, base: str, symbols: object) -> str:
        return base

    def subscribe_messages(self, symbols: object, depth: int | None = None) -> list[str]:
        return ["sub"]

    def unsubscribe_messages(self, symbols: object, depth: int | None = None) -> list[str]:
        return ["unsub"]
