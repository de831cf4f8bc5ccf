"""Timing and behaviour knobs of the simulator (a module of its own so the venue dialects can
name the type without importing the exchange that hosts them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SimConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Timing and behaviour knobs (real-venue values in comments).

    Attributes:
        push_interval_s: engine interval and stream push period (Binance/OKX 0.1 s).
        binance_ping_interval_s: server protocol ping period (Binance spot 20 s, §3.5).
        okx_idle_timeout_s: close a connection whose client sent nothing for this long (30 s, §5.5).
        okx_book_heartbeat_s: empty ``seqId == prevSeqId`` update after this long unchanged (~60 s, §5.2).
        okx_checksum: send the real signed CRC32 instead of the 2026-06-23 pinned 0 (§5.3).
        kraken_heartbeat_s: ``{"channel":"heartbeat"}`` period (~1 s, §7.5).
        stale_lag: how many ids behind the truth a ``stale_snapshot`` answer is.
        history: seqs kept for ``engine.book_at``.
        account_fill_rate_per_s: mean automatic fills per second of each enabled account while
            the engine runs (0 = only explicit ``SimAccount.trade`` calls).
        account_history_retention_s: override of the venues' fill-history windows (``None`` =
            the real ones: OKX ``fills-history`` 3 months, ``fills`` 3 days, §5.6; Binance spot
            documents none), so tests reach "older than the window" in sim time.
        private_session_lifetime_s: lifetime of a Binance WS API connection (24 h real, §3.6);
            at expiry the server sends ``eventStreamTerminated`` and closes with 1000.
        private_recv_window_ms: Binance's default ``recvWindow`` for signed requests (5000 ms).
        private_listen_key_lifetime_s: how long a Binance USD-M listenKey lives without a
            keepalive (60 min real, §4.6); then the stream sends ``listenKeyExpired``.
    """

    push_interval_s: float = 0.05
    binance_ping_interval_s: float = 20.0
    okx_idle_timeout_s: float = 30.0
    okx_book_heartbeat_s: float = 60.0
    okx_checksum: bool = False
    kraken_heartbeat_s: float = 1.0
    stale_lag: int = 200
    history: int = 10_000
    account_fill_rate_per_s: float = 2.0
    account_history_retention_s: float | None = None
    private_session_lifetime_s: float = 86_400.0
    private_recv_window_ms: int = 5_000
    private_listen_key_lifetime_s: float = 3_600.0
