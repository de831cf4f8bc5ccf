"""Every registered adapter passes the shipped conformance checks."""

from __future__ import annotations

import pytest

from bookkeeper.adapters import VENUES, get_adapter
from bookkeeper.errors import AdapterError
from bookkeeper.testing.conformance import check_adapter, check_decoder_on_garbage


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
