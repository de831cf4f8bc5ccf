"""A connection-level sequence skip (Coinbase Advanced Trade `sequence_num`) reaches every
book on that connection through replay: counted, reported, exit status 1."""

from __future__ import annotations

import pathlib

import orjson

from bookkeeper.adapters import get_adapter
from bookkeeper.io.replay import replay

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures/coinbase/advanced_trade/level2.jsonl"


def test_clean_advanced_trade_session_has_no_connection_gap() -> None:
    report = replay(get_adapter("coinbase"), [FIXTURE]).as_json()
    assert (report["snapshots"], report["deltas_applied"], report["connection_gaps"], report["gaps"]) == (2, 3, 0, 0)
    assert report["ok"] is True


def test_skipped_sequence_num_is_a_gap_on_every_synced_book(tmp_path: pathlib.Path) -> None:
    lines = FIXTURE.read_bytes().splitlines()
    # drop the first book update: sequence_num then jumps 2 -> 4
    frames = [orjson.loads(ln) for ln in lines]
    middle = next(i for i, f in enumerate(frames) if f["channel"] == "l2_data" and f["events"][0]["type"] == "update")
    kept = lines[:middle] + lines[middle + 1:]
    path = tmp_path / "skipped.jsonl"
    path.write_bytes(b"\n".join(kept) + b"\n")
    report = replay(get_adapter("coinbase"), [path]).as_json()
    assert report["connection_gaps"] == 1
    # only BTC-USD had its snapshot before the skipped message (ETH-USD's comes after it)
    assert report["gaps"] == 1, report["alerts"]
    assert [a["symbol"] for a in report["alerts"]] == ["BTC-USD"]
    assert report["resubscribe_requests"] == 1
    assert report["ok"] is False
