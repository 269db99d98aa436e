"""The scheme as data: what ``loader`` builds from ``rules/`` and every later stage reads.

Objects keep ``src`` (file, line, col) of the YAML node they came from, so a
later check can point at it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .durations import Clock, Duration, parse_duration
from .precision import WHOLE, Precision

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
    # the values' Chinese names, when ``values`` is written as a mapping (code: 名称)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class EventType:
    id: str
    title: str
    attrs: dict[str, AttrSpec]
    src: Src = NOWHERE


@dataclass(frozen=True)
class Adopted:
    by: str = ""
    on: str = ""
    ref: str = ""


# --------------------------------------------------------------------------
# rule clauses: the loader types each once; every later stage reads these, and
# a clause's defaults live here only. ``src`` is the clause's YAML node (for
# messages) and takes no part in equality, so ``diff`` compares meaning.


def _src_field() -> Any:
    return field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Points:
    """``points``: a form and its parameters as written (what the form's compiler gets).

    The built-in forms are the subclasses below; a plugin's form (``register_points_forms``)
    stays a plain ``Points`` whose ``form`` is the mapping's first key and ``params`` the
    mapping, so compile can hand it to the plugin unchanged.
    """

    form: str
    params: dict[str, Any] = field(default_factory=dict)
    src: Src = _src_field()

    def values(self) -> list[float]:
        """The point values written down, for telling awards from penalties."""
        p = self.params
        if isinstance(p.get("value"), (int, float)):
            return [p["value"]]
        if isinstance(p.get("table"), dict):
            return [v for v in p["table"].values() if isinstance(v, (int, float))]
        return []

    def spec(self) -> Any:
        """What ``compile.compile_points`` takes: the number or the mapping."""
        return self.params


@dataclass(frozen=True)
class FixedPoints(Points):
    """``points: 5``: the same number every time."""

    form: str = "fixed"
    n: int = 0

    def values(self) -> list[float]:
        return [self.n]

    def spec(self) -> Any:
        return self.n


@dataclass(frozen=True)
class PerPoints(Points):
    """``points: {per: hours, value: 2, round: floor}``: value × the attribute, rounded."""

    form: str = "per"
    per: str = ""
    value: float = 1
    round: str = "floor"


@dataclass(frozen=True)
class TablePoints(Points):
    """``points: {by: attr, table: {value: points}, default: n}``; no default: no points."""

    form: str = "by"
    by: str = ""
    table: dict[Any, int] = field(default_factory=dict)
    default: int | None = None  # None: a value not in the table scores nothing


TOTAL_PERIODS = ("ever", "year", "quarter", "month")


@dataclass(frozen=True)
class TotalPoints(Points):
    """``points: {total: hours, period: year, levels: [...] | brackets: [...], max: n}``:
    points over the subject's running total of an attribute within a local period.

    The total's points are a function of the total (``levels``: cumulative thresholds,
    each reached level adds its points, or with ``count: highest`` only the highest
    counts; ``brackets``: marginal brackets, every ``every`` units inside a bracket add
    its points), held to ``max``; an event scores what it adds to the total's points.
    ``levels`` are ``((reach, points), ...)`` and ``brackets`` ``((upto | None, every,
    points), ...)``, both as written (validate checks they rise).
    """

    form: str = "total"
    total: str = ""
    period: str = "ever"
    levels: tuple[tuple[Any, int], ...] = ()
    count: str = "each"  # each | highest
    brackets: tuple[tuple[Any, Any, int], ...] = ()
    max: int | None = None

    def values(self) -> list[float]:
        if self.levels:
            return [pts for _, pts in self.levels]
        return [pts for _, _, pts in self.brackets]


@dataclass(frozen=True)
class OddPoints(Points):
    """Not a points value at all (only unchecked data gets here): compile says why."""

    form: str = ""
    raw: Any = None

    def values(self) -> list[float]:
        return []

    def spec(self) -> Any:
        return self.raw


def make_points(spec: Any, src: Src = NOWHERE) -> Points | None:
    """Type a ``points`` value as written (``None`` when the rule has none)."""
    if spec is None:
        return None
    if isinstance(spec, int) and not isinstance(spec, bool):
        return FixedPoints(params={}, src=src, n=spec)
    if isinstance(spec, dict):
        params = dict(spec)
        if "total" in spec:
            return make_total(spec, params, src)
        if "per" in spec:
            return PerPoints(
                params=params,
                src=src,
                per=str(spec["per"]),
                value=spec.get("value", 1),
                round=str(spec.get("round", "floor")),
            )
        if "by" in spec:
            return TablePoints(
                params=params,
                src=src,
                by=str(spec["by"]),
                table=dict(spec.get("table") or {}),
                default=spec.get("default"),
            )
        return Points(form=str(next(iter(spec), "")), params=params, src=src)
    return OddPoints(params={}, src=src, raw=spec)


@dataclass(frozen=True)
class Limit:
    """``limit: {per: month, max_points: 10, max_count: 3}``: caps per period."""

    per: str
    max_points: int | None = None
    max_count: int | None = None
    src: Src = _src_field()


@dataclass(frozen=True)
class Escalate:
    """``escalate: {within: 365d, steps: [-5, -10]}``: the n-th match in the window scores steps[n]."""

    within: Duration
    steps: tuple[int, ...] = ()
    factor: int | None = None  # {within, factor: 2}: a repeat in the window scores points × factor
    src: Src = _src_field()


EXPIRY_BOUNDARIES = {"end of year": "year", "end of quarter": "quarter", "end of month": "month"}


@dataclass(frozen=True)
class Expires:
    """How long an entry counts. ``{after: 2 years}``: for the duration from the event;
    ``{until: end of year, later: n}``: to the end of the event's calendar year (quarter,
    month), or of the n-th one after it; ``{by_size: [{upto: 40, after: 1 year}, {after:
    2 years}]}``: by the size of the entry actually written (|points| after caps and
    escalation; a linked entry by its own), the first band whose ``upto`` holds it."""

    after: Duration | None = None
    until: str = ""  # "" | year | quarter | month: the calendar boundary
    later: int = 0
    by_size: tuple[tuple[int | None, Expires], ...] = ()
    src: Src = _src_field()

    def pick(self, points: int) -> Expires:
        """The band of ``by_size`` an entry of ``points`` falls in (itself without bands)."""
        for upto, band in self.by_size:
            if upto is None or abs(points) <= upto:
                return band
        return self


def make_expires(spec: Any, src: Src = NOWHERE) -> Expires | None:
    """Type ``expires`` as written (``None`` when absent or not a mapping)."""
    if not isinstance(spec, dict):
        return None
    bands = spec.get("by_size")
    if isinstance(bands, list):
        return Expires(
            by_size=tuple(
                (b.get("upto"), make_expires(b) or Expires()) for b in bands if isinstance(b, dict)
            ),
            src=src,
        )
    after = spec.get("after")
    return Expires(
        after=parse_duration(after) if after is not None else None,
        until=EXPIRY_BOUNDARIES.get(str(spec.get("until", "")), ""),
        later=int(spec.get("later") or 0),
        src=src,
    )


@dataclass(frozen=True)
class Grade:
    """``grade: {to: C, for: 3 years}``: the subject's tier is at most ``to`` for the duration."""

    to: str
    for_: Duration
    src: Src = _src_field()


@dataclass(frozen=True)
class Also:
    """One ``also`` link: the linked subject's account in ``group`` gets ``points`` too."""

    link: str
    group: str = ""  # "": the rule's own group
    points: int | str = "same"  # "same": what the rule gave
    grade: str = ""  # "": no grading passes on; "same": the rule's; else a tier id
    src: Src = _src_field()


@dataclass(frozen=True)
class Family:
    """``families: {fraud: {title, exclusive: highest, limit: {...}}}`` in a pack: rules with
    ``family: fraud`` share one escalation window and one cap (per subject and group), and
    with ``exclusive: highest`` an event matching several of them scores once, by the
    rule of the largest points (art. 18.2/18.3: one act, several items)."""

    id: str
    title: str = ""
    exclusive: str = ""  # "" | highest
    limit: Limit | None = None
    src: Src = _src_field()


@dataclass(frozen=True)
class Withhold:
    """``withhold: {when: {subject.graded: true}, note: ...}``: a match while the condition
    holds at the event is written as a 0-point entry saying why (e.g. Wendeng art. 17:
    while a downgrade is unrepaired, bonuses do not count)."""

    when: Any
    note: str = ""
    src: Src = _src_field()


REPAIR_WITHIN = "12 months"


@dataclass(frozen=True)
class Repair:
    """``repair: {rules: [...], within: 12 months, restore: all}``: undo the latest penalty."""

    rules: tuple[str, ...]
    within: Duration = field(default_factory=lambda: parse_duration(REPAIR_WITHIN))
    restore: str = "all"  # all | half
    src: Src = _src_field()


@dataclass(frozen=True)
class Effective:
    """``effective: {from, until}`` (the rule's or its pack's); both days inclusive."""

    start: int | None = None  # epoch seconds, inclusive
    end: int | None = None  # epoch seconds, exclusive (the day after 'until')
    text: tuple[str, str] = ("", "")  # the dates as written
    src: Src = _src_field()


def clause_data(x: Any) -> Any:
    """A clause as plain data without its ``src`` (what ``diff`` compares versions by)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: clause_data(getattr(x, f.name)) for f in dataclasses.fields(x) if f.compare}
    if isinstance(x, (list, tuple)):
        return [clause_data(v) for v in x]
    if isinstance(x, dict):
        return {str(k): clause_data(v) for k, v in x.items()}
    return x


@dataclass
class Rule:
    """One rule version, as written in a pack, its clauses typed."""

    id: str
    title: str
    on: list[str]
    group: str
    pack: str
    pack_version: str
    pack_hash: str
    when: Any = None  # raw condition data; compiled by ``conditions``
    points: Points | None = None
    limit: Limit | None = None
    escalate: Escalate | None = None
    expires: Expires | None = None
    effective: Effective = field(default_factory=Effective)
    wallet: bool | None = None  # as written; ``moves_wallet`` gives the default
    grade: Grade | None = None
    also: tuple[Also, ...] = ()
    repair: Repair | None = None
    withhold: Withhold | None = None
    family: str = ""
    groups: tuple[str, ...] = ()  # groups: [...] as written (one Rule per group); () : the pack's
    status: str = "active"  # active | trial | retired
    severity: str = ""
    adopted: Adopted | None = None
    note: str = ""
    src: Src = NOWHERE
    key_src: dict[str, Src] = field(default_factory=dict)

    @property
    def effective_from(self) -> int | None:
        return self.effective.start

    @property
    def effective_until(self) -> int | None:
        return self.effective.end

    @property
    def effective_text(self) -> tuple[str, str]:
        return self.effective.text

    def moves_wallet(self, points: int) -> bool:
        """Whether an entry of ``points`` moves the wallet: as written, else awards do."""
        return self.wallet if self.wallet is not None else points > 0

    def point_values(self) -> list[float]:
        """Every point value written (points and escalation steps)."""
        values = self.points.values() if self.points is not None else []
        if self.escalate:
            values = values + list(self.escalate.steps)
        return values

    def in_force(self, at: int) -> bool:
        return (self.effective.start is None or at >= self.effective.start) and (
            self.effective.end is None or at < self.effective.end
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
    award_expires: Expires | None = None  # award: {..., expires: {...}}; None: awards never expire


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
    families: dict[str, Family] = field(default_factory=dict)  # declared in the packs
    # link names (``also.link``) → Chinese name, from scheme.yaml ``links``; empty: the
    # five of ``scoring.render.LINK_WORDS``
    links: dict[str, str] = field(default_factory=dict)
    # points are integers of 1/precision.scale (scoring.precision); whole points by default
    precision: Precision = field(default=WHOLE)
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


def make_total(spec: dict[str, Any], params: dict[str, Any], src: Src = NOWHERE) -> TotalPoints:
    """Type ``points: {total: ...}`` (see :class:`TotalPoints`)."""

    def items(key: str) -> list[dict[str, Any]]:
        raw = spec.get(key)
        return [x for x in raw if isinstance(x, dict)] if isinstance(raw, list) else []

    levels = tuple((x.get("reach"), x.get("points", 0)) for x in items("levels"))
    brackets = tuple(
        (x.get("upto"), x.get("every", 1), x.get("points", 0)) for x in items("brackets")
    )
    return TotalPoints(
        params=params,
        src=src,
        total=str(spec.get("total", "")),
        period=str(spec.get("period", "ever")),
        levels=levels,
        count=str(spec.get("count", "each")),
        brackets=brackets,
        max=spec.get("max"),
    )
