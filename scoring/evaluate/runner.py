"""The SQLite runner of the scorer: unscored events → ledger entries, in (event
time, event id) order, through the pure core (:mod:`scoring.evaluate.core`).

One ``score`` run is one transaction: killed at any moment, the database is
as before the run, and the next run does the same work with the same result.
The runner loads the subjects and their prior state from the ledger, feeds the
core the events in batches, and writes what the core emits through the ledger
package (:mod:`scoring.ledger.writer`; a big appending run through its writer
process, its events read by :mod:`scoring.ledger.reader`).

Incremental runs append when every new event sorts after the last one scored.
When an event arrives that sorts earlier (a late record for an open month),
the run rewinds: it deletes the entries, redemptions and objection states of
every event from that point on in open months and scores them again in order,
so the ledger never depends on how events were split into files or in which
order the files came. Closed months are never rewound; a late event for one
posts to the first open month.

See docs/design.md for the entry columns and SPEC §4 for the semantics.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable
from typing import Any

import orjson
import sqlite_utils

from ..compile import CompiledScheme
from ..durations import next_month
from ..ledger import (
    ENTRY_COLUMNS,
    account_sums,
    check_precision,
    corrections,
    get_state,
    last_scored,
)
from ..ledger.bulk import paused_gc
from ..ledger.reader import READ_EVERY, EventReader
from ..ledger.writer import (
    ENTRIES as ENTRY_ROWS,
)
from ..ledger.writer import (
    INSERT_KIND,
    INSERT_TRIAL,
    KIND_DDL,
    LedgerWriter,
    execute,
)
from ..model import Scheme
from ..periods import closed_months
from .core import OBJECTION, WAITS_EVENT, WITHDRAW, PostingMonths, Scorer
from .outputs import (
    ENTRIES,
    KINDS,
    OBJECTIONS,
    REDEMPTIONS,
    REJECTS,
    TRIAL,
    WITHDRAWN,
    ScoreSummary,
)

# What each op the core emits is written with (``ledger.writer.execute``)
_SQL = {
    ENTRIES: ENTRY_ROWS,
    KINDS: INSERT_KIND,
    TRIAL: INSERT_TRIAL,
    REDEMPTIONS: (
        "INSERT OR REPLACE INTO redemptions (event, subject, grp, item, quantity, cost, outcome,"
        " reason_code, at, period, partner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    WITHDRAWN: (
        "UPDATE redemptions SET outcome = 'withdrawn', reason_code = 'withdrawn' WHERE event = ?"
    ),
    OBJECTIONS: (
        "INSERT INTO objections (target, event, status, opened_at, decided_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(target) DO UPDATE SET event = excluded.event, status = excluded.status,"
        " decided_at = excluded.decided_at"
    ),
    # scoring's own rejects (batch 0), at the event's file and line
    REJECTS: (
        "INSERT INTO rejects (batch, file, line, record_id, reason, raw, waits)"
        " SELECT 0, COALESCE(b.file, 'score'), COALESCE(e.line, 0), e.id, ?, NULL, ?"
        " FROM events e LEFT JOIN batches b ON b.id = e.batch WHERE e.id = ?"
    ),
}

FLUSH_EVERY = 20_000
# The scan reads each event as (id, subject, at, key, amends), where the key
# ``type \x1f attributes JSON`` is the memo's key as it is: one string to hash, no
# tuple to build, and one column fewer to read (type names never hold \x1f).
EVENT_COLUMNS = "id, subject, at, type || char(31) || attrs, amends"
NEW = "seq > ? AND seq <= ?"  # the new events of an appending run: (done, top]
BULK_EVENTS = 20_000  # runs this big append through a writer process
# A ledger up to this many entries keeps its indexes up to date row by row even in a
# big run: the writer process does that while the evaluator is still busy, so the run
# ends without a rebuild (100k events: 0.1-0.4 s faster than rebuilding). Beyond it,
# random inserts into the (subject, group) index make the writer slower than the
# evaluator, which then waits for it, and a big run drops that index and rebuilds it
# once at the end (1M events: 2.1-2.6 s faster than live, in three alternating pairs).
# GRIDCREDIT_REINDEX_ABOVE overrides it.
REINDEX_ABOVE = 500_000
_STATE_SQL = "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)"
# The entries a run's caps and escalation windows count: each rule's since its horizon
# (temp.horizons), in (time, id) order. Matches come through the (period, rule) index,
# a seek per rule and month from the horizon's month on (temp.horizon_months: an entry
# posts to its own month or a later one); reversals, which count at the time of the
# entry they undo, under the index of entries that refer to another (few). Trial
# entries are few: one pass.
_HORIZONS = """
    SELECT e.rule, e.subject, e.grp, e.at, e.points, e.reason, NULL, e.at AS t, e.id AS i
    FROM temp.horizon_months m CROSS JOIN entries e INDEXED BY entries_period
        ON e.period = m.period AND e.rule = m.rule
        JOIN temp.horizons h ON h.rule = m.rule
    WHERE e.at >= h.since AND e.reason IN ('match', 'capped')
    UNION ALL
    SELECT e.rule, e.subject, e.grp, COALESCE(o.at, e.at), e.points, e.reason, o.reason, e.at, e.id
    FROM entries e INDEXED BY entries_ref CROSS JOIN temp.horizons h ON h.rule = e.rule
        LEFT JOIN entries o ON o.id = e.ref
    WHERE e.ref IS NOT NULL AND e.reason = 'reversal' AND COALESCE(o.at, e.at) >= h.since
    ORDER BY t, i
"""
_TRIAL_HORIZONS = """
    SELECT e.rule, e.subject, e.grp, COALESCE(o.at, e.at), e.points, e.reason, o.reason
    FROM trial_entries e CROSS JOIN temp.horizons h ON h.rule = e.rule
        LEFT JOIN trial_entries o ON e.reason = 'reversal' AND o.id = e.ref
    WHERE COALESCE(o.at, e.at) >= h.since AND e.reason IN ('match', 'capped')
    ORDER BY e.at, e.id
"""  # trial reversals give no cap room or window back, in a run or after (see _REVERSE_TRIAL)


def _rebuilds_indexes(new_events: int, entries: int) -> bool:
    """Whether a run of ``new_events`` onto a ledger of ``entries`` drops the entry
    indexes and rebuilds them at the end: when it adds about as many rows as the
    ledger has and the ledger grows beyond ``REINDEX_ABOVE`` (row by row upkeep then
    costs several times a rebuild)."""
    above = int(os.environ.get("GRIDCREDIT_REINDEX_ABOVE") or REINDEX_ABOVE)
    return new_events * 2 >= entries and entries + new_events > above


class SqlitePrior:
    """The :class:`~scoring.evaluate.core.PriorState` of a run on a SQLite ledger:
    rows with ids below the run's first (``id < first_id``), so that a run in one
    transaction does not read back what it wrote itself."""

    def __init__(self, conn: Any, first_id: int, first_trial_id: int):
        self.conn = conn
        self.first_id = first_id
        self.first_trial_id = first_trial_id

    def has_event(self, event_id: str) -> bool:
        return bool(self.conn.execute("SELECT 1 FROM events WHERE id = ?", [event_id]).fetchone())

    def _live(self, where: str, value: Any) -> list[tuple]:
        return self.conn.execute(
            "SELECT id, subject, grp, account, points, wallet, rule, pack_hash, at, expires_at, reason"
            f" FROM entries e WHERE {where} AND id < ?"
            " AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id AND r.reason = 'reversal')",
            [value, self.first_id],
        ).fetchall()

    def live_entries(self, event_id: str) -> list[tuple]:
        return self._live("event = ?", event_id)

    def live_repairs(self, entry_id: int) -> list[tuple]:
        return self._live("ref = ? AND reason = 'repair'", entry_id)

    def live_trial_entries(self, event_id: str) -> list[tuple[int, tuple]]:
        return [
            (r[0], r[1:])
            for r in self.conn.execute(
                "SELECT id, subject, grp, account, points, wallet, rule, pack_hash, event, at,"
                " period, reason, ref, expires_at, grade, grade_until, note FROM trial_entries t"
                " WHERE event = ? AND id < ? AND reason IN ('match', 'linked', 'repair')"
                " AND NOT EXISTS (SELECT 1 FROM trial_entries r WHERE r.ref = t.id"
                " AND r.reason = 'reversal') ORDER BY id",
                [event_id, self.first_trial_id],
            )
        ]

    def penalties(
        self, subject: str, grp: str, rules: list[str], since: int, until: int
    ) -> list[tuple]:
        marks = ",".join("?" * len(rules))
        return self.conn.execute(
            f"""SELECT id, points, rule, pack_hash, at, expires_at FROM entries e
                WHERE subject = ? AND grp = ? AND rule IN ({marks})
                  AND (points < 0 OR grade IS NOT NULL)
                  AND reason IN ('match', 'linked') AND at >= ? AND at <= ? AND id < ?
                  AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id)""",
            [subject, grp, *rules, since, until, self.first_id],
        ).fetchall()

    def granted_redemption(self, event_id: str) -> tuple | None:
        row = self.conn.execute(
            "SELECT item, subject, quantity, at FROM redemptions WHERE event = ? AND outcome = 'granted'",
            [event_id],
        ).fetchone()
        return tuple(row) if row else None


def load_running_totals(conn: Any, core: Scorer) -> None:
    """The running totals of ``core.total_rules`` (rules with ``points: {total: ...}``):
    their live match entries (every trial one: trial corrections give nothing back)."""
    marks = ",".join("?" * len(core.total_rules))
    for trial, table in ((False, "entries"), (True, "trial_entries")):
        live = "" if trial else (
            " AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id AND r.reason = 'reversal')"
        )  # fmt: skip
        rows = conn.execute(
            f"SELECT id, {', '.join(ENTRY_COLUMNS)} FROM {table} e"
            f" WHERE rule IN ({marks}) AND reason = 'match'{live} ORDER BY id",
            core.total_rules,
        )
        core.load_totals(((r[0], r[1:]) for r in rows), trial)


class Engine:
    """One score run on a SQLite ledger: loads, drives the core, writes."""

    def __init__(
        self, db: sqlite_utils.Database, scheme: Scheme, compiled: CompiledScheme | None = None
    ):
        self.db = db
        self.conn = db.conn
        self.scheme = scheme
        self.clock = scheme.clock
        self.writer: LedgerWriter | None = None
        self.core = Scorer(scheme, compiled, emit=self._emit)
        self.compiled = self.core.compiled
        self.summary = self.core.summary

    # --- loading -----------------------------------------------------------

    def _load_subjects(self) -> None:
        grids = {gid: (g.community, g.street) for gid, g in self.scheme.grids.items()}
        for gid, comm, street in self.conn.execute("SELECT id, community, street FROM grids"):
            grids.setdefault(gid, (comm, street))
        self.core.load_subjects(
            grids,
            self.conn.execute("SELECT subject, grp FROM memberships"),
            self.conn.execute("SELECT id, kind, grid, tags, links FROM subjects"),
        )

    def _load_state(self, since: int) -> None:
        """Rebuild caps, escalation windows, wallets and stock from the ledger."""
        q = self.conn.execute
        core = self.core
        # [fixed score, wallet] of each account (subject, group); the fixed score leaves
        # out points that expire, kept in ``expiring``
        # (from the totals kept through the latest closed month and the open months'
        # entries: a monthly run reads its own months, not the whole ledger)
        core.start_state(account_sums(self.db, self.scheme))
        horizons = core.horizons(since)
        if horizons:
            q(
                "CREATE TEMP TABLE IF NOT EXISTS horizons"
                " (rule TEXT PRIMARY KEY, since INTEGER) WITHOUT ROWID"
            )
            q("DELETE FROM temp.horizons")
            self.conn.executemany("INSERT INTO temp.horizons VALUES (?, ?)", horizons.items())
            q(
                "CREATE TEMP TABLE IF NOT EXISTS horizon_months"
                " (rule TEXT, period TEXT, PRIMARY KEY (rule, period)) WITHOUT ROWID"
            )
            q("DELETE FROM temp.horizon_months")
            # (one aggregate a query: SQLite then seeks the index's ends)
            (first,) = q("SELECT MIN(period) FROM entries").fetchone()
            (last,) = q("SELECT MAX(period) FROM entries").fetchone()
            rule_months = []
            for rule, h in horizons.items() if last else ():
                month = first if h < -(2**61) else max(first, self.clock.month(h))
                while month <= last:
                    rule_months.append((rule, month))
                    month = next_month(month)
            self.conn.executemany("INSERT INTO temp.horizon_months VALUES (?, ?)", rule_months)
            for trial in (False, True):
                # a reversal counts in the period of the entry it undoes (its `ref`)
                core.count_prior(q(_TRIAL_HORIZONS if trial else _HORIZONS), trial)
        if core.total_rules:  # running totals, read back from their entries' notes
            load_running_totals(self.conn, core)
        # running scores, for redemption tier checks without a query per request
        core.link_accounts()
        core.load_expiring(
            q(
                "SELECT subject, grp, expires_at, points FROM entries INDEXED BY entries_expiry"
                " WHERE expires_at > ?",
                [since],
            )
        )
        core.load_graded(
            q(
                "SELECT subject, grp, grade, grade_until, id FROM entries e WHERE grade IS NOT NULL"
                " AND grade_until > ? AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id"
                " AND r.reason IN ('reversal', 'repair'))",
                [since],
            )
        )
        # Entry ids are assigned in insertion order from here, so this run knows the id
        # of every entry it writes without reading the ledger back.
        (last,) = q("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()
        (trial_last,) = q("SELECT COALESCE(MAX(id), 0) FROM trial_entries").fetchone()
        core.begin(last + 1, trial_last + 1)
        core.load_redemptions(
            q("SELECT item, subject, quantity, at FROM redemptions WHERE outcome = 'granted'")
        )
        core.calendar = PostingMonths(self.clock, closed_months(self.db))
        # committed ledger rows of earlier runs are read through this connection
        core.prior = SqlitePrior(self.conn, core.first_id, core.first_trial_id)
        self.first_id = core.first_id

    def _emit(self, op: str, rows: list) -> None:
        """Write what the core emits (the writer process, when running)."""
        if self.writer is not None:
            self.writer.put(_SQL[op], rows)
        else:
            execute(self.conn, _SQL[op], rows)

    # --- the run -----------------------------------------------------------

    def run(self) -> ScoreSummary:
        t0 = time.perf_counter()
        conn = self.conn
        done = int(get_state(self.db, "scored_seq", "0") or 0)
        self._requeue_waiting(done)
        (top,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        if top <= done:
            self.summary.seconds = time.perf_counter() - t0
            return self.summary
        with paused_gc():
            first, in_order = self._scan_new(done, top)
            path = self._bulk_path(done, top, first)
            if path:
                # read-only here; the child process writes and commits (see LedgerWriter)
                self._run(done, top, first, in_order, bulk_path=path)
            else:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._run(done, top, first, in_order)
                    conn.execute("COMMIT")
                except BaseException:
                    # SQLite has rolled back already after some errors (a full disk):
                    # a second ROLLBACK would hide the first error behind its own
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        self.summary.seconds = time.perf_counter() - t0
        return self.summary

    def _requeue_waiting(self, done: int) -> None:
        """Events scored while their subject was unknown left a reject (batch 0) and no
        entry. Once the subject is ingested they are new again: moved to the end of the
        queue (new seqs), their rejects gone, in one small transaction; the run then
        scores them in (time, id) order, rewinding open months where they fall before
        work done, so the ledger is the one the subject-first order gives."""
        conn = self.conn
        open_start = self._open_start(closed_months(self.db))
        # an event waiting for its own subject is scored now, late if its month is
        # closed; one waiting for a linked subject only while its month is open (a
        # rewind then redoes all of its entries; a closed month's stay as they are)
        waiting = conn.execute(
            "SELECT DISTINCT e.seq FROM rejects r JOIN events e ON e.id = r.record_id"
            " JOIN subjects s ON s.id = r.waits WHERE r.batch = 0 AND e.seq <= ?"
            " AND (r.waits = e.subject OR e.at >= ?)"
            # a correction whose target has come since, while its month is open (found by
            # a property test: a withdrawal ingested before the event it names, which an
            # earlier amendment replaced, reversed nothing when split into runs)
            " UNION SELECT e.seq FROM rejects r JOIN events e ON e.id = r.record_id"
            " JOIN events t ON t.id = substr(r.waits, ?) WHERE r.batch = 0"
            " AND r.waits LIKE ? AND e.seq <= ? AND e.at >= ? ORDER BY 1",
            [done, open_start, len(WAITS_EVENT) + 1, WAITS_EVENT + "%", done, open_start],
        ).fetchall()
        if not waiting:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            (top,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            for k, (seq,) in enumerate(waiting, 1):
                conn.execute("UPDATE events SET seq = ? WHERE seq = ?", [top + k, seq])
            conn.execute(
                # all of their scoring's rejects: they are scored afresh (found in review:
                # an amendment naming no event left its other reject twice)
                "DELETE FROM rejects WHERE batch = 0 AND record_id IN"
                " (SELECT e.id FROM events e JOIN subjects s ON s.id = e.subject WHERE e.seq > ?)",
                [top],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.summary.waited = len(waiting)

    def _scan_new(self, done: int, top: int) -> tuple[tuple[int, str], bool]:
        """The first new event in (time, id) order, and whether the new events were
        ingested in that order (then the rowid scan is the sorted order): from what
        ingest recorded of each batch, or else one pass over the new events."""
        known = self._recorded_order(done, top)
        if known is not None:
            return known
        rows = self.conn.execute("SELECT at, id FROM events WHERE seq > ? ORDER BY seq", [done])
        first = prev = next(rows)
        in_order = True
        for key in rows:
            if key < prev:
                in_order = False
                if key < first:
                    first = key
            prev = key
        return first, in_order

    def _recorded_order(self, done: int, top: int) -> tuple[tuple[int, str], bool] | None:
        """``_scan_new`` from the batches that stored the new events (seqs ``done``+1
        ..``top``), when every one of them recorded whether its events came in (at,
        id) order: in order if each did and each batch's last event sorts before the
        next one's first (the first new event is then the first stored). Otherwise
        the first is the least of the batches' recorded firsts when that event is a
        new one (it sorts before all they read), or else found by SQLite (a pass
        over the new events). None when a batch recorded nothing."""
        conn = self.conn

        def at_id(seq: int) -> tuple[int, str] | None:
            row = conn.execute("SELECT at, id FROM events WHERE seq = ?", [seq]).fetchone()
            return None if row is None else (row[0], row[1])

        expect, prev, in_order = done + 1, None, True
        firsts: list[tuple[int, str] | None] = []
        for first, last, ordered, first_at, first_id in conn.execute(
            "SELECT first_seq, last_seq, in_order, first_at, first_id FROM batches"
            " WHERE last_seq > ? AND last_seq >= first_seq ORDER BY id",
            [done],
        ).fetchall():
            if first != expect or ordered is None:
                return None  # a batch without the record
            head, tail = at_id(first), at_id(last)
            if head is None or tail is None:
                return None  # events removed since (a scratch copy)
            in_order = in_order and ordered == 1 and (prev is None or prev <= head)
            prev, expect = tail, last + 1
            firsts.append(None if first_id is None else (first_at, first_id))
        if prev is None or expect != top + 1:
            return None  # new events no batch accounts for
        if in_order:
            return at_id(done + 1), True  # type: ignore[return-value]  # checked above
        known = [f for f in firsts if f is not None]
        if known and len(known) == len(firsts):
            least = min(known)
            row = conn.execute("SELECT seq FROM events WHERE id = ?", [least[1]]).fetchone()
            if row is not None and done < row[0] <= top and at_id(row[0]) == least:
                return least, False
        row = conn.execute(
            "SELECT at, id FROM events WHERE seq > ? ORDER BY at, id LIMIT 1", [done]
        ).fetchone()
        return (row[0], row[1]), False

    def _bulk_path(self, done: int, top: int, first: tuple[int, str]) -> str | None:
        """The database file, when this run is big, appends, and may use a writer process."""
        if top - done < BULK_EVENTS or os.environ.get("GRIDCREDIT_SINGLE_PROCESS"):
            return None
        if "fork" not in multiprocessing.get_all_start_methods():
            return None
        row = self.conn.execute("PRAGMA database_list").fetchone()
        if not row or not row[2] or self.conn.in_transaction:
            return None
        if self._rewinds(first, last_scored(self.db), self._open_start(closed_months(self.db))):
            return None  # a rewind: done in this process, in one transaction
        return str(row[2])

    @staticmethod
    def _rewinds(first: tuple[int, str], last_key: tuple[int, str] | None, open_start: int) -> bool:
        """Whether a run must rewind: its first event sorts before work already done
        in an open month. When all that work is in closed months, the late events
        are only late for those, post to the first open month and come first in the
        run's order, as in an appending run: a monthly run whose file carries the
        closed month's stragglers appends (with a writer process, if big)."""
        return last_key is not None and first <= last_key and last_key[0] >= open_start

    def _run(
        self, done: int, top: int, first: tuple[int, str], in_order: bool,
        bulk_path: str | None = None,
    ) -> None:  # fmt: skip
        conn = self.conn
        if bulk_path is None:  # entry kinds are numbered afresh each run (the writer's own)
            for ddl in KIND_DDL:
                conn.execute(ddl)
            conn.execute("DELETE FROM temp.entry_kinds")
        last_key = last_scored(self.db)
        open_start = self._open_start(closed_months(self.db))
        if self._rewinds(first, last_key, open_start):
            # an event sorts before work already done: rewind open months from there
            rewind_at, rewind_id = first
            self.summary.rewound_from = rewind_id
            conn.execute("DROP TABLE IF EXISTS temp.redo")
            conn.execute(
                "CREATE TEMP TABLE redo AS SELECT id FROM events WHERE (at > ? OR (at = ? AND id >= ?))"
                " AND (seq > ? OR at >= ?) AND seq <= ?",
                [rewind_at, rewind_at, rewind_id, done, open_start, top],
            )
            conn.execute("CREATE INDEX temp.redo_id ON redo (id)")
            for table in ("entries", "trial_entries"):
                conn.execute(f"DELETE FROM {table} WHERE event IN (SELECT id FROM temp.redo)")
            conn.execute(
                "DELETE FROM rejects WHERE batch = 0 AND record_id IN (SELECT id FROM temp.redo)"
            )
            conn.execute("DELETE FROM redemptions WHERE event IN (SELECT id FROM temp.redo)")
            self._rewind_objections(top)
            where = "id IN (SELECT id FROM temp.redo)"
            params: list[Any] = []
            since = rewind_at
        else:
            where = NEW
            params = [done, top]
            since = first[0]
        # Events usually arrive in time order; then the rowid scan is the sorted order.
        in_order = in_order and where == NEW
        order = "seq" if in_order else "at, id"
        scan = f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY {order}"
        # a big run's events are read (and sorted) by a child process from here on
        reader = EventReader(bulk_path, scan, params) if bulk_path else None
        try:
            self._load_subjects()
            self._load_state(since)
            core = self.core
            # corrections are few and under a partial index (ledger.corrections)
            targets: set[str] = set()
            for etype, amends, attrs in conn.execute(
                f"SELECT type, amends, attrs FROM events WHERE {where} AND {corrections()}", params
            ):
                if amends:
                    targets.add(amends)
                if etype in (WITHDRAW, OBJECTION):
                    t = orjson.loads(attrs).get("target")
                    if t and isinstance(t, str):
                        targets.add(t)
            # the amendments of each event, across the ledger, and what a correction of
            # an event undoes besides it: the versions of it that came before (see
            # Scorer._reverse_event); their entries are kept in memory like any target's
            amendments = conn.execute(
                f"SELECT amends, id, at FROM events WHERE {corrections()}"
                " AND amends IS NOT NULL AND seq <= ?",
                [top],
            ).fetchall()
            # an event amended by one that sorts before it is never scored: the amendment
            # came first and replaces it (one that sorts after reverses it instead)
            skip_amended = [
                t
                for (t,) in conn.execute(
                    f"SELECT e.id FROM events a JOIN events e ON e.id = a.amends"
                    f" WHERE {corrections('a')} AND a.amends IS NOT NULL"
                    f" AND {'e.seq > ? AND e.seq <= ?' if where == NEW else 'e.' + where}"
                    " AND (a.at < e.at OR (a.at = e.at AND a.id < e.id))",
                    params,
                )
            ]
            core.plan(targets, amendments, skip_amended)
            batches: Iterable[list]
            if reader is not None:
                batches = reader
            else:
                cur = conn.execute(scan, params)
                batches = iter(lambda: cur.fetchmany(READ_EVERY), [])
            if bulk_path:
                # lookups of earlier runs read this connection's committed snapshot
                reindex = _rebuilds_indexes(top - done, self.first_id - 1)
                self.writer = LedgerWriter(bulk_path, self.first_id, done, reindex)
            last_row = None
            buf = core.buf
            for rows in batches:
                core.score_rows(rows)
                last_row = rows[-1]
                if len(buf) >= FLUSH_EVERY:
                    core.flush()
            core.finish()
            last_id = core.first_id + core.flushed - 1 if core.flushed else None
            final: list[tuple[str, list[Any]]] = []
            if last_row is not None:
                new_last = (last_row[2], last_row[0])  # (at, id)
                if last_key is None or new_last > last_key:
                    final.append(
                        (_STATE_SQL, ["last_scored", orjson.dumps(list(new_last)).decode()])
                    )
            final.append((_STATE_SQL, ["scored_seq", str(top)]))
            for month, n in core.late_by_month.items():
                final.append((
                    "INSERT INTO periods (month, late_events) VALUES (?, ?)"
                    " ON CONFLICT(month) DO UPDATE SET late_events = late_events + excluded.late_events",
                    [month, n],
                ))  # fmt: skip
            if self.writer is not None:
                self.writer.finish(last_id, final)
            else:
                (found,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()
                if last_id is not None and found != last_id:
                    raise RuntimeError(f"ledger ids out of step: expected {last_id}, found {found}")
                for sql, ps in final:
                    conn.execute(sql, ps)
                conn.execute("DROP TABLE IF EXISTS temp.redo")
        finally:
            # the writer first: forked after the reader, it holds a copy of the reader's
            # pipe, which a reader still sending must see closed to stop
            if self.writer is not None:
                self.writer.close()
                self.writer = None
            if reader is not None:
                reader.close()

    def _rewind_objections(self, top: int) -> None:
        """Set each objection whose latest event is scored again (``temp.redo``) back to
        what its earlier objection events made of it, so that the replay goes on from
        there: deleting it, as before, lost when it was opened (``opened_at`` then
        depended on how the events were split into runs; found in review).

        An objection's row is the fold of its objection events in (time, id) order
        (``Scorer._correction``): opened at the first, its event, status and
        decision from the last. Events that named no event left a reject instead."""
        conn = self.conn
        targets = [
            t
            for (t,) in conn.execute(
                "SELECT target FROM objections WHERE event IN (SELECT id FROM temp.redo)"
            )
        ]
        if not targets:
            return
        conn.execute("DELETE FROM objections WHERE event IN (SELECT id FROM temp.redo)")
        state: dict[str, list[Any]] = {}
        for i in range(0, len(targets), 500):
            part = targets[i : i + 500]
            for eid, at, attrs in conn.execute(
                f"SELECT e.id, e.at, e.attrs FROM events e WHERE {corrections('e')}"
                " AND e.type = ? AND e.seq <= ? AND e.id NOT IN (SELECT id FROM temp.redo)"
                f" AND json_extract(e.attrs, '$.target') IN ({', '.join('?' * len(part))})"
                " AND NOT EXISTS (SELECT 1 FROM rejects r WHERE r.batch = 0 AND r.record_id = e.id)"
                " ORDER BY e.at, e.id",
                [OBJECTION, top, *part],
            ):
                a = orjson.loads(attrs)
                target, status = a["target"], a.get("status", "open")
                if target == eid:
                    continue
                row = state.get(target)
                if row is None:
                    row = state[target] = [target, eid, status, at, None]
                row[1], row[2] = eid, status
                row[4] = None if status == "open" else at
        conn.executemany(
            "INSERT INTO objections (target, event, status, opened_at, decided_at)"
            " VALUES (?, ?, ?, ?, ?)",
            list(state.values()),
        )

    def _open_start(self, closed: set[str]) -> int:
        if not closed:
            return -(2**62)
        start, _ = self.clock.period_bounds(next_month(max(closed)))
        return start


def score(
    db: sqlite_utils.Database, scheme: Scheme, compiled: CompiledScheme | None = None
) -> ScoreSummary:
    """Evaluate every unscored event into the ledger (one transaction)."""
    from ..plugins import plugins_of

    check_precision(db, scheme.precision)  # before anything is written
    pm = plugins_of(scheme)
    pm.hook.before_score(db=db, scheme=scheme)
    summary = Engine(db, scheme, compiled).run()
    pm.hook.after_score(db=db, scheme=scheme, summary=summary)
    return summary
