"""The scheme as data: what ``loader`` builds from ``rules/`` and every later stage reads.

Objects keep ``src`` (file, line, col) of the YAML node they came from, so a
later check can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .durations import Clock, Duration

Src = tuple[str, int, int]
NOWHERE: Src = ("", 0, 0)


@dataclass(frozen=True)
class Tier:
    id: str
    title: str
    min: int | None  # inclusive; None = no lower bound
    max: int | None  # inclusive; None = no upper bound
    src: Src = NOWHERE


@dataclass
class Group:
    id: str
    title: str
    kind: str  # person | organization
    base_score: int
    tiers: list[Tier]  # ordered high → low
    tier_set: str = ""
    src: Src = NOWHERE

    def tier_of(self, score: int) -> str:
        for t in self.tiers:
            if (t.min is None or score >= t.min) and (t.max is None or score <= t.max):
                return t.id
        return self.tiers[-1].id if self.tiers else ""

    def tier_rank(self, tier: str) -> int:
        """0 for the best tier; larger is worse."""
        for i, t in enumerate(self.tiers):
            if t.id == tier:
                return i
        return len(self.tiers)


@dataclass
class Grid:
    id: str
    name: str
    community: str
    community_name: str
    street: str
    street_name: str


@dataclass
class AttrSpec:
    name: str
    type: str  # integer | number | string | boolean | date
    title: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    values: list[Any] | None = None
    required: bool = False
    src: Src = NOWHERE


@dataclass
class EventType:
    id: str
    title: str
    attrs: dict[str, AttrSpec]
    src: Src = NOWHERE


@dataclass
class Adopted:
    by: str = ""
    on: str = ""
    ref: str = ""


@dataclass
class Rule:
    """One rule version, as written in a pack."""

    id: str
    title: str
    on: list[str]
    group: str
    pack: str
    pack_version: str
    pack_hash: str
    when: Any = None  # raw condition data; compiled by ``conditions``
    points: Any = None  # int | {per,value,round} | {by,table,default}
    limit: dict[str, Any] | None = None
    escalate: dict[str, Any] | None = None
    expires: Duration | None = None
    effective_from: int | None = None  # epoch seconds, inclusive
    effective_until: int | None = None  # epoch seconds, exclusive (end of the 'until' day)
    effective_text: tuple[str, str] = ("", "")
    wallet: bool | None = None
    grade: dict[str, Any] | None = None  # {to: tier, for: Duration}
    also: list[dict[str, Any]] = field(default_factory=list)
    repair: dict[str, Any] | None = None
    status: str = "active"  # active | trial | retired
    severity: str = ""
    adopted: Adopted | None = None
    note: str = ""
    src: Src = NOWHERE
    key_src: dict[str, Src] = field(default_factory=dict)

    def in_force(self, at: int) -> bool:
        return (self.effective_from is None or at >= self.effective_from) and (
            self.effective_until is None or at < self.effective_until
        )


@dataclass
class Pack:
    id: str
    version: str
    group: str
    title: str
    file: str
    hash: str  # content hash of the pack file
    adopted: Adopted | None
    rules: list[Rule]
    src: Src = NOWHERE


@dataclass
class ListReason:
    tiers: list[str] | None = None
    min_score: int | None = None
    max_score: int | None = None
    rules: list[str] | None = None
    severity: str | None = None
    within: Duration | None = None
    text: str = ""
    src: Src = NOWHERE


@dataclass
class ListDef:
    id: str
    title: str
    groups: list[str]
    reasons: list[ListReason]
    description: str = ""
    src: Src = NOWHERE


@dataclass
class Assessment:
    id: str
    title: str
    period: str  # month | quarter | year
    scope: str  # grid | community | subject
    group: str
    metric: dict[str, Any]
    select: dict[str, Any]
    rank_within: str = "scheme"
    award: dict[str, Any] | None = None
    badge: str = ""
    src: Src = NOWHERE


@dataclass
class CatalogItem:
    id: str
    title: str
    cost: int
    min_tier: str | None = None
    groups: list[str] | None = None
    stock: int | None = None
    limit: dict[str, Any] | None = None
    available_from: int | None = None
    available_until: int | None = None
    partner: str | None = None
    description: str = ""
    src: Src = NOWHERE


@dataclass
class Scheme:
    id: str
    title: str
    timezone: str
    root: str  # the rules folder
    groups: dict[str, Group]
    grids: dict[str, Grid]
    event_types: dict[str, EventType]
    packs: list[Pack]
    lists: list[ListDef]
    assessments: list[Assessment]
    catalog: dict[str, CatalogItem]
    hash: str = ""  # content hash of all rule files together
    raw: dict[str, Any] = field(default_factory=dict)
    # the scheme's plugins (scoring.plugins.Plugins), made once by the loader
    plugins: Any = field(default=None, repr=False, compare=False)

    @property
    def clock(self) -> Clock:
        c = self.__dict__.get("_clock")
        if c is None:
            c = self.__dict__["_clock"] = Clock(self.timezone)
        return c

    @property
    def rules(self) -> list[Rule]:
        return [r for p in self.packs for r in p.rules]

    def rule_versions(self, rule_id: str) -> list[Rule]:
        return [r for r in self.rules if r.id == rule_id]

    def rule_titles(self) -> dict[str, str]:
        return {r.id: r.title for r in self.rules}
