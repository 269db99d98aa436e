"""Large JSON Lines events files checked by worker processes (see below)."""

from __future__ import annotations

import gc
import io
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError
from ..ledger.bulk import child_connection
from ..ledger.scratch import STAGE_PREFIX, clean_stale
from ..model import Scheme
from . import records
from .batch import _Batch, _raw_text
from .encoding import BOM, NOT_UTF8, gbk_refusal, not_utf8
from .events import _EventIngest
from .records import InputFormat
from .run import detect_kind

# --- JSON Lines events in worker processes --------------------------------------------
#
# Checking and canonicalising events is pure Python per record; inserting is
# SQLite. On a large JSON Lines events file, worker processes (fork) each read,
# parse and check byte ranges of the file and stage the rows in a database of
# their own, a scratch file beside the ledger. This process then attaches those
# and copies each chunk into ``events`` with one INSERT ... SELECT, in file
# order, in the batch's one transaction: no row is pickled, sent, decoded or
# bound here (at 1M events that was 5.7 s of this process's 7 s). Accounting is
# identical to the serial path.

# Files from this size on are checked by workers. Starting the pool costs ~0.03 s: a
# lone 1.4 MB file (10k events) takes 0.08-0.10 s here and 0.11-0.13 s with workers,
# while the 100k-event county (a subjects file, then three 5 MB months) takes
# 0.97-1.05 s with workers against 1.22-1.47 s without (the workers check a month
# while this process stores the one before, or the subjects).
PARALLEL_MIN_BYTES = 4 * 2**20
_WORKER: dict[str, Any] = {}
_AT_ID = itemgetter(3, 0)  # a row's (at, id): the order the scorer reads events in
_STAGE_PREFIX = STAGE_PREFIX


def _worker_init(scheme: Scheme) -> None:
    gc.disable()
    _WORKER["events"] = _EventIngest(scheme, False)


def _chunk_lines(data: bytes) -> list[bytes]:
    """A chunk's lines, split as a file's ``readlines`` splits them (at ``\n`` only)."""
    return io.BytesIO(data).readlines()


def _worker_chunk(args: tuple[int, str, int, int, str, Any]) -> bytes:
    """Check the lines of one byte range of the file, read here (the parent sends where
    they are, not the lines), and stage the rows in this worker's database in
    ``folder``. Returns the lines read, the database and rowid range staged, the
    chunk's repeated ids with the first row of each, and the rejects."""
    n0, path, offset, size, folder, parse_lines = args
    with open(path, "rb") as f:
        f.seek(offset)
        lines = _chunk_lines(f.read(size))
    items = parse_lines(lines, n0)
    rows, repeats, rejects = _WORKER["events"].prepare(items, 0)
    stage = _WORKER.get("stage")
    if stage is None or stage[0] != folder:  # a new file: a new database
        if stage is not None:
            stage[1].close()
        db = os.path.join(folder, f"worker-{os.getpid()}.db")
        conn = child_connection(db)
        conn.execute("PRAGMA journal_mode=OFF")  # scratch: the ledger's transaction is the record
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE ev (id, type, subject, at, attrs, amends, line)")
        stage = _WORKER["stage"] = [folder, conn, db, 0]
    conn = stage[1]
    if rows:
        with conn:  # one transaction
            conn.executemany("INSERT INTO ev VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8)", rows)
    lo = stage[3] + 1  # a table only appended to numbers its rows 1, 2, 3, ...
    stage[3] += len(rows)
    again = {r[0] for r in repeats}
    firsts = [r for r in rows if r[0] in again] if again else []
    # (at, id) of the smallest and the last row, and whether the rows are in that
    # order (timsort checks a sorted list in one pass; the smallest is then the
    # first); rows later found to be stored already only leave a sorted sequence
    # sorted
    order = None
    if rows:
        ordered = sorted(rows, key=_AT_ID)
        order = (_AT_ID(ordered[0]), _AT_ID(rows[-1]), ordered == rows)
    return orjson.dumps((len(items), stage[2], lo, stage[3], repeats, firsts, rejects, order))


def default_workers() -> int:
    """Worker processes for a large file: one per core, at most 4.

    While they check and stage the file this process only waits, so on two cores
    two workers check it in half the time. 0 without ``fork``, on one core, or
    when the machine is oversubscribed (a load average above the core count):
    then this process checks the records itself. The load average is not read
    as idle cores: it trails by a minute and counts this process's own work just
    before (a demo's generator, an earlier file).
    """
    import multiprocessing

    cores = os.cpu_count() or 1
    if "fork" not in multiprocessing.get_all_start_methods() or cores < 2:
        return 0
    try:
        if os.getloadavg()[0] > cores:
            return 0
    except OSError:
        pass
    return min(4, cores)


def _stage_folder(conn: sqlite3.Connection) -> str:
    """A new scratch folder beside the ledger (the same disk, not a RAM /tmp), after
    removing those a killed ingest left behind (their process is gone)."""
    import tempfile

    row = conn.execute("PRAGMA database_list").fetchone()
    where = os.path.dirname(row[2]) if row and row[2] else tempfile.gettempdir()
    clean_stale(os.path.join(where, "-"))
    return tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=where)


class _Staged:
    """A JSON Lines events file checked and staged by worker processes, before the
    batch's transaction; ``store`` copies it into the ledger inside it."""

    def __init__(self, conn: sqlite3.Connection, path: Path, parse_lines: Any):
        self.conn = conn
        self.path = path
        self.parse_lines = parse_lines  # the format's own line parser (InputFormat.parse_lines)
        self.folder = _stage_folder(conn)
        self.schemas: dict[str, str] = {}  # staged database -> its schema name here
        # (first line, offset, size, the worker's pending result) of each chunk
        self.pending: list[tuple[int, int, int, Any]] = []
        # (first line, offset, size, the worker's result) of each chunk, in file order
        self.chunks: list[tuple[int, int, int, list[Any]]] = []

    def submit(self, pool: Any) -> _Staged:
        """Hand every chunk of the file to the workers (they check and stage it while
        this process goes on: an earlier file's batch, say)."""
        try:
            with open(self.path, "rb") as f:
                offset = 3 if f.peek(3)[:3] == BOM else 0
                f.seek(offset)
                n0 = 1
                while True:
                    data = f.read(records.CHUNK * 128)
                    if not data:
                        break
                    if not data.endswith(b"\n"):
                        data += f.readline()  # whole lines only
                    task = (n0, str(self.path), offset, len(data), self.folder, self.parse_lines)
                    self.pending.append((n0, offset, len(data), pool.submit(_worker_chunk, task)))
                    n0 += data.count(b"\n") + (not data.endswith(b"\n"))
                    offset += len(data)
        except BaseException:
            self.close()
            raise
        return self

    def collect(self, bar: Any) -> None:
        """Wait for the workers' results, in file order; attach their databases."""
        conn = self.conn
        gbk_checked = False
        for n0, offset, size, res in self.pending:
            try:
                result = orjson.loads(res.result())
            except BrokenProcessPool as e:
                raise InputError(
                    f"{self.path}: a worker process checking this file died ({e});"
                    " nothing of the file was stored. Run the ingest again; if it happens"
                    " again, the machine is probably short of memory: free some, or ingest"
                    " on a less busy machine"
                ) from None
            self.chunks.append((n0, offset, size, result))
            if bar is not None:
                bar.update(size)
            if not gbk_checked and any(r[2].startswith(NOT_UTF8) for r in result[6]):
                gbk_checked = True  # the whole file is refused, as the reader refuses it
                refusal = gbk_refusal(self.path)
                if refusal is not None:
                    raise refusal
        for *_, result in self.chunks:
            db = result[1]
            if db not in self.schemas:
                self.schemas[db] = f"stage{len(self.schemas)}"
                conn.execute("ATTACH DATABASE ? AS " + self.schemas[db], [db])

    def store(self, b: _Batch) -> None:
        """Copy the staged chunks into ``events`` in file order; record the batch's
        seqs and whether they are in (at, id) order (``batches.in_order``)."""
        conn = b.conn
        store = _EventIngest.__new__(_EventIngest)  # store() and _judge() need no compiled checks
        (before,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        in_order, last, least = True, None, None
        for n0, offset, size, (
            count, db, lo, hi, repeats, firsts, rejects, order
        ) in self.chunks:  # fmt: skip
            if order is not None:
                first_key, last_key, ordered = order  # first_key: the chunk's smallest
                in_order = in_order and ordered and (last is None or last <= first_key)
                last = last_key
                if least is None or first_key < least:
                    least = first_key
            b.s.read += count
            for r in rejects:
                b.reject(*r)
            split: list[bytes] = []

            def raw_of(
                line: int, n0: int = n0, offset: int = offset, size: int = size, split: list = split
            ) -> str:
                if not split:  # on the chunk's first conflict, read and split it once
                    with open(self.path, "rb") as f:
                        f.seek(offset)
                        split.extend(_chunk_lines(f.read(size)))
                return _raw_text(split[line - n0], None)

            store.store_staged(
                b, self.schemas[db], lo, hi, repeats, {r[0]: r for r in firsts}, raw_of
            )
            b.flush()
        (after,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        conn.execute(
            "UPDATE batches SET first_seq = ?, last_seq = ?, in_order = ?, first_at = ?,"
            " first_id = ? WHERE id = ?",
            [before + 1, after, int(in_order), *(least or (None, None)), b.s.batch],
        )

    def close(self) -> None:
        import shutil

        for schema in self.schemas.values():
            try:
                self.conn.execute(f"DETACH DATABASE {schema}")
            except sqlite3.Error:
                pass
        self.schemas.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _workers_for(
    path: Path, fmt: InputFormat, kind: str | None, workers: int | None,
    default: Callable[[], int] = default_workers,
) -> int:  # fmt: skip
    """How many workers should check this file: 0 unless it is a JSON Lines events
    file of a line-based format (``InputFormat.parse_lines``) worth splitting (``workers`` None: ``default()`` for a file of at least
    ``PARALLEL_MIN_BYTES``) in UTF-8 (the reader refuses other text in its turn)."""
    read_raw = fmt.read_raw
    if fmt.parse_lines is None or read_raw is None or workers == 0 or kind not in (None, "events"):
        return 0
    with open(path, "rb") as f:
        if not_utf8(f.read(4)):
            return 0
    if workers is None:
        if path.stat().st_size < PARALLEL_MIN_BYTES:
            return 0
        workers = default()
        if not workers:
            return 0
    if kind is None:
        first = next((r for _, r, _ in islice(read_raw(path), 1000) if r.__class__ is dict), None)
        if first is None or detect_kind(first) != "events":
            return 0
    return workers


def _new_pool(scheme: Scheme, workers: int) -> Any:
    """The checking workers: ``concurrent.futures``, not ``multiprocessing.Pool``,
    whose ``terminate`` can hang for good when a task failed while others were still
    being handed out, and which never notices a worker killed from outside."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_init,
        initargs=(scheme,),
    )


def close_pool(pool: Any) -> None:
    """Stop the workers: chunks not started are dropped, running ones finish (each
    is a few thousand lines)."""
    pool.shutdown(wait=True, cancel_futures=True)
