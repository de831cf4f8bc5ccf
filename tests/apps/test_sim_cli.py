"""`bookkeeper sim` serves a venue for users' own bots and prints its URLs."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import urllib.request

import pytest

from bookkeeper.sim import DIALECTS

pytestmark = pytest.mark.timeout(60)


def _first_line(proc: subprocess.Popen[str], timeout_s: float = 20.0) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout_s):
        raise AssertionError("bookkeeper sim printed nothing")
    return proc.stdout.readline()


def test_sim_prints_urls_and_serves_binance_rest_depth() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bookkeeper.cli", "sim", "--venue", "binance", "--port", "0",
                             "--seed", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        urls = json.loads(_first_line(proc))
        assert set(urls) == {"binance"}
        rest = urls["binance"]["rest"]
        assert rest.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{rest}/api/v3/depth?symbol=BTCUSDT&limit=5", timeout=10) as resp:  # noqa: S310
            body = json.loads(resp.read())
        assert isinstance(body["lastUpdateId"], int)
        assert len(body["bids"]) == 5 and len(body["asks"]) == 5
        assert float(body["bids"][0][0]) < float(body["asks"][0][0])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)  # a loaded 2-core machine can take seconds to unwind
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_sim_unknown_venue_is_a_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "sim", "--venue", "ftx"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["--port", "70000"], "argument --port: must be 0..65535: '70000'"),
    (["--port", "-1"], "argument --port: must be 0..65535: '-1'"),
    (["--port", "http"], "argument --port: not a port number: 'http'"),
    # venue i listens on PORT + i: every registered venue from 65534 would need more than 65535
    (["--port", "65534"], f"argument --port: {len(DIALECTS)} venues need ports 65534..{65533 + len(DIALECTS)}, "
                          "beyond 65535"),
    (["--venue", "okx", "--venue", "kraken", "--port", "65535"], "argument --port: 2 venues need ports 65535..65536"),
])
def test_sim_port_out_of_range_is_a_usage_error(args: list[str], needle: str) -> None:
    out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "sim", *args], capture_output=True, text=True,
                         timeout=30, check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert f"bookkeeper sim: error: {needle}" in out.stderr, out.stderr
