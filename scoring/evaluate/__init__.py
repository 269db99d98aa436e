"""The scorer: unscored events → ledger entries, in (event time, event id) order.

- :mod:`~scoring.evaluate.core`: the pure scoring core (:class:`Scorer`): events
  and prior state in, entries, rejects and new state out; no database, file or
  process. What a per-partition run (Spark) drives.
- :mod:`~scoring.evaluate.redemptions`: the core's redemption steps.
- :mod:`~scoring.evaluate.outputs`: what the core emits, and :class:`ScoreSummary`.
- :mod:`~scoring.evaluate.memory`: in-memory prior state and output for the core
  (tests, other runners).
- :mod:`~scoring.evaluate.runner`: the SQLite runner (:class:`Engine`, :func:`score`).
"""

from __future__ import annotations

from ..grading import capped_tier
from .core import NoPrior, PostingMonths, PriorState, Scorer
from .outputs import ScoreSummary
from .runner import Engine, _rebuilds_indexes, score

__all__ = [
    "Engine",
    "NoPrior",
    "PostingMonths",
    "PriorState",
    "ScoreSummary",
    "Scorer",
    "_rebuilds_indexes",
    "capped_tier",
    "score",
]
