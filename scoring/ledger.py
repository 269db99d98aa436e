"""The SQLite ledger: schema (explicit migrations) and the read API.

The ledger is append-only for closed months. Every balance is base score plus
entries, so any number can be explained entry by entry.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from .model import Scheme

migrations = Migrations("gridcredit")

ENTRY_COLUMNS = (
    "subject", "grp", "account", "points", "wallet", "rule", "pack_hash", "event", "at",
    "period", "reason", "ref", "expires_at", "grade", "grade_until", "note",
)  # fmt: skip

_ENTRY_DDL = """
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    grp TEXT NOT NULL,
    account TEXT NOT NULL,          -- score | wallet | score+wallet
    points INTEGER NOT NULL,        -- move of the credit score
    wallet INTEGER NOT NULL,        -- move of the spendable wallet
    rule TEXT,                      -- rule id, assessment id, or catalog item
    pack_hash TEXT,                 -- content hash of the rule pack that scored it
    event TEXT,                     -- event id
    at INTEGER NOT NULL,            -- event time, UTC epoch seconds
    period TEXT NOT NULL,           -- posting month YYYY-MM
    reason TEXT NOT NULL,           -- match | capped | reversal | linked | repair | assessment | redeem
    ref INTEGER,                    -- entry undone by a reversal or repair
    expires_at INTEGER,
    grade TEXT,
    grade_until INTEGER,
    note TEXT
"""


EXPIRING = "expires_at IS NOT NULL"  # the term of entries_expiry (migration 8)

# The indexes of ``entries``, by name. A big appending run drops and rebuilds some of
# them inside its transaction (``scoring.evaluate.REBUILT_INDEXES``): sorting once is
# faster than keeping those B-trees up to date row by row.
ENTRY_INDEXES = {
    "entries_subject": "CREATE INDEX entries_subject ON entries (subject, grp)",
    "entries_event": "CREATE INDEX entries_event ON entries (event)",
    "entries_ref": "CREATE INDEX entries_ref ON entries (ref) WHERE ref IS NOT NULL",
    # from migration 8 (m008_period_totals)
    "entries_period": "CREATE INDEX entries_period ON entries (period, rule)",
    "entries_expiry": f"CREATE INDEX entries_expiry ON entries (expires_at) WHERE {EXPIRING}",
}


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        f"""
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY, file TEXT, kind TEXT,
            read INTEGER, accepted INTEGER, duplicates INTEGER,
            conflicting INTEGER, rejected INTEGER
        );
        CREATE TABLE rejects (
            batch INTEGER, file TEXT, line INTEGER, record_id TEXT, reason TEXT, raw TEXT
        );
        CREATE TABLE grids (
            id TEXT PRIMARY KEY, name TEXT, community TEXT, community_name TEXT,
            street TEXT, street_name TEXT
        );
        CREATE TABLE subjects (
            id TEXT PRIMARY KEY, kind TEXT, name TEXT, grid TEXT, tags TEXT, code TEXT,
            links TEXT, hash TEXT
        );
        CREATE TABLE memberships (
            subject TEXT NOT NULL, grp TEXT NOT NULL, PRIMARY KEY (subject, grp)
        ) WITHOUT ROWID;
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            subject TEXT NOT NULL,
            at INTEGER NOT NULL,
            attrs TEXT NOT NULL,
            amends TEXT,
            hash TEXT NOT NULL,
            batch INTEGER,
            line INTEGER
        );
        CREATE TABLE entries ({_ENTRY_DDL});
        {";".join(ENTRY_INDEXES[n] for n in ("entries_subject", "entries_event", "entries_ref"))};
        CREATE TABLE trial_entries ({_ENTRY_DDL});
        CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE objections (
            target TEXT PRIMARY KEY, event TEXT, status TEXT, opened_at INTEGER, decided_at INTEGER
        );
        CREATE TABLE periods (
            month TEXT PRIMARY KEY, closed INTEGER NOT NULL DEFAULT 0, ledger_hash TEXT,
            late_events INTEGER NOT NULL DEFAULT 0, closed_at_seq INTEGER
        );
        CREATE TABLE month_balances (
            month TEXT, subject TEXT, grp TEXT, score INTEGER, wallet INTEGER, tier TEXT,
            earned INTEGER, PRIMARY KEY (month, subject, grp)
        ) WITHOUT ROWID;
        CREATE TABLE assessment_results (
            assessment TEXT, period TEXT, scope_id TEXT, value REAL, rank INTEGER,
            selected INTEGER, badge TEXT, PRIMARY KEY (assessment, period, scope_id)
        ) WITHOUT ROWID;
        CREATE TABLE redemptions (
            event TEXT PRIMARY KEY, subject TEXT, grp TEXT, item TEXT, quantity INTEGER,
            cost INTEGER, outcome TEXT, reason_code TEXT, at INTEGER, period TEXT,
            partner TEXT
        );
        """
    )


# Events that correct others (amendments, withdrawals, objections): few, and the
# scorer looks them up before every run. A partial index keeps that lookup off the
# full table scan; queries that use it must repeat this term (``corrections()``).
def corrections(alias: str = "") -> str:
    """The partial index's WHERE term, its columns qualified by ``alias`` if given."""
    t = f"{alias}." if alias else ""
    return f"({t}amends IS NOT NULL OR {t}type IN ('withdraw', 'objection'))"


@migrations()
def m002_corrections_index(db: sqlite_utils.Database) -> None:
    db.execute(f"CREATE INDEX events_corrections ON events (seq) WHERE {corrections()}")


@migrations()
def m003_events_without_hash(db: sqlite_utils.Database) -> None:
    # Duplicates are told from conflicts by comparing the stored content itself
    # (only on an id collision); a hash column on every event cost ~30 % of ingest.
    db.execute("ALTER TABLE events DROP COLUMN hash")


@migrations()
def m004_batch_order(db: sqlite_utils.Database) -> None:
    # The seqs an events batch stored (first_seq..last_seq) and whether they came in
    # (at, id) order (1, 0; NULL: not recorded): with these the scorer needs no pass
    # over the new events to learn their order (see evaluate.Engine._scan_new).
    for column in ("first_seq", "last_seq", "in_order"):
        db.execute(f"ALTER TABLE batches ADD COLUMN {column} INTEGER")


@migrations()
def m005_batch_first(db: sqlite_utils.Database) -> None:
    # The first (at, id) among the events a batch read (first_at, first_id; NULL: not
    # recorded). Rows found stored already are not stored again, so it may sort
    # before what the batch stored: the scorer uses it when that event is new (see
    # evaluate.Engine._recorded_order), and saves a pass over the new events.
    db.execute("ALTER TABLE batches ADD COLUMN first_at INTEGER")
    db.execute("ALTER TABLE batches ADD COLUMN first_id TEXT")


ASSESSMENT = "reason = 'assessment'"  # the term of the partial index below
TOTALS_MONTH = "totals_month"  # state: the closed month ``closed_totals`` runs through


@migrations()
def m006_assessment_times(db: sqlite_utils.Database) -> None:
    # Assessment entries are the only ones dated after the last scored event (at
    # their period's end); this small partial index lets default_as_of find the
    # latest time without a scan of every entry and event (0.28 s at 1M events).
    db.execute(f"CREATE INDEX entries_assessment_at ON entries (at) WHERE {ASSESSMENT}")


@migrations()
def m007_graded_entries(db: sqlite_utils.Database) -> None:
    # Direct gradings are few; balances and every score run look them all up (a scan
    # of every entry before: 0.14 s at 1M). Queries repeat the term ``grade IS NOT NULL``.
    db.execute("CREATE INDEX entries_graded ON entries (subject) WHERE grade IS NOT NULL")


@migrations()
def m008_period_totals(db: sqlite_utils.Database) -> None:
    # A county's ledger grows by a month of entries each month; these keep the monthly
    # work to that month's entries (a year of the demo county: score 5.5 -> 20.1 s and
    # close 5.0 -> 14.5 s from January to December before them).
    # - entries by posting month and rule: a month's hash and points, the open months'
    #   entries, and each rule's months that a run's caps and escalation windows count
    #   (entries arrive in posting-month order: the index appends at a place per rule;
    #   one index, as each costs the writer ~1 µs an entry);
    # - entries that expire, by expiry: those still in force at a time are few;
    # - the accounts' totals through the latest closed month (closed months never
    #   change), kept by ``close`` (see ``account_sums``).
    db.executescript(
        f"""
        {ENTRY_INDEXES["entries_period"]};
        {ENTRY_INDEXES["entries_expiry"]};
        CREATE TABLE closed_totals (
            subject TEXT NOT NULL, grp TEXT NOT NULL, fixed INTEGER NOT NULL,
            wallet INTEGER NOT NULL, PRIMARY KEY (subject, grp)
        ) WITHOUT ROWID;
        """
    )


@migrations()
def m009_rejects_by_place(db: sqlite_utils.Database) -> None:
    # ingesting a file again stores none of its rejects twice: each flush looks up the
    # lines it rejects, not every reject of the file (found in review)
    db.execute("CREATE INDEX rejects_place ON rejects (file, line)")


@migrations()
def m010_rejects_waiting(db: sqlite_utils.Database) -> None:
    # scoring's own rejects (batch 0) that wait for a subject: the event's own, or the
    # one its linked scoring names; the first run after that subject comes scores the
    # event again (evaluate.Engine._requeue_waiting)
    db.execute("ALTER TABLE rejects ADD COLUMN waits TEXT")
    # events that named an unknown subject before: they wait for it
    db.execute(
        "UPDATE rejects SET waits = (SELECT subject FROM events WHERE id = rejects.record_id)"
        " WHERE batch = 0 AND reason LIKE 'event names subject %'"
    )


@migrations()
def m011_trial_lookups(db: sqlite_utils.Database) -> None:
    # a correction reverses its target's trial entries, and diff counts the ones that
    # stand: by event and by the entry a reversal refers to, not a pass each time
    db.execute("CREATE INDEX trial_entries_event ON trial_entries (event)")
    db.execute("CREATE INDEX trial_entries_ref ON trial_entries (ref) WHERE ref IS NOT NULL")


# The page size of a new ledger. Its work is appending and scanning millions of rows:
# with 8 KB pages a 1M-entry run's writer inserted, indexed and checkpointed in
# 3.97-4.75 s against 4.30-7.31 s with SQLite's default 4 KB (three alternating runs).
# An existing ledger keeps the page size it was made with.
PAGE_SIZE = 8192


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (and migrate) a ledger database. WAL, so readers never block the writer."""
    from .errors import GridcreditError

    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new database only
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as e:
        hint = (
            "the folder does not exist or is not writable"
            if isinstance(e, sqlite3.OperationalError)
            else "it is not a gridcredit ledger (SQLite) file"
        )
        raise GridcreditError(
            f"{path}: cannot open the ledger database ({e}); {hint}. Pass --db with a new or"
            " existing ledger file"
        ) from None
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=FILE")  # big sorts (10M events) spill to disk, not RAM
    conn.execute("PRAGMA cache_size=-64000")  # 64 MB: scans need no more
    db = sqlite_utils.Database(conn)
    migrations.apply(db)
    return db


def memory_db() -> sqlite_utils.Database:
    db = sqlite_utils.Database(memory=True)
    db.conn.isolation_level = None
    migrations.apply(db)
    return db


def get_state(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_state(db: sqlite_utils.Database, key: str, value: Any) -> None:
    db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", [key, str(value)])


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


def capped_tier(group: Any, tier: str, grade: str | None) -> str:
    """The worse of a score's tier and a direct grading cap."""
    if grade is None:
        return tier
    return grade if group.tier_rank(grade) > group.tier_rank(tier) else tier


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
    worst: dict[tuple[str, str], str] = {}
    for s, g, tier in db.execute(
        "SELECT subject, grp, grade FROM entries g WHERE grade IS NOT NULL AND at <= ?"
        " AND grade_until > ? AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = g.id"
        " AND r.reason IN ('reversal', 'repair') AND r.at <= ?)",
        [t, t, t],
    ).fetchall():
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

    Capped matches, reversals and repairs appear as entries of their own;
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
            if not trial:
                if not expired:
                    run[0] += pts
                run[1] += wal
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
                )  # fmt: skip
            )
    return out
