"""Direct gradings against score tiers: a pure helper shared by the scorer's core
(redemption tier checks) and the ledger's reads (balances)."""

from __future__ import annotations

from typing import Any


def capped_tier(group: Any, tier: str, grade: str | None) -> str:
    """The worse of a score's tier and a direct grading cap."""
    if grade is None:
        return tier
    return grade if group.tier_rank(grade) > group.tier_rank(tier) else tier
