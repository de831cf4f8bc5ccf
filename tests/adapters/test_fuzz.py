"""Mutation fuzz of every registered adapter against synced books ([harden]).

For each venue, mutants of its real capture (``fixtures/real``) go through a fresh decoder
and ``BookSession``s synced from that capture (see :mod:`bookkeeper.testing.fuzz`). Only
``AdapterError`` may come out of a decoder, nothing out of a session, and a rejected frame
never changes a book. The account adapters' private decoders and REST parsers get the same
mutants of their samples (``fixtures/private``): only ``AdapterError``. Seeded:
``BOOKKEEPER_FUZZ_SEED=<n>`` reruns a failure (the seed is in every failure message); the
default seed is fixed so CI is reproducible.
"""

from __future__ import annotations

import os
import random
from functools import cache
from pathlib import Path

import pytest
from _recorded import REAL
from bookkeeper.adapters import ACCOUNT_VENUES, VENUES, get_account_adapter, get_adapter

from bookkeeper.actions import FillCursor
from bookkeeper.errors import AdapterError
from bookkeeper.testing.fuzz import (
    FrameKind,
    Mutation,
    SeedFrame,
    fuzz_adapter,
    load_seed_frames,
    mutate,
)

SEED = int(os.environ.get("BOOKKEEPER_FUZZ_SEED", "20261206"))
FRAMES = 2_000
#: frames taken from each venue's capture (split between its sessions)
SEED_LIMIT = 300

#: venue -> sessions (the files of one recorded connection each) under fixtures/real
SEED_CAPTURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "binance": (("binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz",),),
    "binance_usdm": (("binance_usdm/binance_usdm_btcusdt_2024-08-08.hbt.txt.gz",),),
    "binance_coinm": (("binance_coinm/binance_coinm_btcusd_perp_2024-08-08.hbt.txt.gz",),),
    "okx": (("okx/okx_v5_books_3inst_2022-05-13.cfcap.txt.gz",),
            ("okx/okex_v5_books-l2-tbt_2021-07-22.cfcap.txt.gz",)),
    "bitget": (("bitget/bitget_spot_v1_books_8inst_2022-04-07.cfcap.txt.gz",),),
    "kraken": (("kraken/kraken_spot_v1_book1000_10pairs_2021-04-17.cfcap.txt.gz",),),
    "kraken_futures": (("kraken_futures/kraken_futures_book_2021-07-22.cfcap.txt.gz",),),
    "deribit": (("deribit/deribit_book_raw_options_2021-07-22.cfcap.txt.gz",),),
    "kucoin": (("kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz",
                "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"),),
    "gateio": (("gateio/gateio_spot_order_book_update_2021-04-22.ws.cfcap.txt.gz",
                "gateio/gateio_spot_order_book_update_2021-04-22.rest_order_book.cfcap.txt.gz"),),
    "gateio_futures": (("gateio/gateio_usdt_futures_order_book_update_2023-05-24.ws.cfcap.txt.gz",
                        "gateio/gateio_usdt_futures_order_book_update_2023-05-24.rest_order_book.cfcap.txt.gz"),),
    "bybit": (("bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz",),
              ("bybit/bybit_legacy_inverse_orderBookL2_25_2021-04-17.cfcap.txt.gz",)),
    # no real orderbook.full capture yet (live on spot since 2026-07-16): a `bookkeeper record
    # --sim` session of the simulator's dialect (REST full_orderbook + deltas), outside real/
    "bybit_spot": (("../bybit_spot/orderbook_full/sim_session.bkrec.jsonl",),),
    "coinbase": (("coinbase/coinbase_pro_legacy_level2_2021-04-17.cfcap.txt.gz",),),
    "bitmex": (("bitmex/bitmex_orderBookL2_2021-07-22.cfcap.txt.gz",),),
}  # fmt: skip


@cache
def seed_frames(venue: str, limit: int = SEED_LIMIT) -> tuple[SeedFrame, ...]:
    """The first frames of each of the venue's recorded sessions, one session after another."""
    sessions = SEED_CAPTURES[venue]
    out: list[SeedFrame] = []
    for files in sessions:
        out += load_seed_frames([REAL / f for f in files], limit=limit // len(sessions))
    return tuple(out)


def test_every_registered_venue_has_seed_frames() -> None:
    assert set(SEED_CAPTURES) == set(VENUES)


@pytest.mark.parametrize("venue", VENUES)
def test_mutated_real_frames_raise_only_typed_errors_and_never_touch_a_synced_book(venue: str) -> None:
    report = fuzz_adapter(get_adapter(venue), seed_frames(venue), frames=FRAMES, seed=SEED)
    print(report.summary())
    report.check()  # names the seed and the first failures with a reproducer
    assert report.frames == FRAMES, f"seed={SEED}"
    # the point of the kit: mutants hit SYNCED books, and most of them are refused
    assert report.frames_on_synced >= FRAMES * 0.8, f"seed={SEED}: {report.summary()}"
    assert report.typed_errors > FRAMES // 4, f"seed={SEED}: {report.summary()}"
    assert report.accepted + report.typed_errors == FRAMES, f"seed={SEED}: {report.summary()}"


def test_fuzz_is_deterministic_for_a_seed() -> None:
    a = fuzz_adapter(get_adapter("okx"), seed_frames("okx"), frames=300, seed=SEED)
    b = fuzz_adapter(get_adapter("okx"), seed_frames("okx"), frames=300, seed=SEED)
    assert a == b


def test_binance_fuzz_exercises_the_fused_fast_path() -> None:
    adapter = get_adapter("binance_coinm")
    if adapter.fused is None:  # type: ignore[attr-defined]
        pytest.skip("C accelerator not built")
    report = fuzz_adapter(adapter, seed_frames("binance_coinm"), frames=FRAMES, seed=SEED)
    report.check()
    assert report.fast_path_applied > 0, f"seed={SEED}: {report.summary()}"


@pytest.mark.parametrize("kind", list(Mutation))
def test_every_mutation_kind_changes_the_frame(kind: Mutation) -> None:
    rng = random.Random(f"{SEED}:{kind.value}")
    frame = b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.5","2"]],"a":[]}'
    changed = sum(mutate(frame, rng, kind) != frame for _ in range(50))
    assert changed >= 45, f"seed={SEED}: {kind} left the frame unchanged {50 - changed}/50 times"


def test_a_broken_adapter_is_reported_with_its_seed() -> None:
    """The kit catches what it is for: an adapter whose decoder lets a TypeError out."""
    from bookkeeper.adapters._common import VenueAdapter

    base = get_adapter("okx")

    class Leaky:
        def __init__(self) -> None:
            self._inner = base.new_decoder()

        def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[object]:
            if b"[]" in (frame if isinstance(frame, bytes) else frame.encode()):
                raise TypeError("unhashable type: 'list'")
            return self._inner.decode(frame, ts_recv_ns)

    leaky = VenueAdapter("okx", base.capabilities, decoder=Leaky, rest=base.parse_rest_snapshot)
    # a guarded adapter turns the TypeError into AdapterError: the kit sees typed errors only
    assert fuzz_adapter(leaky, seed_frames("okx"), frames=200, seed=SEED).ok
    # and the same decoder unguarded is caught, the seed in the message
    leaky.new_decoder = Leaky  # type: ignore[method-assign]
    report = fuzz_adapter(leaky, seed_frames("okx"), frames=200, seed=SEED)
    assert report.untyped_exceptions > 0
    with pytest.raises(AssertionError, match=f"BOOKKEEPER_FUZZ_SEED={SEED}") as info:
        report.check()
    assert "TypeError" in str(info.value) and "reproduce:" in str(info.value)


def test_seed_frames_include_rest_bodies_where_the_venue_bridges_with_rest() -> None:
    for venue in ("binance", "kucoin", "gateio", "gateio_futures"):
        assert any(sf.kind is FrameKind.REST for sf in seed_frames(venue)), venue


# ------------------------------------------------------------------ private sides
PRIVATE = Path(__file__).resolve().parents[2] / "fixtures" / "private"
PRIVATE_FRAMES = 3_000

#: REST parser of each account adapter -> the sample bodies it reads (fixtures/private/<venue>)
PRIVATE_REST: dict[str, dict[str, tuple[str, ...]]] = {
    "binance": {"parse_fills_page": ("rest_mytrades",), "parse_balances": ("rest_account",),
                "parse_open_orders": ("rest_open_orders",)},
    "okx": {"parse_fills_page": ("rest_fills_history",), "parse_balances": ("rest_balance",),
            "parse_positions": ("rest_positions",), "parse_open_orders": ("rest_orders_pending",)},
    "bybit": {"parse_fills_page": ("rest_execution_list", "rest_execution_list_last"),
              "parse_balances": ("rest_wallet_balance",), "parse_positions": ("rest_position_list",),
              "parse_open_orders": ("rest_order_realtime",)},
    "coinbase": {"parse_fills_page": ("rest_fills", "rest_fills_last"), "parse_balances": ("rest_accounts",),
                 "parse_open_orders": ("rest_orders_open",)},
    "binance_usdm": {"parse_fills_page": ("rest_user_trades",), "parse_balances": ("rest_account_v3",),
                     "parse_positions": ("rest_position_risk",), "parse_open_orders": ("rest_open_orders",)},
}


def test_every_account_venue_has_private_samples() -> None:
    assert set(PRIVATE_REST) == set(ACCOUNT_VENUES)
    for venue in ACCOUNT_VENUES:
        assert sorted((PRIVATE / venue).glob("ws_*.json")), venue


@pytest.mark.parametrize("venue", ACCOUNT_VENUES)
def test_mutated_private_frames_raise_only_typed_errors(venue: str) -> None:
    """Mutants of the private samples through a fresh decoder, and through one that has seen a
    login (OKX's decoder remembers it), and mutated REST bodies through the REST parsers: a
    list of events or ``AdapterError``, nothing else (the seed is in every failure)."""
    account = get_account_adapter(venue)
    seeds = [p.read_bytes() for p in sorted((PRIVATE / venue).glob("ws_*.json"))]
    logins = [s for s in seeds if b'"login"' in s or b'"subscriptionId"' in s and b'"status":' in s]
    rng = random.Random(f"{SEED}:private:{venue}")
    typed = 0
    for n in range(PRIVATE_FRAMES):
        frame = mutate(rng.choice(seeds), rng)
        decoder = account.new_private_decoder()
        if logins and n % 2:
            decoder.decode(logins[0])
        try:
            events = decoder.decode(frame, 1)
        except AdapterError:
            typed += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"seed={SEED} {venue}: decode({frame[:120]!r}) raised {type(exc).__name__}: {exc}")
        assert isinstance(events, list), f"seed={SEED}"
    assert typed > PRIVATE_FRAMES // 4, f"seed={SEED}: only {typed} mutants refused"
    call = account.fills_call("X", cursor=FillCursor(ts_ns=0, trade_id="1"), since_ms=0, until_ms=1)
    for method, names in PRIVATE_REST[venue].items():
        parse = getattr(account, method)
        kwargs = {"call": call, "symbol": "X"} if method == "parse_fills_page" else {}
        for name in names:
            sample = (PRIVATE / venue / f"{name}.json").read_bytes()
            parse(sample, **kwargs)  # the sample itself parses
            for _ in range(300):
                body = mutate(sample, rng)
                try:
                    parse(body, **kwargs)
                except AdapterError:
                    continue
                except Exception as exc:  # noqa: BLE001 - the point of the test
                    pytest.fail(f"seed={SEED} {venue}.{method}({body[:120]!r}) raised {type(exc).__name__}: {exc}")
