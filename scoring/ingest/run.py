"""One file's batch: the kind told from its records, its one transaction."""

from __future__ import annotations

import difflib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from ..ledger.bulk import paused_gc
from ..model import Scheme
from . import records
from .batch import _Batch, _Transaction
from .events import _EventIngest
from .master import _JurisdictionIngest, _SubjectIngest
from .records import EVENT_FIELDS, JURISDICTION_FIELDS, KINDS, SUBJECT_FIELDS, BatchSummary

if TYPE_CHECKING:
    from .parallel import _Staged

# --- driver --------------------------------------------------------------------------


def detect_kind(record: dict) -> str:
    """Which kind of file a record belongs to, from its keys."""
    keys = record.keys()
    if "type" in keys or "at" in keys:
        return "events"
    if "groups" in keys:
        return "subjects"
    if keys & {"grid_id", "community_id", "street_id", "community", "street"}:
        return "jurisdictions"
    return "events"


_KIND_FIELDS = {
    "events": (*EVENT_FIELDS, "attrs"),
    "subjects": SUBJECT_FIELDS,
    "jurisdictions": JURISDICTION_FIELDS,
}
_REQUIRED = {
    "events": ("id", "type", "subject", "at"),
    "subjects": ("id", "groups"),
    "jurisdictions": ("street_id", "community_id", "grid_id"),
}
_ALL_FIELDS = frozenset(f for fields in _KIND_FIELDS.values() for f in fields)
_NEEDS = (
    "events need id, type, subject and at; subjects need id and groups; jurisdictions"
    " need street_id, community_id and grid_id"
)


def header_columns(names: Sequence[str]) -> tuple[list[str], str | None]:
    """The column names of a table's header (a CSV file's first row) as ingest reads
    them, and what makes the header unusable for every kind of file, or None.

    A name that spells a field of the kind of file the header is for in other
    letter case (``ID``, ``Type``) is that field; attribute names are kept as
    they are. The kind is told as :func:`detect_kind` tells it; a header with
    none of its kind's required columns is described (what it looks like, what
    is missing) rather than read into a reject for every row.
    """
    folded = [h.lower() if h.lower() in _ALL_FIELDS else h for h in names]
    cols = {h for h in folded if h}
    kind = detect_kind(dict.fromkeys(cols))
    if kind == "events" and not cols & {"type", "at", "subject"}:
        if cols & set(SUBJECT_FIELDS[1:]):  # name, grid, tags, ...: a subjects file
            kind = "subjects"
    fields = _KIND_FIELDS[kind]
    out = [h.lower() if h.lower() in fields else h for h in names]
    cols = {h for h in out if h}
    missing = [c for c in _REQUIRED[kind] if c not in cols]
    if not missing:
        return out, None
    shown = ", ".join(h for h in names if h) or "no names"
    if not cols & (_ALL_FIELDS - {"id"}):
        return out, (
            f"the header ({shown}) names none of the columns ingest reads: {_NEEDS}."
            " The first row of a CSV file must name its columns"
        )
    hints = []
    for m in missing:
        close = difflib.get_close_matches(m, [h.lower() for h in names if h], n=1, cutoff=0.7)
        if close:
            given = next(h for h in names if h.lower() == close[0])
            hints.append(f"column '{given}' should be '{m}'")
    need = ", ".join(_REQUIRED[kind][:-1]) + f" and {_REQUIRED[kind][-1]}"
    what = {"events": "an events", "subjects": "a subjects", "jurisdictions": "a jurisdictions"}
    return out, (
        f"the header ({shown}) looks like {what[kind]} file but has no column"
        f" {', '.join(repr(m) for m in missing)}: {what[kind]} file needs {need}"
        + (f"; {'; '.join(hints)}" if hints else "; add the column and ingest the file again")
    )


def _run(
    conn: sqlite3.Connection,
    scheme: Scheme,
    items: Iterator[tuple[int, Any, Any]],
    summary: BatchSummary,
    *,
    kind: str | None,
    text: bool,
    bar: Any = None,
    staged: _Staged | None = None,
) -> BatchSummary:
    t0 = time.perf_counter()
    try:
        if kind is not None and kind not in KINDS:
            from ..errors import UsageError

            raise UsageError(f"unknown input kind {kind!r}; use one of {', '.join(KINDS)}")
        if staged is not None and conn.in_transaction:
            staged.close()  # a caller's transaction cannot attach the workers' databases
            staged = None
        if staged is not None:
            with paused_gc():
                staged.collect(bar)
        _write_batch(conn, scheme, items, summary, kind, text, bar, staged)
    finally:
        if staged is not None:
            staged.close()
    summary.seconds = time.perf_counter() - t0
    assert summary.read == summary.accepted + summary.duplicates + summary.rejected
    return summary


def _write_batch(
    conn: sqlite3.Connection, scheme: Scheme, items: Iterator[tuple[int, Any, Any]],
    summary: BatchSummary, kind: str | None, text: bool, bar: Any, staged: _Staged | None,
) -> None:  # fmt: skip
    """The batch's one transaction: its row in ``batches``, its records, its accounting."""
    with paused_gc(), _Transaction(conn):
        cur = conn.execute(
            "INSERT INTO batches (file, kind, read, accepted, duplicates, conflicting, rejected)"
            " VALUES (?, ?, 0, 0, 0, 0, 0)",
            [summary.file, kind],
        )
        summary.batch = cur.lastrowid or 0
        b = _Batch(conn, summary)
        handler: Any = None
        if staged is not None:
            kind = summary.kind = "events"
            staged.store(b)
        while staged is None:
            chunk = list(islice(items, records.CHUNK))
            if not chunk:
                break
            summary.read += len(chunk)
            if handler is None:
                if kind is None:
                    first = next((r for _, r, _ in chunk if r.__class__ is dict), None)
                    kind = detect_kind(first) if first is not None else "events"
                summary.kind = kind
                if kind == "events":
                    handler = _EventIngest(scheme, text)
                elif kind == "subjects":
                    handler = _SubjectIngest(scheme, conn)
                else:
                    handler = _JurisdictionIngest(scheme, conn)
            handler.process(b, chunk)
            b.flush()
            if bar is not None:
                bar.update(sum(len(r) for _, _, r in chunk) if bar.unit == "B" else len(chunk))
        if not summary.kind:
            summary.kind = kind or "events"
        summary.problems.sort(key=lambda p: p.line)
        conn.execute(
            "UPDATE batches SET kind = ?, read = ?, accepted = ?, duplicates = ?, conflicting = ?,"
            " rejected = ? WHERE id = ?",
            [summary.kind, summary.read, summary.accepted, summary.duplicates,
             summary.conflicting, summary.rejected, summary.batch],
        )  # fmt: skip


def _conn(db: Any) -> sqlite3.Connection:
    return db.conn if hasattr(db, "conn") else db
