"""Reads of the ledger: balances, explanations, account sums and the kept totals
of closed months (``keep_totals``, which ``close`` calls), and the latest times.

Every number here is base score plus entries, so any of them can be explained
entry by entry (``explain``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlite_utils

from ..grading import capped_tier
from ..model import Scheme
from .schema import ASSESSMENT, EXPIRING, TOTALS_MONTH, get_state, set_state


@dataclass
class Balance:
    subject: str
    group: str
    score: int
    wallet: int
    tier: str
    graded: str | None = None  # tier cap from direct grading, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "group": self.group,
            "score": self.score,
            "wallet": self.wallet,
            "tier": self.tier,
        }


def latest_time(db: sqlite_utils.Database) -> int | None:
    """The time of the latest event or entry, without a pass over either table.

    Scored events end at ``state.last_scored`` (the scorer keeps the latest it
    has scored); the unscored ones follow ``scored_seq`` and are few. Entries
    carry the time of a scored event, except assessment awards (at the end of
    their period), under the partial index ``entries_assessment_at``.
    """
    last = last_scored(db)
    done = int(get_state(db, "scored_seq") or 0)
    (times,) = db.execute(
        "SELECT MAX(m) FROM (SELECT MAX(at) AS m FROM events WHERE seq > ?"
        f" UNION ALL SELECT MAX(at) FROM entries WHERE {ASSESSMENT})",
        [done],
    ).fetchone()
    found = [t for t in (times, last[0] if last else None) if t is not None]
    return max(found) if found else None


def last_scored(db: sqlite_utils.Database) -> tuple[int, str] | None:
    """(time, id) of the latest event scored so far (``state.last_scored``)."""
    last = get_state(db, "last_scored")
    if not last:
        return None
    at, eid = json.loads(last)
    return at, eid


def kept_totals_month(db: sqlite_utils.Database) -> str | None:
    """The latest closed month, when ``closed_totals`` holds the totals through it."""
    kept = get_state(db, TOTALS_MONTH)
    if not kept:
        return None
    (latest,) = db.execute("SELECT MAX(month) FROM periods WHERE closed = 1").fetchone()
    return kept if kept == latest else None


def _totals_for(db: sqlite_utils.Database, scheme: Scheme, as_of: int | None) -> str | None:
    """The month of the kept totals, if ``account_sums`` at ``as_of`` can start from them."""
    kept = kept_totals_month(db)
    if kept is None or (as_of is not None and as_of < scheme.clock.period_bounds(kept)[1] - 1):
        return None
    return kept


_SUMS = "SUM(CASE WHEN expires_at IS NULL THEN points ELSE 0 END), SUM(wallet)"


def _sums(
    db: sqlite_utils.Database, kept: bool, where: str, params: dict[str, Any]
) -> dict[tuple[str, str], list[int]]:
    """``[points that never expire, wallet]`` per account over the entries ``where``
    selects (``FROM entries …``), added to the kept totals if ``kept``."""
    sums: dict[tuple[str, str], list[int]] = {}
    if kept:
        for s, g, f, w in db.execute("SELECT subject, grp, fixed, wallet FROM closed_totals"):
            sums[(s, g)] = [f, w]
    for s, g, f, w in db.execute(
        f"SELECT subject, grp, {_SUMS} FROM entries {where} GROUP BY subject, grp", params
    ):
        acc = sums.setdefault((s, g), [0, 0])
        acc[0] += f
        acc[1] += w
    return sums


def account_sums(
    db: sqlite_utils.Database, scheme: Scheme, as_of: int | None = None
) -> dict[tuple[str, str], list[int]]:
    """``[points that never expire, wallet]`` of each account (subject, group) over
    the entries dated up to ``as_of`` (``None``: every entry).

    Closed months never change, and an entry posts to its own month or a later
    one, so for an ``as_of`` from the end of the latest closed month on, this is
    the totals ``close`` kept through that month plus the open months' entries,
    read under the period index. Otherwise (or without kept totals) it is one
    pass over every entry.
    """
    kept = _totals_for(db, scheme, as_of)
    if kept is not None:
        where = "INDEXED BY entries_period WHERE period > :m"
    else:
        # one pass, grouped (through the (subject, grp) index every row is a random read)
        where = "NOT INDEXED WHERE 1"
    if as_of is not None:
        where += " AND at <= :t"
    return _sums(db, kept is not None, where, {"t": as_of, "m": kept})


def keep_totals(db: sqlite_utils.Database, month: str) -> None:
    """Keep the accounts' totals through ``month``, which is being closed: the
    totals kept through the month closed before it plus this month's entries
    (else one pass). Call inside the closing transaction, before marking it."""
    prev = kept_totals_month(db)
    if prev is not None:
        where = "INDEXED BY entries_period WHERE period > :p AND period <= :m"
    else:
        where = "NOT INDEXED WHERE period <= :m"
    totals = _sums(db, prev is not None, where, {"p": prev, "m": month})
    db.execute("DELETE FROM closed_totals")
    db.conn.executemany(
        "INSERT INTO closed_totals (subject, grp, fixed, wallet) VALUES (?, ?, ?, ?)",
        [(s, g, f, w) for (s, g), (f, w) in sorted(totals.items())],
    )
    set_state(db, TOTALS_MONTH, month)


def default_as_of(db: sqlite_utils.Database, scheme: Scheme) -> int:
    """End of the local day of the latest event or entry: "now" as far as the data knows."""
    latest = latest_time(db)
    if latest is None:
        return 2**62
    clock = scheme.clock
    return clock.end_of_day(clock.local(latest).date())


def balances(
    db: sqlite_utils.Database,
    scheme: Scheme,
    *,
    as_of: int | None = None,
    group: str | None = None,
    subject: str | None = None,
) -> list[Balance]:
    """Score, wallet and tier of every subject-group, sorted by group then subject.

    ``as_of`` (epoch seconds, inclusive) counts entries of events up to then
    that have not expired by then; ``None`` means the end of the local day of
    the latest event in the ledger (not the wall clock, so the answer depends
    only on the data).
    """
    t = as_of if as_of is not None else default_as_of(db, scheme)
    if subject or (group and _totals_for(db, scheme, t) is None):
        # one subject, or a group without kept totals: entries through the (subject, grp) index
        where = " AND ".join(
            w for w, v in (("m.subject = :s", subject), ("m.grp = :g", group)) if v
        )
        sql = f"""
            SELECT m.subject, m.grp,
                COALESCE(SUM(CASE WHEN e.expires_at IS NULL OR e.expires_at > :t THEN e.points END), 0),
                COALESCE(SUM(e.wallet), 0)
            FROM memberships m
            LEFT JOIN entries e ON e.subject = m.subject AND e.grp = m.grp AND e.at <= :t
            WHERE {where}
            GROUP BY m.subject, m.grp
            ORDER BY m.grp, m.subject
        """
        rows = db.execute(sql, {"t": t, "s": subject, "g": group}).fetchall()
    else:  # every account, or a group's from kept totals (see account_sums)
        sums = account_sums(db, scheme, t)
        for s, g, p in db.execute(
            "SELECT subject, grp, SUM(points) FROM entries INDEXED BY entries_expiry"
            f" WHERE expires_at > :t AND {EXPIRING}"
            " AND at <= :t GROUP BY subject, grp",
            {"t": t},
        ):
            sums.setdefault((s, g), [0, 0])[0] += p
        rows = []
        for s, g in db.execute(
            "SELECT subject, grp FROM memberships WHERE :g IS NULL OR grp = :g ORDER BY grp, subject",
            {"g": group},
        ):
            p, w = sums.get((s, g)) or (0, 0)
            rows.append((s, g, p, w))
    # several gradings at once: the worst holds; a reversed or repaired penalty lifts its grading
    gradings = db.execute(
        "SELECT subject, grp, grade FROM entries g WHERE grade IS NOT NULL AND at <= ?"
        " AND grade_until > ? AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = g.id"
        " AND r.reason IN ('reversal', 'repair') AND r.at <= ?)",
        [t, t, t],
    ).fetchall()
    return assemble_balances(scheme, rows, gradings)


def assemble_balances(
    scheme: Scheme,
    rows: Iterable[tuple[str, str, int, int]],
    gradings: Iterable[tuple[str, str, str]],
) -> list[Balance]:
    """Balances from each account's (subject, group, points, wallet) sums and the gradings
    in force (subject, group, grade): the SQLite and the Spark ledgers both end here."""
    worst: dict[tuple[str, str], str] = {}
    for s, g, tier in gradings:  # several at once: the worst holds
        grp = scheme.groups.get(g)
        if grp is not None:
            prev = worst.get((s, g))
            worst[(s, g)] = tier if prev is None else capped_tier(grp, prev, tier)
    out = []
    for s, g, pts, wal in rows:
        grp = scheme.groups.get(g)
        if grp is None:
            continue
        score = grp.base_score + pts
        graded = worst.get((s, g))
        out.append(Balance(s, g, score, wal, capped_tier(grp, grp.tier_of(score), graded), graded))
    return out


def render_balances(rows: list[Balance], fmt: str, precision: Any) -> str:
    """``gridcredit balances --format json|csv`` (SPEC §7), points with the scheme's decimals."""
    dicts = [b.as_dict() for b in rows]
    if precision.scale != 1:  # JSON keeps numbers, CSV writes the decimals
        from ..precision import fmt_points, json_points

        show = json_points if fmt == "json" else fmt_points
        for r in dicts:
            r["score"], r["wallet"] = (show(r[k], precision) for k in ("score", "wallet"))
    if fmt == "json":
        return orjson.dumps(dicts, option=orjson.OPT_INDENT_2).decode() + "\n"
    out = io.StringIO()
    w = csv.DictWriter(out, ["subject", "group", "score", "wallet", "tier"], lineterminator="\n")
    w.writeheader()
    w.writerows(dicts)
    return out.getvalue()


@dataclass
class ExplainLine:
    id: int
    date: str
    group: str
    rule: str
    title: str
    points: int
    wallet: int
    running_score: int
    running_wallet: int
    reason: str
    event: str
    period: str
    note: str
    trial: bool = False
    expired: bool = False
    objection: bool = False
    expires: str = ""  # local date the entry stops counting ("" when it never does)
    repeat: int = 0  # an escalating rule's match: the n-th in its window (0: not escalating)
    escalation: str = ""  # what escalation did, in words: "×2 再犯 (repeat: 2nd within 1 year)"


WITHHELD_NOTE = "not counted: "  # how compile words a ``withhold`` entry's note


def explain(
    db: sqlite_utils.Database,
    scheme: Scheme,
    subject: str,
    *,
    group: str | None = None,
    as_of: int | None = None,
    include_trial: bool = True,
) -> list[ExplainLine]:
    """Every entry behind a subject's balances, in time order, with running totals.

    Capped matches, withheld bonuses (reason ``withheld``), reversals and repairs
    appear as entries of their own;
    trial-rule entries (shadow ledger) follow, marked, and never count.
    """
    titles = scheme.rule_titles()
    titles.update({a.id: a.title for a in scheme.assessments})
    titles.update({i.id: f"兑换：{i.title}" for i in scheme.catalog.values()})
    t = as_of if as_of is not None else default_as_of(db, scheme)
    clock = scheme.clock
    disputed = {
        r[0] for r in db.execute("SELECT target FROM objections WHERE status = 'open'").fetchall()
    }
    out: list[ExplainLine] = []
    running: dict[str, list[int]] = {}
    for table, trial in (("entries", False), ("trial_entries", True)):
        if trial and not include_trial:
            continue
        repeats = _repeats(db, scheme, table, subject, group, trial)
        sql = (
            f"SELECT id, grp, rule, points, wallet, reason, event, period, note, at, expires_at"
            f" FROM {table} WHERE subject = ? AND at <= ?"
        )
        params: list[Any] = [subject, t]
        if group:
            sql += " AND grp = ?"
            params.append(group)
        for eid, grp, rule, pts, wal, reason, event, period, note, at, exp in db.execute(
            sql + " ORDER BY at, id", params
        ).fetchall():
            g = scheme.groups.get(grp)
            base = g.base_score if g else 0
            expired = exp is not None and exp <= t
            run = running.setdefault(grp, [base, 0])
            if reason == "capped" and note and note.startswith(WITHHELD_NOTE):
                # booked as a zero 'capped' entry (the ledger is unchanged), but not a cap:
                # a bonus withheld while the subject's condition held (``withhold:``)
                why = note.removeprefix(WITHHELD_NOTE)
                reason, note = "withheld", "" if why == "withheld" else why
            if not trial:
                if not expired:
                    run[0] += pts
                run[1] += wal
            n, esc = repeats.get(eid, (0, ""))
            out.append(
                ExplainLine(
                    id=eid,
                    date=clock.local(at).strftime("%Y-%m-%d"),
                    group=grp,
                    rule=rule or "",
                    title=titles.get(rule or "", rule or ""),
                    points=pts,
                    wallet=wal,
                    running_score=run[0],
                    running_wallet=run[1],
                    reason=reason,
                    event=event or "",
                    period=period,
                    note=note or "",
                    trial=trial,
                    expired=expired,
                    objection=(event or "") in disputed,
                    expires=clock.local(exp).strftime("%Y-%m-%d") if exp is not None else "",
                    repeat=n,
                    escalation=esc if reason == "match" and pts else "",
                )  # fmt: skip
            )
    return out


def _repeats(
    db: sqlite_utils.Database,
    scheme: Scheme,
    table: str,
    subject: str,
    group: str | None,
    trial: bool = False,
) -> dict[int, tuple[int, str]]:
    """Entry id → (n, words) for the matches of escalating rules: the n-th match in the
    rule's (or its family's) window, counted as the scorer counts it (``Scorer._apply``,
    ``count_prior``): in the order the entries were written, every earlier match or
    capped match of the same window key whose time is within the window, less those
    reversed since (a trial reversal gives no window back). The ledger does not store n:
    explain counts it again, at read time only."""
    esc = {r.id for r in scheme.rules if r.escalate is not None}
    if not esc:
        return {}
    marks = ",".join("?" * len(esc))
    sql = (
        f"SELECT id, grp, rule, reason, at, note, ref FROM {table} WHERE subject = ?"
        f" AND rule IN ({marks})"
    )
    params: list[Any] = [subject, *sorted(esc)]
    if group:
        sql += " AND grp = ?"
        params.append(group)
    clock = scheme.clock
    times: dict[tuple[str, str], list[int]] = {}
    counted: dict[int, tuple[str, str, int]] = {}  # entry id → (window key, group, time)
    out: dict[int, tuple[int, str]] = {}
    for eid, grp, rule_id, reason, at, note, ref in db.execute(sql + " ORDER BY id", params):
        if reason == "reversal":
            undone = None if trial else counted.get(ref)
            if undone is not None:
                window = times.get(undone[:2], [])
                if undone[2] in window:
                    window.remove(undone[2])
            continue
        if reason not in ("match", "capped") or (note or "").startswith(WITHHELD_NOTE):
            continue  # a withheld bonus never reached the escalation step
        versions = [r for r in scheme.rule_versions(rule_id) if r.in_force(at)]
        rule = next((r for r in versions if r.group == grp), versions[0] if versions else None)
        if rule is None or rule.escalate is None:
            continue
        e = rule.escalate
        key = (rule.family if rule.family in scheme.families else rule.id, grp)
        window = times.setdefault(key, [])
        floor = clock.sub(at, e.within) if e.within else -(2**62)
        n = 1 + sum(1 for x in window if x > floor)
        window.append(at)
        counted[eid] = (*key, at)
        span = f"within {_span(e.within)}" if e.within else "so far"
        if e.factor:
            words = f"×{e.factor} 再犯 (repeat: {_ordinal(n)} {span})" if n > 1 else ""
        else:
            step = min(n, len(e.steps))
            words = f"step {step} of {len(e.steps)}" + (
                f" 再犯 (repeat: {_ordinal(n)} {span})" if n > 1 else f" (first {span})"
            )
        out[eid] = (n, words)
    return out


def _span(d: Any) -> str:
    return f"{d.n} {d.unit[:-1] if d.n == 1 else d.unit}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
