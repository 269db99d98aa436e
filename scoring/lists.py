"""Public lists (红榜, 灰榜): who is on a list as of a time, and why.

A subject-group of one of the list's groups is listed while any of the
list's reasons holds; every reason that holds is shown:

* ``tier: [..]``: the tier at the as-of time (direct grading included) is
  one of these.
* ``min_score`` / ``max_score``: the score at the as-of time is at least /
  at most this (both given: both must hold).
* ``rules: [..]`` (optionally ``within``): each entry of these rules
  (reason ``match`` or ``linked``; capped entries are not offences shown)
  whose event time is at most ``within`` before the as-of time is one
  reason, shown from the event time until event time + ``within`` (without
  ``within``: until the entry expires, or indefinitely).
* ``severity: s`` (optionally ``within``): the same, for entries of every
  rule whose version in force at the event time has that severity.

An entry-based reason ends early when the entry is repaired or reversed: a
``repair`` or ``reversal`` entry with ``ref`` = the entry, at or before the
as-of time. An entry whose event has an open objection (``objections``
status ``open``) is shown flagged (异议标注, ``objection=True``).

``month=`` gives the published view of a closed or closing month: as-of
its last second, tiers and scores from the month figures, and only entries
posted to that month or before, so late events never change a published list.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from .errors import UsageError
from .ledger import balances
from .model import ListDef, ListReason, Rule, Scheme
from .periods import month_end, month_figures
from .precision import WHOLE, Precision, fmt_points, json_points, plain_points

OFFENCE_REASONS = ("match", "linked")


@dataclass
class Reason:
    kind: str  # tier | score | rule | severity
    text: str  # the specific public text, e.g. 2024-03-05 销售假冒伪劣商品（扣50分），公示至2027-03-05
    heading: str  # the list reason's own text (``text:`` in scheme.yaml), or a generated one
    since: str | None = None  # YYYY-MM-DD (local), entry-based reasons
    until: str | None = None  # YYYY-MM-DD, the day the reason stops being shown
    rule: str | None = None
    entry_id: int | None = None
    objection: bool = False  # 异议标注: an objection about the event is under review
    since_at: int | None = None  # epoch seconds
    until_at: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ListMember:
    subject: str
    group: str
    name: str
    kind: str = ""
    grid: str | None = None
    tier: str = ""
    score: int = 0
    reasons: list[Reason] = field(default_factory=list)

    @property
    def objection(self) -> bool:
        return any(r.objection for r in self.reasons)

    def as_dict(self, prec: Precision = WHOLE) -> dict[str, Any]:
        """JSON data; a fractional scheme's score (units) as a number of points."""
        d = asdict(self)
        d["score"] = json_points(self.score, prec)
        d["objection"] = self.objection
        return d


def find_list(scheme: Scheme, list_id: str) -> ListDef:
    for ld in scheme.lists:
        if ld.id == list_id:
            return ld
    ids = ", ".join(ld.id for ld in scheme.lists) or "none defined"
    raise UsageError(f"no list {list_id!r} in scheme.yaml; lists: {ids}")


def _rule_version(scheme: Scheme, rule_id: str, at: int) -> Rule | None:
    versions = scheme.rule_versions(rule_id)
    for r in versions:
        if r.in_force(at):
            return r
    return versions[0] if versions else None


def _points_text(points: int, prec: Precision = WHOLE) -> str:
    if points < 0:
        return f"扣{fmt_points(-points, prec)}分"
    if points > 0:
        return f"加{fmt_points(points, prec)}分"
    return "不计分"


def _tier_heading(scheme: Scheme, rs: ListReason) -> str:
    return rs.text or "信用等级为" + "、".join(f"{t}级" for t in rs.tiers or [])


def _score_heading(rs: ListReason, prec: Precision = WHOLE) -> str:
    if rs.text:
        return rs.text
    parts = []  # bounds are rule values: written as in the rules (1049.9), not padded
    if rs.min_score is not None:
        parts.append(f"信用分不低于{plain_points(rs.min_score, prec)}分")
    if rs.max_score is not None:
        parts.append(f"信用分不高于{plain_points(rs.max_score, prec)}分")
    return "，".join(parts)


def _entry_heading(scheme: Scheme, rs: ListReason) -> str:
    if rs.text:
        return rs.text
    window = f"{rs.within.chinese()}内" if rs.within else ""
    if rs.rules:
        titles = "、".join(dict.fromkeys(scheme.rule_titles().get(r, r) for r in rs.rules))
        return f"{window}有{titles}行为"
    word = {"minor": "轻微", "general": "一般", "serious": "严重"}.get(
        rs.severity or "", rs.severity
    )
    return f"{window}有{word}失信行为"


def list_members(
    db: sqlite_utils.Database,
    scheme: Scheme,
    list_def: ListDef | str,
    as_of: int | None = None,
    *,
    month: str | None = None,
) -> list[ListMember]:
    """Members of a list with their reasons, sorted by group then subject.

    Give ``as_of`` (epoch seconds, inclusive) or ``month`` (the published view
    of that month, see the module docs).
    """
    ld = find_list(scheme, list_def) if isinstance(list_def, str) else list_def
    if month is not None:
        as_of = month_end(scheme, month)
    if as_of is None:
        raise UsageError("list_members needs as_of or month")
    clock = scheme.clock

    def day(ts: int) -> str:
        return clock.local(ts).date().isoformat()

    subjects = {
        s: (n or "", k or "", g)
        for s, n, k, g in db.execute("SELECT id, name, kind, grid FROM subjects").fetchall()
    }
    # state of every account of the list's groups
    state: dict[tuple[str, str], tuple[int, str, str | None]] = {}
    for g in ld.groups:
        if g not in scheme.groups:
            continue
        bals = balances(db, scheme, as_of=as_of, group=g)
        if month is not None:
            graded_by = {(b.subject, b.group): b.graded for b in bals if b.graded}
            for f in month_figures(db, scheme, month, group=g):
                state[(f.subject, f.group)] = (f.score, f.tier, graded_by.get((f.subject, f.group)))
        else:
            for b in bals:
                state[(b.subject, b.group)] = (b.score, b.tier, b.graded)
    # the entries behind a direct grading in force (the latest-ending one per account and tier)
    gradings: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in db.query(
        """SELECT e.id, e.subject, e.grp, e.grade, e.rule, e.at, e.grade_until,
                  (SELECT status FROM objections o WHERE o.target = e.event) AS objection
           FROM entries e WHERE e.grade IS NOT NULL AND e.at <= ? AND e.grade_until > ?
           ORDER BY e.grade_until, e.id""",
        [as_of, as_of],
    ):
        gradings[(r["subject"], r["grp"], r["grade"])] = r

    # entries that may be offences shown on the list
    period_clause = " AND e.period <= :month" if month is not None else ""
    params: dict[str, Any] = {"t": as_of, "month": month}
    gmarks = ",".join(f":g{i}" for i in range(len(ld.groups)))
    params.update({f"g{i}": g for i, g in enumerate(ld.groups)})
    entry_rules: set[str] = set()
    for rs in ld.reasons:
        if rs.rules:
            entry_rules.update(rs.rules)
        if rs.severity:
            entry_rules.update(r.id for r in scheme.rules if r.severity == rs.severity)
    entries: list[dict[str, Any]] = []
    if entry_rules and ld.groups:
        rmarks = ",".join(f":r{i}" for i in range(len(entry_rules)))
        params.update({f"r{i}": r for i, r in enumerate(sorted(entry_rules))})
        entries = [
            dict(r)
            for r in db.query(
                f"""SELECT e.id, e.subject, e.grp, e.rule, e.points, e.event, e.at, e.expires_at,
                           (SELECT status FROM objections o WHERE o.target = e.event) AS objection
                    FROM entries e
                    WHERE e.grp IN ({gmarks}) AND e.rule IN ({rmarks}) AND e.at <= :t
                      AND e.reason IN ('match', 'linked'){period_clause}
                      AND NOT EXISTS (
                        SELECT 1 FROM entries x WHERE x.ref = e.id
                          AND x.reason IN ('repair', 'reversal') AND x.at <= :t
                          {period_clause.replace("e.period", "x.period")})
                    ORDER BY e.at, e.id""",
                params,
            )
        ]

    reasons: dict[tuple[str, str], list[Reason]] = defaultdict(list)
    for rs in ld.reasons:
        if rs.tiers or rs.min_score is not None or rs.max_score is not None:
            for key, (score, tier, graded) in state.items():
                if rs.tiers is not None and tier not in rs.tiers:
                    continue
                if rs.min_score is not None and score < rs.min_score:
                    continue
                if rs.max_score is not None and score > rs.max_score:
                    continue
                if rs.tiers is not None:
                    heading = _tier_heading(scheme, rs)
                    grading = gradings.get((*key, tier)) if graded == tier else None
                    if grading is None:
                        reasons[key].append(Reason("tier", f"信用等级为{tier}级", heading))
                    else:  # held down by a direct grading: show it, with its dates and dispute flag
                        reasons[key].append(
                            Reason(
                                "tier",
                                f"信用等级为{tier}级（直接判级）",
                                heading,
                                since=day(grading["at"]),
                                until=day(grading["grade_until"]),
                                rule=grading["rule"],
                                entry_id=grading["id"],
                                objection=grading["objection"] == "open",
                                since_at=grading["at"],
                                until_at=grading["grade_until"],
                            )
                        )
                else:
                    reasons[key].append(
                        Reason(
                            "score",
                            f"信用分为{fmt_points(score, scheme.precision)}分",
                            _score_heading(rs, scheme.precision),
                        )
                    )
        if rs.rules or rs.severity:
            wanted = set(rs.rules or [])
            heading = _entry_heading(scheme, rs)
            for e in entries:
                key = (e["subject"], e["grp"])
                if key not in state:
                    continue
                version = _rule_version(scheme, e["rule"], e["at"])
                if rs.rules and e["rule"] not in wanted:
                    continue
                if rs.severity and (version is None or version.severity != rs.severity):
                    continue
                if rs.within is not None:
                    until = clock.add(e["at"], rs.within)
                else:
                    until = e["expires_at"]
                if until is not None and as_of >= until:
                    continue  # the publication window has passed
                title = version.title if version else e["rule"]
                text = f"{day(e['at'])} {title}（{_points_text(e['points'], scheme.precision)}）"
                if until is not None:
                    text += f"，公示至{day(until)}"
                objection = e["objection"] == "open"
                reasons[key].append(
                    Reason(
                        "severity" if rs.severity and not rs.rules else "rule",
                        text,
                        heading,
                        since=day(e["at"]),
                        until=day(until) if until is not None else None,
                        rule=e["rule"],
                        entry_id=e["id"],
                        objection=objection,
                        since_at=e["at"],
                        until_at=until,
                    )
                )

    out = []
    for s, g in sorted(reasons, key=lambda k: (k[1], k[0])):
        name, kind, grid = subjects.get(s, ("", "", None))
        score, tier, _ = state[(s, g)]
        out.append(ListMember(s, g, name, kind, grid, tier, score, reasons[(s, g)]))
    return out


def all_lists(
    db: sqlite_utils.Database,
    scheme: Scheme,
    as_of: int | None = None,
    *,
    month: str | None = None,
) -> dict[str, list[ListMember]]:
    """Every list of the scheme: list id → members (scheme order)."""
    return {ld.id: list_members(db, scheme, ld, as_of, month=month) for ld in scheme.lists}
