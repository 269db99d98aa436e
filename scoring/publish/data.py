"""The site's data: every number a published page or download shows is computed here.

:func:`month_data` gathers one month from the ledger and the scheme into a
:class:`MonthData` (the contract between the driver, the page writers and
plugin publishers): rankings and grid rankings (``scoring.rank``),
assessment results (``scoring.assess``), the public lists
(``scoring.lists``), the rules in force (``scoring.render``), the catalog,
trends and each person's look-up figures. The writers only format what it
holds. :func:`name_masker` makes the one masking function a month's pages,
downloads and look-up files share: each distinct name is masked once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from ..assess import assessment_results, periods_ending_in
from ..lists import _entry_heading, _score_heading, _tier_heading, all_lists
from ..model import Scheme
from ..periods import closed_months, month_end, month_record
from ..precision import metric_on_points, site_points
from ..rank import MonthView, grid_rankings, rankings
from ..render import chinese_date, render_rule

HISTORY_MONTHS = 12  # published months of entries in a person's look-up file

# --------------------------------------------------------------------------
# The data contract
# --------------------------------------------------------------------------


@dataclass
class TierInfo:
    id: str
    title: str
    min: int | None = None
    max: int | None = None


@dataclass
class GroupInfo:
    id: str
    title: str
    kind: str = "person"  # person | organization
    tiers: list[TierInfo] = field(default_factory=list)  # ordered high → low


@dataclass
class GridInfo:
    id: str
    name: str
    community: str
    community_name: str
    street: str
    street_name: str


@dataclass
class SubjectRank:
    """One subject-group account in the month's ranking of its group."""

    subject: str  # never published; used only to join look-up data
    name: str
    grid: str
    score: int
    tier: str
    rank: int  # competition ranking within the group ("1224")
    previous_rank: int | None = None  # None: not ranked last month (新)
    earned: int = 0  # points earned in the month
    wallet: int = 0
    kind: str = "person"
    code: str | None = None  # unified social credit code (organisations)
    community: str = ""  # filled from the grid when empty
    street: str = ""
    note: str = ""  # e.g. 直接判级 (grade held), shown beside the tier


@dataclass
class GridRank:
    grid: str
    name: str
    community: str
    mean_score: float
    residents: int
    rank: int
    previous_rank: int | None = None


@dataclass
class Selection:
    scope: str  # grid / community / subject id
    name: str
    value: float
    rank: int
    kind: str = "grid"  # grid | community | person | organization
    unit: str = ""  # name of the ranking unit (e.g. the community) when not the whole scheme
    grid: str = ""  # grid id of a person or organisation, shown beside the masked name


@dataclass
class PublicAssessment:
    id: str
    title: str
    badge: str
    period: str  # e.g. 2024-Q1
    selected: list[Selection] = field(default_factory=list)
    metric: str = ""  # plain Chinese description of the metric


@dataclass
class PublicListReason:
    text: str
    since: str | None = None  # YYYY-MM-DD
    until: str | None = None
    objection: bool = False  # 异议标注: an objection is under review
    rule: str | None = None  # the rule behind an entry-based reason (the page links to it)


@dataclass
class PublicListMember:
    subject: str
    name: str
    group: str
    reasons: list[PublicListReason] = field(default_factory=list)
    kind: str = "organization"
    code: str | None = None
    grid: str = ""


@dataclass
class PublicList:
    id: str
    title: str
    members: list[PublicListMember] = field(default_factory=list)
    description: str = ""
    criteria: list[str] = field(default_factory=list)  # how a subject gets on it, in words
    groups: list[str] = field(default_factory=list)  # group ids it covers


@dataclass
class RuleText:
    id: str
    title: str
    text: str  # plain Chinese from render.py; lines are kept
    adopted: str = ""
    repairs: tuple[str, ...] = ()  # a repair rule: the rules whose deductions it repairs


@dataclass
class RulePackText:
    title: str
    group: str
    rules: list[RuleText] = field(default_factory=list)
    adopted: str = ""
    version: str = ""


@dataclass
class CatalogRow:
    id: str
    title: str
    cost: int
    min_tier: str | None = None
    groups: list[str] = field(default_factory=list)  # group titles
    stock: int | None = None
    available: str = ""
    partner: str = ""


@dataclass
class TrendPoint:
    month: str
    group: str
    mean_score: float
    subjects: int = 0
    tier_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class LookupEntry:
    date: str  # YYYY-MM-DD
    rule: str  # rule title
    points: int
    wallet: int = 0
    flag: str = ""  # e.g. 异议审核中
    month: str = ""  # YYYY-MM the entry was posted in (a late event posts in a later month)
    kind: str = ""  # reversal | repair | linked: worded as such on the look-up page
    link: str = ""  # a linked entry: its link's name in the rule's ``also``


@dataclass
class LookupMonth:
    """A person's month-end figures of one published month."""

    month: str
    score: int
    tier: str
    wallet: int = 0


@dataclass
class LookupAccount:
    subject: str
    group: str
    score: int
    wallet: int
    tier: str
    entries: list[LookupEntry] = field(default_factory=list)  # this month's, or the history's
    name: str = ""
    kind: str = "person"
    note: str = ""
    history: list[LookupMonth] = field(default_factory=list)  # earlier published months
    grid: str = ""  # grid id (the look-up says the grid's name)


@dataclass
class ArchiveMonth:
    month: str
    content_hash: str


@dataclass
class MonthData:
    title: str  # scheme title
    month: str  # YYYY-MM
    groups: list[GroupInfo]
    grids: list[GridInfo]
    rankings: dict[str, list[SubjectRank]]  # group id → all rows
    grid_rankings: list[GridRank] = field(default_factory=list)
    assessments: list[PublicAssessment] = field(default_factory=list)
    lists: list[PublicList] = field(default_factory=list)
    rules: list[RulePackText] = field(default_factory=list)
    catalog: list[CatalogRow] = field(default_factory=list)
    trends: list[TrendPoint] = field(default_factory=list)
    lookup: list[LookupAccount] = field(default_factory=list)
    archive: list[ArchiveMonth] = field(default_factory=list)
    late_events: int = 0  # late events posted into this month


class Publisher(Protocol):
    """A page writer contributed by a plugin through ``register_publishers``."""

    name: str

    def write(self, month: str, data: MonthData, site_dir: Path) -> list[Path]: ...


# --------------------------------------------------------------------------
# Gathering a month from the ledger
# --------------------------------------------------------------------------


def name_masker(hook: Callable[..., str]) -> Callable[[str, str], str]:
    """The ``mask_name`` hook caller wrapped so it runs once per distinct name, not per cell."""
    masked: dict[tuple[str, str], str] = {}

    def mask(name: str, kind: str) -> str:
        key = (name, kind)
        if key not in masked:
            masked[key] = hook(name=name, kind=kind)
        return masked[key]

    return mask


def month_data(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    *,
    trends: list[TrendPoint] | None = None,
) -> MonthData:
    """Everything the site shows for ``month``, gathered from the ledger and the scheme.

    ``trends``: the month-by-month means when the caller computed them (the Spark
    ledger does, in Spark SQL, so its month view holds a year of figures, not all)."""
    view = MonthView(db, scheme, month)
    subjects = {
        sid: (name, kind, grid, code)
        for sid, name, kind, grid, code in db.execute(
            "SELECT id, name, kind, grid, code FROM subjects"
        ).fetchall()
    }
    groups = [
        GroupInfo(
            id=g.id,
            title=g.title,
            kind=g.kind,
            tiers=[TierInfo(t.id, t.title, t.min, t.max) for t in g.tiers],
        )
        for g in scheme.groups.values()
    ]
    grids = [
        GridInfo(g.id, g.name, g.community, g.community_name, g.street, g.street_name)
        for g in scheme.grids.values()
    ]
    graded = _graded_at_month_end(db, scheme, month)
    ranking_rows: dict[str, list[SubjectRank]] = {}
    for gid in scheme.groups:
        rows = []
        for table in rankings(db, scheme, month, group=gid, by="score", within="scheme", view=view):
            for r in table.rows:
                _, kind, _, code = subjects.get(r.subject, ("", "person", "", None))
                rows.append(
                    SubjectRank(
                        subject=r.subject,
                        name=r.name,
                        grid=r.grid or "",
                        score=r.score,
                        tier=r.tier,
                        rank=r.rank,
                        previous_rank=r.previous_rank,
                        earned=r.earned,
                        wallet=r.wallet,
                        kind=kind or "person",
                        code=code,
                        community=r.community or "",
                        street=r.street or "",
                        note="直接判级" if (r.subject, gid) in graded else "",
                    )  # fmt: skip
                )
        ranking_rows[gid] = rows
    resident_group = "residents" if "residents" in scheme.groups else next(iter(scheme.groups))
    grid_rows = [
        GridRank(
            grid=r.grid,
            name=r.name,
            community=r.community,
            mean_score=r.mean_score or 0.0,
            residents=r.residents,
            rank=r.rank or 0,
            previous_rank=r.previous_rank,
        )  # fmt: skip
        for t in grid_rankings(db, scheme, month, group=resident_group, within="scheme", view=view)
        for r in t.rows
        if r.rank is not None
    ]
    data = MonthData(
        title=scheme.title,
        month=month,
        groups=groups,
        grids=grids,
        rankings=ranking_rows,
        grid_rankings=grid_rows,
        assessments=_assessments(db, scheme, month, subjects),
        lists=_lists(db, scheme, month, subjects),
        rules=_rules(scheme, month),
        catalog=_catalog(scheme, {sid: v[0] for sid, v in subjects.items()}),
        trends=_trends(db, scheme, month) if trends is None else trends,
        lookup=_lookup(db, scheme, month, ranking_rows),
        # the archive page reads each month's content hash from its published
        # manifest.json (what residents can check); the ledger's closing hash is
        # another value and is not shown as the content hash
        archive=[],
        late_events=int(month_record(db, month).get("late_events") or 0),
    )
    return data if scheme.precision.scale == 1 else in_points(data, scheme)


def _graded_at_month_end(
    db: sqlite_utils.Database, scheme: Scheme, month: str
) -> set[tuple[str, str]]:
    t = month_end(scheme, month)
    return {
        (s, g)
        for s, g in db.execute(
            "SELECT subject, grp FROM entries e WHERE grade IS NOT NULL AND at <= ? AND grade_until > ?"
            " AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id AND r.at <= ?)",
            [t, t, t],
        ).fetchall()
    }


def _assessments(
    db: sqlite_utils.Database, scheme: Scheme, month: str, subjects: dict[str, tuple]
) -> list[PublicAssessment]:
    units = {g.community: g.community_name for g in scheme.grids.values()}
    units.update({g.street: g.street_name for g in scheme.grids.values()})
    out = []
    for period in periods_ending_in(month):
        for run in assessment_results(db, scheme, period):
            a = next((x for x in scheme.assessments if x.id == run.assessment), None)
            out.append(
                PublicAssessment(
                    id=run.assessment,
                    title=run.title,
                    badge=a.badge if a else "",
                    period=run.period,
                    selected=[
                        Selection(
                            scope=r.scope_id,
                            name=r.scope_name or r.scope_id,
                            value=r.value if r.value is not None else 0.0,
                            rank=r.rank or 0,
                            kind="grid"
                            if run.scope == "grid"
                            else (
                                "community"
                                if run.scope == "community"
                                else scheme.groups[a.group].kind
                                if a and a.group in scheme.groups
                                else "person"
                            ),
                            # the ranking unit by name, unless it is the whole scheme
                            unit=units.get(r.unit, "") if r.unit and r.unit != scheme.id else "",
                            grid=(subjects.get(r.scope_id, ("", "", "", None))[2] or "")
                            if run.scope == "subject"
                            else "",
                        )  # fmt: skip
                        for r in run.selected
                    ],
                    metric=_metric_text(a.metric) if a else "",
                )
            )
    return out


def _metric_text(metric: dict[str, Any]) -> str:
    words = {"mean": "平均", "sum": "合计", "count": "人数", "median": "中位数"}
    what = {"score": "信用分", "points": "本期所得积分"}
    for k, v in metric.items():
        if k in words:
            return f"{what.get(v, v)}{words[k]}"
        if k == "weighted":
            who = {"residents": "居民", "community": "社区", "owners_committee": "业委会"}
            parts = [
                f"{who.get((p.get('survey') or {}).get('respondent', ''), '测评')}评价{p.get('weight')}%"
                for p in v
            ]
            return "加权测评：" + "、".join(parts)
    return ""


def _lists(
    db: sqlite_utils.Database, scheme: Scheme, month: str, subjects: dict[str, tuple]
) -> list[PublicList]:
    out = []
    members = all_lists(db, scheme, month=month)
    for ld in scheme.lists:
        out.append(
            PublicList(
                id=ld.id,
                title=ld.title,
                description=ld.description,
                criteria=[_criterion(scheme, rs) for rs in ld.reasons],
                groups=list(ld.groups),
                members=[
                    PublicListMember(
                        subject=m.subject,
                        name=m.name,
                        group=m.group,
                        kind=m.kind or "organization",
                        code=subjects.get(m.subject, (None, None, None, None))[3],
                        grid=m.grid or "",
                        reasons=[
                            PublicListReason(_reason_text(r), r.since, r.until, r.objection, r.rule)
                            for r in m.reasons
                        ],
                    )  # fmt: skip
                    for m in members.get(ld.id, [])
                ],
            )
        )
    return out


def _criterion(scheme: Scheme, rs: Any) -> str:
    """One way onto a list, in words (as the list's reasons are headed elsewhere)."""
    if rs.tiers:
        return _tier_heading(scheme, rs)
    if rs.min_score is not None or rs.max_score is not None:
        return _score_heading(rs, scheme.precision)
    return _entry_heading(scheme, rs)


def _reason_text(reason: Any) -> str:
    """A list reason without its dates: the page shows the window beside it."""
    text = reason.text
    if reason.since and text.startswith(f"{reason.since} "):
        text = text[len(reason.since) + 1 :]
    return text.split("，公示至")[0]


def _adopted_text(adopted: Any) -> str:
    if adopted is None or not adopted.by:
        return ""
    ref = f"（{adopted.ref}）" if adopted.ref else ""
    return f"{adopted.on} 经{adopted.by}通过{ref}"


def _retro(rule: Any, pack: Any) -> str:
    """A line for a rule adopted on its own (not with its pack) after the day it takes
    effect from (its pack's, when it writes none): the ledger scores it from that day,
    so the page says it applies back rather than look adopted from the start."""
    start = rule.effective_text[0]
    own = rule.adopted if rule.adopted != pack.adopted else None
    on = str(own.on) if own and own.on else ""
    if not (start and on) or on <= start:
        return ""
    return (
        f"\n- 追溯适用：本条于{chinese_date(on)}通过，"
        f"{chinese_date(start)}起发生的事项同样按本条计分"
    )


def _rules(scheme: Scheme, month: str) -> list[RulePackText]:
    """The rules in force during ``month``; trial rules only estimate, so they are left out."""
    start, end = scheme.clock.period_bounds(month)

    def shown(r: Any) -> bool:
        return (
            r.status != "trial"
            and (r.effective_from is None or r.effective_from < end)
            and (r.effective_until is None or r.effective_until > start)
        )

    # a rule written for several groups (groups: [...]) is one Rule per group: the pack is
    # shown once per group it has rules for, each rule under its own group
    return [
        RulePackText(
            title=p.title,
            group=g,
            version=p.version,
            adopted=_adopted_text(p.adopted),
            rules=[
                RuleText(
                    r.id,
                    r.title,
                    render_rule(r, scheme) + _retro(r, p),
                    _adopted_text(r.adopted),
                    tuple(r.repair.rules) if r.repair else (),
                )
                for r in p.rules
                if r.group == g and shown(r)
            ],
        )
        for p in scheme.packs
        for g in dict.fromkeys([p.group, *(r.group for r in p.rules)])
        if any(r.group == g and shown(r) for r in p.rules)
    ]


def _catalog(scheme: Scheme, names: dict[str, str]) -> list[CatalogRow]:
    """The redemption catalog; a partner merchant appears by name, never by its id."""
    out = []
    for it in scheme.catalog.values():
        if it.available_from or it.available_until:
            clock = scheme.clock
            start = clock.local(it.available_from).strftime("%Y-%m-%d") if it.available_from else ""
            end = (
                clock.local(it.available_until - 1).strftime("%Y-%m-%d")
                if it.available_until
                else ""
            )
            available = f"{start} 至 {end}".strip()
        else:
            available = "长期"
        out.append(
            CatalogRow(
                id=it.id,
                title=it.title,
                cost=it.cost,
                min_tier=it.min_tier,
                groups=[scheme.groups[g].title for g in (it.groups or []) if g in scheme.groups],
                stock=it.stock,
                available=available,
                partner=names.get(it.partner, "合作商户") if it.partner else "",
            )  # fmt: skip
        )
    return out


def in_points(data: MonthData, scheme: Scheme) -> MonthData:
    """A fractional scheme's month: every point figure from ledger units to points that
    print with the scheme's decimals (scoring.precision.Pts), once, so that every page,
    chart and open-data file shows the same numbers. Ranks were computed on the units."""

    prec = scheme.precision

    def pts(x: Any) -> Any:
        return site_points(x, prec)

    def mean(x: float | None) -> float | None:
        return None if x is None else round(x / prec.scale, max(2, prec.decimals))

    for g in data.groups:
        for t in g.tiers:
            t.min, t.max = pts(t.min), pts(t.max)
    for rows in data.rankings.values():
        for r in rows:
            r.score, r.earned, r.wallet = pts(r.score), pts(r.earned), pts(r.wallet)
    for gr in data.grid_rankings:
        gr.mean_score = mean(gr.mean_score) or 0.0
    for tp in data.trends:
        tp.mean_score = mean(tp.mean_score) or 0.0
    for c in data.catalog:
        c.cost = pts(c.cost)
    on_points = {a.id for a in scheme.assessments if metric_on_points(a.metric)}
    for pa in data.assessments:
        if pa.id in on_points:
            for sel in pa.selected:
                sel.value = mean(sel.value) or 0.0
    for acc in data.lookup:
        acc.score, acc.wallet = pts(acc.score), pts(acc.wallet)
        for e in acc.entries:
            e.points, e.wallet = pts(e.points), pts(e.wallet)
        for h in acc.history:
            h.score, h.wallet = pts(h.score), pts(h.wallet)
    return data


def _trends(db: sqlite_utils.Database, scheme: Scheme, month: str) -> list[TrendPoint]:
    rows = db.execute(
        "SELECT month, grp, AVG(score), COUNT(*) FROM month_balances WHERE month <= ?"
        " GROUP BY month, grp ORDER BY month, grp",
        [month],
    ).fetchall()
    tiers: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for m, g, tier, n in db.execute(
        "SELECT month, grp, tier, COUNT(*) FROM month_balances WHERE month <= ?"
        " GROUP BY month, grp, tier",
        [month],
    ).fetchall():
        tiers[(m, g)][tier] = n
    return [
        TrendPoint(m, g, round(mean, 2), n, dict(sorted(tiers[(m, g)].items())))
        for m, g, mean, n in rows
    ]


def _lookup(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    ranking_rows: dict[str, list[SubjectRank]],
) -> list[LookupAccount]:
    """Per person: the balance, the month-end figures and the entries of the last
    ``HISTORY_MONTHS`` closed months up to ``month``, for the private
    look-up page (SPEC §9: a person checks their balance and history)."""
    titles = scheme.rule_titles()
    titles.update({a.id: a.title for a in scheme.assessments})
    titles.update({i.id: f"兑换：{i.title}" for i in scheme.catalog.values()})
    disputed = {t for (t,) in db.execute("SELECT target FROM objections WHERE status = 'open'")}
    # which link a rule's linked entry in a group came by (a rule's ``also`` names it)
    links = {(r.id, a.group or r.group): a.link for r in scheme.rules for a in r.also}
    clock = scheme.clock
    months = sorted({m for m in closed_months(db) if m <= month} | {month})
    months = months[-HISTORY_MONTHS:]
    marks = ",".join("?" for _ in months)
    entries: dict[tuple[str, str], list[LookupEntry]] = defaultdict(list)
    days: dict[int, str] = {}  # local date per quarter hour (UTC offsets are whole quarters)
    for s, g, rule, pts, wal, at, reason, event, period in db.execute(
        "SELECT subject, grp, rule, points, wallet, at, reason, event, period FROM entries"
        f" WHERE period IN ({marks}) ORDER BY period, at, id",
        months,
    ):
        flag = "已达上限" if reason == "capped" else ""
        if event in disputed:
            flag = "异议审核中"
        day = days.get(at // 900)
        if day is None:
            day = days[at // 900] = clock.local(at).strftime("%Y-%m-%d")
        entries[(s, g)].append(
            LookupEntry(
                day,
                titles.get(rule, rule or ""),
                pts,
                wal,
                flag,
                period,
                reason if reason in ("reversal", "repair", "linked") else "",
                links.get((rule, g), "") if reason == "linked" else "",
            )  # fmt: skip
        )
    history: dict[tuple[str, str], list[LookupMonth]] = defaultdict(list)
    for m, s, g, sc, wal, tier in db.execute(
        "SELECT month, subject, grp, score, wallet, tier FROM month_balances"
        f" WHERE month IN ({marks}) AND month < ? ORDER BY month",
        [*months, month],
    ):
        history[(s, g)].append(LookupMonth(m, sc, tier or "", wal or 0))
    out = []
    for gid, rows in ranking_rows.items():
        if scheme.groups[gid].kind != "person":
            continue
        for r in rows:
            out.append(
                LookupAccount(
                    subject=r.subject,
                    group=gid,
                    score=r.score,
                    wallet=r.wallet,
                    tier=r.tier,
                    entries=entries.get((r.subject, gid), []),
                    name=r.name,
                    kind="person",
                    note=r.note,
                    history=history.get((r.subject, gid), []),
                    grid=r.grid,
                )  # fmt: skip
            )
    return out
