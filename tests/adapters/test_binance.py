"""Binance spot / USD-M / COIN-M adapters against the recorded sessions, and faults injected
into them. (The adapter itself is owned elsewhere; these tests only use it.)

Counts come from fixtures/real/PROVENANCE.md (verifier results per file).
"""

from __future__ import annotations

import random

import orjson
import pytest
from _recorded import (
    REAL,
    check_drop_is_gap,
    check_duplicate_is_ignored,
    check_late_copy_is_stale,
    droppable,
    drive,
    first_rest_index,
    records,
    replay_records,
    rest_with_seq,
    without,
)

from bookkeeper.actions import AlertKind, SyncState
from bookkeeper.adapters import get_adapter
from bookkeeper.errors import AdapterError
from bookkeeper.io.recording import Record, RecordKind
from bookkeeper.io.replay import replay

SPOT4 = ("binance/binance_spot_depth100ms_4sym_2021-10-12.ws.cfcap.txt.gz",
         "binance/binance_spot_depth100ms_4sym_2021-10-12.rest_depth.cfcap.txt.gz")
SPOT_HBT = "binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz"
SPOT_HBT_CONT = "binance/binance_spot_btcusdt_2024-08-09.continuation.hbt.txt.gz"
USDM4 = ("binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.ws.cfcap.txt.gz",
         "binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.rest_depth.cfcap.txt.gz")
USDM_HBT = "binance_usdm/binance_usdm_btcusdt_2024-08-08.hbt.txt.gz"
COINM_HBT = ("binance_coinm/binance_coinm_btcusd_perp_2024-08-08.hbt.txt.gz",
             "binance_coinm/binance_coinm_btcusd_perp_2024-08-09.continuation.hbt.txt.gz")


def run_replay(venue: str, *names: str) -> dict:
    return replay(get_adapter(venue), [REAL / n for n in names]).as_json()


def counts(r: dict, *keys: str) -> tuple:
    return tuple(r[k] for k in keys)


CLEAN = ("gaps", "crossed", "parse_errors", "checksum_mismatches", "duplicates", "stale_snapshots")


# ---------------------------------------------------------------- recorded sessions
def test_spot_4sym_session():
    r = run_replay("binance", *SPOT4)
    assert counts(r, "instruments", "snapshots", "bridged", "synced_instruments") == (4, 4, 4, 4)
    assert counts(r, "deltas_applied", "stale_dropped", "buffered") == (172, 5, 4)
    assert r["deltas_applied"] + r["stale_dropped"] == 177
    assert counts(r, *CLEAN) == (0,) * len(CLEAN) and r["ok"] is True


def test_spot_hbt_day_file_alone():
    r = run_replay("binance", SPOT_HBT)
    assert counts(r, "instruments", "snapshots", "bridged", "rest_records") == (1, 1, 1, 1)
    assert counts(r, "deltas_applied", "stale_dropped", "buffered") == (3449, 2, 3)
    assert r["deltas_applied"] + r["stale_dropped"] == 3451
    assert counts(r, *CLEAN) == (0,) * len(CLEAN) and r["ok"] is True


def test_spot_hbt_continues_across_file_rotation():
    r = run_replay("binance", SPOT_HBT, SPOT_HBT_CONT)
    assert counts(r, "instruments", "snapshots", "bridged") == (1, 1, 1)
    assert counts(r, "deltas_applied", "stale_dropped", "buffered") == (6493, 2, 3)
    assert counts(r, *CLEAN) == (0,) * len(CLEAN) and r["ok"] is True


def test_continuation_alone_never_syncs():
    """The continuation file has no snapshot of its own: nothing can be applied."""
    r = run_replay("binance", SPOT_HBT_CONT)
    assert r["deltas_applied"] == 0 and r["snapshots"] == 0 and r["synced_instruments"] == 0
    assert r["buffered"] > 0 and r["snapshot_requests"] == 1


def test_usdm_4sym_session():
    r = run_replay("binance_usdm", *USDM4)
    assert counts(r, "instruments", "snapshots", "bridged") == (4, 4, 4)
    assert counts(r, "deltas_applied", "stale_dropped", "buffered") == (752, 12, 4)
    assert r["deltas_applied"] + r["stale_dropped"] == 764
    assert counts(r, *CLEAN) == (0,) * len(CLEAN) and r["ok"] is True


def test_usdm_hbt_session_and_book_ticker_cross_check():
    r = run_replay("binance_usdm", USDM_HBT)
    assert counts(r, "instruments", "snapshots", "bridged") == (1, 1, 1)
    assert counts(r, "deltas_applied", "stale_dropped", "buffered") == (6547, 4, 6)
    assert counts(r, "ticker_checks", "ticker_mismatches") == (126, 0)
    assert counts(r, *CLEAN) == (0,) * len(CLEAN) and r["ok"] is True


def test_coinm_hbt_with_continuation():
    r = run_replay("binance_coinm", *COINM_HBT)
    assert counts(r, "instruments", "snapshots", "bridged") == (1, 1, 1)
    assert counts(r, "deltas_applied", "stale_dropped", "buffered") == (44772, 23, 25)
    assert r["deltas_applied"] + r["stale_dropped"] == 44795
    assert counts(r, *CLEAN) == (0,) * len(CLEAN) and r["ok"] is True


# ---------------------------------------------------------------- faults: spot U/u
@pytest.fixture(scope="module")
def spot4():
    recs = records(*SPOT4)
    return recs, drive("binance", recs)


@pytest.fixture(scope="module")
def usdm4():
    recs = records(*USDM4)
    return recs, drive("binance_usdm", recs)


def test_spot_drop_is_one_gap_at_that_point(spot4):
    recs, clean = spot4
    assert clean.total("deltas_applied") == 172
    cands = droppable(clean)
    j, d, n = cands[len(cands) // 2]
    check_drop_is_gap("binance", recs, clean, j, d, n, note="spot middle")


def test_spot_random_drop_always_one_gap(spot4):
    recs, clean = spot4
    cands = droppable(clean)
    for seed in range(15):
        j, d, n = random.Random(seed).choice(cands)
        check_drop_is_gap("binance", recs, clean, j, d, n, note=f"seed={seed} record={j} {d.symbol} U={d.first_seq}")


def test_spot_duplicate_and_late_copy(spot4):
    recs, clean = spot4
    j, d, _ = droppable(clean)[7]
    check_duplicate_is_ignored("binance", recs, clean, j, d)
    check_late_copy_is_stale("binance", recs, clean, j, len(recs) - 1)


def test_spot_stale_rest_snapshot_is_reported(spot4):
    recs, clean = spot4
    i = next(k for k, r in enumerate(recs) if r.kind is RecordKind.REST)
    body = orjson.loads(recs[i].data)
    sym = [s for s in clean.sessions if s in (recs[i].url or "")][0]
    old = body["lastUpdateId"] - 100_000
    bad = list(recs)
    bad[i] = rest_with_seq(recs[i], "lastUpdateId", old)
    run = drive("binance", bad)
    s = run.sessions[sym]
    assert s.stats.stale_snapshots == 1 and s.stats.deltas_applied == 0
    assert s.state is SyncState.AWAITING_SNAPSHOT
    [alert] = [a for a in run.alerts if a.kind is AlertKind.STALE_SNAPSHOT]
    assert (alert.symbol, alert.seq) == (sym, old)
    assert run.total("bridged") == 3 and run.total("gaps") == 0


# ---------------------------------------------------------------- faults: futures pu chain
def test_usdm_drop_breaks_the_pu_chain(usdm4):
    recs, clean = usdm4
    cands = droppable(clean)
    j, d, n = cands[len(cands) // 3]
    run = check_drop_is_gap("binance_usdm", recs, clean, j, d, n, note="usdm pu")
    [alert] = run.gap_alerts()
    assert n.prev_seq == d.last_seq  # the next event points at the dropped one
    assert alert.missed == n.prev_seq - run.sessions[d.symbol].last_seq


def test_usdm_random_drop_always_one_gap(usdm4):
    recs, clean = usdm4
    cands = droppable(clean)
    for seed in range(15):
        j, d, n = random.Random(1000 + seed).choice(cands)
        check_drop_is_gap("binance_usdm", recs, clean, j, d, n,
                          note=f"seed={1000 + seed} record={j} {d.symbol} u={d.last_seq}")


def test_usdm_duplicate_is_counted_not_applied(usdm4):
    recs, clean = usdm4
    j, d, _ = droppable(clean)[40]
    check_duplicate_is_ignored("binance_usdm", recs, clean, j, d)


def test_usdm_hbt_drop_through_the_replay_engine(tmp_path):
    recs = records(USDM_HBT)
    # a depth event well after the bridge, with the next depth event after it
    depth = [i for i, r in enumerate(recs) if b"depthUpdate" in r.data[:200]]
    j = depth[len(depth) // 2]
    d = orjson.loads(recs[j].data)["data"]
    n = orjson.loads(recs[depth[depth.index(j) + 1]].data)["data"]
    r = replay_records(tmp_path, "binance_usdm", without(recs, j)).as_json()
    assert r["gaps"] == 1 and r["ok"] is False
    [alert] = [a for a in r["alerts"] if a["kind"] == "gap"]
    assert alert["seq"] == n["u"] and n["pu"] == d["u"]


# ---------------------------------------------------------------- bad input
def test_bad_frames_in_a_binance_stream_are_parse_errors(tmp_path, spot4):
    recs, clean = spot4
    j, d, _ = droppable(clean)[20]
    good = recs[j].data
    bad_frames = [good[:-9], good.replace(b'"U":', b'"U":"x",  "V":', 1),
                  good.replace(b'"b":[[', b'"b":[["NaN","1"],[', 1)]
    bad = list(recs)
    for k, payload in enumerate(bad_frames):
        bad.insert(j + k, Record(recs[j].ts_recv_ns, RecordKind.RECV, payload, None, 0))
    for payload in bad_frames:
        with pytest.raises(AdapterError):
            get_adapter("binance").new_decoder().decode(payload)
    r = replay_records(tmp_path, "binance", bad).as_json()
    assert r["parse_errors"] == 3 and r["ok"] is False
    assert r["messages"] == 265 + 3


def test_depth_update_that_is_not_utf8_is_an_adapter_error() -> None:
    from bookkeeper.errors import AdapterError

    decoder = get_adapter("binance").new_decoder()
    for frame in (b'{"e":"depthUpdate","s":"BTC\xff","U":1,"u":2,"b":[],"a":[]}',
                  b'{"stream":"x","data":{"e":"depthUpdate","s":"\xc3","U":1,"u":2,"b":[],"a":[]}}'):
        with pytest.raises(AdapterError):
            decoder.decode(frame)
