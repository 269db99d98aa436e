"""The ledger's schema: tables, indexes and their explicit migrations; opening a
ledger (``connect``, ``memory_db``) and its small ``state`` table.

The ledger is append-only for closed months. Every balance is base score plus
entries, so any number can be explained entry by entry.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

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
# them inside its transaction (``scoring.ledger.writer.REBUILT_INDEXES``): sorting once is
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


SCHEMA_BY = "schema_by"  # state: the gridcredit version that last changed the schema


def schema_version() -> int:
    """The ledger schema this gridcredit writes (``PRAGMA user_version``): its migration count."""
    return len(migrations._migrations)


def newer_schema(conn: sqlite3.Connection) -> str | None:
    """Why a ledger is one a newer gridcredit made (a migration this one does not know,
    or a higher ``user_version``), or None. Read only: nothing is written."""
    from .. import __version__

    (version,) = conn.execute("PRAGMA user_version").fetchone()
    known = {m.name for m in migrations._migrations}
    try:
        applied = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                [migrations.name],
            )
        ]
    except sqlite3.OperationalError:  # no such table: new, or not a ledger yet
        applied = []
    unknown = [n for n in applied if n not in known]
    if not unknown and version <= schema_version():
        return None
    try:
        row = conn.execute("SELECT value FROM state WHERE key = ?", [SCHEMA_BY]).fetchone()
    except sqlite3.OperationalError:
        row = None
    made_by = f"gridcredit {row[0]}" if row and row[0] else f"a gridcredit newer than {__version__}"
    what = f"schema version {version}" if version > schema_version() else "its schema"
    if unknown:
        what += f" (migration{'s' if len(unknown) > 1 else ''} {', '.join(unknown)})"
    return (
        f"the ledger was made by {made_by}: {what} is newer than this gridcredit"
        f" {__version__} knows (schema version {schema_version()}). Nothing was read or"
        " written. Upgrade gridcredit (pip install -U gridcredit) and run the command again"
    )


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (and migrate) a ledger database. WAL, so readers never block the writer.

    A ledger a newer gridcredit made is refused before anything is written to it
    (:func:`newer_schema`): its tables may mean something this version does not know.
    """
    from .. import __version__
    from ..errors import GridcreditError

    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        newer = newer_schema(conn)
        if newer is not None:
            conn.close()
            raise GridcreditError(f"{path}: {newer}")
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
    from .scratch import clean_stale

    clean_stale(path)  # what a killed run left beside the ledger
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=FILE")  # big sorts (10M events) spill to disk, not RAM
    conn.execute("PRAGMA cache_size=-64000")  # 64 MB: scans need no more
    db = sqlite_utils.Database(conn)
    migrations.apply(db)
    if conn.execute("PRAGMA user_version").fetchone()[0] != schema_version():
        # say which schema (and which gridcredit) wrote the ledger, so that an older
        # gridcredit opening it later refuses it rather than writing into it
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA user_version = {schema_version()}")
            set_state(db, SCHEMA_BY, __version__)
            conn.execute("COMMIT")
        except sqlite3.OperationalError:  # a read-only ledger: read it as it is
            if conn.in_transaction:
                conn.execute("ROLLBACK")
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


PRECISION = "points_precision"  # state: the scheme precision the ledger's points are in


def check_precision(db: sqlite_utils.Database, prec: Any) -> None:
    """Refuse to score into a ledger whose points are in another precision; remember a
    fractional precision at the first score. A ledger without the key holds whole points
    when it holds entries at all (it predates precision, or a whole-point scheme scored
    it), so whole-point schemes write nothing here and change no ledger byte."""
    from ..errors import UsageError

    stored = get_state(db, PRECISION)
    if stored is None:
        if prec.scale == 1:
            return
        has = (
            db.execute("SELECT 1 FROM entries LIMIT 1").fetchone()
            or db.execute("SELECT 1 FROM trial_entries LIMIT 1").fetchone()
        )
        if not has:
            set_state(db, PRECISION, prec.text)
            return
        stored = "1"
    if stored != prec.text:
        raise UsageError(
            f"the ledger holds points in precision {stored} but scheme.yaml now says"
            f" {prec.text}; a precision change would change every balance it holds. Put"
            f" precision back to {stored} in scheme.yaml, or start a new ledger (--db) and"
            " score every event again with the new precision"
        )
