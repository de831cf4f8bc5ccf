"""Seeded generator of disconnect-record logs showing each triage pattern (for tests, the
fixtures under ``fixtures/triage/`` and trying ``bookkeeper triage`` out).

Each generator writes what the ingest would record (:class:`~bookkeeper.io.records.DisconnectRecord`
dicts) for a fleet of bot instances over a few hours: ``healthy`` (ordinary churn: a rare
1006, the venue's own closes, restarts) and one per :class:`~bookkeeper.apps.triage.Pattern`.
:func:`mixture` puts several on disjoint instances of one fleet; :func:`render` writes the
lines with ``ts`` as ISO text, epoch seconds, epoch milliseconds or a mix, optionally
dropping fields (records of older versions) and adding malformed lines.

Regenerate the fixtures (reviewed like any golden file)::

    python -m bookkeeper.apps.triage_gen fixtures/triage
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bookkeeper.io.records import RECORD_KEYS, iso_utc

__all__ = ["GENERATORS", "KINDS", "T0", "generate", "mixture", "render", "write_fixtures"]

#: every generated log starts here (2026-01-05T00:00:00Z)
T0 = 1_767_571_200.0

Record = dict[str, Any]


def _rec(ts: float, inst: str, *, cause: str, code: int | None, ago_ms: float | None, uptime_s: float,
         attempt: int = 1, success: bool = True, latency_ms: float | None = None, channel: str = "public",
         exchange: str = "venue-a", missed: int = 0, plan: Sequence[str] = ("resume",)) -> Record:
    failed = not success
    return {
        "ts": ts, "bot_instance_id": inst, "exchange": exchange, "channel": channel, "close_code": code,
        "close_cause": cause, "last_message_ago_ms": None if ago_ms is None else int(ago_ms),
        "uptime_seconds": round(uptime_s, 3), "reconnect_attempt": attempt, "reconnect_success": success,
        "reconnect_latency_ms": None if failed or cause == "local_shutdown" else int(latency_ms or 0),
        "missed_messages_count": missed, "plan": [] if failed or cause == "local_shutdown" else list(plan),
    }


def _shutdown(ts: float, inst: str, up: float, channel: str = "public") -> Record:
    return _rec(ts, inst, cause="local_shutdown", code=1000, ago_ms=120, uptime_s=up, attempt=0, success=False,
                channel=channel, plan=())


def _churn(rng: random.Random, inst: str, start: float, end: float, *, channel: str = "public",
           mean_up_s: float = 8 * 3600.0) -> list[Record]:
    """Ordinary life of one connection: the venue's own closes, a rare 1006, a final shutdown."""
    out: list[Record] = []
    t = start
    while True:
        up = rng.expovariate(1 / mean_up_s)
        if t + up >= end:
            out.append(_shutdown(end, inst, end - t, channel))
            return out
        t += up
        if rng.random() < 0.6:
            out.append(_rec(t, inst, cause="server_close", code=rng.choice((1000, 1001)), ago_ms=rng.uniform(0, 300),
                            uptime_s=up, latency_ms=rng.uniform(80, 400), channel=channel))
        else:
            out.append(_rec(t, inst, cause="abnormal_closure", code=1006, ago_ms=rng.uniform(0, 400), uptime_s=up,
                            latency_ms=rng.uniform(100, 900), channel=channel, plan=("rest_snapshot",),
                            missed=rng.randint(0, 40)))
        t += 0.5


def healthy(rng: random.Random, insts: Sequence[str], hours: float) -> list[Record]:
    """Ordinary churn on every instance."""
    end = T0 + hours * 3600
    return [r for inst in insts for r in _churn(rng, inst, T0 + rng.uniform(0, 5), end)]


def idle_timeout(rng: random.Random, insts: Sequence[str], hours: float) -> list[Record]:
    """A proxy cuts connections silent for ``period`` seconds (quiet markets come and go)."""
    period = rng.choice((30.0, 60.0, 120.0))
    end = T0 + hours * 3600
    out: list[Record] = []
    for inst in insts:
        t = T0 + rng.uniform(0, 5)
        while True:
            up = rng.uniform(period * 1.5, 40 * 60)  # data flowed for a while, then a quiet spell
            if t + up >= end:
                out.append(_shutdown(end, inst, end - t))
                break
            t += up
            cause, code = ("abnormal_closure", 1006) if rng.random() < 0.8 else ("server_close", 1001)
            out.append(_rec(t, inst, cause=cause, code=code, ago_ms=period * 1000 + rng.uniform(0, 600),
                            uptime_s=up, latency_ms=rng.uniform(60, 400), plan=("resume",)))
            t += 0.3
    return out


def connection_limit(rng: random.Random, insts: Sequence[str], hours: float) -> list[Record]:
    """Deploys restart the fleet at once; the venue's per-IP limit refuses most first connects."""
    end = T0 + hours * 3600
    deploys = sorted(T0 + rng.uniform(0.15, 0.85) * hours * 3600 for _ in range(rng.randint(2, 3)))
    out: list[Record] = []
    for inst in insts:
        start = T0 + rng.uniform(0, 3)
        for d in deploys:
            out.append(_shutdown(d - rng.uniform(0, 2), inst, d - start))
            t = d + rng.uniform(0, 3)
            attempt = 0
            while rng.random() < 0.8 or attempt == 0:  # refused, maybe again
                attempt += 1
                if rng.random() < 0.5:
                    out.append(_rec(t, inst, cause="tcp_error", code=None, ago_ms=None, uptime_s=0.0,
                                    attempt=attempt, success=False))
                else:  # accepted, then closed for "too many connections"
                    up = rng.uniform(0.2, 3.0)
                    t += up
                    out.append(_rec(t, inst, cause="server_close", code=rng.choice((1008, 1013)), ago_ms=None,
                                    uptime_s=up, attempt=attempt, success=False))
                t += rng.uniform(1.0, 4.0)
                if attempt >= 3:
                    break
            start = t
        out.extend(_churn(rng, inst, start, end))
    return out


def network_instability(rng: random.Random, insts: Sequence[str], hours: float) -> list[Record]:
    """A flaky line: abnormal closes at random times while data flows."""
    end = T0 + hours * 3600
    out: list[Record] = []
    for inst in insts:
        t = T0 + rng.uniform(0, 5)
        while True:
            up = rng.expovariate(1 / (12 * 60))
            if t + up >= end:
                out.append(_shutdown(end, inst, end - t))
                break
            t += up
            cause, code = ("abnormal_closure", 1006) if rng.random() < 0.8 else ("tcp_error", None)
            attempt = 1
            if rng.random() < 0.25:  # the line is still down for the first attempt
                out.append(_rec(t + 1.0, inst, cause="tcp_error", code=None, ago_ms=1000, uptime_s=0.0,
                                attempt=1, success=False))
                attempt = 2
            out.append(_rec(t, inst, cause=cause, code=code, ago_ms=rng.uniform(0, 350), uptime_s=up,
                            attempt=attempt, latency_ms=rng.uniform(300, 4000), missed=rng.randint(0, 300),
                            plan=(rng.choice(("resume", "rest_snapshot")),)))
            t += 2.0
    return out


def reconnect_rate_limited(rng: random.Random, insts: Sequence[str], hours: float) -> list[Record]:
    """A reconnect loop: short connections, 429s, attempts climbing, a 418 ban."""
    end = T0 + hours * 3600
    out: list[Record] = []
    for inst in insts:
        t0 = T0 + rng.uniform(0.2, 0.5) * hours * 3600
        out.extend(_churn(rng, inst, T0 + rng.uniform(0, 5), t0 - 1))
        t = t0
        for _ in range(rng.randint(4, 7)):  # loop cycles
            up = rng.uniform(1.0, 8.0)
            t += up
            attempts = rng.randint(2, 5)
            for a in range(1, attempts):
                code = 418 if a >= 4 else 429
                out.append(_rec(t + a * 2, inst, cause="rate_limited", code=code, ago_ms=up * 1000, uptime_s=0.0,
                                attempt=a, success=False))
            out.append(_rec(t, inst, cause=rng.choice(("server_close", "abnormal_closure")),
                            code=rng.choice((1008, 1006)), ago_ms=rng.uniform(0, 500), uptime_s=up, attempt=attempts,
                            latency_ms=attempts * 2000 + rng.uniform(0, 500), plan=("rest_snapshot",)))
            t += attempts * 2 + rng.uniform(0.5, 2)
        out.extend(_churn(rng, inst, t, end))
    return out


def private_auth_expiry(rng: random.Random, insts: Sequence[str], hours: float) -> list[Record]:
    """Private channels drop at the token lifetime; public ones live on."""
    life = rng.choice((1800.0, 3600.0))
    end = T0 + hours * 3600
    out: list[Record] = []
    for inst in insts:
        out.extend(_churn(rng, inst, T0 + rng.uniform(0, 5), end, mean_up_s=24 * 3600.0))
        t = T0 + rng.uniform(0, 5)
        while t + life < end:
            t += life + rng.uniform(-1.5, 1.5)
            cause, code = ("auth_failed", 4001) if rng.random() < 0.3 else ("server_close", 1000)
            out.append(_rec(t, inst, cause=cause, code=code, ago_ms=rng.uniform(0, 600_000),
                            uptime_s=life + rng.uniform(-1.5, 1.5), latency_ms=rng.uniform(200, 900),
                            channel="private", plan=()))
            t += 1.0
        out.append(_shutdown(end, inst, end - t, channel="private"))
    return out


Generator = Callable[[random.Random, Sequence[str], float], list[Record]]

#: generated log kinds: ``healthy`` and one per triage pattern (its key)
GENERATORS: dict[str, tuple[Generator, int]] = {
    "healthy": (healthy, 3),
    "idle_timeout": (idle_timeout, 1),
    "connection_limit": (connection_limit, 6),
    "network_instability": (network_instability, 2),
    "reconnect_rate_limited": (reconnect_rate_limited, 1),
    "private_auth_expiry": (private_auth_expiry, 1),
}
KINDS: tuple[str, ...] = tuple(GENERATORS)


def generate(kind: str, seed: int, *, hours: float = 6.0, instances: int | None = None,
             prefix: str = "bot") -> list[Record]:
    """One generated log, sorted by time.

    Args:
        kind: one of :data:`KINDS`.
        seed: seeds everything.
        hours: the span.
        instances: fleet size (the kind's default otherwise).
        prefix: instance names are ``{prefix}-{i}``.

    Returns:
        Record dicts (``ts`` as epoch seconds; :func:`render` formats it).

    Raises:
        KeyError: an unknown kind.
    """
    gen, default_n = GENERATORS[kind]
    rng = random.Random(f"{kind}:{seed}")
    insts = [f"{prefix}-{i + 1}" for i in range(instances or default_n)]
    return sorted(gen(rng, insts, hours), key=lambda r: r["ts"])


def mixture(kinds: Sequence[str], seed: int, *, hours: float = 6.0) -> list[Record]:
    """Several kinds on disjoint instances of one fleet (named after the kind), sorted by time."""
    out = [r for k in kinds for r in generate(k, seed, hours=hours, prefix=k.replace("_", "-"))]
    return sorted(out, key=lambda r: r["ts"])


def render(records: Sequence[Record], seed: int, *, ts_format: str = "iso", drop_fraction: float = 0.0,
           malformed: int = 0) -> list[str]:
    """Records to JSON lines.

    Args:
        records: record dicts with ``ts`` in epoch seconds.
        seed: seeds the format mix, the dropped fields and where malformed lines go.
        ts_format: ``iso``, ``s`` (epoch seconds), ``ms`` (epoch milliseconds) or ``mixed``.
        drop_fraction: the share of records that lose some fields (as older versions wrote).
        malformed: this many malformed lines inserted at random places.

    Returns:
        The lines (no newline characters).
    """
    rng = random.Random(f"render:{seed}")
    lines: list[str] = []
    for r in records:
        fmt = rng.choice(("iso", "s", "ms")) if ts_format == "mixed" else ts_format
        ts = r["ts"]
        out = dict(r)
        out["ts"] = iso_utc(int(ts * 1e9)) if fmt == "iso" else round(ts, 3) if fmt == "s" else int(ts * 1000)
        if drop_fraction and rng.random() < drop_fraction:
            droppable = [k for k in RECORD_KEYS if k not in ("ts", "close_cause", "close_code")]
            for k in rng.sample(droppable, rng.randint(1, 4)):
                out.pop(k, None)
        lines.append(orjson.dumps(out).decode())
    bad = ["{not json", "[1, 2, 3]", '"just a string"', '{"ts": "2026-01-05T00:00:00Z", "close_cause": ',
           "\x00\x01binary", "42"]
    for i in range(malformed):
        lines.insert(rng.randint(0, len(lines)), bad[i % len(bad)])
    return lines


#: the committed fixtures: file name -> (kinds, seed, render options)
FIXTURES: dict[str, tuple[tuple[str, ...], int, dict[str, Any]]] = {
    **{f"{k}.jsonl": ((k,), 1, {}) for k in KINDS},
    "mixed_idle_ratelimit.jsonl": (("idle_timeout", "reconnect_rate_limited", "healthy"), 2, {}),
    "mixed_network_auth.jsonl": (("network_instability", "private_auth_expiry", "healthy"), 3, {}),
    "messy_connection_limit.jsonl": (("connection_limit",), 4,
                                     {"ts_format": "mixed", "drop_fraction": 0.3, "malformed": 5}),
}


def fixture_lines(name: str) -> list[str]:
    """The lines of one committed fixture, as the generator makes them."""
    kinds, seed, opts = FIXTURES[name]
    records = generate(kinds[0], seed) if len(kinds) == 1 else mixture(kinds, seed)
    return render(records, seed, **opts)


def write_fixtures(folder: str | Path) -> list[Path]:
    """(Re)write every fixture of :data:`FIXTURES` into ``folder``; returns the paths."""
    out = []
    for name in FIXTURES:
        p = Path(folder) / name
        p.write_text("\n".join(fixture_lines(name)) + "\n")
        out.append(p)
    return out


if __name__ == "__main__":  # pragma: no cover - the regeneration command
    for path in write_fixtures(sys.argv[1] if len(sys.argv) > 1 else "fixtures/triage"):
        print(path)
