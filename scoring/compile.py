"""Compile rules once into fast closures: a predicate, a points function, caps.

Compilation is where plugins are consulted (operators, points forms); the
evaluator then runs plain closures per event with no hook calls.

Every entry is held to ``ENTRY_BOUND`` points either way: validate keeps the
numbers written in rules inside it (schemas/*.json), and what a points form
computes from an event's attribute (``per: hours`` on an attribute that
events.yaml gives no ``max``) is capped at it here, so a balance can never leave
SQLite's 64-bit integers however wild an event is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .conditions import Condition, Operator, compile_condition
from .durations import Duration
from .model import Rule, Scheme, TotalPoints
from .precision import WHOLE, Precision, fmt_points

PointsFn = Callable[[dict], "int | None"]

# The most points one entry can give or take (the schemas' bound on rule numbers).
ENTRY_BOUND = 1_000_000


def clamp_points(p: Any) -> int | None:
    """``p`` held to ±ENTRY_BOUND (whole points); ``None`` (no entry) for NaN or no
    number. For results outside the bound only: the hot path compares and goes on."""
    if isinstance(p, int) and not isinstance(p, bool):
        return max(-ENTRY_BOUND, min(ENTRY_BOUND, p))
    if isinstance(p, float) and p == p:  # inf too: a float beyond any bound
        return ENTRY_BOUND if p > 0 else -ENTRY_BOUND
    return None


@dataclass(frozen=True)
class PointsForm:
    """A way to write ``points``: selected by ``key`` in the points mapping.

    ``bounded``: the form's function never returns more than ``ENTRY_BOUND`` either
    way (the built-in forms); any other form's results are capped by a wrapper."""

    key: str
    compile: Callable[[dict[str, Any]], PointsFn]
    bounded: bool = False


def _bounded(fn: PointsFn) -> PointsFn:
    def points(attrs: dict) -> int | None:
        p = fn(attrs)
        if p is None or (type(p) is int and -ENTRY_BOUND <= p <= ENTRY_BOUND):
            return p
        return clamp_points(p)

    return points


def exact(x: Any) -> Decimal:
    """An attribute amount as an exact decimal (``2.3`` is 2.3, not 2.2999…), so that a
    running total is the same however it was summed and read back from the ledger."""
    return Decimal(str(x))


def decimal_text(d: Decimal) -> str:
    """A total as the ledger's notes write it: ``12.5``, ``300``, never ``3E+2``."""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True, slots=True)
class CompiledTotal:
    """A running-total points form ready to score: ``points_of(total)`` is what the total
    is worth (held to ``max``); an event scores points_of(after) - points_of(before)."""

    attr: str
    period: str  # ever | year | quarter | month
    levels: tuple[tuple[Decimal, int], ...]  # (reach, points), rising
    highest: bool
    brackets: tuple[tuple[Decimal, Decimal | None, Decimal, int], ...]  # (lower, upto, every, pts)
    max: int | None

    def points_of(self, total: Decimal) -> int:
        n = 0
        if self.levels:
            for reach, pts in self.levels:
                if total < reach:
                    break
                n = pts if self.highest else n + pts
        for lower, upto, every, pts in self.brackets:
            if total <= lower:
                break
            top = total if upto is None or total < upto else upto
            n += int((top - lower) // every) * pts
        if self.max is not None:
            n = min(n, self.max) if n > 0 else max(n, -self.max)
        return n


def compile_total(p: TotalPoints) -> CompiledTotal:
    levels = tuple(sorted((exact(r), int(v)) for r, v in p.levels))
    brackets = []
    lower = Decimal(0)
    for upto, every, pts in p.brackets:  # rising, the open one last (validate checks)
        top = exact(upto) if upto is not None else None
        brackets.append((lower, top, exact(every), int(pts)))
        if top is None:
            break
        lower = top
    return CompiledTotal(p.total, p.period, levels, p.count == "highest", tuple(brackets), p.max)


Expiry = Callable[[int, int], "int | None"]  # (event time, points written) → expires_at


def compile_expiry(e: Any, clock: Any) -> Expiry | None:
    """``expires`` as a function of the event time and the points actually written
    (``None`` when the entry never expires). Calendar arithmetic in the scheme's zone."""
    if e is None:
        return None

    def one(band: Any) -> Callable[[int], int | None]:
        if band.after is not None:
            after = band.after
            return lambda at: clock.add(at, after)
        if band.until:
            kind, later = band.until, band.later

            def until(at: int) -> int:
                end = clock.period_bounds(clock.period(at, kind))[1]
                for _ in range(later):  # the end of the n-th period after the event's
                    end = clock.period_bounds(clock.period(end, kind))[1]
                return end

            return until
        return lambda at: None

    if e.by_size:
        bands = [(upto, one(band)) for upto, band in e.by_size]

        def by_size(at: int, points: int) -> int | None:
            size = abs(points)
            for upto, f in bands:
                if upto is None or size <= upto:
                    return f(at)
            return None  # bigger than every band (validate makes the last band open)

        return by_size
    f = one(e)
    return lambda at, points: f(at)


@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    id: str
    group: str
    pack_hash: str
    test: Condition | None  # None: no condition, every event of the type matches
    points: PointsFn | None  # None when escalate gives the points
    trial: bool
    start: int  # effective from (epoch, inclusive); -inf when open
    end: int  # effective until (epoch, exclusive); +inf when open
    cap_per: str | None = None
    max_points: int | None = None
    max_count: int | None = None
    esc_within: Duration | None = None
    esc_steps: list[int] = field(default_factory=list)
    expires: Duration | None = None
    wallet: bool | None = None
    grade_to: str | None = None
    grade_for: Duration | None = None
    also: list[dict[str, Any]] = field(default_factory=list)
    repair: dict[str, Any] | None = None
    total: CompiledTotal | None = None  # a running total gives the points (see evaluate)
    # expires other than {after: d} (by size, to a calendar boundary): (at, points) → expires_at
    expiry: Expiry | None = None
    # withhold: a match while this holds is written as 0 points, saying why (note)
    withhold: Condition | None = None
    withhold_note: str = ""
    # rule families: the key of the cap counter and of the escalation window (the family's
    # when it shares them, else the rule id), a repeat's factor, exclusive: highest
    cap_key: str = ""
    esc_key: str = ""
    esc_factor: int = 0
    family: str = ""
    exclusive: bool = False
    shape: int = 2  # 0: points only; 1: points and a cap; 2: anything else (see evaluate)
    count_note: str = ""
    points_note: str = ""
    show: Callable[[int], str] = str  # points in notes: the scheme's decimals (precision)


FAR_PAST = -(2**62)
FAR_FUTURE = 2**62


def compile_points(spec: Any, forms: dict[str, PointsForm], scale: int = 1) -> PointsFn | None:
    """``scale``: units per point (``scoring.precision``); numbers in ``spec`` are units
    already, only a ``per`` rate is in points and scores ``rate × attribute × scale``."""
    if spec is None:
        return None
    if isinstance(spec, bool):
        raise ValueError("points must be a whole number or a mapping")
    if isinstance(spec, int):
        n = clamp_points(spec)  # validate refuses more; a rules tree read unchecked too
        return lambda attrs: n
    if isinstance(spec, dict):
        if scale != 1 and "per" in spec and "per" in forms:
            return per_scaled(spec, scale)  # exact: Fraction, rounded to the unit
        for key, form in forms.items():
            if key in spec:
                fn = form.compile(spec)
                return fn if form.bounded else _bounded(fn)
        raise ValueError(
            f"points mapping needs one of the keys {', '.join(sorted(forms))} (e.g. per: hours)"
        )
    raise ValueError("points must be a whole number or a mapping")


def per_scaled(spec: dict[str, Any], scale: int) -> Callable[[dict], int | None]:
    """``per`` in a scheme with fractional points: ``value`` (points per unit of the
    attribute, any decimals) × the attribute × ``scale`` units per point, computed exactly
    and rounded to a whole unit as the rule's ``round`` says (0.01 × 25 yuan at precision
    0.1 is 2.5 units: floor 2, i.e. 0.2 points)."""
    attr = spec["per"]
    rate = Fraction(Decimal(repr(spec.get("value", 1)))) * scale
    how = spec.get("round", "floor")

    def points(attrs: dict) -> int | None:
        x = attrs.get(attr)
        if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
            return None
        if isinstance(x, float) and not math.isfinite(x):
            return clamp_points(x * (1 if rate > 0 else -1)) if rate else 0
        p = rate * (x if isinstance(x, int) else Fraction(Decimal(repr(x))))
        if how == "ceil":
            n = math.ceil(p)
        elif how == "round":  # half away from zero
            n = math.floor(abs(p) + Fraction(1, 2)) * (1 if p >= 0 else -1)
        else:
            n = math.floor(p)
        return n if -ENTRY_BOUND <= n <= ENTRY_BOUND else clamp_points(n)

    return points


def _spec(points: Any) -> Any:
    return points.spec() if points is not None else 0


def compile_rule(
    rule: Rule,
    operators: dict[str, Operator],
    forms: dict[str, PointsForm],
    clock: Any = None,
    families: dict[str, Any] | None = None,
    prec: Precision = WHOLE,
) -> CompiledRule:
    limit, esc, grade, repair = rule.limit, rule.escalate, rule.grade, rule.repair
    fam = (families or {}).get(rule.family) if rule.family else None
    if fam is not None and fam.limit is not None:
        limit = fam.limit  # one cap shared by the family's rules (validate: none of their own)
    points = rule.points
    total = compile_total(points) if isinstance(points, TotalPoints) else None
    compiled = CompiledRule(
        rule=rule,
        id=rule.id,
        group=rule.group,
        pack_hash=rule.pack_hash,
        test=compile_condition(rule.when, operators) if rule.when else None,
        points=None
        if (esc and not esc.factor) or total
        else compile_points(_spec(points), forms, prec.scale),
        trial=rule.status == "trial",
        start=rule.effective.start if rule.effective.start is not None else FAR_PAST,
        end=rule.effective.end if rule.effective.end is not None else FAR_FUTURE,
        cap_per=limit.per if limit else None,
        max_points=limit.max_points if limit else None,
        max_count=limit.max_count if limit else None,
        esc_within=esc.within if esc else None,
        esc_steps=[max(-ENTRY_BOUND, min(ENTRY_BOUND, n)) for n in esc.steps] if esc else [],
        expires=rule.expires.after if rule.expires else None,
        wallet=rule.wallet,
        grade_to=grade.to if grade else None,
        grade_for=grade.for_ if grade else None,
        # the evaluator reads links and repair as mappings: the shape it was tuned on
        also=[
            {"link": a.link, "group": a.group, "points": _bound_link(a.points), "grade": a.grade}
            for a in rule.also
        ],
        repair={"rules": list(repair.rules), "within": repair.within, "restore": repair.restore}
        if repair
        else None,
        total=total,
        # a rule or family for several groups keeps a counter per group (a subject may be in both)
        cap_key=f"{fam.id}@{rule.group}"
        if fam is not None and fam.limit is not None
        else (rule.id if len(rule.groups) <= 1 else f"{rule.id}@{rule.group}"),
        esc_key=fam.id if fam is not None else rule.id,
        esc_factor=int(esc.factor) if esc and esc.factor else 0,
        family=fam.id if fam is not None else "",
        exclusive=fam is not None and fam.exclusive == "highest",
    )
    plain = compiled.points is not None and not (
        esc or rule.expires or grade or rule.also or repair or compiled.trial
        or compiled.wallet is True or rule.withhold
    )  # fmt: skip
    if rule.withhold is not None:
        compiled.withhold = compile_condition(rule.withhold.when, operators)
        compiled.withhold_note = f"not counted: {rule.withhold.note or 'withheld'}"
    if rule.expires and rule.expires.after is None:
        compiled.expiry = compile_expiry(rule.expires, clock)
    compiled.shape = 2 if not plain else (1 if compiled.cap_per else 0)
    if compiled.cap_per:
        compiled.count_note = f"max_count {compiled.max_count} per {compiled.cap_per} reached"
        if prec.scale != 1:
            compiled.show = lambda units: fmt_points(units, prec)
        shown = fmt_points(compiled.max_points, prec)
        compiled.points_note = f"max_points {shown} per {compiled.cap_per} reached"
    return compiled


def _bound_link(points: Any) -> Any:
    """A link's points: 'same' (the entry's, already bounded) or a number, bounded."""
    return (
        clamp_points(points) if isinstance(points, int) and not isinstance(points, bool) else points
    )


@dataclass
class CompiledScheme:
    """Rules by event type, ready for the evaluator."""

    scheme: Scheme
    by_type: dict[str, list[CompiledRule]]
    rules: list[CompiledRule]


def compile_scheme(scheme: Scheme) -> CompiledScheme:
    from .plugins import plugins_of

    plugins = plugins_of(scheme)  # the scheme's registry: built-ins and plugins alike
    operators, forms = plugins.operators, plugins.points_forms
    compiled = [
        compile_rule(r, operators, forms, scheme.clock, scheme.families, scheme.precision)
        for r in scheme.rules
        if r.status != "retired"
    ]
    by_type: dict[str, list[CompiledRule]] = {}
    for c in compiled:
        for t in c.rule.on:
            by_type.setdefault(t, []).append(c)
    return CompiledScheme(scheme=scheme, by_type=by_type, rules=compiled)
