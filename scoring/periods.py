"""Months: posting calendar, month close (publication) and month figures.

A month is *closed* when it is published; its figures never change after
that. The rules this module enforces:

* ``close_month(M)`` freezes M only. It refuses while an earlier month that
  has entries posted to it is still open (naming that month), so published
  months always form an unbroken history; months without entries may be
  skipped.
* An event whose own (local) month is closed is *late*: its entries post to
  the first open month after it (:class:`PostingCalendar`), and
  ``record_late`` counts it against that month so the site can note it.
* Figures of a month (score, wallet, tier at the month's end, points earned
  in it) come from ``month_balances`` once the month is closed, else they are
  computed from the ledger: :func:`month_figures`.

"Earned in a month" is the net sum of score moves (``entries.points``) whose
posting period is that month, whatever their reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import sqlite_utils

from .durations import next_month, period_kind
from .errors import GridcreditError, PeriodClosedError, UsageError
from .ledger import ENTRY_COLUMNS, balances, get_state, keep_totals, last_scored
from .model import Scheme
from .posting import PostingMonths


@dataclass
class MonthFigure:
    """One subject-group at the end of a month."""

    month: str
    subject: str
    group: str
    score: int
    wallet: int
    tier: str
    earned: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def savepoint(db: sqlite_utils.Database, name: str) -> Iterator[None]:
    """All-or-nothing block that works inside or outside a caller's transaction."""
    db.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        db.execute(f"ROLLBACK TO {name}")
        db.execute(f"RELEASE {name}")
        raise
    db.execute(f"RELEASE {name}")


def check_month(month: str) -> str:
    """Return ``month`` if it is a month key ``YYYY-MM``; else a UsageError with a hint."""
    try:
        ok = period_kind(month) == "month"
    except ValueError as e:
        if "must be" in str(e):  # the form is right, a number is out of range
            raise UsageError(str(e).replace("cannot read period", "month")) from None
        ok = False
    if not ok:
        raise UsageError(f"'{month}' is not a month: write it as YYYY-MM, e.g. 2024-03")
    return month


def month_end(scheme: Scheme, month: str) -> int:
    """Last second (inclusive as-of time) of a local month."""
    return scheme.clock.period_bounds(check_month(month))[1] - 1


def closed_months(db: sqlite_utils.Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT month FROM periods WHERE closed = 1").fetchall()}


def is_closed(db: sqlite_utils.Database, month: str) -> bool:
    row = db.execute("SELECT closed FROM periods WHERE month = ?", [month]).fetchone()
    return bool(row and row[0])


def last_closed_before(db: sqlite_utils.Database, month: str) -> str | None:
    """The latest published month before ``month`` (``None`` if there is none)."""
    row = db.execute(
        "SELECT MAX(month) FROM periods WHERE closed = 1 AND month < ?", [month]
    ).fetchone()
    return row[0] if row else None


def month_record(db: sqlite_utils.Database, month: str) -> dict[str, Any]:
    """``{month, closed, hash, late_events, closed_at_seq}`` of a month (open if unknown)."""
    row = db.execute(
        "SELECT closed, ledger_hash, late_events, closed_at_seq FROM periods WHERE month = ?",
        [month],
    ).fetchone()
    if row is None:
        return {
            "month": month,
            "closed": False,
            "hash": None,
            "late_events": 0,
            "closed_at_seq": None,
        }
    return {
        "month": month,
        "closed": bool(row[0]),
        "hash": row[1],
        "late_events": row[2] or 0,
        "closed_at_seq": row[3],
    }


def ledger_hash(db: sqlite_utils.Database, month: str) -> str:
    """sha256 over the entries posted to ``month``, in id order (id and every column).

    Each entry is one line (:func:`entry_line`). A month of 309k entries of the 1M
    county hashes in 1.3-1.9 s (2.3-2.5 s with ``json.dumps`` for every line).
    """
    h = hashlib.sha256()
    cols = ", ".join(("id",) + ENTRY_COLUMNS)
    # the month's entries lie between its first and last id (the period index knows
    # them): that rowid range is read in id order, with no sort
    lo, hi = db.execute("SELECT MIN(id), MAX(id) FROM entries WHERE period = ?", [month]).fetchone()
    cur = db.execute(
        f"SELECT {cols} FROM entries NOT INDEXED WHERE id BETWEEN ? AND ? AND period = ?"
        " ORDER BY id",
        [lo, hi, month],
    )
    while rows := cur.fetchmany(10_000):
        lines = [entry_line(row) for row in rows]
        lines.append(b"")
        h.update(b"\n".join(lines))
    return h.hexdigest()


def entry_line(row: tuple[Any, ...]) -> bytes:
    """An entry as the month's hash reads it: ``json.dumps(list(row),
    ensure_ascii=False, separators=(",", ":"))`` in UTF-8. orjson writes the same
    bytes for ints, text and nulls, several times faster; a float, which the two
    write differently, takes ``json``."""
    if float in set(map(type, row)):
        return json.dumps(list(row), ensure_ascii=False, separators=(",", ":")).encode()
    return orjson.dumps(row)


class PostingCalendar(PostingMonths):
    """Which month an event's entries post to (the rule: :class:`scoring.posting.PostingMonths`),
    with the closed months read from the database.

    Closed months are read once and kept in a set, so ``posting_month`` is cheap
    on the scorer's hot path. Call :meth:`refresh` after closing a month with the
    same calendar alive.
    """

    def __init__(self, db: sqlite_utils.Database, scheme: Scheme):
        self.db = db
        super().__init__(scheme.clock)
        self.refresh()

    def refresh(self) -> None:
        self.set_closed(closed_months(self.db))


def first_open_month(db: sqlite_utils.Database, scheme: Scheme, at: int) -> str:
    """Posting month of an event at ``at`` (see :class:`PostingCalendar`)."""
    return PostingCalendar(db, scheme).posting_month(at)


def record_late(db: sqlite_utils.Database, month: str, n: int) -> None:
    """Count ``n`` late events absorbed by the open month ``month``."""
    if n <= 0:
        return
    if is_closed(db, month):
        raise PeriodClosedError(
            f"{month} was closed (published) already; late events post to the first open"
            " month after it, not to it"
        )
    db.execute(
        "INSERT INTO periods (month, closed, late_events) VALUES (?, 0, ?)"
        " ON CONFLICT(month) DO UPDATE SET late_events = late_events + excluded.late_events",
        [month, n],
    )


def late_entries(db: sqlite_utils.Database, scheme: Scheme, month: str) -> list[dict[str, Any]]:
    """Entries posted to ``month`` whose event belongs to an earlier (closed) month."""
    start = scheme.clock.period_bounds(check_month(month))[0]
    return [
        dict(r)
        for r in db.query(
            "SELECT * FROM entries WHERE period = ? AND at < ? ORDER BY at, id", [month, start]
        )
    ]


def _earned(db: sqlite_utils.Database, months: list[str]) -> dict[tuple[str, str], int]:
    marks = ",".join("?" * len(months))
    return {
        (s, g): int(p)
        for s, g, p in db.execute(
            # the months' entries, under the period index
            f"SELECT subject, grp, SUM(points) FROM entries INDEXED BY entries_period"
            f" WHERE period IN ({marks})"
            " GROUP BY subject, grp",
            months,
        ).fetchall()
    }


def compute_month_figures(
    db: sqlite_utils.Database, scheme: Scheme, month: str, *, group: str | None = None
) -> list[MonthFigure]:
    """Figures of ``month`` computed from the ledger (what closing would freeze)."""
    end = month_end(scheme, month)
    earned = _earned(db, [month])
    return [
        MonthFigure(
            month,
            b.subject,
            b.group,
            b.score,
            b.wallet,
            b.tier,
            earned.get((b.subject, b.group), 0),
        )
        for b in balances(db, scheme, as_of=end, group=group)
    ]


def stored_month_figures(
    db: sqlite_utils.Database, month: str, *, group: str | None = None
) -> list[MonthFigure]:
    """Frozen figures of a closed month from ``month_balances``."""
    sql = "SELECT month, subject, grp, score, wallet, tier, earned FROM month_balances WHERE month = ?"
    params: list[Any] = [month]
    if group:
        sql += " AND grp = ?"
        params.append(group)
    sql += " ORDER BY grp, subject"
    return [MonthFigure(*row) for row in db.execute(sql, params).fetchall()]


def month_figures(
    db: sqlite_utils.Database, scheme: Scheme, month: str, *, group: str | None = None
) -> list[MonthFigure]:
    """Figures of ``month``: frozen ones if it is closed, else computed now."""
    if is_closed(db, check_month(month)):
        return stored_month_figures(db, month, group=group)
    return compute_month_figures(db, scheme, month, group=group)


def _has_entries(db: sqlite_utils.Database, month: str) -> bool:
    return (
        db.execute("SELECT 1 FROM entries WHERE period = ? LIMIT 1", [month]).fetchone() is not None
    )


def posting_months(db: sqlite_utils.Database, *, before: str) -> list[str]:
    """The months before ``before`` that entries post to, in order: a seek in the
    period index per month, not a pass over the entries."""
    months: list[str] = []
    while True:
        (m,) = db.execute(
            "SELECT MIN(period) FROM entries WHERE period > ? AND period < ?",
            [months[-1] if months else "", before],
        ).fetchone()
        if m is None:
            return months
        months.append(m)


def check_closable(
    month: str,
    closed: set[str],
    posting_before: list[str],
    last_month: str | None,
    has_entries: Callable[[], bool],
) -> None:
    """The refusals of closing ``month`` (:class:`PeriodClosedError`), from what a ledger
    knows: its closed months, the months before ``month`` that entries post to, the month
    of the latest event scored, and whether ``month`` has entries. The SQLite and the
    Spark ledgers both ask here, so they refuse alike, in the same words."""
    if month in closed:
        raise PeriodClosedError(
            f"{month} was closed (published) already; its figures never change."
            f" Publish the next month instead ({next_month(month)})"
        )
    earlier = [m for m in posting_before if m not in closed]
    if earlier:
        raise PeriodClosedError(
            f"cannot close {month}: the earlier month {earlier[0]} has entries and is still open."
            f" Publish {earlier[0]} first"
        )
    latest = max(closed, default=None)
    if latest is not None and month > latest and month != next_month(latest):
        # a gap of open months would make their events late, posted after it
        raise PeriodClosedError(
            f"cannot close {month}: {next_month(latest)} is still open (the latest closed month is"
            f" {latest}). Months close in turn: publish {next_month(latest)} first"
        )
    if (last_month is None or month > last_month) and not has_entries():
        raise PeriodClosedError(
            f"cannot close {month}: it has no entries and no event scored so far falls in or"
            f" after it (the latest is in {last_month or 'no month yet'}), so it would close"
            " before its events came. Ingest and score its events first"
        )


def close_month(db: sqlite_utils.Database, scheme: Scheme, month: str) -> dict[str, Any]:
    """Freeze ``month``: write its figures, hash its entries and mark it closed.

    Returns :func:`month_record` of the closed month. Raises
    :class:`PeriodClosedError` if it is closed already or if an earlier month
    with entries is still open, and :class:`GridcreditError` if ingested
    events are not scored yet (they would wrongly become late).
    """
    check_month(month)
    closed = closed_months(db)
    last = last_scored(db)
    check_closable(
        month,
        closed,
        [] if month in closed else posting_months(db, before=month),
        scheme.clock.month(last[0]) if last is not None else None,
        lambda: _has_entries(db, month),
    )
    seq = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    scored = int(get_state(db, "scored_seq", "0") or 0)
    if seq is not None and seq > scored:
        # closing now would turn on-time events into late ones
        raise GridcreditError(
            f"cannot close {month}: {seq - scored} ingested events are not scored yet."
            " Run 'gridcredit score' first"
        )
    figures = compute_month_figures(db, scheme, month)
    digest = ledger_hash(db, month)
    with savepoint(db, "close_month"):
        keep_totals(db, month)
        db.execute("DELETE FROM month_balances WHERE month = ?", [month])
        db.conn.executemany(
            "INSERT INTO month_balances (month, subject, grp, score, wallet, tier, earned)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(f.month, f.subject, f.group, f.score, f.wallet, f.tier, f.earned) for f in figures],
        )
        db.execute(
            "INSERT INTO periods (month, closed, ledger_hash, late_events, closed_at_seq)"
            " VALUES (?, 1, ?, 0, ?)"
            " ON CONFLICT(month) DO UPDATE SET closed = 1, ledger_hash = excluded.ledger_hash,"
            " closed_at_seq = excluded.closed_at_seq",
            [month, digest, seq],
        )
    return month_record(db, month)
