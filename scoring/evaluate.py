"""The scorer: unscored events → ledger entries, in (event time, event id) order.

One ``score`` run is one transaction: killed at any moment, the database is
as before the run, and the next run does the same work with the same result.

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

import bisect
import multiprocessing
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import apsw
import orjson
import sqlite_utils

from .ledger.bulk import child_connection, paused_gc
from .compile import FAR_FUTURE, FAR_PAST, CompiledRule, CompiledScheme, compile_scheme
from .conditions import SubjectView, reads_subject
from .durations import PERIOD_KINDS, next_month
from .errors import GridcreditError
from .ledger import (
    ENTRY_COLUMNS,
    ENTRY_INDEXES,
    account_sums,
    capped_tier,
    corrections,
    get_state,
    last_scored,
)
from .model import Scheme
from .periods import PostingCalendar, closed_months

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows, where no writer process runs (no fork)
    fcntl = None  # type: ignore[assignment]

REDEEM, WITHDRAW, OBJECTION = "redeem", "withdraw", "objection"
SIMPLE, CAPPED, GENERAL = 0, 1, 2  # rule shapes, see CompiledRule.shape

_INSERT_ENTRY = f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
_INSERT_TRIAL = _INSERT_ENTRY.replace("INTO entries", "INTO trial_entries")
# A correction undoes the shadow ledger's entries of its target too (found in review:
# a withdrawn event's trial entries stood, so trial figures overstated a rule's effect).
_REVERSE_TRIAL = (
    f"INSERT INTO trial_entries ({', '.join(ENTRY_COLUMNS)})"
    " SELECT subject, grp, account, -points, -wallet, rule, pack_hash, ?, ?, ?, 'reversal', id,"
    " expires_at, NULL, NULL, 'reverses trial entry ' || id || ' of event ' || event"
    " FROM trial_entries t WHERE event = ? AND reason IN ('match', 'linked', 'repair')"
    " AND NOT EXISTS (SELECT 1 FROM trial_entries r WHERE r.ref = t.id AND r.reason = 'reversal')"
    " ORDER BY id"
)
# Most entries differ only in subject, points, wallet, event, time and period; the
# rest (group, account, rule, pack hash, reason, note) is one of a few hundred entry
# kinds. Those travel as 7-tuples (subject, points, wallet, event, at, period, kind):
# 7 bound parameters instead of 16, and a third of the bytes to the writer process.
# A run of them is bound into a temp table, then joined to their kinds into
# ``entries`` by one INSERT ... SELECT in the same order (the writer's inserts at 1M
# entries: 4.6-4.9 s, against 6.8-6.9 s for a kind lookup in each row's own INSERT).
ENTRIES = "entries"  # what _execute is given for a batch of entry rows (full or compact)
_KIND_DDL = (  # statements one by one: executescript would commit the run's transaction
    "CREATE TEMP TABLE IF NOT EXISTS entry_kinds"
    " (id INTEGER PRIMARY KEY, grp, account, rule, pack_hash, reason, note)",
    "CREATE TEMP TABLE IF NOT EXISTS entry_stage (subject, points, wallet, event, at, period, kind)",
)
_INSERT_KIND = "INSERT INTO temp.entry_kinds VALUES (?, ?, ?, ?, ?, ?, ?)"
_STAGE_COMPACT = "INSERT INTO temp.entry_stage VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_STAGED = (
    "INSERT INTO entries (subject, points, wallet, event, at, period,"
    " grp, account, rule, pack_hash, reason, note)"
    " SELECT s.subject, s.points, s.wallet, s.event, s.at, s.period,"
    " k.grp, k.account, k.rule, k.pack_hash, k.reason, k.note"
    " FROM temp.entry_stage s JOIN temp.entry_kinds k ON k.id = s.kind ORDER BY s.rowid"
)


def _execute(conn: sqlite3.Connection | apsw.Connection, sql: str, rows: list) -> None:
    """``executemany``; for ``ENTRIES``, each run of full or compact rows in order."""
    if sql != ENTRIES:
        conn.executemany(sql, rows)
        return
    start, n = 0, len(rows)
    while start < n:
        compact = len(rows[start]) == 7
        end = start + 1
        while end < n and (len(rows[end]) == 7) == compact:
            end += 1
        if compact:
            conn.executemany(_STAGE_COMPACT, rows[start:end])
            conn.execute(_INSERT_STAGED)
            conn.execute("DELETE FROM temp.entry_stage")
        else:
            conn.executemany(_INSERT_ENTRY, rows[start:end])
        start = end


FLUSH_EVERY = 20_000
MEMO_MAX = 200_000  # distinct (type, attributes) per groups remembered before starting afresh
# The scan reads each event as (id, subject, at, key, amends), where the key
# ``type \x1f attributes JSON`` is the memo's key as it is: one string to hash, no
# tuple to build, and one column fewer to read (type names never hold \x1f).
EVENT_COLUMNS = "id, subject, at, type || char(31) || attrs, amends"
_NEW = "seq > ? AND seq <= ?"  # the new events of an appending run: (done, top]
READ_EVERY = 5000  # events read at a time
INLINE, APPLY, PER_EVENT = 0, 1, 2  # how a memoised step is carried out (see Engine._steps)
BULK_EVENTS = 20_000  # runs this big append through a writer process
# A ledger up to this many entries keeps its indexes up to date row by row even in a
# big run: the writer process does that while the evaluator is still busy, so the run
# ends without a rebuild (100k events: 0.1-0.4 s faster than rebuilding). Beyond it,
# random inserts into the (subject, group) index make the writer slower than the
# evaluator, which then waits for it, and a big run drops that index and rebuilds it
# once at the end (1M events: 2.1-2.6 s faster than live, in three alternating pairs).
# GRIDCREDIT_REINDEX_ABOVE overrides it.
REINDEX_ABOVE = 500_000
# The indexes a big run rebuilds: entries arrive in event order, so the event and ref
# indexes only ever append (cheap row by row), while (subject, group) is random. The
# period and expiry indexes append too, but cost the writer ~1 µs an entry, which a
# rebuild at the end beats (1M events, score alone: 0.93-1.04 of keeping them live).
REBUILT_INDEXES = ("entries_subject", "entries_period", "entries_expiry")
# How the writer sorts for that rebuild, once the scorer is done: in runs of this many
# KB (that fit the CPU's caches) on this many threads. At 1M entries: 0.8-0.9 s, against
# 1.5-1.6 s in 64 MB on one thread.
SORT_THREADS, SORT_KB = 2, 4000
# The pipe to the writer holds a whole batch (20,000 entries are ~0.7 MB of JSON), so
# handing one over never waits for the writer to read it (Linux; elsewhere the default).
PIPE_BYTES = 1 << 20
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


@dataclass
class ScoreSummary:
    events: int = 0
    entries: int = 0
    trial_entries: int = 0
    capped: int = 0
    reversals: int = 0
    redemptions_granted: int = 0
    redemptions_rejected: int = 0
    late: int = 0
    unknown_subject: int = 0
    waited: int = 0  # events that waited for their subject, scored now it is known
    orphan_corrections: int = 0  # withdrawals, amendments, objections naming no event
    rewound_from: str | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        s = (
            f"scored {self.events:,} events → {self.entries:,} entries"
            f" ({self.capped:,} capped, {self.reversals:,} reversals),"
            f" {self.trial_entries:,} trial entries,"
            f" redemptions {self.redemptions_granted:,} granted / {self.redemptions_rejected:,} rejected"
        )
        if self.late:
            s += f", {self.late:,} late events posted to the first open month"
        if self.waited:
            s += f", {self.waited:,} events that waited for their subject"
        if self.orphan_corrections:
            s += (
                f"; {self.orphan_corrections:,} corrections name no other event and reversed"
                " nothing (see `gridcredit rejects`)"
            )
        if self.unknown_subject:
            s += (
                f"; {self.unknown_subject:,} events name no known subject: they wait, and are"
                " scored once the subject is ingested (see `gridcredit rejects`)"
            )
        return s


def _rebuilds_indexes(new_events: int, entries: int) -> bool:
    """Whether a run of ``new_events`` onto a ledger of ``entries`` drops the entry
    indexes and rebuilds them at the end: when it adds about as many rows as the
    ledger has and the ledger grows beyond ``REINDEX_ABOVE`` (row by row upkeep then
    costs several times a rebuild)."""
    above = int(os.environ.get("GRIDCREDIT_REINDEX_ABOVE") or REINDEX_ABOVE)
    return new_events * 2 >= entries and entries + new_events > above


class _LedgerWriter:
    """A child process that owns this run's write transaction.

    For big appending runs the scorer hands finished batches of entries to a
    forked child, which inserts them on the other core while the parent goes on
    evaluating; the parent itself only reads. The child commits when the parent
    says ``finish`` after a clean run, and rolls back on anything else, the
    parent dying included (its end of the pipe closes). One transaction either
    way, so a killed run leaves the ledger as it was.
    """

    def __init__(self, path: str, first_id: int, done: int, reindex: bool = False):
        ctx = multiprocessing.get_context("fork")
        self.recv_in, self.send_in = ctx.Pipe(duplex=False)  # parent → child
        self.recv_out, self.send_out = ctx.Pipe(duplex=False)  # child → parent
        self.proc = ctx.Process(
            target=_ledger_writer,
            args=(
                path,
                first_id,
                done,
                reindex,
                self.recv_in,
                self.send_in,
                self.send_out,
                self.recv_out,
            ),  # fmt: skip
            name="gridcredit-ledger-writer",
            daemon=True,
        )
        _pipe_size(self.send_in)
        self.proc.start()
        self.recv_in.close()
        self.send_out.close()
        self._expect("ready")

    def _expect(self, word: str) -> None:
        try:
            msg = self.recv_out.recv()
        except EOFError:
            raise RuntimeError(
                "the ledger writer process stopped unexpectedly; nothing was written"
            ) from None
        if msg[0] != word:
            raise GridcreditError(f"ledger writer: {msg[1]}")

    def _check(self) -> None:
        if self.recv_out.poll():
            self._expect("-")

    def put(self, sql: str, rows: list[tuple]) -> None:
        self._check()
        try:
            # orjson both ways costs a sixth of pickling the same rows
            self.send_in.send_bytes(orjson.dumps((sql, rows)))
        except (BrokenPipeError, OSError):
            self._expect("-")
            raise

    def finish(self, last_id: int | None, statements: list[tuple[str, list[Any]]]) -> None:
        self.send_in.send_bytes(orjson.dumps(("finish", last_id, statements)))
        self._expect("ok")
        self.close()

    def close(self) -> None:
        try:
            self.send_in.close()  # a child still waiting sees EOF and rolls back
        finally:
            self.proc.join(timeout=120)


def _ledger_writer(
    path: str,
    first_id: int,
    done: int,
    reindex: bool,
    inbox: Any,
    parent_send: Any,
    outbox: Any,
    parent_recv: Any,
) -> None:  # pragma: no cover - runs in the child process (exercised by the bulk tests)
    parent_send.close()  # so EOF arrives when the parent is gone
    parent_recv.close()
    conn = child_connection(path)
    try:
        # temp_store=FILE: rebuilding the indexes of 10M entries sorts on disk, not in RAM
        for pragma in ("synchronous=NORMAL", "temp_store=FILE", "cache_size=-64000"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN IMMEDIATE")
        last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM entries").get
        seq = conn.execute("SELECT value FROM state WHERE key = 'scored_seq'").get
        if last + 1 != first_id or int(seq or 0) != done:
            raise GridcreditError(
                "another process wrote to the ledger while this run started; run `gridcredit score` again"
            )
        for ddl in _KIND_DDL:
            conn.execute(ddl)
        if reindex:  # in this transaction: a killed run rolls back to the indexes it had
            for name in REBUILT_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
        outbox.send(("ready",))
        loads = orjson.loads
        while True:
            msg = loads(inbox.recv_bytes())
            if msg[0] != "finish":
                _execute(conn, msg[0], msg[1])
                continue
            _, last_id, statements = msg
            last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM entries").get
            if last_id is not None and last != last_id:
                raise RuntimeError(f"ledger ids out of step: expected {last_id}, found {last}")
            for sql, params in statements:
                conn.execute(sql, params)
            if reindex:
                # the scorer is done with its core: sort in small runs on two threads
                conn.execute(f"PRAGMA threads = {SORT_THREADS}")
                conn.execute(f"PRAGMA cache_size = -{SORT_KB}")
                for name in REBUILT_INDEXES:
                    conn.execute(ENTRY_INDEXES[name])
            conn.execute("COMMIT")
            outbox.send(("ok",))
            return
    except BaseException as e:
        try:
            conn.execute("ROLLBACK")
        except apsw.Error:
            pass
        try:
            outbox.send(("error", f"{type(e).__name__}: {e}; nothing was written"))
        except OSError:
            pass
    finally:
        conn.close()


class _EventReader:
    """A child process that reads a big run's events, in order, for the scorer.

    Reading a row from SQLite into Python objects costs the scorer about three
    times what decoding the same row from orjson does, and a sort by (time, id)
    happens before the first row: the child runs the query on a connection of its
    own and sends batches of ``READ_EVERY`` rows through a pipe, while the scorer
    sets up, evaluates and hands entries to the writer. The query names the seqs
    it reads (``_NEW``), so its snapshot reads the same events as this process.
    """

    def __init__(self, path: str, sql: str, params: list[Any]):
        ctx = multiprocessing.get_context("fork")
        self.recv, send = ctx.Pipe(duplex=False)
        _pipe_size(send)
        self.proc = ctx.Process(
            target=_read_events,
            args=(path, sql, params, send, self.recv),
            name="gridcredit-event-reader",
            daemon=True,
        )
        self.proc.start()
        send.close()  # so EOF arrives when the child is gone

    def __iter__(self) -> Iterator[list]:
        loads = orjson.loads
        while True:
            try:
                rows = loads(self.recv.recv_bytes())
            except EOFError:
                raise RuntimeError(
                    "the event reader process stopped unexpectedly; nothing was written"
                ) from None
            if rows.__class__ is dict:
                raise GridcreditError(f"event reader: {rows['error']}; nothing was written")
            if not rows:
                return
            yield rows

    def close(self) -> None:
        self.recv.close()  # a child still sending gets a broken pipe and stops
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join()


def _read_events(
    path: str, sql: str, params: list[Any], out: Any, parent_recv: Any
) -> None:  # pragma: no cover - runs in the child process (exercised by the bulk tests)
    parent_recv.close()
    dumps = orjson.dumps
    try:
        conn = child_connection(path)
        try:
            cur = conn.execute(sql, params)
            while rows := list(islice(cur, READ_EVERY)):
                out.send_bytes(dumps(rows))
            out.send_bytes(b"[]")
        finally:
            conn.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the scorer stopped reading: it has failed or been stopped itself
    except BaseException as e:
        try:
            out.send_bytes(dumps({"error": f"{type(e).__name__}: {e}"}))
        except OSError:
            pass
    finally:
        out.close()


def _pipe_size(conn: Any) -> None:
    """Let a pipe hold a whole batch (Linux; elsewhere the default)."""
    if PIPE_BYTES and hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # above the system's pipe-max-size: the default then


_NO_SUBJECT = SubjectView(id="")  # what a memoised (attribute-only) condition is given


@dataclass(slots=True)
class _Subject:
    view: SubjectView
    groups: tuple[str, ...]
    kind: str
    # the stored id object: the scorer's dicts hold it as their keys, so they compare
    # keys by identity instead of by content (ids read from SQLite are new strings)
    sid: str = ""
    # what the rules make of an event, by ``type \x1f attributes JSON``: one dict shared
    # by the subjects of the same groups (see Engine._steps)
    memo: dict[str, list[tuple]] = field(default_factory=dict)
    # [fixed score, wallet] per group: the lists of Engine.acct, without a key to hash
    acct: dict[str, list[int]] = field(default_factory=dict)
    # cap counters by rule id (a rule scores one group): [period, points, matches] of
    # the latest period; a new period starts one afresh, so none is ever pruned
    caps: dict[str, list[Any]] = field(default_factory=dict)
    trial_caps: dict[str, list[Any]] = field(default_factory=dict)


class Engine:
    """Holds the running state of one score run."""

    def __init__(
        self, db: sqlite_utils.Database, scheme: Scheme, compiled: CompiledScheme | None = None
    ):
        self.db = db
        self.conn = db.conn
        self.scheme = scheme
        self.clock = scheme.clock
        self.compiled = compiled or compile_scheme(scheme)
        self.summary = ScoreSummary()
        self.buf: list[tuple] = []  # entry rows, full or compact (see ENTRIES)
        self._kinds: dict[tuple, int] = {}  # entry kind -> its id in temp.entry_kinds
        self._kind_rows: list[tuple] = []  # the kinds by id
        self._new_kinds: list[tuple] = []  # kinds not yet written to temp.entry_kinds
        self.writer: _LedgerWriter | None = None
        self.redeemed: list[tuple] = []
        self.trial_buf: list[tuple] = []
        self.has_trial = any(c.trial for c in self.compiled.rules)
        self._period_cache: dict[tuple[str, int], str] = {}
        self.group_order = {g: i for i, g in enumerate(scheme.groups)}
        self.by_type_group: dict[tuple[str, str], list[CompiledRule]] = {}
        for c in self.compiled.rules:
            for t in c.rule.on:
                self.by_type_group.setdefault((t, c.group), []).append(c)
        self.system_types = frozenset((REDEEM, WITHDRAW, OBJECTION))
        # Rule versions take effect and end at these instants; between two of them (an
        # era: [start, end]) the same rules are in force, so what they make of an event
        # is memoised for the era: (type, groups, attrs JSON) -> steps (see _steps).
        self._era_bounds = sorted(
            {t for c in self.compiled.rules for t in (c.start, c.end) if FAR_PAST < t < FAR_FUTURE}
        )
        self._era = [0, 0]
        # memo per groups tuple: ``type \x1f attributes JSON`` -> steps (see _steps)
        self._memos: dict[tuple[str, ...], dict[str, list[tuple]]] = {}
        # rules whose condition reads the subject: tested per event, not memoised
        self._subject_rules = frozenset(
            c.id for c in self.compiled.rules if c.rule.when and reads_subject(c.rule.when)
        )
        # [start, end, key] of the period of each kind last looked at
        self._spans: dict[str, list[Any]] = {k: [0, 0, ""] for k in PERIOD_KINDS}
        self._late_seen: set[str] = set()
        self.rules_by_id = {c.id: c for c in self.compiled.rules}

    # --- loading -----------------------------------------------------------

    def _load_subjects(self) -> None:
        grids = {gid: (g.community, g.street) for gid, g in self.scheme.grids.items()}
        for gid, comm, street in self.conn.execute("SELECT id, community, street FROM grids"):
            grids.setdefault(gid, (comm, street))
        groups: dict[str, list[str]] = defaultdict(list)
        for s, g in self.conn.execute("SELECT subject, grp FROM memberships"):
            groups[s].append(g)
        order = self.group_order
        self.subjects: dict[str, _Subject] = {}
        for sid, kind, grid, tags, links in self.conn.execute(
            "SELECT id, kind, grid, tags, links FROM subjects"
        ):
            comm, street = grids.get(grid or "", ("", ""))
            view = SubjectView(
                id=sid,
                grid=grid or "",
                community=comm,
                street=street,
                tags=frozenset(orjson.loads(tags)) if tags else frozenset(),
                links=orjson.loads(links) if links else {},
            )
            gs = tuple(sorted(groups.get(sid, []), key=lambda g: order.get(g, 999)))
            memo = self._memos.get(gs)
            if memo is None:
                memo = self._memos[gs] = {}
            self.subjects[sid] = _Subject(view, gs, kind or "person", sid, memo)

    def _load_state(self, since: int) -> None:
        """Rebuild caps, escalation windows, wallets and stock from the ledger."""
        q = self.conn.execute
        # [fixed score, wallet] of each account (subject, group); the fixed score leaves
        # out points that expire, kept in ``expiring``
        # (from the totals kept through the latest closed month and the open months'
        # entries: a monthly run reads its own months, not the whole ledger)
        self.acct: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.acct.update(account_sums(self.db, self.scheme))
        self._other_caps: dict[tuple[bool, str], dict[str, list[Any]]] = {}
        self.matches: dict[tuple, list[int]] = defaultdict(list)
        capped_rules = {c.id: c for c in self.compiled.rules if c.cap_per}
        esc_rules = {c.id: c for c in self.compiled.rules if c.esc_steps}
        # how far back each capped or escalating rule's entries still count: a cap
        # counter holds the period ``since`` falls in (an earlier one is reset by the
        # first event), an escalation window looks back its length from each event
        horizons: dict[str, int] = {}
        for c in self.compiled.rules:
            if c.cap_per:
                horizons[c.id] = self._spans_of(since, c.cap_per)[0]
            if c.esc_steps:
                h = self.clock.sub(since, c.esc_within) - 86400 if c.esc_within else -(2**62)
                horizons[c.id] = min(h, horizons.get(c.id, h))
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
                for rule, s, g, at, pts, reason, undone, *_ in q(
                    _TRIAL_HORIZONS if trial else _HORIZONS
                ):
                    capped = capped_rules.get(rule)
                    if capped is not None and capped.cap_per:
                        pk = self._period(at, capped.cap_per)
                        caps = self._caps_of(s, trial)
                        u = caps.get(rule)
                        if u is None or u[0] < pk:
                            u = caps[rule] = [pk, 0, 0]
                        if u[0] != pk:
                            pass  # a reversal of an entry in a period already over
                        elif reason == "match":
                            u[1] += abs(pts)
                            u[2] += 1
                        elif reason == "reversal" and undone == "match":
                            u[1] -= abs(pts)
                            u[2] -= 1
                    if rule in esc_rules and reason in ("match", "capped"):
                        self.matches[(trial, rule, s, g)].append(at)
                    elif (
                        rule in esc_rules and reason == "reversal" and undone in ("match", "capped")
                    ):
                        times = self.matches.get((trial, rule, s, g))
                        if times and at in times:
                            times.remove(at)
        # running scores, for redemption tier checks without a query per request
        self.expiring: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        for sid, subj in self.subjects.items():
            subj.acct = {g: self.acct[(sid, g)] for g in subj.groups}
        for s, g, exp, pts in q(
            "SELECT subject, grp, expires_at, points FROM entries INDEXED BY entries_expiry"
            " WHERE expires_at > ?",
            [since],
        ):
            self.expiring[(s, g)].append((exp, pts))
        # direct gradings still in force and not undone: (subject, group) → [(tier, until, entry id)]
        self.graded: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
        for s, g, tier, until, eid in q(
            "SELECT subject, grp, grade, grade_until, id FROM entries e WHERE grade IS NOT NULL"
            " AND grade_until > ? AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id"
            " AND r.reason IN ('reversal', 'repair'))",
            [since],
        ):
            self.graded[(s, g)].append((tier, until, eid))
        # Entry ids are assigned in insertion order from here, so this run knows the id
        # of every entry it writes without reading the ledger back.
        (last,) = q("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()
        self.first_id = last + 1
        self.flushed = 0
        self.undone: set[int] = set()  # entries reversed or repaired in this run
        self.run_rows: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
        self.penalties: dict[tuple[str, str], list[tuple[int, tuple]]] = defaultdict(list)
        self.repairs: dict[int, list[tuple[int, tuple]]] = defaultdict(list)  # penalty id → repairs
        self.granted: dict[str, tuple[str, str, int, int]] = {}  # this run's granted redemptions
        self.stock_used: dict[str, int] = defaultdict(int)
        self.item_usage: dict[tuple, int] = defaultdict(int)
        for item, s, qty, at in q(
            "SELECT item, subject, quantity, at FROM redemptions WHERE outcome = 'granted'"
        ):
            self.stock_used[item] += qty
            it = self.scheme.catalog.get(item)
            if it and it.limit:
                self.item_usage[(item, s, self._period(at, it.limit.get("per", "month")))] += qty
        self.calendar = PostingCalendar(self.db, self.scheme)

    # --- helpers -----------------------------------------------------------

    def _caps_of(self, sid: str, trial: bool) -> dict[str, list[Any]]:
        """The cap counters of a subject, by rule id (see _Subject.caps)."""
        subj = self.subjects.get(sid)
        if subj is None:  # entries of a subject no longer listed
            return self._other_caps.setdefault((trial, sid), {})
        return subj.trial_caps if trial else subj.caps

    def _counter(self, period: str, sid: str, rule: str, trial: bool) -> list[Any]:
        """The cap counter ``[period, points, matches]`` of a subject under a rule for
        ``period``. Events come in time order, so a period other than the counter's
        is a later one: the cap starts afresh."""
        caps = self._caps_of(sid, trial)
        u = caps.get(rule)
        if u is None:
            u = caps[rule] = [period, 0, 0]
        elif u[0] != period:
            u[:] = [period, 0, 0]
        return u

    def _period(self, at: int, kind: str) -> str:
        key = (kind, at // 900)
        p = self._period_cache.get(key)
        if p is None:
            p = self._period_cache[key] = self.clock.period(at, kind)
        return p

    def _posting(self, at: int, eid: str) -> str:
        month = self.calendar.posting_month(at)
        if month != self.clock.month(at) and eid not in self._late_seen:
            self._late_seen.add(eid)  # an amendment posts twice (reversal, new entries)
            self.summary.late += 1
            self.late_by_month[month] += 1
        return month

    def _write(self, sql: str, rows: list[tuple]) -> None:
        if self.writer is not None:
            self.writer.put(sql, rows)
        else:
            _execute(self.conn, sql, rows)

    def _kind(self, *kind: Any) -> int:
        """The id of an entry kind ``(group, account, rule, pack hash, reason, note)``."""
        k = self._kinds.get(kind)
        if k is None:
            k = self._kinds[kind] = len(self._kind_rows)
            self._kind_rows.append(kind)
            self._new_kinds.append((k, *kind))
        return k

    def _rule_kinds(self, c: CompiledRule, grp: str) -> tuple[int, int, int, int]:
        """The kinds of a common-shape rule's entries: a match that moves the wallet,
        one that does not, and a match capped by count or by points."""
        return (
            self._kind(grp, "score+wallet", c.id, c.pack_hash, "match", None),
            self._kind(grp, "score", c.id, c.pack_hash, "match", None),
            self._kind(grp, "score", c.id, c.pack_hash, "capped", c.count_note),
            self._kind(grp, "score", c.id, c.pack_hash, "capped", c.points_note),
        )

    def _full(self, row: tuple) -> tuple:
        """An entry row in full, whether it was queued full or compact (see ENTRIES)."""
        if len(row) != 7:
            return row
        sid, pts, w, eid, at, period, kind = row
        grp, account, rule, pack_hash, reason, note = self._kind_rows[kind]
        return (sid, grp, account, pts, w, rule, pack_hash, eid, at, period, reason,
                None, None, None, None, note)  # fmt: skip

    def _flush(self) -> None:
        """Hand the queued entries to the database (the writer process, when running)."""
        if self._new_kinds:
            self._write(_INSERT_KIND, self._new_kinds[:])
            self._new_kinds.clear()
        if self.buf:
            self.summary.entries += len(self.buf)
            self.flushed += len(self.buf)
            self._write(ENTRIES, self.buf[:])  # a copy: loops hold on to self.buf
            self.buf.clear()
        self._flush_trial()

    def _flush_trial(self) -> None:
        if self.trial_buf:
            self.summary.trial_entries += len(self.trial_buf)
            self._write(_INSERT_TRIAL, self.trial_buf[:])
            self.trial_buf.clear()

    def _post(self, row: tuple, trial: bool = False) -> None:
        """Queue one entry and keep the running state (score, gradings, penalties) in step."""
        if trial:
            self.trial_buf.append(row)
            return
        entry_id = self.first_id + self.flushed + len(self.buf)
        self.buf.append(row)
        key = (row[0], row[1])
        pts = row[3]
        if pts:
            if row[12] is None:
                self.acct[key][0] += pts
            else:
                self.expiring[key].append((row[12], pts))
        if row[13] is not None:
            self.graded[key].append((row[13], row[14], entry_id))
        if pts < 0 and row[10] in ("match", "linked") and row[5] in self.repairable:
            self.penalties[key].append((entry_id, row))
        elif row[10] == "repair":
            self.repairs[row[11]].append((entry_id, row))

    def _score_at(self, subject: str, grp: str, at: int) -> tuple[int, str]:
        """Score and tier of one account at ``at`` (for redemptions)."""
        g = self.scheme.groups[grp]
        key = (subject, grp)
        score = (
            g.base_score
            + self.acct[key][0]
            + sum(p for e, p in self.expiring.get(key, ()) if e > at)
        )
        tier = g.tier_of(score)
        for grade, until, entry_id in self.graded.get(key, ()):
            if until > at and entry_id not in self.undone:
                tier = capped_tier(g, tier, grade)
        return score, tier

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
                # read-only here; the child process writes and commits (see _LedgerWriter)
                self._run(done, top, first, in_order, bulk_path=path)
            else:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._run(done, top, first, in_order)
                    conn.execute("COMMIT")
                except BaseException:
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
            " AND (r.waits = e.subject OR e.at >= ?) ORDER BY e.seq",
            [done, open_start],
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
            for ddl in _KIND_DDL:
                conn.execute(ddl)
            conn.execute("DELETE FROM temp.entry_kinds")
        last_key = last_scored(self.db)
        self.late_by_month: dict[str, int] = defaultdict(int)
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
            conn.execute("DELETE FROM objections WHERE event IN (SELECT id FROM temp.redo)")
            where = "id IN (SELECT id FROM temp.redo)"
            params: list[Any] = []
            since = rewind_at
        else:
            where = _NEW
            params = [done, top]
            since = first[0]
        # Events usually arrive in time order; then the rowid scan is the sorted order.
        in_order = in_order and where == _NEW
        order = "seq" if in_order else "at, id"
        scan = f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY {order}"
        # a big run's events are read (and sorted) by a child process from here on
        reader = _EventReader(bulk_path, scan, params) if bulk_path else None
        try:
            self._load_subjects()
            self._load_state(since)
            self.rq = conn  # committed ledger rows of earlier runs are read here
            self.reversed: set[int] = set()
            self.repairable = {
                r for c in self.compiled.rules if c.repair for r in c.repair.get("rules", [])
            }
            for c in self.compiled.rules:
                if c.id in self.repairable:
                    c.shape = GENERAL  # their penalties are tracked in _post for credit repair
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
            # _reverse_event); their entries are kept in memory like any target's
            self.amendments: dict[str, list[tuple[int, str]]] = defaultdict(list)
            for amends, aid, aat in conn.execute(
                f"SELECT amends, id, at FROM events WHERE {corrections()}"
                " AND amends IS NOT NULL AND seq <= ?",
                [top],
            ):
                self.amendments[amends].append((aat, aid))
            for versions in self.amendments.values():
                versions.sort()
            for t in list(targets):
                targets.update(aid for _, aid in self._versions(t))
            self._all_targets = frozenset(targets)
            self.targets = self._all_targets
            # an event amended by one that sorts before it is never scored: the amendment
            # came first and replaces it (one that sorts after reverses it instead)
            self.skip_amended = frozenset(
                t
                for (t,) in conn.execute(
                    f"SELECT e.id FROM events a JOIN events e ON e.id = a.amends"
                    f" WHERE {corrections('a')} AND a.amends IS NOT NULL"
                    f" AND {'e.seq > ? AND e.seq <= ?' if where == _NEW else 'e.' + where}"
                    " AND (a.at < e.at OR (a.at = e.at AND a.id < e.id))",
                    params,
                )
            )
            batches: Iterable[list]
            if reader is not None:
                batches = reader
            else:
                cur = conn.execute(scan, params)
                batches = iter(lambda: cur.fetchmany(READ_EVERY), [])
            if bulk_path:
                # lookups of earlier runs read this connection's committed snapshot
                reindex = _rebuilds_indexes(top - done, self.first_id - 1)
                self.writer = _LedgerWriter(bulk_path, self.first_id, done, reindex)
            last_row = None
            for rows in batches:
                self._score_rows(rows)
                last_row = rows[-1]
                if len(self.buf) >= FLUSH_EVERY:
                    self._flush()
            self._flush_redemptions()
            self._flush()
            last_id = self.first_id + self.flushed - 1 if self.flushed else None
            final: list[tuple[str, list[Any]]] = []
            if last_row is not None:
                new_last = (last_row[2], last_row[0])  # (at, id)
                if last_key is None or new_last > last_key:
                    final.append(
                        (_STATE_SQL, ["last_scored", orjson.dumps(list(new_last)).decode()])
                    )
            final.append((_STATE_SQL, ["scored_seq", str(top)]))
            for month, n in self.late_by_month.items():
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

    def _open_start(self, closed: set[str]) -> int:
        if not closed:
            return -(2**62)
        from .durations import next_month

        start, _ = self.clock.period_bounds(next_month(max(closed)))
        return start

    def _enter_era(self, at: int) -> None:
        """Make the era holding ``at`` current; the memo starts afresh (in place, so
        loops that hold it see the change)."""
        bounds = self._era_bounds
        i = bisect.bisect_right(bounds, at)
        self._era[:] = [
            bounds[i - 1] if i else FAR_PAST,
            bounds[i] if i < len(bounds) else FAR_FUTURE,
        ]
        for memo in self._memos.values():
            memo.clear()

    def _first_sight(
        self, eid: str, sid: str, subj: _Subject | None, at: int, key: str
    ) -> list[tuple] | None:
        """An event the memo does not answer: a system event (redemption, withdrawal,
        objection), carried out here; one naming no known subject; or the first of its
        (type, attributes) for the subject's groups in this era: its steps, memoised.
        None when the event is done with."""
        etype, _, attrs_json = key.partition("\x1f")
        if etype in self.system_types:
            if etype == REDEEM:
                self._redeem(eid, sid, at, orjson.loads(attrs_json))
            elif etype == WITHDRAW or etype == OBJECTION:
                self._correction(eid, etype, at, orjson.loads(attrs_json))
            return None
        if subj is None:
            if etype in self.compiled.by_type:
                self._unknown_subject(eid, sid)
            return None
        return self._steps(etype, subj, key, attrs_json, at)

    def _steps(self, etype: str, subj: _Subject, key: str, attrs_json: str, at: int) -> list[tuple]:
        """What the rules in force at ``at`` make of one (type, groups, attributes):
        memoised for the era in ``subj.memo`` (shared by subjects of the same groups) by
        ``key``, the event's ``type \x1f attributes JSON`` as the scan reads it, since
        most events repeat a few attribute sets. Each step
        is ``(group, rule, points, mode, kinds)``: mode ``INLINE`` has the points of a
        matched common-shape rule, ``APPLY`` a matched rule with other effects,
        ``PER_EVENT`` a rule whose condition reads the subject (tested for each event);
        ``kinds`` are the entry kinds of a common-shape rule (see _rule_kinds). Rules
        that cannot match or are not in force are left out."""
        memo = subj.memo
        if len(memo) >= MEMO_MAX:
            memo.clear()
        attrs = orjson.loads(attrs_json)
        steps: list[tuple] = []
        for g in subj.groups:
            for c in self.by_type_group.get((etype, g), ()):
                if not (c.start <= at < c.end):
                    continue
                kinds = self._rule_kinds(c, g) if c.shape != GENERAL else None
                if c.id in self._subject_rules:
                    steps.append((g, c, None, PER_EVENT, kinds))
                    continue
                if c.test is not None and not c.test(attrs, _NO_SUBJECT, g, etype):
                    continue
                if c.shape == GENERAL:
                    steps.append((g, c, None, APPLY, None))
                    continue
                pts = c.points(attrs)  # type: ignore[misc]  # never None for these shapes
                if pts:
                    steps.append((g, c, pts, INLINE, kinds))
        memo[key] = steps
        return steps

    def _spans_of(self, at: int, kind: str) -> list[Any]:
        """``[start, end, key]`` of the ``kind`` period holding ``at``, kept for reuse."""
        key = self.clock.period(at, kind)
        start, end = self.clock.period_bounds(key)
        span = self._spans[kind]
        span[:] = [start, end, key]
        return span

    def _score_rows(self, rows: Iterable[tuple]) -> None:
        subjects = self.subjects
        loads = orjson.loads
        posting = self._posting
        apply = self._apply
        buf = self.buf
        latest = self.calendar.latest  # months up to the latest closed one are history
        n = 0
        targets = self.targets
        era = self._era
        first_sight = self._first_sight
        spans = self._spans
        spans_of = self._spans_of
        month = spans["month"]  # events come in time order: the month rarely changes
        skip = self.skip_amended
        special = skip | targets  # one set lookup per event on the common path
        capped_n = 0
        for eid, sid, at, key, amends in rows:
            n += 1
            if eid in special:
                if eid in skip:
                    continue
                if eid in targets:
                    self._score_rows_of_target([(eid, sid, at, key, amends)])
                    continue
            if amends and self._names_an_event(amends, eid, "amends"):
                self._reverse_event(amends, eid, at)
            if not (era[0] <= at < era[1]):
                self._enter_era(at)
            subj = subjects.get(sid)
            if subj is None:
                first_sight(eid, sid, None, at, key)
                continue
            steps = subj.memo.get(key)
            if steps is None:
                steps = first_sight(eid, sid, subj, at, key)
                if steps is None:
                    continue
            if not steps:
                continue
            sid = subj.sid  # the stored id object: the dict keys below hold it
            period = None
            attrs = None
            for grp, c, pts, mode, kinds in steps:
                if mode == PER_EVENT:
                    if attrs is None:  # the key split once, on the first step that reads it
                        etype, _, attrs_json = key.partition("\x1f")
                        attrs = loads(attrs_json)
                    test = c.test
                    if test is not None and not test(attrs, subj.view, grp, etype):
                        continue
                    if c.shape == GENERAL:
                        mode = APPLY
                    else:
                        pts = c.points(attrs)  # type: ignore[misc]  # never None for these shapes
                        if not pts:
                            continue
                if period is None:
                    if not (month[0] <= at < month[1]):
                        month = spans_of(at, "month")
                    period = month[2]
                    if latest and period <= latest:
                        period = posting(at, eid)
                if mode == APPLY:
                    if attrs is None:
                        etype, _, attrs_json = key.partition("\x1f")
                        attrs = loads(attrs_json)
                    apply(c, eid, sid, subj, at, attrs, period)
                    continue
                # the common shapes, inline: points (a number or a points form),
                # optionally a cap; no windows, expiry or side effects
                if c.shape == CAPPED:
                    span = spans[c.cap_per]  # type: ignore[index]  # set for capped rules
                    if not (span[0] <= at < span[1]):
                        span = spans_of(at, c.cap_per)  # type: ignore[arg-type]
                    u = subj.caps.get(c.id)  # _counter, inline
                    if u is None:
                        u = subj.caps[c.id] = [span[2], 0, 0]
                    elif u[0] != span[2]:
                        u[:] = [span[2], 0, 0]  # a new period
                    if c.max_count is not None and u[2] >= c.max_count:
                        capped_n += 1
                        buf.append((sid, 0, 0, eid, at, period, kinds[2]))
                        continue
                    note = None
                    if c.max_points is not None:
                        left = c.max_points - u[1]
                        if left <= 0:
                            capped_n += 1
                            buf.append((sid, 0, 0, eid, at, period, kinds[3]))
                            continue
                        if abs(pts) > left:
                            cut = left if pts > 0 else -left
                            note = f"cut from {pts} to {cut} by {c.points_note[:-8]}"
                            pts = cut
                    u[1] += abs(pts)
                    u[2] += 1
                else:
                    note = None
                a = subj.acct[grp]
                if pts > 0 and c.wallet is not False:
                    a[1] += pts
                    if note is None:
                        buf.append((sid, pts, pts, eid, at, period, kinds[0]))
                    else:
                        buf.append((sid, grp, "score+wallet", pts, pts, c.id, c.pack_hash, eid,
                                    at, period, "match", None, None, None, None, note))  # fmt: skip
                elif note is None:
                    buf.append((sid, pts, 0, eid, at, period, kinds[1]))
                else:
                    buf.append((sid, grp, "score", pts, 0, c.id, c.pack_hash, eid, at,
                                period, "match", None, None, None, None, note))  # fmt: skip
                a[0] += pts
        self.summary.events += n
        self.summary.capped += capped_n

    def _score_rows_of_target(self, rows: list[tuple]) -> None:
        """Score an event that a later event withdraws, amends or disputes, keeping its
        entries (with their ids) in memory so the reversal needs no ledger read."""
        eid = rows[0][0]
        start = self.flushed + len(self.buf)
        self.targets = frozenset()  # score it the ordinary way, without recursing here
        try:
            self._score_rows(rows)
        finally:
            self.targets = self._all_targets
        self.summary.events -= 1  # counted by the caller
        mine = self.run_rows[eid]
        for i, row in enumerate(self.buf[start - self.flushed :]):
            row = self._full(row)
            if row[7] == eid:
                mine.append((self.first_id + start + i, row))

    def _apply(
        self, c: CompiledRule, eid: str, sid: str, subj: _Subject, at: int, attrs: dict, period: str
    ) -> None:
        grp = c.group
        trial = c.trial
        if c.esc_steps:
            times = self.matches[(trial, c.id, sid, grp)]
            floor = self.clock.sub(at, c.esc_within) if c.esc_within else -(2**62)
            n = 1 + sum(1 for t in times if t > floor)
            times.append(at)
            pts = c.esc_steps[min(n, len(c.esc_steps)) - 1]
        else:
            found = c.points(attrs) if c.points is not None else 0
            if found is None:
                return
            pts = found
        if pts == 0 and c.repair is None:
            return  # a zero-point match is no match: it neither counts against a cap nor shows
        capped = False
        note = None
        if c.cap_per:
            u = self._counter(self._period(at, c.cap_per), sid, c.id, trial)
            if c.max_count is not None and u[2] >= c.max_count:
                capped, note = True, c.count_note
            elif c.max_points is not None:
                left = c.max_points - u[1]
                if left <= 0:
                    capped, note = True, c.points_note
                elif abs(pts) > left:
                    cut = left if pts > 0 else -left
                    note = f"cut from {pts} to {cut} by {c.points_note[:-8]}"
                    pts = cut
            if not capped:
                u[1] += abs(pts)
                u[2] += 1
        if capped:
            self.summary.capped += 1
            capped_row: tuple = (sid, grp, "score", 0, 0, c.id, c.pack_hash, eid, at, period, "capped",
                   None, None, None, None, note)  # fmt: skip
            self._post(capped_row, trial)
            return
        if pts == 0 and c.repair is None:
            return
        if c.repair is not None:
            self._repair(c, eid, sid, grp, at, period, trial)
            if pts == 0:
                return
        wallet_moves = c.wallet if c.wallet is not None else pts > 0
        w = 0
        if wallet_moves:
            if trial:
                w = max(pts, 0)
            else:
                a = self.acct[(sid, grp)]
                w = pts if pts > 0 else -min(-pts, a[1])
                a[1] += w
        expires_at = self.clock.add(at, c.expires) if c.expires else None
        grade: str | None = None
        grade_until: int | None = None
        if c.grade_to and c.grade_for:
            grade, grade_until = c.grade_to, self.clock.add(at, c.grade_for)
        account = "score+wallet" if w else "score"
        row = (sid, grp, account, pts, w, c.id, c.pack_hash, eid, at, period, "match",
               None, expires_at, grade, grade_until, note)  # fmt: skip
        self._post(row, trial)
        for link in c.also:
            self._linked(c, link, eid, subj, at, period, pts, expires_at, trial)

    def _linked(
        self, c: CompiledRule, link: dict, eid: str, subj: _Subject, at: int, period: str,
        pts: int, expires_at: int | None, trial: bool,
    ) -> None:  # fmt: skip
        name = link.get("link", "")
        target = subj.view.links.get(name)
        if target is None:  # this subject has no such link: nothing to give
            return
        tsubj = self.subjects.get(target)
        grp: str = link.get("group") or c.group
        if tsubj is None or grp not in tsubj.groups:
            if not trial:  # found in review: the linked points vanished without a word
                why = "is not in the subjects file" if tsubj is None else f"is not in group '{grp}'"
                self._reject(
                    eid,
                    f"linked points of rule '{c.id}' for {subj.view.id}'s {name} '{target}' not"
                    f" given: '{target}' {why}"
                    + ("; they wait: ingest the subject and run `gridcredit score`" if tsubj is None
                       else "; correct the subject's groups or links"),
                    waits=target if tsubj is None else None,
                )  # fmt: skip
            return
        lp = link.get("points", "same")
        p = pts if lp == "same" else int(lp)
        if p == 0:
            return
        w = 0
        moves = c.wallet if c.wallet is not None else p > 0
        if moves and not trial:
            a = self.acct[(target, grp)]
            w = p if p > 0 else -min(-p, a[1])
            a[1] += w
        row = (target, grp, "score+wallet" if w else "score", p, w, c.id, c.pack_hash, eid, at,
               period, "linked", None, expires_at, None, None, f"linked from {subj.view.id}")  # fmt: skip
        self._post(row, trial)

    def _repair(
        self, c: CompiledRule, eid: str, sid: str, grp: str, at: int, period: str, trial: bool
    ) -> None:
        spec = c.repair or {}
        rules = set(spec.get("rules", []))
        if not rules or trial:
            return
        floor = self.clock.sub(at, spec["within"])
        candidates = [
            (row[8], entry_id, row[3], row[5], row[6], row[12])
            for entry_id, row in self.penalties.get((sid, grp), ())
            if row[5] in rules and floor <= row[8] <= at and entry_id not in self.undone
        ]
        marks = ",".join("?" * len(rules))
        for entry_id, pts, rule, pack_hash, oat, expires_at in self.rq.execute(
            f"""SELECT id, points, rule, pack_hash, at, expires_at FROM entries e
                WHERE subject = ? AND grp = ? AND rule IN ({marks}) AND points < 0
                  AND reason IN ('match', 'linked') AND at >= ? AND at <= ? AND id < ?
                  AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id)""",
            [sid, grp, *sorted(rules), floor, at, self.first_id],
        ):
            if entry_id not in self.undone:
                candidates.append((oat, entry_id, pts, rule, pack_hash, expires_at))
        if not candidates:
            return
        _, ref, orig, rule, pack_hash, expires_at = max(candidates)  # the most recent penalty
        self.undone.add(ref)
        back = -orig if spec.get("restore", "all") == "all" else (-orig) // 2
        self._post(
            (
                sid,
                grp,
                "score",
                back,
                0,
                rule,
                pack_hash,
                eid,
                at,
                period,
                "repair",
                ref,
                expires_at,
                None,
                None,
                f"credit repair by {c.id}",
            )  # fmt: skip
        )

    def _versions(self, target: str) -> list[tuple[int, str]]:
        """(time, id) of the events that amend ``target``, and of those that amend
        them in turn, in order (a loop of amendments is followed once)."""
        out: list[tuple[int, str]] = []
        todo, seen = [target], {target}
        while todo:
            for version in self.amendments.get(todo.pop(), ()):
                if version[1] not in seen:
                    seen.add(version[1])
                    out.append(version)
                    todo.append(version[1])
        return sorted(out)

    def _reverse_event(self, target: str, eid: str, at: int) -> None:
        """Undo ``target`` as it stands when ``eid`` (at ``at``) corrects it: its own
        live entries and those of its amendments that come before ``eid``, so that
        of two amendments of one event only the later stands, and a withdrawal of
        an amended event withdraws its amendment too."""
        period = self._posting(at, eid)
        self._reverse_entries(target, eid, at, period)
        undone = [target]
        for version in self._versions(target):
            if version < (at, eid):
                self._reverse_entries(version[1], eid, at, period)
                undone.append(version[1])
        if self.has_trial:
            self._flush_trial()  # written first: the statement reads them
            self._write(_REVERSE_TRIAL, [(eid, at, period, t) for t in undone])

    def _reverse_entries(self, target: str, eid: str, at: int, period: str) -> None:
        """Undo every live entry of ``target`` with new opposite entries.

        Credit repairs that restored one of those entries are undone too (else
        the penalty would be paid back twice), and a withdrawn redemption gives
        its points and its stock back.
        """
        found = self._live_entries(self.run_rows.get(target, ()), "event = ?", target)
        for entry in found:
            if self._reverse_entry(entry, eid, at, period, f"event {target}"):
                repairs = self._live_entries(
                    self.repairs.get(entry[0], ()), "ref = ? AND reason = 'repair'", entry[0]
                )
                for repair in repairs:
                    self._reverse_entry(repair, eid, at, period, f"the repair of entry {entry[0]}")
        if any(e[10] == "redeem" for e in found):
            self._return_redemption(target)

    def _live_entries(
        self, mine: Iterable[tuple[int, tuple]], where: str, value: Any
    ) -> list[tuple]:
        """Entries not yet reversed: this run's (``mine``, from memory) and earlier runs'
        (``where`` on the committed ledger), as (id, subject, grp, account, points,
        wallet, rule, pack_hash, at, expires_at, reason), in id order."""
        rows = [
            (entry_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[8], r[12], r[10])
            for entry_id, r in mine
        ]
        rows += self.rq.execute(
            "SELECT id, subject, grp, account, points, wallet, rule, pack_hash, at, expires_at, reason"
            f" FROM entries e WHERE {where} AND id < ?"
            " AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id AND r.reason = 'reversal')",
            [value, self.first_id],
        ).fetchall()
        return sorted(rows)

    def _reverse_entry(self, entry: tuple, eid: str, at: int, period: str, what: str) -> bool:
        ref, s, g, account, pts, w, rule, pack_hash, oat, expires_at, reason = entry
        if reason not in ("match", "capped", "linked", "repair", "redeem") or ref in self.reversed:
            return False
        self.reversed.add(ref)
        self.undone.add(ref)
        c = self.rules_by_id.get(rule)
        if reason in ("match", "capped") and c is not None:
            if c.cap_per and reason == "match":
                u = self._caps_of(s, False).get(rule)
                if u and u[0] == self._period(oat, c.cap_per):
                    u[1] -= abs(pts)
                    u[2] -= 1
            if c.esc_steps:
                times = self.matches.get((False, rule, s, g))
                if times and oat in times:
                    times.remove(oat)
        back_w = 0
        if w:
            a = self.acct[(s, g)]
            back_w = -w if w < 0 else -min(w, a[1])
            a[1] += back_w
        self._post(
            (
                s,
                g,
                account,
                -pts,
                back_w,
                rule,
                pack_hash,
                eid,
                at,
                period,
                "reversal",
                ref,
                expires_at,
                None,
                None,
                f"reverses entry {ref} of {what}",
            )  # fmt: skip
        )
        if reason != "capped":
            self.summary.reversals += 1
        return True

    def _return_redemption(self, target: str) -> None:
        """Give a withdrawn redemption's stock and per-subject limit back."""
        granted = self.granted.pop(target, None)
        if granted is None:
            row = self.rq.execute(
                "SELECT item, subject, quantity, at FROM redemptions WHERE event = ? AND outcome = 'granted'",
                [target],
            ).fetchone()
            granted = tuple(row) if row else None
        if granted is None:
            return
        item_id, sid, qty, at = granted
        self.stock_used[item_id] -= qty
        item = self.scheme.catalog.get(item_id)
        if item and item.limit:
            self.item_usage[(item_id, sid, self._period(at, item.limit.get("per", "month")))] -= qty
        self._flush_redemptions()
        self._write(
            "UPDATE redemptions SET outcome = 'withdrawn', reason_code = 'withdrawn' WHERE event = ?",
            [(target,)],
        )

    def _correction(self, eid: str, etype: str, at: int, attrs: dict) -> None:
        target = attrs.get("target")
        if not target:
            return
        if not self._names_an_event(
            target, eid, "withdraws" if etype == WITHDRAW else "objects to"
        ):
            return
        if etype == WITHDRAW:
            self._reverse_event(target, eid, at)
            return
        status = attrs.get("status", "open")
        self._write(
            "INSERT INTO objections (target, event, status, opened_at, decided_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(target) DO UPDATE SET event = excluded.event, status = excluded.status,"
            " decided_at = excluded.decided_at",
            [(target, eid, status, at, None if status == "open" else at)],
        )
        if status == "upheld":
            self._reverse_event(target, eid, at)

    def _names_an_event(self, target: str, eid: str, verb: str) -> bool:
        """Whether a correction names another ingested event; if not, it reverses
        nothing and leaves a reject of batch 0 at its file and line, so that a
        mistyped id is seen (found in review: it passed without a word)."""
        if (
            target != eid
            and self.rq.execute("SELECT 1 FROM events WHERE id = ?", [target]).fetchone()
        ):
            return True
        self.summary.orphan_corrections += 1
        what = "itself" if target == eid else f"event '{target}', which is not in the ledger"
        self._reject(
            eid, f"the correction {verb} {what}: nothing was reversed; check the id it names"
        )
        return False

    def _unknown_subject(self, eid: str, sid: str) -> None:
        """A reject of batch 0 at the event's own file and line: the event waits
        (see _requeue_waiting)."""
        self.summary.unknown_subject += 1
        self._reject(
            eid,
            f"event names subject '{sid}', which is not in the subjects file; it waits:"
            " ingest the subject and run `gridcredit score`",
            waits=sid,
        )

    def _reject(self, eid: str, reason: str, waits: str | None = None) -> None:
        """A reject of scoring's own (batch 0), at the event's file and line; ``waits``:
        the subject whose coming makes the next run score the event again."""
        self._write(
            "INSERT INTO rejects (batch, file, line, record_id, reason, raw, waits)"
            " SELECT 0, COALESCE(b.file, 'score'), COALESCE(e.line, 0), e.id, ?, NULL, ?"
            " FROM events e LEFT JOIN batches b ON b.id = e.batch WHERE e.id = ?",
            [(reason, waits, eid)],
        )

    # --- redemptions ------------------------------------------------------

    def _redeem(self, eid: str, sid: str, at: int, attrs: dict) -> None:
        item_id = str(attrs.get("item", ""))
        qty = int(attrs.get("quantity", 1) or 1)
        subj = self.subjects.get(sid)
        item = self.scheme.catalog.get(item_id)
        grp = attrs.get("group")
        if subj is not None and grp is None:
            allowed = [
                g for g in subj.groups if item is None or item.groups is None or g in item.groups
            ]
            grp = allowed[0] if allowed else (subj.groups[0] if subj.groups else "")
        period = self._posting(at, eid)
        code = None
        cost = item.cost * qty if item else 0
        if subj is None:
            self._unknown_subject(eid, sid)
            return
        if item is None:
            code = "unknown_item"
        elif (
            (item.available_from is not None and at < item.available_from)
            or (item.available_until is not None and at >= item.available_until)
            or (item.groups is not None and grp not in item.groups)
            or grp not in subj.groups
        ):
            code = "not_available"
        else:
            group = self.scheme.groups[grp]
            if item.min_tier is not None:
                _, tier = self._score_at(sid, grp, at)
                if group.tier_rank(tier) > group.tier_rank(item.min_tier):
                    code = "tier_too_low"
            limit_key = None
            if code is None and item.limit:
                limit_key = (item_id, sid, self._period(at, item.limit.get("per", "month")))
                if self.item_usage[limit_key] + qty > item.limit.get("max_count", 1):
                    code = "limit_reached"
            if (
                code is None
                and item.stock is not None
                and self.stock_used[item_id] + qty > item.stock
            ):
                code = "out_of_stock"
            if code is None and self.acct[(sid, grp)][1] < cost:
                code = "insufficient_points"
            if code is None:
                self.acct[(sid, grp)][1] -= cost
                self.stock_used[item_id] += qty
                self.granted[eid] = (item_id, sid, qty, at)
                if limit_key is not None:
                    self.item_usage[limit_key] += qty
                self._post(
                    (
                        sid,
                        grp,
                        "wallet",
                        0,
                        -cost,
                        item_id,
                        None,
                        eid,
                        at,
                        period,
                        "redeem",
                        None,
                        None,
                        None,
                        None,
                        f"redeemed {qty} × {item.title}",
                    )  # fmt: skip
                )
        outcome = "granted" if code is None else "rejected"
        if code is None:
            self.summary.redemptions_granted += 1
        else:
            self.summary.redemptions_rejected += 1
        self.redeemed.append(
            (
                eid,
                sid,
                grp,
                item_id,
                qty,
                cost,
                outcome,
                code,
                at,
                period,
                item.partner if item else None,
            )
        )
        if len(self.redeemed) >= 1000:
            self._flush_redemptions()

    def _flush_redemptions(self) -> None:
        if self.redeemed:
            self._write(
                "INSERT OR REPLACE INTO redemptions (event, subject, grp, item, quantity, cost, outcome,"
                " reason_code, at, period, partner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.redeemed[:],
            )
            self.redeemed.clear()


def score(
    db: sqlite_utils.Database, scheme: Scheme, compiled: CompiledScheme | None = None
) -> ScoreSummary:
    """Evaluate every unscored event into the ledger (one transaction)."""
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    pm.hook.before_score(db=db, scheme=scheme)
    summary = Engine(db, scheme, compiled).run()
    pm.hook.after_score(db=db, scheme=scheme, summary=summary)
    return summary


__all__ = ["Engine", "ScoreSummary", "score", "capped_tier"]
