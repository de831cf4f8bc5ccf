"""`bookkeeper triage`: detectors over generated logs of each pattern, mixtures, a healthy
fleet, malformed lines, mixed ``ts`` formats, records lacking fields; the CLI and its picture.

Every generated log is seeded; the seed is in each assertion's message.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bookkeeper.apps.triage import (
    DETECTORS,
    FIRST_SAFE_MOVE,
    Pattern,
    TriageRecord,
    parse_line,
    parse_ts,
    read_records,
    triage,
)
from bookkeeper.apps.triage_gen import (
    FIXTURES,
    KINDS,
    fixture_lines,
    generate,
    mixture,
    render,
)
from bookkeeper.cli import main
from bookkeeper.events import CloseReason

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "triage"
PATTERNS = [k for k in KINDS if k != "healthy"]
SEEDS = range(8)


def _parse(lines: list[str]) -> list[TriageRecord]:
    out = []
    for n, line in enumerate(lines, 1):
        try:
            out.append(parse_line(line, source=f"gen:{n}", default_instance="gen"))
        except ValueError:
            pass
    return out


def _ranked(lines: list[str]) -> list[tuple[str, float]]:
    return [(f.pattern.value, round(f.confidence, 3)) for f in triage(_parse(lines)).findings]


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(("ts", "expected"), [
    ("2026-01-05T00:00:01.500Z", 1_767_571_201.5),
    ("2026-01-05T01:00:01.500+01:00", 1_767_571_201.5),
    ("2026-01-05T00:00:01.500", 1_767_571_201.5),  # no offset: UTC
    (1_767_571_201.5, 1_767_571_201.5),
    (1_767_571_201_500, 1_767_571_201.5),  # milliseconds
    ("1767571201500", 1_767_571_201.5),  # digits in a string
    ("1767571201.5", 1_767_571_201.5),
])
def test_ts_formats_parse_to_the_same_instant(ts: object, expected: float) -> None:
    assert parse_ts(ts) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("ts", [None, "yesterday", True, -5, float("nan"), [1], {"s": 1}, ""])
def test_unusable_ts_is_unknown(ts: object) -> None:
    assert parse_ts(ts) is None


def test_record_lacking_fields_keeps_what_it_has() -> None:
    r = parse_line('{"ts": 1767571200, "close_code": 1006}', source="old.jsonl:1", default_instance="old")
    assert r == TriageRecord(ts_s=1_767_571_200.0, instance="old", exchange=None, channel="public", close_code=1006,
                             cause=CloseReason.ABNORMAL_CLOSURE, raw_cause=None, last_message_ago_ms=None,
                             uptime_s=None, reconnect_attempt=None, reconnect_success=None,
                             reconnect_latency_ms=None, missed_messages=None, source="old.jsonl:1")


def test_wrong_types_are_unknown_and_unknown_causes_stay_visible() -> None:
    r = parse_line('{"close_cause": "went_away", "close_code": "1006", "uptime_seconds": "3", '
                   '"reconnect_success": "yes", "last_message_ago_ms": true, "bot_instance_id": 7}',
                   source="x:1", default_instance="fallback")
    assert (r.cause, r.raw_cause, r.close_code, r.uptime_s, r.reconnect_success, r.last_message_ago_ms,
            r.instance) == (None, "went_away", None, None, None, None, "fallback")


@pytest.mark.parametrize(("code", "cause"), [(429, CloseReason.RATE_LIMITED), (418, CloseReason.RATE_LIMITED),
                                             (401, CloseReason.AUTH_FAILED), (1001, CloseReason.SERVER_CLOSE),
                                             (1006, CloseReason.ABNORMAL_CLOSURE), (None, None), (200, None)])
def test_cause_derived_from_code_when_missing(code: int | None, cause: CloseReason | None) -> None:
    r = parse_line(json.dumps({"close_code": code}), source="x:1", default_instance="x")
    assert r.cause is cause


@pytest.mark.parametrize("line", ["{not json", "[1, 2]", '"text"', "42", "null", '{"ts": '])
def test_malformed_line_raises_value_error(line: str) -> None:
    with pytest.raises(ValueError, match="not"):
        parse_line(line, source="x:1", default_instance="x")


def test_malformed_lines_counted_with_file_and_line(tmp_path: Path) -> None:
    seed = 11
    lines = render(generate("idle_timeout", seed), seed, malformed=3)
    path = tmp_path / "bot-a.jsonl"
    path.write_text("\n".join(lines) + "\n\n")  # a trailing blank line is not malformed
    records, malformed, samples = read_records([str(path)])
    assert malformed == 3, f"seed {seed}"
    assert len(records) == len(lines) - 3
    assert all(s.startswith("bot-a.jsonl:") for s in samples)


def test_gzip_and_missing_instance_named_after_the_file(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "eu-bot.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write('{"ts": "2026-01-05T00:00:00Z", "close_cause": "abnormal_closure"}\n')
    records, malformed, _ = read_records([str(path)])
    assert (malformed, [r.instance for r in records]) == (0, ["eu-bot"])


# ---------------------------------------------------------------------------- detectors
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("seed", SEEDS)
def test_generated_pattern_named_first_above_half(pattern: str, seed: int) -> None:
    ranked = _ranked(render(generate(pattern, seed), seed))
    assert ranked and ranked[0][0] == pattern and ranked[0][1] > 0.5, f"seed {seed}: {ranked}"
    assert all(c <= 0.5 for _, c in ranked[1:]), f"seed {seed}: others above 0.5: {ranked}"


@pytest.mark.parametrize("seed", range(20))
def test_healthy_fleet_has_no_finding_above_half(seed: int) -> None:
    ranked = _ranked(render(generate("healthy", seed), seed))
    assert all(c <= 0.5 for _, c in ranked), f"seed {seed}: {ranked}"


@pytest.mark.parametrize("kinds", [
    ("idle_timeout", "reconnect_rate_limited", "healthy"),
    ("network_instability", "private_auth_expiry", "healthy"),
    ("connection_limit", "idle_timeout"),
    ("reconnect_rate_limited", "network_instability"),
    ("connection_limit", "idle_timeout", "reconnect_rate_limited", "healthy"),
])
@pytest.mark.parametrize("seed", SEEDS)
def test_mixture_patterns_come_first_above_half(kinds: tuple[str, ...], seed: int) -> None:
    ranked = _ranked(render(mixture(kinds, seed), seed))
    expected = {k for k in kinds if k != "healthy"}
    top = ranked[:len(expected)]
    assert {p for p, _ in top} == expected, f"seed {seed}: {ranked}"
    assert all(c > 0.5 for _, c in top), f"seed {seed}: {ranked}"


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("seed", range(3))
def test_mixed_ts_formats_give_the_same_findings(pattern: str, seed: int) -> None:
    records = generate(pattern, seed)
    assert _ranked(render(records, seed, ts_format="mixed")) == _ranked(render(records, seed)), f"seed {seed}"
    assert _ranked(render(records, seed, ts_format="ms")) == _ranked(render(records, seed)), f"seed {seed}"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_older_records_lacking_fields_still_name_the_pattern(pattern: str) -> None:
    seed = 5
    lines = render(generate(pattern, seed), seed, drop_fraction=0.15, malformed=4)
    ranked = _ranked(lines)
    assert ranked and ranked[0][0] == pattern and ranked[0][1] > 0.5, f"seed {seed}: {ranked}"


def test_every_detector_is_pure_and_total_on_empty_and_odd_input() -> None:
    odd = [parse_line(line, source="x:1", default_instance="x") for line in
           ("{}", '{"uptime_seconds": 0, "reconnect_success": false}', '{"channel": "private"}',
            '{"ts": 1, "close_code": 429}')]
    for pattern, detect in DETECTORS.items():
        assert detect([]) is None, pattern
        first = detect(odd)
        assert first == detect(odd), pattern  # same input, same answer
        assert first is None or 0.0 <= first.confidence <= 1.0


def test_single_event_is_never_more_than_a_coin_toss() -> None:
    one = [parse_line(json.dumps({"ts": 1_767_571_200 + i, "close_cause": c, "close_code": code,
                                  "uptime_seconds": 2.0, "last_message_ago_ms": ago}),
                      source="x:1", default_instance="x")
           for i, (c, code, ago) in enumerate([("rate_limited", 429, 10)])]
    assert all(f.confidence <= 0.5 for f in triage(one).findings)


def test_private_auth_expiry_is_from_generated_logs_only() -> None:
    # the ingest has no private channels yet: this pattern is exercised on generated logs
    seed = 3
    report = triage(_parse(render(generate("private_auth_expiry", seed), seed)))
    top = report.top
    assert top is not None and top.pattern is Pattern.PRIVATE_AUTH_EXPIRY, f"seed {seed}"
    assert top.channels == ("private",)
    assert any("token/session lifetime" in e for e in top.evidence)


# ---------------------------------------------------------------------------- report and CLI
def test_fixtures_are_what_the_generator_makes() -> None:
    for name in FIXTURES:
        assert (FIXTURE_DIR / name).read_text().splitlines() == fixture_lines(name), (
            f"{name} is stale: python -m bookkeeper.apps.triage_gen fixtures/triage")


def test_json_report_contract(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(FIXTURE_DIR / "messy_connection_limit.jsonl"), str(FIXTURE_DIR / "healthy.jsonl")]
    assert main(["triage", *files, "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert {"records", "findings", "stats", "malformed"} <= set(data)
    assert data["malformed"] == 5
    assert "malformed line(s) skipped" in out.err
    assert set(data["stats"]) == {"disconnects_per_hour", "reconnect_success_rate", "median_last_message_ago_ms",
                                  "median_uptime_s", "p95_reconnect_latency_ms"}
    first = data["findings"][0]
    assert first["pattern"] == "connection_limit" and first["confidence"] > 0.5
    assert set(first) >= {"pattern", "confidence", "evidence", "first_safe_move", "affected"}
    assert first["first_safe_move"] == FIRST_SAFE_MOVE[Pattern.CONNECTION_LIMIT]
    assert set(first["affected"]) >= {"instances", "channels"}
    confidences = [f["confidence"] for f in data["findings"]]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences)


def test_stats_are_computed_from_the_records() -> None:
    rows = [
        {"ts": "2026-01-05T00:00:00Z", "close_cause": "abnormal_closure", "last_message_ago_ms": 100,
         "uptime_seconds": 10.0, "reconnect_success": True, "reconnect_latency_ms": 200},
        {"ts": "2026-01-05T00:30:00Z", "close_cause": "server_close", "last_message_ago_ms": 300,
         "uptime_seconds": 30.0, "reconnect_success": False, "reconnect_latency_ms": None},
        {"ts": "2026-01-05T01:00:00Z", "close_cause": "local_shutdown", "last_message_ago_ms": 9,
         "uptime_seconds": 99.0, "reconnect_success": False},
    ]
    report = triage(_parse([json.dumps(r) for r in rows]))
    assert report.stats() == {"disconnects_per_hour": 2.0, "reconnect_success_rate": 0.5,
                              "median_last_message_ago_ms": 200.0, "median_uptime_s": 20.0,
                              "p95_reconnect_latency_ms": 200.0}


def test_text_report_names_the_move(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", str(FIXTURE_DIR / "idle_timeout.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "idle_timeout  confidence" in out and FIRST_SAFE_MOVE[Pattern.IDLE_TIMEOUT] in out


def test_healthy_text_report_says_no_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", str(FIXTURE_DIR / "healthy.jsonl")]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if "  confidence " in line]
    assert all(line.endswith("(weak)") for line in heads), heads


def test_unreadable_file_is_usage_error_not_traceback(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "triage", str(tmp_path / "nope.jsonl")],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "cannot read" in out.stderr and "Traceback" not in out.stderr


def test_stdin_is_read(tmp_path: Path) -> None:
    data = (FIXTURE_DIR / "reconnect_rate_limited.jsonl").read_text()
    out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "triage", "-", "--json"], input=data,
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["findings"][0]["pattern"] == "reconnect_rate_limited"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_plot_writes_a_readable_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "triage.png"
    files = [str(FIXTURE_DIR / n) for n in ("mixed_idle_ratelimit.jsonl", "messy_connection_limit.jsonl")]
    assert main(["triage", *files, "--json", "--plot", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["records"] > 0  # --json stdout stays one object
    width, height = _png_size(out)
    assert 1000 <= width <= 3000 and 600 <= height <= 3000, (width, height)
    assert out.stat().st_size > 30_000  # drawn, not blank


def test_plot_without_matplotlib_is_a_clear_usage_error(tmp_path: Path) -> None:
    # a fresh interpreter where importing matplotlib fails, as on an install without [plot]
    code = ("import sys; sys.modules['matplotlib'] = None; from bookkeeper.cli import main; "
            f"sys.exit(main(['triage', {str(FIXTURE_DIR / 'healthy.jsonl')!r}, '--plot', "
            f"{str(tmp_path / 'x.png')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "pip install 'bookkeeper[plot]'" in out.stderr, out.stderr
