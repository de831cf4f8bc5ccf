"""Sequencer: classify each delta against the last applied sequence id.

Theory of operation
-------------------
The sequencer holds ``local`` — the last id applied to the book — and answers one question
per delta: APPLY, STALE (older than local), DUPLICATE (exactly the last applied message
again), or GAP (something between local and this delta is missing). The rule lives here
once and branches on :class:`~bookkeeper.capabilities.SequenceModel`, never on a venue name:

================  =====================================================================
model             APPLY when
================  =====================================================================
CONTIGUOUS_RANGE  ``first_seq <= local + 1 <= last_seq`` (overlap allowed: KuCoin's rule)
PREV_POINTER      ``prev_seq == local`` (this also accepts OKX's reset, seqId < prevSeqId)
MONOTONIC_ONLY    ``last_seq > local`` (a skipped id is invisible by definition)
NONE              always (no ids: only checksums or snapshots can detect drift)
================  =====================================================================

A delta without ids on a sequenced stream (old captures) is applied unchecked and counted
by the session as unsequenced. ``previous`` (the id before the last applied delta) lets the
session tell an ordinary late delta (at or below it) from a venue that has moved on while a
corrupt id applied last keeps ``local`` ahead of it (see ``BookSession``'s stale-run rule). The missed-count estimate for a gap is in *ids*, the only
unit every venue shares (Binance counts book changes, OKX messages).
"""

from __future__ import annotations

import enum

from .capabilities import SequenceModel

__all__ = ["SeqVerdict", "Sequencer"]


class SeqVerdict(enum.Enum):
    APPLY = "apply"
    STALE = "stale"
    DUPLICATE = "duplicate"
    GAP = "gap"
    BUFFER_FULL = "buffer_full"


_APPLY = SeqVerdict.APPLY
_STALE = SeqVerdict.STALE
_DUP = SeqVerdict.DUPLICATE
_GAP = SeqVerdict.GAP


class Sequencer:
    """Tracks the last applied id of one stream.

    >>> s = Sequencer(SequenceModel.CONTIGUOUS_RANGE); s.reset(100)
    >>> s.check(101, 105, None), s.check(99, 100, None), s.check(107, 110, None)
    (<SeqVerdict.APPLY: 'apply'>, <SeqVerdict.STALE: 'stale'>, <SeqVerdict.GAP: 'gap'>)
    >>> s.missed(107, 110, None)  # ids 101..106
    6
    """

    __slots__ = ("_model", "_local", "_last_first", "_prev", "check")

    def __init__(self, model: SequenceModel) -> None:
        self._model = model
        self._local: int | None = None
        self._last_first: int | None = None
        self._prev: int | None = None
        self.check = {
            SequenceModel.CONTIGUOUS_RANGE: self._check_range,
            SequenceModel.PREV_POINTER: self._check_pointer,
            SequenceModel.MONOTONIC_ONLY: self._check_monotonic,
            SequenceModel.NONE: self._check_none,
        }[model]

    @property
    def model(self) -> SequenceModel:
        return self._model

    @property
    def local(self) -> int | None:
        """The last applied id (``None`` before the first snapshot)."""
        return self._local

    @property
    def previous(self) -> int | None:
        """``local`` as it was before the last applied delta (the snapshot's id right after a
        snapshot; ``None`` when unknown).

        >>> s = Sequencer(SequenceModel.MONOTONIC_ONLY); s.reset(100); s.advance(None, 105)
        >>> s.previous, s.local
        (100, 105)
        """
        return self._prev

    def reset(self, seq: int | None) -> None:
        """Set ``local`` (after a snapshot at ``seq``)."""
        self._local = seq
        self._last_first = None
        self._prev = seq

    def advance(self, first: int | None, last: int | None) -> None:
        """Record that a delta covering ``first..last`` was applied."""
        if last is not None:
            self._prev = self._local
            self._local = last
            self._last_first = first

    def _check_range(self, first: int | None, last: int | None, prev: int | None) -> SeqVerdict:
        local = self._local
        if last is None or local is None:
            return _APPLY
        if last <= local:
            return _DUP if (last == local and first == self._last_first) else _STALE
        if (first if first is not None else last) <= local + 1:
            return _APPLY
        return _GAP

    def _check_pointer(self, first: int | None, last: int | None, prev: int | None) -> SeqVerdict:
        local = self._local
        if local is None or (prev is None and last is None):
            return _APPLY
        if prev == local and (last is None or last != local):
            return _APPLY
        if last is not None and last <= local:
            return _DUP if last == local else _STALE
        return _GAP

    def _check_monotonic(self, first: int | None, last: int | None, prev: int | None) -> SeqVerdict:
        local = self._local
        if last is None or local is None or last > local:
            return _APPLY
        return _DUP if last == local else _STALE

    def _check_none(self, first: int | None, last: int | None, prev: int | None) -> SeqVerdict:
        return _APPLY

    def missed(self, first: int | None, last: int | None, prev: int | None) -> int | None:
        """Estimated ids missed before a delta judged GAP (``None`` when unknowable)."""
        local = self._local
        if local is None:
            return None
        if self._model is SequenceModel.CONTIGUOUS_RANGE and first is not None:
            return max(first - local - 1, 0)
        if self._model is SequenceModel.PREV_POINTER:
            ref = prev if prev is not None else first
            if ref is not None and ref > local:
                return ref - local
        return None
