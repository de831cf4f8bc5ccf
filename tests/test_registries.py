"""Every list of venues and fault kinds is derived from one registry: the lists users read
(README, CLI choices) cannot drift from what the code has."""

from __future__ import annotations

import pathlib
import re

from bookkeeper.adapters import VENUES as ADAPTER_VENUES
from bookkeeper.sim import DEMO_KINDS, DIALECTS, FAULTS, VENUES, FaultKind, FaultScope, get_dialect

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()


def _backticked(sentence_start: str, stop: str) -> list[str]:
    at = README.index(sentence_start)
    text = README[at: README.index(stop, at)]
    return re.findall(r"`([a-z0-9_]+)`", text)


def test_every_fault_kind_has_a_registry_entry() -> None:
    assert set(FAULTS) == set(FaultKind)
    assert all(info.summary for info in FAULTS.values())
    assert set(DEMO_KINDS) <= set(FaultKind) and DEMO_KINDS


def test_readme_lists_exactly_the_registered_fault_kinds() -> None:
    assert _backticked("Fault kinds:", ".\n") == [k.value for k in FAULTS]


def test_readme_lists_exactly_the_registered_replay_venues() -> None:
    assert _backticked("- VENUE:", ".\n") == list(ADAPTER_VENUES)


def test_simulator_venues_come_from_the_dialect_registry() -> None:
    assert VENUES == tuple(DIALECTS)
    for name in DIALECTS:
        assert get_dialect(name).venue == name
        assert name in ADAPTER_VENUES  # a dialect is named after the adapter it is tested with


def test_connection_faults_are_those_the_servers_apply_at_once() -> None:
    assert {k for k, i in FAULTS.items() if i.scope is FaultScope.CONNECTION} == {
        FaultKind.ABORT, FaultKind.STALL, FaultKind.CLOSE_1000, FaultKind.CLOSE_1001}


def test_demo_mix_keeps_its_order() -> None:
    """The demo's seeded schedule draws from the mix in order: reordering it would change every
    seeded demo's results (a public contract), so the order is pinned."""
    assert [k.value for k in DEMO_KINDS] == [
        "abort", "stall", "close_1001", "drop", "duplicate", "reorder", "http_429", "stale_snapshot",
        "corrupt_checksum"]


def test_test_modules_have_unique_basenames() -> None:
    """pytest imports test modules by basename (rootdir conftest, no packages): two files with
    one name in different folders fail collection."""
    names = [p.name for p in (pathlib.Path(__file__).parent).rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
