"""The ledger writer: the SQL that stores a score run's output, and the forked
child process that owns a big run's write transaction.

A score run's output reaches the ledger in batches (``execute``); a big
appending run hands them to a child process (``LedgerWriter``), which inserts
them on the other core while the scorer goes on evaluating.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from typing import Any

import apsw
import orjson

from ..errors import GridcreditError
from . import bulk
from .schema import ENTRY_COLUMNS, ENTRY_INDEXES

INSERT_ENTRY = f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
INSERT_TRIAL = INSERT_ENTRY.replace("INTO entries", "INTO trial_entries")
# Most entries differ only in subject, points, wallet, event, time and period; the
# rest (group, account, rule, pack hash, reason, note) is one of a few hundred entry
# kinds. Those travel as 7-tuples (subject, points, wallet, event, at, period, kind):
# 7 bound parameters instead of 16, and a third of the bytes to the writer process.
# A run of them is bound into a temp table, then joined to their kinds into
# ``entries`` by one INSERT ... SELECT in the same order (the writer's inserts at 1M
# entries: 4.6-4.9 s, against 6.8-6.9 s for a kind lookup in each row's own INSERT).
ENTRIES = "entries"  # what execute is given for a batch of entry rows (full or compact)
KIND_DDL = (  # statements one by one: executescript would commit the run's transaction
    "CREATE TEMP TABLE IF NOT EXISTS entry_kinds"
    " (id INTEGER PRIMARY KEY, grp, account, rule, pack_hash, reason, note)",
    "CREATE TEMP TABLE IF NOT EXISTS entry_stage (subject, points, wallet, event, at, period, kind)",
)
INSERT_KIND = "INSERT INTO temp.entry_kinds VALUES (?, ?, ?, ?, ?, ?, ?)"
_STAGE_COMPACT = "INSERT INTO temp.entry_stage VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_STAGED = (
    "INSERT INTO entries (subject, points, wallet, event, at, period,"
    " grp, account, rule, pack_hash, reason, note)"
    " SELECT s.subject, s.points, s.wallet, s.event, s.at, s.period,"
    " k.grp, k.account, k.rule, k.pack_hash, k.reason, k.note"
    " FROM temp.entry_stage s JOIN temp.entry_kinds k ON k.id = s.kind ORDER BY s.rowid"
)


def execute(conn: sqlite3.Connection | apsw.Connection, sql: str, rows: list) -> None:
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
            conn.executemany(INSERT_ENTRY, rows[start:end])
        start = end


# The indexes a big run rebuilds (when: ``scoring.evaluate.runner.REINDEX_ABOVE``):
# entries arrive in event order, so the event and ref indexes only ever append (cheap row by row), while (subject, group) is random. The
# period and expiry indexes append too, but cost the writer ~1 µs an entry, which a
# rebuild at the end beats (1M events, score alone: 0.93-1.04 of keeping them live).
REBUILT_INDEXES = ("entries_subject", "entries_period", "entries_expiry")
# How the writer sorts for that rebuild, once the scorer is done: in runs of this many
# KB (that fit the CPU's caches) on this many threads. At 1M entries: 0.8-0.9 s, against
# 1.5-1.6 s in 64 MB on one thread.
SORT_THREADS, SORT_KB = 2, 4000


class LedgerWriter:
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
        bulk.pipe_size(self.send_in)
        self.proc.start()
        self.recv_in.close()
        self.send_out.close()
        self._expect("ready")

    def _expect(self, word: str) -> None:
        try:
            msg = self.recv_out.recv()
        except (EOFError, OSError):
            raise bulk.helper_died("ledger writer", self.proc) from None
        if msg[0] == "full":
            raise GridcreditError(bulk.DISK_FULL.format(error=msg[1]))
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
        self._check()
        try:
            self.send_in.send_bytes(orjson.dumps(("finish", last_id, statements)))
        except (BrokenPipeError, OSError):
            self._expect("-")
            raise
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
    conn = bulk.child_connection(path)
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
        for ddl in KIND_DDL:
            conn.execute(ddl)
        if reindex:  # in this transaction: a killed run rolls back to the indexes it had
            for name in REBUILT_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
        outbox.send(("ready",))
        loads = orjson.loads
        while True:
            msg = loads(inbox.recv_bytes())
            if msg[0] != "finish":
                execute(conn, msg[0], msg[1])
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
            if isinstance(e, apsw.FullError):
                outbox.send(("full", str(e)))
            else:
                outbox.send(("error", f"{type(e).__name__}: {e}; nothing was written"))
        except OSError:
            pass
    finally:
        conn.close()
