"""Pin the curated public API (httpx tests/test_exported_members.py style)."""

import bookkeeper


def test_all_is_pinned() -> None:
    assert sorted(bookkeeper.__all__) == sorted(
        [
            "Feed", "ABFeed", "DriverConfig", "BookView", "BookUpdate", "SyncState", "StateChanged", "Alert", "AlertKind",
            "PlanKind", "CloseReason",
            "AccountFeed", "ApiCredentials", "AccountPolicy", "AccountState", "AccountStateChanged", "AccountPlanKind",
            "BookSession", "L2Book", "ExchangeCapabilities", "SequenceModel", "SpliceRule", "ChecksumKind",
            "BookDelta", "BookSnapshot", "BookTicker", "SnapshotSource", "get_adapter",
            "BookkeeperError", "InvalidEvent", "InvalidState", "IntegrityError", "AdapterError", "TransportError",
            "ConnectionLost", "RequestTimeout", "RateLimited", "ExchangeRejected", "UsageError",
            "__version__",
        ]
    )


def test_every_exported_name_exists_is_ours_and_documented() -> None:
    """No phantom exports: each name resolves, is defined by bookkeeper itself (not a
    re-exported third-party object), and carries its own docstring."""
    for name in bookkeeper.__all__:
        assert hasattr(bookkeeper, name), name
        if name == "__version__":
            continue
        obj = getattr(bookkeeper, name)
        assert obj.__module__.startswith("bookkeeper."), (name, obj.__module__)
        doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
        assert doc and doc.strip(), f"{name} has no docstring of its own"


def test_feed_book_is_a_read_only_view() -> None:
    import typing

    from bookkeeper.io.feed import Feed

    assert typing.get_type_hints(Feed.book)["return"] is bookkeeper.BookView


def test_redis_is_an_extra_not_a_hard_dependency() -> None:
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("redis")]
    assert project["optional-dependencies"]["redis"] == ["redis>=5"]


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


def test_error_attributes_are_declared_on_the_error_classes() -> None:
    """Every documented attribute exists on every instance (None when not given), so
    ``except AdapterError as e: e.symbol`` never raises AttributeError."""
    from bookkeeper import errors

    assert errors.AdapterError("x", exchange="okx").symbol is None
    assert errors.RateLimited().retry_after_s is None
    assert errors.ExchangeRejected("no").ccxt_class is None
    assert errors.UsageError("bad").path is None and errors.UsageError("bad", path="f").path == "f"
    assert errors.InvalidState("x").state is None
    for cls in (errors.AdapterError, errors.RateLimited, errors.ExchangeRejected, errors.UsageError,
                errors.InvalidState, errors.IntegrityError, errors.TransportError, errors.InvalidEvent):
        declared = set(cls.__annotations__)
        assert declared, cls
        for name in declared:
            assert f"{name}:" in (cls.__doc__ or ""), f"{cls.__name__}.{name} is not documented"
