"""Pin the curated public API (httpx tests/test_exported_members.py style)."""

import bookkeeper


def test_all_is_pinned() -> None:
    assert sorted(bookkeeper.__all__) == sorted(
        [
            "Action", "AdapterError", "Alert", "AlertKind", "BookDelta", "BookSession", "BookSnapshot", "DriverConfig", "Feed",
            "BookTicker", "BookkeeperError", "ChecksumKind", "CloseReason", "ConnectionLost", "CrossedBook",
            "ExchangeCapabilities", "ExchangeRejected", "FetchSnapshot", "Fill", "Halt", "Heartbeat",
            "InstrumentKey", "IntegrityError", "InvalidEvent", "InvalidState", "L2Book", "NegativePosition",
            "PlanKind", "RateLimited", "RecoveryPlan", "ReplayDeltas", "RequestTimeout", "Resubscribe",
            "SeqVerdict", "SequenceModel", "Sequencer", "SessionStats", "Side", "SnapshotSource",
            "SpliceRule", "StateChanged", "StreamClosed", "StreamOpened", "Subscribed", "SyncState", "Tick",
            "Trade", "TradeSide", "TransportError", "UsageError", "VenueNotice", "__version__",
            "kraken_checksum", "okx_checksum", "plan_recovery", "splice",
        ]
    )


def test_every_exported_name_exists() -> None:
    for name in bookkeeper.__all__:
        assert hasattr(bookkeeper, name), name


def test_adapters_install_under_bookkeeper_namespace_only() -> None:
    """setup.py maps adapters/ to bookkeeper.adapters and never ships a bare `adapters`."""
    import pathlib
    import subprocess
    import sys

    import bookkeeper.adapters

    assert bookkeeper.adapters.__name__ == "bookkeeper.adapters"
    root = pathlib.Path(__file__).resolve().parents[1]
    code = (
        "import setuptools, sys\n"
        "captured = {}\n"
        "setuptools.setup = lambda **kw: captured.update(kw)\n"
        "exec(open('setup.py').read())\n"
        "print(repr(captured['packages']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    packages = eval(out.stdout)  # noqa: S307 - our own repr of a list of str
    assert "bookkeeper.adapters" in packages and "bookkeeper.adapters.binance" in packages
    assert all(p == "bookkeeper" or p.startswith("bookkeeper.") for p in packages), packages


def test_import_bookkeeper_does_not_pull_the_io_stack() -> None:
    import subprocess
    import sys

    code = "import sys, bookkeeper; print(sorted(m for m in ('ccxt', 'websockets', 'asyncio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from bookkeeper import Feed
    from bookkeeper.io.feed import Feed as Direct

    assert Feed is Direct
