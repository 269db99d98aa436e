"""Assessments (考核评选): metric per scope, ranking, selection, awards and badges.

``run_assessment(db, scheme, "2024-Q1")`` runs every assessment whose
``period`` kind matches the key (``2024-03`` month, ``2024-Q1`` quarter,
``2024`` year). For each one:

1. **Scopes**: every grid / community having accounts of the assessment's
   ``group``, or every account of the group (``scope: subject``).
2. **Metric** (plugins, hook ``register_metrics``): built-ins ``mean sum
   count median`` of ``score`` (month-end figures of the period's last month:
   frozen if that month is closed) or ``points`` (score points posted in the
   period's months, *excluding* assessment awards, so the order in which
   assessments run never matters); ``survey`` (mean ``attrs.score`` of the
   period's ``survey`` events about the scope's subjects, by ``respondent``;
   withdrawn, amended or upheld-objection events are left out); ``weighted``
   (Σ weight × component / Σ weight; a scope missing any component has no
   value). ``count: score`` counts accounts, ``count: points`` counts
   accounts that earned points (> 0). Values are rounded to 2 decimals and
   the rounded value is what is ranked and selected.
3. **Rank** within ``rank_within`` (scheme, street or community of the
   scope): competition ranking by value, highest first (1, 2, 2, 4). Scopes
   without a value are neither ranked nor selected.
4. **Select** in each ranking unit: ``top: n`` rank ≤ n; ``top_percent: p``
   is ``top: ceil(p% × ranked scopes)``; ``bottom: n`` fewer than n scopes
   strictly lower; ``min: x`` value ≥ x. Ties at a cut-off are all selected.
   ``bands: [{min, points, badge}, ...]`` (from the highest down): a scope is
   selected in the highest band its value reaches, with that band's badge and
   points (a band without them takes the assessment's).
5. **Consequences** for the selected: ``badge`` stored with the result;
   ``award`` points as ledger entries (reason ``assessment``, rule = the
   assessment id, event ``assess:<id>:<period>:<scope>``, at = last second of
   the period (``award.at: next_period``: the first second of the next one),
   expiring as ``award.expires`` says (never, by default), posting month from the :class:`PostingCalendar`; positive
   awards move the wallet too). Scope ``subject``: the subject's account in
   ``award.group`` (default the assessment's group). Scope ``grid`` or
   ``community``: every account of ``award.group`` (default the assessment's
   group) in that unit.

Running an assessment for a period twice changes nothing: stored results
are returned as they are.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from .compile import compile_expiry
from .durations import months_between, period_kind
from .errors import Problem, SchemeError, UsageError
from .model import Assessment, Grid, Scheme, make_expires
from .periods import PostingCalendar, closed_months, month_figures, savepoint
from .plugins import Plugins, plugins_of
from .precision import WHOLE, Precision, json_points
from .rank import competition_ranks, grid_index, subject_index

ASSESSMENT_PERIODS = ("month", "quarter", "year")


@dataclass
class Metric:
    """An assessment metric: ``compute(ctx, spec) -> {scope_id: value | None}``.

    ``name`` is the key in an assessment's ``metric`` (e.g. ``mean``);
    ``spec`` is the value under that key (e.g. ``score``).
    """

    name: str
    compute: Callable[[MetricContext, Any], dict[str, float | None]]
    description: str = ""


class MetricContext:
    """What a metric may read for one assessment run (values are cached)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        scheme: Scheme,
        assessment: Assessment,
        period: str,
        scopes: dict[str, list[str]],
        metrics: dict[str, Metric],
    ):
        self.db = db
        self.scheme = scheme
        self.assessment = assessment
        self.group = assessment.group
        self.period = period
        self.start, self.end = scheme.clock.period_bounds(period)
        self.as_of = self.end - 1
        self.months = months_between(scheme.clock.month(self.start), scheme.clock.month(self.as_of))
        self.scopes = scopes  # scope id → subject ids (accounts of ``group``)
        self.metrics = metrics
        self._cache: dict[Any, Any] = {}

    def scores(self) -> dict[str, int]:
        """Subject → score at the period's end, before this period end's own awards.

        Awards of assessments ending at the same moment (a month's and its
        quarter's) are left out, so the order assessments run in never matters.
        """
        if "scores" not in self._cache:
            figs = month_figures(self.db, self.scheme, self.months[-1], group=self.group)
            awarded = dict(
                self.db.execute(
                    "SELECT subject, SUM(points) FROM entries WHERE grp = ? AND reason = 'assessment'"
                    " AND at = ? GROUP BY subject",
                    [self.group, self.as_of],
                ).fetchall()
            )
            self._cache["scores"] = {
                f.subject: f.score - (awarded.get(f.subject) or 0) for f in figs
            }
        return self._cache["scores"]

    def earned(self) -> dict[str, int]:
        """Subject → score points posted in the period (assessment awards excluded)."""
        if "earned" not in self._cache:
            marks = ",".join("?" * len(self.months))
            rows = self.db.execute(
                f"SELECT subject, SUM(points) FROM entries WHERE grp = ? AND period IN ({marks})"
                " AND reason != 'assessment' GROUP BY subject",
                [self.group, *self.months],
            ).fetchall()
            self._cache["earned"] = {s: int(p) for s, p in rows}
        return self._cache["earned"]

    def values(self, what: str) -> dict[str, int]:
        """``score`` or ``points`` per subject of the group (0 points if none)."""
        if what == "score":
            return self.scores()
        if what == "points":
            earned = self.earned()
            return {s: earned.get(s, 0) for s in self.scores()}
        raise self.error(f"metric value must be 'score' or 'points', not {what!r}")

    def surveys(self, respondent: str | None) -> dict[str, list[float]]:
        """Subject → survey scores of the period (by ``respondent``; ``None``: all)."""
        key = ("survey", respondent)
        if key not in self._cache:
            sql = """
                SELECT subject, json_extract(attrs, '$.score') FROM events
                WHERE type = 'survey' AND at >= ? AND at < ?
                  AND id NOT IN (SELECT json_extract(attrs, '$.target') FROM events
                                 WHERE type = 'withdraw' AND json_extract(attrs, '$.target') IS NOT NULL)
                  AND id NOT IN (SELECT amends FROM events WHERE amends IS NOT NULL)
                  AND id NOT IN (SELECT target FROM objections WHERE status = 'upheld')
            """
            params: list[Any] = [self.start, self.end]
            if respondent is not None:
                sql += " AND json_extract(attrs, '$.respondent') = ?"
                params.append(respondent)
            out: dict[str, list[float]] = defaultdict(list)
            for s, v in self.db.execute(sql + " ORDER BY at, id", params).fetchall():
                if isinstance(v, (int, float)):
                    out[s].append(float(v))
            self._cache[key] = dict(out)
        return self._cache[key]

    def compute(self, spec: dict[str, Any]) -> dict[str, float | None]:
        """Compute a metric spec ``{name: value}`` (extra key ``weight`` is ignored)."""
        keys = [k for k in spec if k != "weight"]
        if len(keys) != 1:
            raise self.error(
                f"a metric needs exactly one of {', '.join(sorted(self.metrics))}, got {keys or 'none'}"
            )
        metric = self.metrics.get(keys[0])
        if metric is None:
            raise self.error(
                f"unknown metric {keys[0]!r}; use one of {', '.join(sorted(self.metrics))}"
                " or add one with a plugin (hook register_metrics)"
            )
        return metric.compute(self, spec[keys[0]])

    def error(self, message: str) -> SchemeError:
        file, line, col = self.assessment.src
        return SchemeError(
            [Problem(file, line, col, f"assessment {self.assessment.id}: {message}")]
        )


def metric_registry(plugins: Plugins) -> dict[str, Metric]:
    """Every metric of the scheme's plugins, built-ins included (one registry: a name
    registered twice was refused when the plugins were loaded)."""
    return plugins.metrics


@dataclass
class AssessmentResult:
    assessment: str
    period: str
    scope_id: str
    scope_name: str
    unit: str  # the ranking unit: scheme id, street id or community id
    value: float | None
    rank: int | None
    selected: bool
    badge: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AssessmentRun:
    assessment: str
    title: str
    period: str
    scope: str
    new: bool  # False: the period had been assessed before; nothing changed
    results: list[AssessmentResult] = field(default_factory=list)
    awards: list[dict[str, Any]] = field(default_factory=list)  # ledger entries written

    @property
    def selected(self) -> list[AssessmentResult]:
        return [r for r in self.results if r.selected]

    def as_dict(self, prec: Precision = WHOLE, *, on_points: bool = False) -> dict[str, Any]:
        """The run as JSON data. A fractional scheme (``prec``) shows award points, and
        metric values when the metric is on points (``on_points``), as points, not units."""
        d = asdict(self)
        if prec.scale != 1:
            for award in d["awards"]:
                award["points"] = json_points(award["points"], prec)
                award["wallet"] = json_points(award["wallet"], prec)
            if on_points:
                for r in d["results"]:
                    if r["value"] is not None:
                        r["value"] = round(r["value"] / prec.scale, max(2, prec.decimals))
        d["selected"] = [r for r in d["results"] if r["selected"]]
        return d


def check_period(period: str) -> str:
    """Return the period kind (month, quarter, year) of an assessment period key."""
    try:
        kind = period_kind(period)
    except ValueError as e:
        raise UsageError(f"{e}; assessments run for a month, quarter or year") from None
    if kind not in ASSESSMENT_PERIODS:
        raise UsageError(
            f"'{period}' is a {kind}; assessments run for a month (2024-03), quarter (2024-Q1)"
            " or year (2024)"
        )
    return kind


def _check_reached(db: sqlite_utils.Database, scheme: Scheme, period: str, end: int) -> None:
    """Refuse a period whose last month no scored event has reached yet: assessed
    early, it would select on part of its data and its awards could not change
    (found in review: Q2 assessed with April's events named every grid worker)."""
    from .ledger import last_scored

    clock = scheme.clock
    last_month = clock.month(end - 1)
    last = last_scored(db)
    reached = last is not None and clock.month(last[0]) >= last_month
    if reached or any(m >= last_month for m in closed_months(db)):
        return
    latest = clock.local(last[0]).strftime("%Y-%m-%d") if last is not None else "none yet"
    raise UsageError(
        f"{period} has not run its course: it ends with {last_month}, and the latest event"
        f" scored is from {latest}. Assess it once {last_month}'s events are scored"
        f" (`gridcredit publish {last_month}` does it then)"
    )


def periods_ending_in(month: str) -> list[str]:
    """Assessment period keys whose last month is ``month`` (e.g. 2024-03, 2024-Q1)."""
    y, m = month[:4], int(month[5:7])
    out = [month]
    if m % 3 == 0:
        out.append(f"{y}-Q{m // 3}")
    if m == 12:
        out.append(y)
    return out


def _units(
    db: sqlite_utils.Database, scheme: Scheme, a: Assessment
) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str]]:
    """Scopes (id → subject ids), scope names, and each scope's ranking unit."""
    grids = grid_index(db, scheme)
    subjects = subject_index(db)
    members = [
        s
        for (s,) in db.execute(
            "SELECT subject FROM memberships WHERE grp = ? ORDER BY subject", [a.group]
        ).fetchall()
    ]
    scopes: dict[str, list[str]] = defaultdict(list)
    names: dict[str, str] = {}
    where: dict[str, Grid | None] = {}
    for s in members:
        name, grid_id, _ = subjects.get(s, ("", None, ""))
        grid = grids.get(grid_id) if grid_id else None
        if a.scope == "subject":
            scope, names[s], where[s] = s, name, grid
        elif grid is None:
            continue
        elif a.scope == "grid":
            scope, names[grid.id], where[grid.id] = grid.id, grid.name, grid
        else:
            scope, names[grid.community], where[grid.community] = (
                grid.community, grid.community_name, grid,
            )  # fmt: skip
        scopes[scope].append(s)
    unit: dict[str, str] = {}
    for scope, g in where.items():
        if a.rank_within == "street":
            unit[scope] = g.street if g else ""
        elif a.rank_within == "community":
            unit[scope] = (g.community if a.scope != "community" else scope) if g else ""
        else:
            unit[scope] = scheme.id
    return dict(scopes), names, unit


def _bands(a: Assessment, ranked: list[tuple[int, str, float]]) -> dict[str, dict[str, Any]]:
    """``select: {bands: [...]}``: scope id → the highest band its value reaches (bands are
    written from the highest down; validate checks the order)."""
    bands = sorted(a.select["bands"], key=lambda b: -float(b["min"]))
    out: dict[str, dict[str, Any]] = {}
    for _, s, v in ranked:
        band = next((b for b in bands if v >= float(b["min"])), None)
        if band is not None:
            out[s] = band
    return out


def _select(a: Assessment, ranked: list[tuple[int, str, float]]) -> set[str]:
    """Selected scope ids of one ranking unit; ``ranked`` is best first."""
    sel = a.select
    if "bands" in sel:
        return set(_bands(a, ranked))
    if "min" in sel:
        return {s for _, s, v in ranked if v >= sel["min"]}
    if "top" in sel:
        n = int(sel["top"])
    elif "top_percent" in sel:
        n = math.ceil(float(sel["top_percent"]) * len(ranked) / 100)
    elif "bottom" in sel:
        n = int(sel["bottom"])
        return {s for _, s, v in ranked if sum(1 for _, _, w in ranked if w < v) < n}
    else:
        file, line, col = a.src
        raise SchemeError(
            [
                Problem(
                    file,
                    line,
                    col,
                    f"assessment {a.id}: select needs top, top_percent, bottom or min",
                )
            ]
        )
    return {s for r, s, _ in ranked if r <= n}


def _assess_one(
    db: sqlite_utils.Database,
    scheme: Scheme,
    a: Assessment,
    period: str,
    metrics: dict[str, Metric],
    calendar: PostingCalendar,
    context: Callable[..., MetricContext] = MetricContext,
) -> AssessmentRun:
    # ``context``: the Spark ledger passes a MetricContext whose sums run in Spark SQL
    run = AssessmentRun(a.id, a.title, period, a.scope, new=True)
    scopes, names, unit = _units(db, scheme, a)
    ctx = context(db, scheme, a, period, scopes, metrics)
    raw = ctx.compute(a.metric)
    values = {s: (None if raw.get(s) is None else round(float(raw[s]), 2)) for s in scopes}  # type: ignore[arg-type]

    band_of: dict[str, dict[str, Any]] = {}  # select: {bands}: each selected scope's band
    by_unit: dict[str, list[str]] = defaultdict(list)
    for s in scopes:
        by_unit[unit[s]].append(s)
    for u in sorted(by_unit):
        valued = sorted(
            (s for s in by_unit[u] if values[s] is not None),
            key=lambda s: (-values[s], s),  # type: ignore[operator]
        )
        ranks = competition_ranks([values[s] for s in valued])
        ranked = [(r, s, values[s]) for r, s in zip(ranks, valued, strict=True)]
        chosen = _select(a, ranked)  # type: ignore[arg-type]
        if "bands" in a.select:
            band_of.update(_bands(a, ranked))  # type: ignore[arg-type]
        for r, s, v in ranked:
            run.results.append(
                AssessmentResult(
                    a.id,
                    period,
                    s,
                    names.get(s, s),
                    u,
                    v,
                    r,
                    s in chosen,
                    (band_of[s].get("badge") or a.badge if s in band_of else a.badge)
                    if s in chosen
                    else "",
                )
            )
        for s in sorted(x for x in by_unit[u] if values[x] is None):
            run.results.append(
                AssessmentResult(a.id, period, s, names.get(s, s), u, None, None, False, "")
            )

    if a.award and (a.award.get("points") or band_of):
        award_points = int(a.award.get("points") or 0)
        grp = str(a.award.get("group") or a.group)
        # award: {at: next_period}: written at the first second of the next period
        # (e.g. 次年一月一日), else at the period's last second
        at = ctx.end if a.award.get("at") == "next_period" else ctx.as_of
        posting = calendar.posting_month(at)
        # award: {expires: ...} (typed by the loader; an Assessment made in code has the mapping)
        expiry = compile_expiry(
            a.award_expires or make_expires(a.award.get("expires")), scheme.clock
        )
        grids = grid_index(db, scheme)
        subjects = subject_index(db)

        def unit_of(s: str) -> str | None:
            if a.scope == "subject":
                return s
            grid = grids.get(subjects.get(s, ("", None, ""))[1] or "")
            if grid is None:
                return None
            return grid.id if a.scope == "grid" else grid.community

        by_scope: dict[str | None, list[str]] = defaultdict(list)
        for (s,) in db.execute(
            "SELECT subject FROM memberships WHERE grp = ? ORDER BY subject", [grp]
        ).fetchall():
            by_scope[unit_of(s)].append(s)
        for res in run.selected:
            recipients = by_scope.get(res.scope_id, [])
            band = band_of.get(res.scope_id)
            points = int(band["points"]) if band and "points" in band else award_points
            if not points:
                continue
            for s in recipients:
                wallet = max(0, points)
                run.awards.append(
                    {
                        "subject": s,
                        "grp": grp,
                        "account": "score+wallet" if wallet else "score",
                        "points": points,
                        "wallet": wallet,
                        "rule": a.id,
                        "pack_hash": scheme.hash,
                        "event": f"assess:{a.id}:{period}:{res.scope_id}",
                        "at": at,
                        "period": posting,
                        "reason": "assessment",
                        "ref": None,
                        "expires_at": expiry(at, points) if expiry else None,
                        "grade": None,
                        "grade_until": None,
                        "note": f"{period} {res.badge or a.badge or a.title}",
                    }
                )
    return run


def _already(db: sqlite_utils.Database, a: Assessment, period: str) -> bool:
    if db.execute(
        "SELECT 1 FROM assessment_results WHERE assessment = ? AND period = ? LIMIT 1",
        [a.id, period],
    ).fetchone():
        return True
    prefix = f"assess:{a.id}:{period}:"
    return bool(
        db.execute(
            "SELECT 1 FROM entries WHERE reason = 'assessment' AND substr(event, 1, ?) = ? LIMIT 1",
            [len(prefix), prefix],
        ).fetchone()
    )


def run_assessment(
    db: sqlite_utils.Database,
    scheme: Scheme,
    period: str,
    *,
    only: str | None = None,
    plugins: Plugins | None = None,
) -> list[AssessmentRun]:
    """Run the assessments of ``period`` (all whose period kind matches, or ``only`` that id).

    Results go to ``assessment_results``; awards to ``entries``. Each
    assessment is written all-or-nothing; one already run for the period is
    returned from storage with ``new=False``.
    """
    kind = check_period(period)
    todo = [a for a in scheme.assessments if a.period == kind and (only is None or a.id == only)]
    if only is not None and not todo:
        ids = ", ".join(a.id for a in scheme.assessments) or "none"
        raise UsageError(f"no {kind} assessment with id {only!r}; assessments: {ids}")
    metrics = metric_registry(plugins if plugins is not None else plugins_of(scheme))
    calendar = PostingCalendar(db, scheme)
    start, end = scheme.clock.period_bounds(period)
    has_data = db.execute(
        "SELECT 1 FROM events WHERE at >= ? AND at < ? UNION ALL"
        " SELECT 1 FROM entries WHERE at >= ? AND at < ? LIMIT 1",
        [start, end, start, end],
    ).fetchone()
    if not has_data:
        return []  # nothing happened in the period: every unit would tie at its base score
    if todo:  # (with none of this period kind there is nothing to refuse)
        _check_reached(db, scheme, period, end)
    runs = []
    for a in todo:
        if _already(db, a, period):
            runs.extend(assessment_results(db, scheme, period, assessment=a.id))
            continue
        run = _assess_one(db, scheme, a, period, metrics, calendar)
        with savepoint(db, "assess"):
            db.conn.executemany(
                "INSERT INTO assessment_results"
                " (assessment, period, scope_id, value, rank, selected, badge)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.assessment, r.period, r.scope_id, r.value, r.rank, int(r.selected), r.badge)
                    for r in run.results
                ],
            )
            if run.awards:
                cols = list(run.awards[0])
                db.conn.executemany(
                    f"INSERT INTO entries ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [[e[c] for c in cols] for e in run.awards],
                )
        runs.append(run)
    return runs


def assessment_results(
    db: sqlite_utils.Database,
    scheme: Scheme,
    period: str | None = None,
    *,
    assessment: str | None = None,
) -> list[AssessmentRun]:
    """Stored results (and their award entries), for the publisher and ``explain``.

    Runs are ordered by period, then as the assessments appear in the scheme;
    results by ranking unit, then rank, then scope id.
    """
    where, params = ["1=1"], []
    if period:
        where.append("period = ?")
        params.append(period)
    if assessment:
        where.append("assessment = ?")
        params.append(assessment)
    rows = list(
        db.query(
            f"SELECT * FROM assessment_results WHERE {' AND '.join(where)}"
            " ORDER BY period, assessment, scope_id",
            params,
        )
    )
    defs = {a.id: a for a in scheme.assessments}
    order = {a.id: i for i, a in enumerate(scheme.assessments)}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        grouped[(r["period"], r["assessment"])].append(r)
    runs = []
    for (p, aid), rs in sorted(
        grouped.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 1 << 30), kv[0][1])
    ):
        a = defs.get(aid)
        scope = a.scope if a else "subject"
        if a is not None:
            _, names, unit = _units(db, scheme, a)
        else:
            names, unit = {}, {}
        results = [
            AssessmentResult(
                aid,
                p,
                r["scope_id"],
                names.get(r["scope_id"], r["scope_id"]),
                unit.get(r["scope_id"], ""),
                r["value"],
                r["rank"],
                bool(r["selected"]),
                r["badge"] or "",
            )
            for r in rs
        ]
        results.sort(key=lambda x: (x.unit, x.rank is None, x.rank or 0, x.scope_id))
        prefix = f"assess:{aid}:{p}:"
        awards = [
            dict(e)
            for e in db.query(
                "SELECT * FROM entries WHERE reason = 'assessment' AND substr(event, 1, ?) = ?"
                " ORDER BY id",
                [len(prefix), prefix],
            )
        ]
        runs.append(
            AssessmentRun(
                aid, a.title if a else aid, p, scope, new=False, results=results, awards=awards
            )
        )
    return runs
