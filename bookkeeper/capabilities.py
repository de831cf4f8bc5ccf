"""What a venue's book stream guarantees, declared by each adapter.

The core branches on these values, never on a venue's name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import InvalidEvent


class SequenceModel(enum.Enum):
    """How a venue numbers its book messages.

    - ``CONTIGUOUS_RANGE``: each message covers ids ``first_seq..last_seq``; the next starts
      at ``last_seq + 1`` (Binance spot ``U/u``, KuCoin, Gate, Kraken Futures; Bybit
      ``orderbook.full``, one id per message).
    - ``PREV_POINTER``: each message names the previous message's id in ``prev_seq``
      (Binance futures ``pu``, OKX ``prevSeqId``, Deribit ``prev_change_id``).
    - ``MONOTONIC_ONLY``: ids only increase and may skip; gaps are invisible, only a checksum
      or a periodic snapshot detects drift (Bybit ``orderbook.N``).
    - ``NONE``: no ids at all (Kraken, Coinbase legacy, BitMEX).
    """

    CONTIGUOUS_RANGE = "contiguous_range"
    PREV_POINTER = "prev_pointer"
    MONOTONIC_ONLY = "monotonic_only"
    NONE = "none"


class SpliceRule(enum.Enum):
    """How the first delta after a snapshot at id ``S`` must relate to ``S``.

    - ``RANGE_NEXT``: drop ``last_seq <= S``; first kept needs ``first_seq <= S+1 <= last_seq``
      (Binance spot, Gate, KuCoin; exchange-protocols.md §2.3).
    - ``RANGE_AT``: drop ``last_seq < S``; first kept needs ``first_seq <= S <= last_seq``
      (Binance USD-M / COIN-M), then the ``pu`` chain.
    - ``PREV_BRACKET``: drop ``last_seq <= S``; first kept needs ``prev_seq <= S < last_seq``
      (OKX REST ``seqId`` flow).
    - ``PREV_EXACT``: drop ``last_seq <= S``; first kept needs ``prev_seq == S``
      (WS snapshots of pointer venues: OKX, Deribit).
    - ``MONOTONIC``: drop ``last_seq <= S``; anything newer applies (gaps are invisible).
    - ``CROSS_NEXT``: the snapshot carries a cross sequence ``C`` beside ``S`` (``cross_seq``:
      increasing with gaps, and still increasing when the update ids restart). Drop deltas
      with ``cross_seq < C``; the one at ``cross_seq == C`` is the snapshot's own and must
      have ``last_seq == S`` (dropped), else the snapshot is fetched again; the first kept
      needs ``first_seq <= S+1 <= last_seq``. A snapshot older than the first buffered delta
      (``C`` below its ``cross_seq``) is fetched again too (Bybit ``orderbook.full`` + REST
      ``full_orderbook``: ``seq`` and ``u``, exchange-protocols.md §2.3, §6.2). A delta whose
      ``cross_seq`` is newer than the book's while its ids say stale means the venue restarted
      its ids (Bybit ``u = 1``): the session resyncs.
    - ``NONE``: no ids; the snapshot supersedes everything buffered before it.
    """

    RANGE_NEXT = "range_next"
    RANGE_AT = "range_at"
    PREV_BRACKET = "prev_bracket"
    PREV_EXACT = "prev_exact"
    MONOTONIC = "monotonic"
    CROSS_NEXT = "cross_next"
    NONE = "none"


class ChecksumKind(enum.Enum):
    """The venue's book checksum algorithm."""

    NONE = "none"
    #: CRC32 of the top 25 levels interleaved ``bid:ask``, read as signed int32 (OKX, Bitget).
    CRC32_INTERLEAVED_25 = "crc32_interleaved_25"
    #: CRC32 of top-10 asks then top-10 bids, digits only, unsigned (Kraken WS v1 and v2).
    KRAKEN_CRC32_10 = "kraken_crc32_10"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """A venue's published limit: at most ``count`` per ``window_s`` seconds (per source IP).

    Attributes:
        count: how many (connection attempts, or units of REST weight).
        window_s: the window they are counted over.

    Raises:
        InvalidEvent: a non-positive figure.
    """

    count: int
    window_s: float

    def __post_init__(self) -> None:
        if self.count < 1 or not self.window_s > 0:
            raise InvalidEvent(f"impossible rate limit: {self!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeCapabilities:
    """A venue's book-stream facts, as the core needs them.

    Attributes:
        venue: registry name (``binance``, ``okx`` ...).
        sequence_model: see :class:`SequenceModel`.
        splice_rule: see :class:`SpliceRule`, for REST snapshots.
        ws_splice_rule: the rule for snapshots pushed over the WebSocket.
        checksum: see :class:`ChecksumKind`.
        ws_snapshot_on_subscribe: the venue pushes a full book when a symbol is (re)subscribed.
        rest_snapshot: a REST snapshot with a sequence id can be spliced with buffered deltas.
        truncate_to_depth: the venue does not send deletes for levels that leave the
            subscribed depth; the local book must drop them (Kraken).
        rest_snapshot_depth: the largest REST snapshot depth worth asking for.
        ping_interval_s / pong_timeout_s: app-level keepalive (``None`` = protocol pings only).
        level_sequences: each level carries its own sequence (KuCoin ``[price, size, seq]``).
        connection_sequence: every message of a connection carries one counter, across
            channels and products, and the decoder reports a skipped or repeated number as a
            ``NoticeKind.CONNECTION_GAP``/``CONNECTION_OUT_OF_ORDER`` notice: a lost or late
            frame is visible even where the books carry no ids (Coinbase ``sequence_num``).
        connect_limit: connection attempts allowed per source IP (``None``: none published);
            a fleet shares it as a token bucket (:mod:`bookkeeper.coordination`).
        rest_weight_limit: REST weight allowed per source IP (``None``: none published).
        rest_snapshot_weights: ``(max_depth, weight)`` steps, ascending: what one REST
            snapshot of up to ``max_depth`` levels costs against ``rest_weight_limit``
            (empty: 1 per snapshot).
    """

    venue: str
    sequence_model: SequenceModel
    splice_rule: SpliceRule = SpliceRule.NONE
    ws_splice_rule: SpliceRule = SpliceRule.NONE
    checksum: ChecksumKind = ChecksumKind.NONE
    ws_snapshot_on_subscribe: bool = False
    rest_snapshot: bool = False
    truncate_to_depth: bool = False
    rest_snapshot_depth: int = 1000
    ping_interval_s: float | None = None
    pong_timeout_s: float | None = None
    idle_timeout_s: float | None = None
    level_sequences: bool = False
    connection_sequence: bool = False
    max_buffered_deltas: int = 10_000
    connect_limit: RateLimit | None = None
    rest_weight_limit: RateLimit | None = None
    rest_snapshot_weights: tuple[tuple[int, int], ...] = ()


class FillPaging(enum.Enum):
    """How a venue's REST fills endpoint pages through history."""

    #: by trade id after the cursor, gapless, no time range needed (Binance ``fromId``)
    FROM_ID = "from_id"
    #: by a time range (``begin``/``end``) plus a page token inside it (OKX ``after`` billId,
    #: Bybit ``cursor``)
    TIME_RANGE = "time_range"


@dataclass(frozen=True, slots=True, kw_only=True)
class FillHistory:
    """What a venue's REST fills endpoint can serve.

    Attributes:
        page_size: the most rows one request returns (the venue's ``limit`` maximum).
        paging: see :class:`FillPaging`.
        retention_ns: how far back fills can be fetched (``None``: no documented limit).
        max_span_ns: the longest time range one request may ask for (``None``: unlimited).

    Raises:
        InvalidEvent: a non-positive figure.
    """

    page_size: int
    paging: FillPaging
    retention_ns: int | None = None
    max_span_ns: int | None = None

    def __post_init__(self) -> None:
        if self.page_size < 1 or (self.retention_ns is not None and self.retention_ns < 0) or (
                self.max_span_ns is not None and self.max_span_ns < 1):
            raise InvalidEvent(f"impossible fill history figures: {self!r}")
