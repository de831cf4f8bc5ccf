"""[harden] for ``bookkeeper replay`` and the CLI: a bad frame is a counted parse error, never
a traceback; divergence, ticker mismatches, refused input and books left unsynced fail the
replay; a capture replayed as the wrong venue fails and names the likely venue; errors name the
file and line; ``-`` is stdin; ``sim --port`` is validated; the live view prints exact prices."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from bookkeeper.adapters import VENUES, get_adapter

from bookkeeper.apps.view import TerminalView, format_number
from bookkeeper.cli import main
from bookkeeper.errors import AdapterError
from bookkeeper.io import replay as replay_mod
from bookkeeper.io.recording import RecordingWriter, RecordKind, read_records
from bookkeeper.io.replay import MAX_SAMPLES, replay
from bookkeeper.session import BookSession

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
OKX = REAL / "okx/okex_v5_books-l2-tbt_2021-07-22.cfcap.txt.gz"
OKX_3INST = REAL / "okx/okx_v5_books_3inst_2022-05-13.cfcap.txt.gz"
USDM = REAL / "binance_usdm/binance_usdm_btcusdt_2024-08-08.hbt.txt.gz"
COINM = REAL / "binance_coinm/binance_coinm_btcusd_perp_2024-08-08.hbt.txt.gz"
BYBIT_V5 = REAL / "bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz"
BINANCE_4SYM = [REAL / "binance/binance_spot_depth100ms_4sym_2021-10-12.ws.cfcap.txt.gz",
                REAL / "binance/binance_spot_depth100ms_4sym_2021-10-12.rest_depth.cfcap.txt.gz"]
BINANCE_URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"

#: every capture of fixtures/real with the venue it was recorded from
CAPTURES: list[tuple[str, list[str]]] = [
    ("binance", ["binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz",
                 "binance/binance_spot_btcusdt_2024-08-09.continuation.hbt.txt.gz"]),
    ("binance", ["binance/binance_spot_depth100ms_4sym_2021-10-12.ws.cfcap.txt.gz",
                 "binance/binance_spot_depth100ms_4sym_2021-10-12.rest_depth.cfcap.txt.gz"]),
    ("binance_usdm", ["binance_usdm/binance_usdm_btcusdt_2024-08-08.hbt.txt.gz"]),
    ("binance_usdm", ["binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.ws.cfcap.txt.gz",
                      "binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.rest_depth.cfcap.txt.gz"]),
    ("binance_coinm", ["binance_coinm/binance_coinm_btcusd_perp_2024-08-08.hbt.txt.gz",
                       "binance_coinm/binance_coinm_btcusd_perp_2024-08-09.continuation.hbt.txt.gz"]),
    ("bitget", ["bitget/bitget_spot_v1_books_8inst_2022-04-07.cfcap.txt.gz"]),
    ("bitmex", ["bitmex/bitmex_orderBookL2_2021-07-22.cfcap.txt.gz"]),
    ("bybit", ["bybit/bybit_legacy_inverse_orderBookL2_25_2021-04-17.cfcap.txt.gz"]),
    ("bybit", ["bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz"]),
    ("coinbase", ["coinbase/coinbase_pro_legacy_level2_2021-04-17.cfcap.txt.gz"]),
    ("deribit", ["deribit/deribit_book_raw_options_2021-07-22.cfcap.txt.gz"]),
    ("gateio", ["gateio/gateio_spot_order_book_update_2021-04-22.ws.cfcap.txt.gz",
                "gateio/gateio_spot_order_book_update_2021-04-22.rest_order_book.cfcap.txt.gz"]),
    ("gateio_futures", ["gateio/gateio_usdt_futures_order_book_update_2023-05-24.ws.cfcap.txt.gz",
                        "gateio/gateio_usdt_futures_order_book_update_2023-05-24.rest_order_book.cfcap.txt.gz"]),
    ("kraken", ["kraken/kraken_spot_v1_book1000_10pairs_2021-04-17.cfcap.txt.gz"]),
    ("kraken_futures", ["kraken_futures/kraken_futures_book_2021-07-22.cfcap.txt.gz"]),
    ("kucoin", ["kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz",
                "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"]),
    ("okx", ["okx/okex_v5_books-l2-tbt_2021-07-22.cfcap.txt.gz"]),
    ("okx", ["okx/okex_v5_books-l2-tbt_2021-07-22_conn3.cfcap.txt.gz"]),
    ("okx", ["okx/okx_v5_books_3inst_2022-05-13.cfcap.txt.gz"]),
]


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``bookkeeper`` in-process: (exit status, stdout, stderr). An uncaught exception (a
    traceback for the user) fails the test by propagating."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def replay_json(capsys: pytest.CaptureFixture[str], venue: str, *files: object) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(capsys, "replay", "--venue", venue, *files, "--json")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out[:500]
    return code, orjson.loads(lines[0]), err


def write_bkrec(path: Path, venue: str, recs: list[tuple[RecordKind, bytes, str | None]]) -> Path:
    w = RecordingWriter(path, venue=venue)
    for i, (kind, data, url) in enumerate(recs):
        w.write(kind, i + 1, data, url)
    w.close()
    return path


def with_frames(path: Path, src: Path, venue: str, extra: list[bytes], at: int) -> Path:
    """The records of ``src`` with ``extra`` RECV frames inserted before record ``at``."""
    recs = [(r.kind, r.data, r.url) for r in read_records([src])]
    recs[at:at] = [(RecordKind.RECV, f, None) for f in extra]
    return write_bkrec(path, venue, recs)


def bn_delta(u: int, bids: list[list[str]], asks: list[list[str]] | None = None) -> bytes:
    return orjson.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": u, "u": u, "b": bids, "a": asks or []})


def bn_rest(last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    return orjson.dumps({"lastUpdateId": last_update_id, "bids": bids, "asks": asks})


# ================================================================ defect 5: never a traceback
# The frames mutation fuzz found escaping 13 of 14 decoders as TypeError / OverflowError /
# RecursionError (issue 6, defect 1). Whatever the decoder raises, replay counts a parse error.
DEFECT1_FRAMES = [
    ("okx", OKX, b'{"arg":{"channel":[]}}'),
    ("okx", OKX, b'{"arg":{"channel":"books","instId":[]},"action":"update","data":[]}'),
    ("binance_usdm", USDM, b'{"stream":"btcusdt@depth@100ms","data":' + b"[" * 1000 + b"]" * 1000 + b"}"),
    ("bybit", BYBIT_V5, b'{"topic":"orderbook.500.XRPUSDT","type":"delta","data":' + b"[" * 1000 + b"]" * 1000
     + b"}"),
]


@pytest.mark.parametrize(("venue", "src", "frame"), DEFECT1_FRAMES, ids=lambda x: getattr(x, "name", str(x)[:30]))
def test_a_frame_the_decoder_chokes_on_is_one_parse_error_exit_1(tmp_path, capsys, venue, src, frame):
    path = with_frames(tmp_path / "bad.bkrec.jsonl", src, venue, [frame], at=40)
    code, j, _ = replay_json(capsys, venue, path)
    assert code == 1
    assert j["parse_errors"] == 1 and j["ok"] is False
    # the sample names the file and the line of the bad frame (header line + 40 records + 1)
    assert j["parse_error_samples"][0].startswith(f"{path}: line 42: ")
    assert "1 parse errors" in j["problems"]


class _Raising:
    """Wraps a real adapter; its decoder raises ``exc`` on frames containing ``marker``."""

    def __init__(self, venue: str, marker: bytes, exc: BaseException, rest_exc: BaseException | None = None) -> None:
        self._a = get_adapter(venue)
        self.name = self._a.name
        self.capabilities = self._a.capabilities
        self._marker, self._exc, self._rest_exc = marker, exc, rest_exc

    def new_decoder(self) -> Any:
        inner = self._a.new_decoder()
        marker, exc = self._marker, self._exc

        class Dec:
            def decode(self, frame: bytes, ts_recv_ns: int = 0) -> list[Any]:
                if marker in frame:
                    raise exc
                return inner.decode(frame, ts_recv_ns)

        return Dec()

    def parse_rest_snapshot(self, body: Any, **kw: Any) -> Any:
        if self._rest_exc is not None:
            raise self._rest_exc
        return self._a.parse_rest_snapshot(body, **kw)


@pytest.mark.parametrize("exc", [TypeError("unhashable type: 'list'"), OverflowError("cannot convert float infinity"),
                                 RecursionError("maximum recursion depth exceeded"), KeyError("data")],
                         ids=lambda e: type(e).__name__)
def test_replay_counts_any_decoder_exception_and_goes_on(tmp_path, exc):
    clean = replay(get_adapter("okx"), [OKX]).as_json()
    path = with_frames(tmp_path / "x.bkrec.jsonl", OKX, "okx", [b'{"poison":1}'] * 3, at=100)
    r = replay(_Raising("okx", b"poison", exc), [path])  # type: ignore[arg-type]
    j = r.as_json()
    assert j["parse_errors"] == 3 and j["ok"] is False
    assert len(r.parse_error_samples) == 3
    assert all(f"{type(exc).__name__}: " in s for s in r.parse_error_samples)
    # every other frame was still verified
    assert (j["deltas_applied"], j["checksums_verified"], j["synced_instruments"]) == \
           (clean["deltas_applied"], clean["checksums_verified"], 10)


def test_replay_counts_a_rest_parser_exception(tmp_path):
    r = replay(_Raising("kucoin", b"\x00never", ValueError, rest_exc=OverflowError("huge")),  # type: ignore[arg-type]
               [REAL / "kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz",
                REAL / "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"])
    assert r.parse_errors == 9 and not r.ok
    assert all("OverflowError: huge" in s and "rest_level2" in s for s in r.parse_error_samples)


def test_a_session_that_raises_is_a_parse_error_and_its_book_leaves_synced(tmp_path, monkeypatch):
    calls = {"n": 0}

    class Exploding(BookSession):
        __slots__ = ()

        def handle(self, event: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 500:
                raise RuntimeError("bug in the session")
            return super().handle(event)

    monkeypatch.setattr(replay_mod, "BookSession", Exploding)
    j = replay(get_adapter("okx"), [OKX]).as_json()
    assert j["parse_errors"] == 1 and j["ok"] is False
    assert j["invalid_inputs"] == 1  # the symbol's session was told: it may have lost a delta
    assert j["synced_instruments"] == 9


def test_rest_snapshot_without_symbol_samples_are_bounded(tmp_path):
    # two instruments, then 30 REST answers that name none of them: 30 parse errors, 20 samples
    recs: list[tuple[RecordKind, bytes, str | None]] = [
        (RecordKind.RECV, bn_delta(101, [["10.0", "1"]]), None),
        (RecordKind.RECV, bn_delta(101, [["10.0", "1"]]).replace(b"BTCUSDT", b"ETHUSDT"), None),
    ]
    recs += [(RecordKind.REST, bn_rest(100, [["9.0", "1"]], [["11.0", "1"]]), None)] * 30
    r = replay(get_adapter("binance"), [write_bkrec(tmp_path / "r.bkrec.jsonl", "binance", recs)])
    assert r.parse_errors == 30
    assert len(r.parse_error_samples) == MAX_SAMPLES == 20
    assert "REST snapshot names no symbol" in r.parse_error_samples[0]


# ================================================================ defect 5: integrity = exit 1
def test_divergence_from_a_snapshot_at_the_same_id_exits_1(tmp_path, capsys):
    recs = [
        (RecordKind.OPEN, b"", "wss://stream.binance.com/ws"),
        (RecordKind.RECV, bn_delta(101, [["10.0", "1"]]), None),
        (RecordKind.REST, bn_rest(100, [["9.0", "1"]], [["11.0", "1"]]), BINANCE_URL),
        (RecordKind.RECV, bn_delta(102, [["9.5", "1"]]), None),
        (RecordKind.OPEN, b"", "wss://stream.binance.com/ws"),  # reconnect: resume pending
        # the venue's book at id 102 is not ours at 102: the resume proves a divergence
        (RecordKind.REST, bn_rest(102, [["1.0", "1"]], [["2.0", "1"]]), BINANCE_URL),
        (RecordKind.RECV, bn_delta(103, [["1.5", "1"]]), None),
    ]
    code, j, _ = replay_json(capsys, "binance", write_bkrec(tmp_path / "div.bkrec.jsonl", "binance", recs))
    assert (j["diverged"], j["gaps"], j["parse_errors"], j["synced_instruments"]) == (1, 0, 0, 1)
    assert j["problems"] == ["1 diverged"] and j["ok"] is False
    assert code == 1


def test_ticker_mismatches_exit_1(tmp_path, capsys):
    # every bookTicker of the USD-M capture with another bid size: the 126 checks that matched
    # (fixtures/real/PROVENANCE.md: 126/126) all mismatch
    raw = gzip.decompress(USDM.read_bytes()).splitlines(keepends=True)
    out = [ln.replace(b'"B":"', b'"B":"9') if b"@bookTicker" in ln else ln for ln in raw]
    path = tmp_path / "usdm_tickers.hbt.txt.gz"
    path.write_bytes(gzip.compress(b"".join(out), compresslevel=1))
    code, j, _ = replay_json(capsys, "binance_usdm", path)
    assert (j["ticker_checks"], j["ticker_mismatches"], j["gaps"], j["parse_errors"]) == (126, 126, 0, 0)
    assert j["problems"] == ["126 ticker mismatches"] and j["ok"] is False
    assert code == 1


def test_clean_ticker_checks_still_exit_0(capsys):
    code, j, _ = replay_json(capsys, "binance_usdm", USDM)
    assert (j["ticker_checks"], j["ticker_mismatches"], j["diverged"], j["unrecognized"]) == (126, 0, 0, 0)
    assert j["problems"] == [] and j["input_problem"] is None and code == 0


# ================================================================ defect 6: wrong venue
@pytest.mark.parametrize("venue", ["binance", "kraken", "deribit"])
def test_okx_capture_replayed_as_another_venue_exits_1_naming_okx(capsys, venue):
    code, j, err = replay_json(capsys, venue, OKX)
    msg = "no instrument found in 1,616 messages: is this a okx capture? (--venue okx)"
    assert code == 1
    assert j["instruments"] == 0 and j["ok"] is False
    assert j["input_problem"] == msg and j["likely_venues"] == ["okx"]
    assert j["unrecognized"] + j["parse_errors"] == 1616
    assert msg in err


def test_wrong_venue_table_output_says_it_too(capsys):
    code, out, _ = run_cli(capsys, "replay", "--venue", "kraken", OKX)
    assert code == 1
    assert out.rstrip().endswith("FAILED: no instrument found in 1,616 messages: is this a okx capture? "
                                 "(--venue okx)")


@pytest.mark.parametrize("venue", ["binance", "okx", "kraken"])
def test_a_file_of_only_an_unknown_object_exits_1(tmp_path, capsys, venue):
    f = tmp_path / "a.jsonl"
    f.write_bytes(b'{"a":1}\n')
    code, j, err = replay_json(capsys, venue, f)
    assert code == 1
    assert (j["messages"], j["instruments"], j["unrecognized"], j["likely_venues"]) == (1, 0, 1, [])
    assert j["input_problem"] == f"no instrument found in 1 message: is --venue {venue} right?"
    assert j["input_problem"] in err


def test_mostly_foreign_frames_exit_1_even_with_instruments(tmp_path, capsys):
    # a real Binance session, and a whole OKX capture in the same input (received earlier)
    code, j, _ = replay_json(capsys, "binance", *BINANCE_4SYM, OKX)
    assert j["instruments"] == 4 and j["synced_instruments"] == 4 and j["gaps"] == 0
    assert j["unrecognized"] == 1616
    assert j["input_problem"] == "1,616 of 1,881 messages not recognized as binance: is this a okx capture? " \
                                 "(--venue okx)"
    assert code == 1


@pytest.mark.parametrize(("venue", "files"), CAPTURES, ids=[f"{v}:{Path(f[0]).name[:40]}" for v, f in CAPTURES])
def test_every_real_capture_with_its_venue_is_ok_and_recognized(venue, files):
    r = replay(get_adapter(venue), [REAL / f for f in files],
               alternatives=[get_adapter(v) for v in VENUES if v != venue])
    j = r.as_json()
    assert j["ok"] is True, j["problems"]
    assert j["input_problem"] is None and j["likely_venues"] == []
    # at most a few venue control frames the decoder ignores (BitMEX: 30 subscribe acks + welcome)
    assert j["unrecognized"] <= max(5, j["messages"] // 50), j["unrecognized"]


# ================================================================ defect 7: files, stdin, lines
def test_a_directory_is_reported_as_a_directory(tmp_path, capsys):
    code, out, err = run_cli(capsys, "replay", "--venue", "okx", tmp_path, "--json")
    assert code == 2 and out == ""
    assert f"{tmp_path}: is a directory" in err and "no such file" not in err


def test_truncated_gzip_names_the_file_and_the_line(tmp_path, capsys):
    data = OKX.read_bytes()
    bad = tmp_path / "trunc.cfcap.txt.gz"
    bad.write_bytes(data[: len(data) // 2])
    code, out, err = run_cli(capsys, "replay", "--venue", "okx", bad, "--json")
    assert code == 2 and out == ""
    assert f"cannot read {bad}: line " in err
    line = int(err.split(": line ", 1)[1].split(":", 1)[0])
    complete = gzip.decompress(data).count(b"\n")
    assert 1 < line < complete  # where the data ends, not line 0 or the whole file


def test_malformed_line_names_the_file_and_the_line(tmp_path, capsys):
    f = tmp_path / "x.hbt.txt"
    f.write_bytes(b'1723161253123456789 {"a":1}\n1723161253123456790 {"a":2}\nnot-a-timestamp {"a":3}\n')
    code, _, err = run_cli(capsys, "replay", "--venue", "binance", f)
    assert code == 2
    assert f"cannot read {f}: line 3: " in err


def _cli_stdin(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "bookkeeper.cli", *args], input=stdin, capture_output=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_dash_reads_the_recording_from_stdin(compressed):
    data = OKX_3INST.read_bytes()
    p = _cli_stdin(["replay", "--venue", "okx", "-", "--json"], data if compressed else gzip.decompress(data))
    assert p.returncode == 0, p.stderr[-2000:]
    j = json.loads(p.stdout)
    from_file = replay(get_adapter("okx"), [OKX_3INST]).as_json()
    assert j["files"] == ["-"]
    for key in ("messages", "instruments", "snapshots", "deltas_applied", "checksums_verified"):
        assert j[key] == from_file[key], key


def test_stdin_merges_with_a_rest_file(monkeypatch):
    ws, rest = BINANCE_4SYM
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ws.read_bytes())))
    j = replay(get_adapter("binance"), ["-", rest]).as_json()
    assert j == {**replay(get_adapter("binance"), [ws, rest]).as_json(), "files": ["-", str(rest)]}


def test_stdin_twice_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "replay", "--venue", "okx", "-", "-")
    assert code == 2 and "standard input (-) can be read only once" in err


# ================================================================ item 4: a capture listed twice
# The session side ("a snapshot older than or equal to a synced book is never applied") is
# another change of issue 6; these pin the replay outcome: nothing is applied twice, no gap.
def test_okx_capture_listed_twice_has_no_gap_and_ends_synced():
    once = replay(get_adapter("okx"), [OKX]).as_json()
    j = replay(get_adapter("okx"), [OKX, OKX]).as_json()
    assert (j["gaps"], j["checksum_mismatches"], j["parse_errors"]) == (0, 0, 0)
    assert j["synced_instruments"] == once["synced_instruments"] == 10
    assert j["ok"] is True


def test_binance_coinm_capture_listed_twice_has_no_gap_and_ends_synced():
    # issue 6: "1 false gap, 53,693 deltas buffered, ends recovering"
    once = replay(get_adapter("binance_coinm"), [COINM]).as_json()
    j = replay(get_adapter("binance_coinm"), [COINM, COINM]).as_json()
    assert (j["gaps"], j["crossed"], j["parse_errors"]) == (0, 0, 0), j["alerts"][:3]
    assert j["synced_instruments"] == 1 and j["buffered"] < 100
    assert j["deltas_applied"] == once["deltas_applied"]
    assert j["ok"] is True


# ================================================================ item 5: a corrupt huge id
@pytest.mark.parametrize("corrupt_u", [2**70, 2**62], ids=["beyond-int64", "within-int64"])
def test_monotonic_venue_corrupt_huge_id_does_not_exit_0(tmp_path, capsys, corrupt_u):
    # Bybit v5 is the registered MONOTONIC_ONLY venue: one delta whose u is 2**70 made every
    # later real delta stale while the replay said OK. 2**70 does not fit the decoder's int64
    # (a parse error once adapters check it); 2**62 does, and only the session can catch it.
    from bookkeeper.capabilities import SequenceModel

    assert get_adapter("bybit").capabilities.sequence_model is SequenceModel.MONOTONIC_ONLY
    lines = gzip.decompress(BYBIT_V5.read_bytes()).splitlines()
    frame = json.loads(lines[10])
    frame["data"]["u"] = corrupt_u
    lines[10] = json.dumps(frame, separators=(",", ":")).encode()
    path = tmp_path / "bybit_corrupt_u.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, j, _ = replay_json(capsys, "bybit", path)
    assert j["ok"] is False and j["problems"], j
    assert code == 1


# ================================================================ the live view
def test_view_prints_prices_a_cent_apart_as_different():
    out = io.StringIO()
    book = {"venue": "binance", "symbol": "BTCUSDT", "state": "synced", "last_seq": 7,
            "best_bid": (61837.63, 0.5), "best_ask": (61837.64, 1.25), "resumes": 0, "ws_snapshots": 0,
            "rest_snapshots": 1, "gaps": 0, "breaker": "closed"}
    TerminalView(out)({"elapsed_s": 1.0, "checks": 1, "mismatches": 0, "books": [book], "faults_injected": {},
                       "disconnects": 0, "last_records": []})
    text = out.getvalue()
    assert "61837.63 x 0.5" in text and "61837.64 x 1.25" in text


def test_view_prefers_the_venues_own_strings():
    out = io.StringIO()
    book = {"venue": "okx", "symbol": "BTC-USDT", "state": "synced", "last_seq": 7,
            "best_bid": (30000.0, 0.1), "best_ask": (30000.1, 2.0), "best_bid_raw": ("30000.0", "0.10"),
            "best_ask_raw": ("30000.1", "2"), "resumes": 0, "ws_snapshots": 0, "rest_snapshots": 1, "gaps": 0,
            "breaker": "closed"}
    TerminalView(out)({"elapsed_s": 1.0, "checks": 1, "mismatches": 0, "books": [book], "faults_injected": {},
                       "disconnects": 0, "last_records": []})
    assert "30000.0 x 0.10" in out.getvalue() and "30000.1 x 2 " in out.getvalue()


@pytest.mark.parametrize(("value", "text"), [
    (61837.63, "61837.63"), (61837.64, "61837.64"), (30000.0, "30000"), (1e-05, "0.00001"),
    (0.1 + 0.2, "0.30000000000000004"), (123456789.12345679, "123456789.12345679"), ("0.10", "0.10"),
])
def test_format_number_is_exact(value, text):
    assert format_number(value) == text
    if isinstance(value, float):
        assert float(format_number(value)) == value  # reads back as the same float


def test_adapter_error_path_still_tells_the_session(tmp_path):
    # an AdapterError naming a symbol (a known book's frame was damaged) takes it out of SYNCED
    class NamedError(_Raising):
        def new_decoder(self) -> Any:
            inner = self._a.new_decoder()

            class Dec:
                def decode(self, frame: bytes, ts_recv_ns: int = 0) -> list[Any]:
                    if b"poison" in frame:
                        raise AdapterError("damaged", exchange="okx", raw=frame, symbol="BTC-USDT")
                    return inner.decode(frame, ts_recv_ns)

            return Dec()

    path = with_frames(tmp_path / "x.bkrec.jsonl", OKX_3INST, "okx", [b'{"poison":1}'], at=200)
    j = replay(NamedError("okx", b"", ValueError()), [path]).as_json()  # type: ignore[arg-type]
    assert j["parse_errors"] == 1 and j["per_instrument"]["BTC-USDT"]["invalid_inputs"] == 1
