"""Which month an event's entries post to: the one rule, for the core and the ledger.

An event posts to its own local month unless that month is closed (or lies
before the latest closed one, which is history too); then it posts to the
first open month after the latest closed one. The rule needs only the set of
closed months, so the pure scoring core uses :class:`PostingMonths` as it is,
and ``scoring.periods.PostingCalendar`` reads the set from the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .durations import next_month

__all__ = ["PostingMonths"]


class PostingMonths:
    """The posting rule over a set of closed months (``YYYY-MM``). ``clock`` gives
    an event's local month (``clock.month(at)``). Posting months are memoised per
    own month, so ``posting_month`` is cheap on the scorer's hot path."""

    def __init__(self, clock: Any, closed: Iterable[str] = ()):
        self.clock = clock
        self.set_closed(closed)

    def set_closed(self, closed: Iterable[str]) -> None:
        """Start over from this set of closed months."""
        self.closed = set(closed)
        self.latest = max(self.closed) if self.closed else ""
        self._posting: dict[str, str] = {}

    def posting_month(self, at: int) -> str:
        own = self.clock.month(at)
        if not self.latest or own > self.latest:
            return own
        # a closed month, or one skipped before the latest closed month: both are history
        m = self._posting.get(own)
        if m is None:
            m = next_month(self.latest)
            while m in self.closed:  # pragma: no cover - months close in order
                m = next_month(m)
            self._posting[own] = m
        return m

    def late(self, at: int) -> bool:
        """True if the event's own month is closed already (or lies before one that is)."""
        return bool(self.latest) and self.clock.month(at) <= self.latest
