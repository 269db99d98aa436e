"""The batch writer shared by the record kinds: transactions, accounting, rejects."""

from __future__ import annotations

import difflib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from ..errors import Problem
from .records import _IN_LIMIT, _SORT, MAX_PROBLEMS, BatchSummary, _blake2b, _dumps

# --- the batch writer --------------------------------------------------------------


def _hash(*parts: Any) -> str:
    return _blake2b(_dumps(parts, option=_SORT), digest_size=16).hexdigest()


def _in_chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), _IN_LIMIT):
        yield ids[i : i + _IN_LIMIT]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or a savepoint inside a caller's transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.nested = self.conn.in_transaction
        self.conn.execute("SAVEPOINT ingest" if self.nested else "BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("RELEASE ingest" if self.nested else "COMMIT")
        elif self.nested:
            self.conn.execute("ROLLBACK TO ingest")
            self.conn.execute("RELEASE ingest")
        elif self.conn.in_transaction:  # SQLite rolls back itself on a full disk
            self.conn.execute("ROLLBACK")


def _raw_text(raw: Any, rec: Any) -> str:
    if raw is None:
        try:
            return orjson.dumps(rec, default=str).decode()
        except TypeError:
            return repr(rec)
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").rstrip("\r\n")
    return str(raw).rstrip("\r\n")


class _Batch:
    """Accounting and reject storage of one file."""

    def __init__(self, conn: sqlite3.Connection, summary: BatchSummary):
        self.conn = conn
        self.s = summary
        self.reject_rows: list[tuple[Any, ...]] = []
        self.kept: bool | None = None  # whether an earlier batch of the file left rejects

    def reject(
        self, line: int, record_id: Any, reason: str, raw: Any, col: int = 1, rec: Any = None
    ) -> None:
        """Count and keep a reject; ``raw`` is the raw line (``rec`` stands in when None)."""
        s = self.s
        s.rejected += 1
        self.reject_rows.append(
            (s.batch, s.file, line, None if record_id is None else str(record_id), reason,
             _raw_text(raw, rec))
        )  # fmt: skip
        if len(s.problems) < MAX_PROBLEMS:
            s.problems.append(Problem(s.file, line, col, reason))

    def conflict(self, line: int, record_id: str, reason: str, raw: Any, rec: Any = None) -> None:
        self.s.conflicting += 1
        self.reject(line, record_id, reason, raw, rec=rec)

    def warn(self, line: int, record_id: Any, reason: str, raw: Any, rec: Any = None) -> None:
        s = self.s
        s.warnings += 1
        self.reject_rows.append(
            (s.batch, s.file, line, record_id, "warning: " + reason, _raw_text(raw, rec))
        )
        if len(s.problems) < MAX_PROBLEMS:
            s.problems.append(Problem(s.file, line, 1, reason, "warning"))

    def flush(self) -> None:
        """Store the rejects and warnings counted since the last flush, except those an
        earlier batch of the same file stored already (same line, reason and raw
        text): ingesting a file again changes nothing, its rejects included. They
        are counted in this batch all the same."""
        rows = self.reject_rows
        if not rows:
            return
        if self.kept is None:  # whether this file left rejects before: one index seek
            self.kept = (
                self.conn.execute(
                    "SELECT 1 FROM rejects WHERE file = ? AND batch != ? LIMIT 1",
                    [self.s.file, self.s.batch],
                ).fetchone()
                is not None
            )
        if self.kept:
            kept: set[tuple[Any, Any, Any]] = set()
            lines = sorted({r[2] for r in rows})
            for i in range(0, len(lines), 500):  # the lines rejected now, through the index
                part = lines[i : i + 500]
                kept.update(
                    self.conn.execute(
                        "SELECT line, reason, raw FROM rejects WHERE file = ? AND batch != ?"
                        f" AND line IN ({', '.join('?' * len(part))})",
                        [self.s.file, self.s.batch, *part],
                    )
                )
            rows = [r for r in rows if (r[2], r[4], r[5]) not in kept]
        if rows:
            self.conn.executemany(
                "INSERT INTO rejects (batch, file, line, record_id, reason, raw) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        self.reject_rows.clear()


def _earlier(file: str | None, line: int | None) -> str:
    return f"{file}:{line}" if file else "an earlier batch"


def _suggest(word: str, known: Iterable[str], what: str) -> str:
    """'did you mean ...?' and, when short, the list of what is known."""
    names = sorted(known)
    close = difflib.get_close_matches(word, names, n=3)
    parts = [f"did you mean {', '.join(repr(c) for c in close)}?"] if close else []
    if len(names) <= 20:
        parts.append(f"{what}: {', '.join(names)}")
    return " ".join(parts)
