"""The ``bookkeeper replay`` command, run as a subprocess: exit codes 0 / 1 / 2, the
``--json`` contract (exactly one JSON object with integer counters), and clear errors without
tracebacks."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bookkeeper.io.recording import RecordingWriter, RecordKind, read_records

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
KUCOIN = [REAL / "kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz",
          REAL / "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"]
GATE = [REAL / "gateio/gateio_spot_order_book_update_2021-04-22.ws.cfcap.txt.gz",
        REAL / "gateio/gateio_spot_order_book_update_2021-04-22.rest_order_book.cfcap.txt.gz"]
INT_KEYS = ("messages", "instruments", "snapshots", "deltas_applied", "stale_dropped", "checksums_verified",
            "checksum_mismatches", "gaps", "crossed", "parse_errors", "diverged", "ticker_mismatches", "unrecognized",
            "unsynced_instruments")


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bookkeeper.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def one_json(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out[:500]
    obj = orjson.loads(lines[0])
    assert isinstance(obj, dict)
    for key in INT_KEYS:
        assert type(obj[key]) is int, key
    return obj


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr[-2000:]


def bkrec(tmp_path: Path, venue: str, recs, name: str = "case") -> Path:
    path = tmp_path / f"{name}.bkrec.jsonl"
    w = RecordingWriter(path, venue=venue)
    last = 0
    for r in recs:
        last = max(last + 1, r.ts_recv_ns)
        w.write(r.kind, last, r.data, r.url)
    w.close()
    return path


# ---------------------------------------------------------------- exit 0
def test_clean_session_exits_0_with_one_json_object():
    p = cli("replay", "--venue", "kucoin", *KUCOIN, "--json")
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    r = one_json(p.stdout)
    assert (r["instruments"], r["deltas_applied"], r["stale_dropped"], r["gaps"], r["parse_errors"]) == \
           (9, 3805, 48, 0, 0)
    assert r["ok"] is True and r["venue"] == "kucoin"


def test_table_output_without_json():
    p = cli("replay", "--venue", "gateio", *GATE)
    assert p.returncode == 0, p.stderr
    assert "159 deltas applied" in p.stdout and p.stdout.rstrip().endswith("OK")
    assert "HAI_ETH" in p.stdout


# ---------------------------------------------------------------- exit 1
def test_gap_exits_1_and_json_names_it(tmp_path):
    recs = list(read_records(KUCOIN))
    # drop one SNX-BTC delta in the middle of the session
    snx = [i for i, r in enumerate(recs) if b"/market/level2:SNX-BTC" in r.data]
    dropped = orjson.loads(recs[snx[300]].data)["data"]
    nxt = orjson.loads(recs[snx[301]].data)["data"]
    del recs[snx[300]]
    p = cli("replay", "--venue", "kucoin", bkrec(tmp_path, "kucoin", recs), "--json")
    assert p.returncode == 1, p.stderr
    no_traceback(p)
    r = one_json(p.stdout)
    assert r["gaps"] == 1 and r["ok"] is False and r["parse_errors"] == 0
    [alert] = [a for a in r["alerts"] if a["kind"] == "gap"]
    assert alert["symbol"] == "SNX-BTC" and alert["seq"] == nxt["sequenceEnd"]
    assert r["missed_ids"] == dropped["sequenceEnd"] - dropped["sequenceStart"] + 1


def test_parse_error_exits_1_and_json_counts_it(tmp_path):
    recs = list(read_records(GATE))
    i = next(k for k, r in enumerate(recs) if b"order_book_update" in r.data and b'"update"' in r.data)
    recs[i + 1:i + 1] = [recs[i].__class__(recs[i].ts_recv_ns, RecordKind.RECV, recs[i].data[:40], None, 0)]
    p = cli("replay", "--venue", "gateio", bkrec(tmp_path, "gateio", recs), "--json")
    assert p.returncode == 1
    r = one_json(p.stdout)
    assert r["parse_errors"] == 1 and r["gaps"] == 0 and r["ok"] is False


def test_parse_error_is_named_in_the_table(tmp_path):
    recs = list(read_records(GATE))
    recs.append(recs[-1].__class__(recs[-1].ts_recv_ns + 1, RecordKind.RECV, b"{not json", None, 0))
    p = cli("replay", "--venue", "gateio", bkrec(tmp_path, "gateio", recs))
    assert p.returncode == 1
    assert "1 parse errors" in p.stdout and "parse error:" in p.stdout and "FAILED" in p.stdout


# ---------------------------------------------------------------- exit 2
def usage_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)
    no_traceback(p)
    assert p.stdout == ""
    for n in needles:
        assert n in p.stderr, p.stderr


def test_unknown_venue_exits_2():
    usage_error(cli("replay", "--venue", "nosuchvenue", KUCOIN[0], "--json"), "nosuchvenue")


def test_missing_file_exits_2(tmp_path):
    usage_error(cli("replay", "--venue", "kucoin", tmp_path / "nope.cfcap.txt", "--json"), "no such file")


def test_missing_second_file_exits_2_before_any_output(tmp_path):
    usage_error(cli("replay", "--venue", "kucoin", KUCOIN[0], tmp_path / "nope.cfcap.txt", "--json"),
                "no such file")


def test_unreadable_gzip_exits_2(tmp_path):
    bad = tmp_path / "bad.cfcap.txt.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    usage_error(cli("replay", "--venue", "kucoin", bad, "--json"), "cannot read")


def test_truncated_gzip_exits_2(tmp_path):
    data = KUCOIN[0].read_bytes()
    bad = tmp_path / "trunc.cfcap.txt.gz"
    bad.write_bytes(data[: len(data) // 2])
    usage_error(cli("replay", "--venue", "kucoin", bad, "--json"), "cannot read")


@pytest.mark.parametrize("content", [b"hello world\n", bytes(range(256)), gzip.compress(b"just some text\n")])
def test_unknown_format_exits_2(tmp_path, content):
    f = tmp_path / "mystery.dat"
    f.write_bytes(content)
    usage_error(cli("replay", "--venue", "kucoin", f, "--json"), "unknown recording format")


def test_no_files_exits_2():
    p = cli("replay", "--venue", "kucoin")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_damaged_gzip_body_exits_2(tmp_path):
    from test_recording import corrupt_deflate

    usage_error(cli("replay", "--venue", "kucoin", corrupt_deflate(tmp_path), "--json"), "cannot read")


def test_malformed_bookkeeper_recording_exits_2(tmp_path):
    f = tmp_path / "x.bkrec.jsonl"
    f.write_bytes(b'{"format":"bookkeeper-recording","version":1,"venue":"kucoin"}\n{"ts":1,"data":"{}"}\n')
    usage_error(cli("replay", "--venue", "kucoin", f, "--json"), "cannot read")
