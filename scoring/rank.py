"""Rankings of a month, grid rankings by mean score, and the redemption report.

Ranking rules (what the site publishes):

* **Competition ranking** ("1224"): a row's rank is 1 + the number of rows
  with a strictly better ranking value, so ties share a rank and the next
  rank is skipped (1, 2, 2, 4).
* The ranking value is the score at the month's end (``by="score"``) or the
  points earned in the month (``by="earned"``); grids rank by mean score.
* **Display order** of tied rows is fixed: score desc, then earned desc, then
  subject id asc (``by="earned"``: earned desc, score desc, subject id asc;
  grids: mean desc, resident count desc, grid id asc). Secondary keys only
  order the display; they never split a rank.
* **Movement** compares with the last published (closed) month before this
  one, in the same table (same group, value and scope): ``previous_rank -
  rank`` (positive = moved up); ``None`` when the row was not ranked then
  (new) or there is no earlier published month.
* Figures come from ``month_balances`` for a closed month, else from the
  ledger as of the month's end (:func:`scoring.periods.month_figures`).
* Subjects without a grid appear only in scheme-wide tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import sqlite_utils

from .model import Grid, Scheme
from .periods import MonthFigure, last_closed_before, month_figures, stored_month_figures
from .precision import WHOLE, Precision, fmt_points, json_points

WITHIN = ("scheme", "street", "community", "grid")

T = TypeVar("T")


def competition_ranks(values: list[Any]) -> list[int]:
    """Competition ranks for ``values`` sorted best first (equal values share a rank)."""
    ranks: list[int] = []
    for i, v in enumerate(values):
        ranks.append(ranks[-1] if i and v == values[i - 1] else i + 1)
    return ranks


def rank_rows(
    rows: Iterable[T], value: Callable[[T], Any], order: Callable[[T], Any]
) -> list[tuple[int, T]]:
    """Sort ``rows`` by ``order`` (which must put better ``value`` first) and rank them."""
    ordered = sorted(rows, key=order)
    return list(zip(competition_ranks([value(r) for r in ordered]), ordered, strict=True))


def grid_index(db: sqlite_utils.Database, scheme: Scheme) -> dict[str, Grid]:
    """Grid id → Grid (with community and street), from the scheme, else the grids table."""
    if scheme.grids:
        return dict(scheme.grids)
    return {
        r["id"]: Grid(
            r["id"],
            r["name"] or "",
            r["community"] or "",
            r["community_name"] or "",
            r["street"] or "",
            r["street_name"] or "",
        )
        for r in db.query("SELECT * FROM grids")
    }


def subject_index(db: sqlite_utils.Database) -> dict[str, tuple[str, str | None, str]]:
    """Subject id → (name, grid, kind)."""
    return {
        s: (n or "", g, k or "")
        for s, n, g, k in db.execute("SELECT id, name, grid, kind FROM subjects").fetchall()
    }


@dataclass
class RankRow:
    subject: str
    name: str
    group: str
    grid: str | None
    community: str | None
    street: str | None
    score: int
    wallet: int
    tier: str
    earned: int
    rank: int
    previous_rank: int | None
    movement: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RankTable:
    """One published ranking: a group, a value, a scope (the whole scheme or one unit)."""

    month: str
    group: str
    by: str  # score | earned
    within: str  # scheme | street | community | grid
    scope_id: str  # scheme id, or the street/community/grid id
    scope_name: str
    previous_month: str | None
    rows: list[RankRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scope_key(within: str, grid: Grid | None, scheme: Scheme) -> tuple[str, str] | None:
    if within == "scheme":
        return scheme.id, scheme.title
    if grid is None:
        return None
    if within == "street":
        return grid.street, grid.street_name
    if within == "community":
        return grid.community, grid.community_name
    return grid.id, grid.name


def _check_within(within: str) -> None:
    if within not in WITHIN:
        raise ValueError(f"unknown ranking scope {within!r}; use one of {', '.join(WITHIN)}")


def _ranked(
    figures: list[MonthFigure],
    by: str,
    within: str,
    scheme: Scheme,
    grids: dict[str, Grid],
    subjects: dict[str, tuple[str, str | None, str]],
) -> dict[tuple[str, str], list[tuple[int, MonthFigure]]]:
    if by == "score":

        def value(f: MonthFigure) -> Any:
            return f.score

        def order(f: MonthFigure) -> Any:
            return (-f.score, -f.earned, f.subject)
    elif by == "earned":

        def value(f: MonthFigure) -> Any:
            return f.earned

        def order(f: MonthFigure) -> Any:
            return (-f.earned, -f.score, f.subject)
    else:
        raise ValueError(f"unknown ranking value {by!r}; use score or earned")
    parts: dict[tuple[str, str], list[MonthFigure]] = defaultdict(list)
    for f in figures:
        grid_id = subjects.get(f.subject, ("", None, ""))[1]
        key = _scope_key(within, grids.get(grid_id) if grid_id else None, scheme)
        if key is not None:
            parts[key].append(f)
    return {k: rank_rows(v, value, order) for k, v in sorted(parts.items())}


class MonthView:
    """A month's figures and those of the last published month before it, read once.

    Pass one to :func:`rankings` / :func:`grid_rankings` when building many
    tables of the same month (the publisher does), so the ledger is read once.
    """

    def __init__(self, db: sqlite_utils.Database, scheme: Scheme, month: str):
        self.month = month
        self.grids = grid_index(db, scheme)
        self.subjects = subject_index(db)
        self.previous_month = last_closed_before(db, month)
        self.figures = self._by_group(month_figures(db, scheme, month))
        self.previous = (
            self._by_group(stored_month_figures(db, self.previous_month))
            if self.previous_month
            else {}
        )

    @staticmethod
    def _by_group(figures: list[MonthFigure]) -> dict[str, list[MonthFigure]]:
        out: dict[str, list[MonthFigure]] = defaultdict(list)
        for f in figures:
            out[f.group].append(f)
        return out


def rankings(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    *,
    group: str,
    by: str = "score",
    within: str = "scheme",
    view: MonthView | None = None,
) -> list[RankTable]:
    """Ranking tables of one group in ``month``: one table per scope unit of ``within``."""
    _check_within(within)
    view = view or MonthView(db, scheme, month)
    grids, subjects, prev_month = view.grids, view.subjects, view.previous_month
    current = _ranked(view.figures.get(group, []), by, within, scheme, grids, subjects)
    previous: dict[tuple[str, str], dict[str, int]] = {}
    if prev_month:
        for key, ranked in _ranked(
            view.previous.get(group, []), by, within, scheme, grids, subjects
        ).items():
            previous[key] = {f.subject: r for r, f in ranked}
    tables = []
    for (scope_id, scope_name), ranked in current.items():
        before = previous.get((scope_id, scope_name), {})
        rows = []
        for r, f in ranked:
            name, grid_id, _ = subjects.get(f.subject, ("", None, ""))
            grid = grids.get(grid_id) if grid_id else None
            prev = before.get(f.subject)
            rows.append(
                RankRow(
                    subject=f.subject,
                    name=name,
                    group=f.group,
                    grid=grid_id,
                    community=grid.community if grid else None,
                    street=grid.street if grid else None,
                    score=f.score,
                    wallet=f.wallet,
                    tier=f.tier,
                    earned=f.earned,
                    rank=r,
                    previous_rank=prev,
                    movement=None if prev is None else prev - r,
                )
            )
        tables.append(RankTable(month, group, by, within, scope_id, scope_name, prev_month, rows))
    return tables


def month_rankings(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    *,
    by: Iterable[str] = ("score", "earned"),
) -> list[RankTable]:
    """Every ranking the site shows for ``month``: each group × value × (scheme, community, grid)."""
    view = MonthView(db, scheme, month)
    out: list[RankTable] = []
    for g in scheme.groups:
        for b in by:
            for w in ("scheme", "community", "grid"):
                out.extend(rankings(db, scheme, month, group=g, by=b, within=w, view=view))
    return out


# --- grids by mean score ----------------------------------------------------


@dataclass
class GridRow:
    grid: str
    name: str
    community: str
    community_name: str
    street: str
    street_name: str
    residents: int  # accounts of the group in the grid
    mean_score: float | None  # rounded to 2 decimals; None when the grid has none
    rank: int | None
    previous_rank: int | None
    movement: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GridTable:
    month: str
    group: str
    within: str  # scheme | street | community
    scope_id: str
    scope_name: str
    previous_month: str | None
    rows: list[GridRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _grid_means(
    figures: list[MonthFigure], subjects: dict[str, tuple[str, str | None, str]]
) -> dict[str, tuple[int, float]]:
    acc: dict[str, list[int]] = defaultdict(list)
    for f in figures:
        g = subjects.get(f.subject, ("", None, ""))[1]
        if g:
            acc[g].append(f.score)
    # the mean is ranked as the site shows it (1 decimal, rounded half up once from
    # the exact mean), so means that look equal tie and none is rounded twice
    return {g: (len(v), _tenths(sum(v), len(v))) for g, v in acc.items()}


def _tenths(total: int, n: int) -> float:
    """``total / n`` to one decimal, half up, from the exact quotient of integers."""
    return float((Decimal(total) / Decimal(n)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _rank_grids(
    grids: dict[str, Grid], means: dict[str, tuple[int, float]], within: str, scheme: Scheme
) -> dict[tuple[str, str], list[tuple[int | None, Grid, int, float | None]]]:
    parts: dict[tuple[str, str], list[Grid]] = defaultdict(list)
    for g in grids.values():
        key = _scope_key(within, g, scheme)
        assert key is not None
        parts[key].append(g)
    out = {}
    for key, gs in sorted(parts.items()):
        with_mean = [g for g in gs if g.id in means]
        ranked = rank_rows(
            with_mean,
            lambda g: means[g.id][1],
            lambda g: (-means[g.id][1], -means[g.id][0], g.id),
        )
        rows: list[tuple[int | None, Grid, int, float | None]] = [
            (r, g, means[g.id][0], means[g.id][1]) for r, g in ranked
        ]
        rows += [(None, g, 0, None) for g in sorted(gs, key=lambda g: g.id) if g.id not in means]
        out[key] = rows
    return out


def grid_rankings(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    *,
    group: str = "residents",
    within: str = "scheme",
    view: MonthView | None = None,
) -> list[GridTable]:
    """Grids ranked by the mean month-end score of ``group`` accounts in them.

    ``within``: ``scheme``, ``street`` or ``community`` (one table per unit).
    Grids without accounts of the group are listed last with rank ``None``.
    """
    if within not in ("scheme", "street", "community"):
        raise ValueError(f"unknown grid ranking scope {within!r}; use scheme, street or community")
    view = view or MonthView(db, scheme, month)
    grids, subjects, prev_month = view.grids, view.subjects, view.previous_month
    current = _rank_grids(grids, _grid_means(view.figures.get(group, []), subjects), within, scheme)
    previous: dict[tuple[str, str], dict[str, int | None]] = {}
    if prev_month:
        prev = _rank_grids(
            grids, _grid_means(view.previous.get(group, []), subjects), within, scheme
        )
        previous = {k: {g.id: r for r, g, _, _ in v} for k, v in prev.items()}
    tables = []
    for (scope_id, scope_name), rows in current.items():
        before = previous.get((scope_id, scope_name), {})
        table = GridTable(month, group, within, scope_id, scope_name, prev_month)
        for r, g, n, mean in rows:
            p = before.get(g.id)
            table.rows.append(
                GridRow(
                    g.id,
                    g.name,
                    g.community,
                    g.community_name,
                    g.street,
                    g.street_name,
                    n,
                    mean,
                    r,
                    p,
                    None if p is None or r is None else p - r,
                )
            )
        tables.append(table)
    return tables


# --- redemptions --------------------------------------------------------------


@dataclass
class RedemptionReport:
    """Redemption outcomes of a month (or of all time).

    ``points`` is the wallet points debited by granted requests (the
    ``redemptions.cost`` column, the whole request's cost).
    """

    month: str | None
    requests: int
    granted: int
    refused: int
    points: int
    refused_by_reason: dict[str, int]
    by_item: list[dict[str, Any]]
    by_subject: list[dict[str, Any]]
    by_partner: list[dict[str, Any]]
    # the scheme's precision: ``points`` are ledger units, shown as points (10.5) at the edge
    precision: Precision = WHOLE

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON data, points as numbers of points (``gridcredit redemptions
        --format json``)."""
        d = asdict(self)
        del d["precision"]
        prec = self.precision
        if prec.scale != 1:
            d["points"] = json_points(d["points"], prec)
            for key in ("by_item", "by_subject", "by_partner"):
                for row in d[key]:
                    row["points"] = json_points(row["points"], prec)
        return d

    def text(self) -> str:
        """The report as ``gridcredit redemptions`` prints it."""
        prec = self.precision

        def row_text(row: dict[str, Any]) -> str:
            return ", ".join(
                f"{k}={fmt_points(v, prec) if k == 'points' else v}" for k, v in row.items()
            )

        points = f"{self.points:,}" if prec.scale == 1 else _grouped(self.points, prec)
        out = [
            f"{self.requests:,} requests: {self.granted:,} granted ({points} points),"
            f" {self.refused:,} rejected"
        ]
        out += [f"  rejected {code}: {n:,}" for code, n in sorted(self.refused_by_reason.items())]
        out.append("per item:")
        out += ["  " + row_text(row) for row in self.by_item]
        if self.by_partner:
            out.append("per partner merchant:")
            out += ["  " + row_text(row) for row in self.by_partner]
        return "\n".join(out)


def _grouped(units: int, prec: Precision) -> str:
    """Units as points with thousands separators and the scheme's decimals: ``1,234.5``."""
    return format(Decimal(units) / Decimal(prec.scale), f",.{prec.decimals}f")


def redemption_report(
    db: sqlite_utils.Database, scheme: Scheme, month: str | None = None
) -> RedemptionReport:
    """Outcomes per item, per subject and per partner merchant (``gridcredit redemptions``).

    ``month`` filters on the posting month (``redemptions.period``).
    Outcome ``granted`` counts as granted, ``withdrawn`` (granted, then the
    request was withdrawn and its points returned) on its own, any other as refused.
    """
    sql = "SELECT * FROM redemptions"
    params: list[Any] = []
    if month:
        sql += " WHERE period = ?"
        params.append(month)
    rows = list(db.query(sql + " ORDER BY at, event", params))
    names = subject_index(db)

    def blank(**kw: Any) -> dict[str, Any]:
        return {**kw, "requests": 0, "granted": 0, "quantity": 0, "points": 0, "refused": 0,
                "withdrawn": 0, "refused_by_reason": {}}  # fmt: skip

    items: dict[str, dict[str, Any]] = {}
    subjects: dict[tuple[str, str], dict[str, Any]] = {}
    partners: dict[str, dict[str, Any]] = {}
    total = blank()
    for r in rows:
        item = scheme.catalog.get(r["item"] or "")
        partner = r.get("partner") or (item.partner if item else None)
        buckets = [
            total,
            items.setdefault(
                r["item"] or "", blank(item=r["item"], title=item.title if item else "")
            ),
            subjects.setdefault(
                (r["subject"], r["grp"]),
                blank(subject=r["subject"], group=r["grp"], name=names.get(r["subject"], ("",))[0]),
            ),
        ]
        if partner:
            buckets.append(
                partners.setdefault(
                    partner, blank(partner=partner, name=names.get(partner, ("",))[0])
                )
            )
        for b in buckets:
            b["requests"] += 1
            if r["outcome"] == "granted":
                b["granted"] += 1
                b["quantity"] += r["quantity"] or 1
                b["points"] += r["cost"] or 0
            elif r["outcome"] == "withdrawn":
                b["withdrawn"] += 1
            else:
                b["refused"] += 1
                code = r["reason_code"] or "refused"
                b["refused_by_reason"][code] = b["refused_by_reason"].get(code, 0) + 1
    return RedemptionReport(
        month=month,
        requests=total["requests"],
        granted=total["granted"],
        refused=total["refused"],
        points=total["points"],
        refused_by_reason=dict(sorted(total["refused_by_reason"].items())),
        by_item=[items[k] for k in sorted(items)],
        by_subject=[subjects[k] for k in sorted(subjects)],
        by_partner=[partners[k] for k in sorted(partners)],
        precision=scheme.precision,
    )
