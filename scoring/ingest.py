"""Streaming ingest of subjects, jurisdictions and events, with full accounting.

Every record read is accounted for (SPEC §5)::

    read = accepted + duplicates + rejected        (rejected includes conflicting)

* **accepted**: stored.
* **duplicate**: same id and same content as a record already stored (or
  earlier in the same file): ignored. Content is compared by a hash of the
  canonical record, not its formatting, so a JSON Lines event and the same
  event as a CSV row are duplicates.
* **conflicting**: same id, different content: rejected; the reason names
  the earlier record's file and line.
* **rejected**: stored in ``rejects`` with file, line, the raw line and a
  reason a person can act on.

One bad record never stops a file; each file is one batch in one transaction.

Subjects and jurisdictions are master data: a record whose id is already
stored from an *earlier batch* with different content **updates** it (counted
under accepted and reported as ``updated``). The same id twice with
different content *within one file* is conflicting, since the file
contradicts itself. Events are never updated: a changed event needs a new id
(and ``amends``).

An event's subject need not be known yet (subjects may arrive later; the
scorer handles unknown subjects). A subject's grid must be known (from the
scheme's ``jurisdictions.yaml`` or an ingested jurisdictions file).

A unified social credit code that fails its GB 32100 check character is a
warning, not a reject (some early codes fail it). Warnings are stored in
``rejects`` with a reason starting ``warning:``; they are not counted as
rejected.
"""

from __future__ import annotations

import difflib
import functools
import gc
import hashlib
import io
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from datetime import date as _date
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol, cast

import orjson

from .bulk import child_connection, paused_gc
from .durations import FIRST_YEAR, LAST_YEAR
from .errors import GridcreditError, InputError, Problem
from .model import AttrSpec, EventType, Scheme

CHUNK = 20_000
_IN_LIMIT = 10_000  # ids per ``IN (...)`` query, far under SQLite's variable limit
MAX_PROBLEMS = 50  # rejects and warnings kept on a BatchSummary for display

KINDS = ("events", "subjects", "jurisdictions")
EVENT_FIELDS = ("id", "type", "subject", "at", "amends")
SUBJECT_FIELDS = ("id", "groups", "name", "grid", "tags", "code", "links")
JURISDICTION_FIELDS = ("street_id", "street", "community_id", "community", "grid_id", "grid")

_dumps = orjson.dumps
_SORT = orjson.OPT_SORT_KEYS
_blake2b = hashlib.blake2b

TIME_HINT = "write ISO 8601, e.g. 2024-03-05T14:30:00 (scheme-local time) or 2024-03-05T06:30:00Z"
TIME_RANGE = f"{FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31"  # what ``time_parser`` accepts, local time


def time_problem(at: str) -> str:
    """Why the time ``at`` was not read: outside the supported years, or not ISO 8601."""
    try:
        year = datetime.fromisoformat(at.strip()).year
    except ValueError:
        year = None
    if year is not None and not FIRST_YEAR <= year <= LAST_YEAR:
        return (
            f"cannot read time {at!r} in 'at': it is outside the supported range"
            f" {TIME_RANGE} (scheme-local time); check the year"
        )
    return f"cannot read time {at!r} in 'at': {TIME_HINT}"


class RecordError(ValueError):
    """A record that could not be read (bad JSON, bad CSV row); yielded by readers.

    ``col`` is the 1-based column of the fault when known.
    """

    def __init__(self, message: str, col: int = 1):
        super().__init__(message)
        self.col = col


class _Bad(Exception):
    """A record fails a check; the message is the reject reason."""


@dataclass
class InputFormat:
    """An input file reader, registered through the ``register_input_formats`` hook.

    ``read(path)`` yields ``(line_number, record | Exception)``; a record is a
    dict. An optional ``read_raw(path)`` yields ``(line, record | Exception,
    raw_text)`` so rejects keep the raw line (otherwise the record is stored
    re-serialised). ``text_values``: every value is a string (as in CSV) and
    is converted to the declared attribute type; otherwise values must
    already have the declared JSON type.
    """

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], Iterator[tuple[int, Any]]]
    read_raw: Callable[[Path], Iterator[tuple[int, Any, Any]]] | None = None
    text_values: bool = False


@dataclass
class BatchSummary:
    """The accounting of one ingested file (one row of ``batches``)."""

    file: str
    kind: str
    batch: int = 0
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicting: int = 0
    rejected: int = 0  # includes conflicting
    updated: int = 0  # subjects/grids changed by this batch; counted in accepted
    warnings: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)  # the first rejects and warnings

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = [str(p) for p in self.problems]
        return d


def summary_line(batch: BatchSummary) -> str:
    """``events.jsonl: read 1000 = accepted 990 + duplicates 5 + rejected 5 (2 conflicting)``.

    The conflicting, updated and warning counts are shown only when non-zero.
    """
    acc = f"accepted {batch.accepted}"
    if batch.updated:
        acc += f" ({batch.updated} updated)"
    line = (
        f"{batch.file}: read {batch.read} = {acc} + duplicates {batch.duplicates}"
        f" + rejected {batch.rejected}"
    )
    if batch.conflicting:
        line += f" ({batch.conflicting} conflicting)"
    if batch.warnings:
        line += f"; {batch.warnings} warning{'s' if batch.warnings != 1 else ''}"
    return line


# --- GB 32100 unified social credit code -------------------------------------------

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_CHARS)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid 18-character unified social credit code (GB 32100), or None."""
    if len(code) != 18:
        return f"unified social credit code {code!r} has {len(code)} characters, not 18"
    bad = [c for c in code if c not in _USCC_VALUE]
    if bad:
        return (
            f"unified social credit code {code!r} contains {bad[0]!r}; only digits and"
            " upper-case letters except I, O, S, V, Z are used"
        )
    total = sum(_USCC_VALUE[c] * w for c, w in zip(code, _USCC_WEIGHTS))
    expected = _USCC_CHARS[(31 - total % 31) % 31]
    if code[17] != expected:
        return (
            f"unified social credit code {code!r} fails the GB 32100 check: the last"
            f" character should be {expected!r}; check the code for typing errors"
        )
    return None


# --- attribute checks, compiled once per event type ------------------------------

_TRUE = {"true", "1", "yes", "y", "t", "是", "真"}
_FALSE = {"false", "0", "no", "n", "f", "否", "假"}
_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "date": "a date YYYY-MM-DD",
}


def _show(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    try:
        return orjson.dumps(v).decode()
    except TypeError:  # e.g. an integer beyond 64 bits
        return repr(v)[:40]


# Largest magnitude an attribute number may have: exact in a double, storable in SQLite.
_MAX_NUMBER = 2**53


def _attr_check(spec: AttrSpec, type_id: str, text: bool) -> Callable[[Any], Any]:
    """A function that returns the canonical value of one attribute or raises ``_Bad``."""
    name, typ = spec.name, spec.type
    lo, hi = spec.min, spec.max
    values = frozenset(spec.values) if spec.values is not None else None
    word = _TYPE_WORDS.get(typ, typ)
    unit = f" {spec.unit}" if spec.unit else ""

    def wrong(v: Any) -> _Bad:
        got = f"the string {v!r}" if isinstance(v, str) and not text else _show(v)
        return _Bad(f"attribute '{name}' of '{type_id}' must be {word}, got {got}")

    def bounds(v: Any) -> Any:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            allowed = (
                f"{lo} to {hi}" if lo is not None and hi is not None
                else f"at least {lo}" if lo is not None else f"at most {hi}"
            )  # fmt: skip
            raise _Bad(
                f"attribute '{name}' of '{type_id}' = {_show(v)} is out of range;"
                f" allowed {allowed}{unit}"
            )
        return v

    def allowed(v: Any) -> Any:
        if values is not None and v not in values:
            listed = ", ".join(str(x) for x in spec.values or [])
            raise _Bad(
                f"attribute '{name}' of '{type_id}' = {_show(v)} is not allowed;"
                f" allowed values: {listed}"
            )
        return v

    has_bounds = lo is not None or hi is not None
    has_values = values is not None

    if typ in ("integer", "number"):
        integer = typ == "integer"

        def to_num(v: Any) -> Any:
            cls = v.__class__
            if cls is int:
                pass
            elif cls is float:
                if v.is_integer():
                    v = int(v)
                elif integer:
                    raise wrong(v)
            elif text and cls is str:
                s = v.strip()
                try:
                    v = int(s)
                except ValueError:
                    try:
                        f = float(s)
                    except ValueError:
                        raise wrong(v) from None
                    if not math.isfinite(f) or (integer and not f.is_integer()):
                        raise wrong(v) from None
                    v = int(f) if f.is_integer() else f
            else:
                raise wrong(v)
            if not -_MAX_NUMBER <= v <= _MAX_NUMBER:
                raise _Bad(
                    f"attribute '{name}' of '{type_id}' = {_show(v)} is too large;"
                    f" numbers must lie within ±{_MAX_NUMBER:,}"
                )
            if has_bounds:
                bounds(v)
            if has_values:
                allowed(v)
            return v

        return to_num

    if typ == "boolean":

        def to_bool(v: Any) -> Any:
            if v.__class__ is bool:
                return v
            if text and isinstance(v, str):
                s = v.strip().lower()
                if s in _TRUE:
                    return True
                if s in _FALSE:
                    return False
            raise wrong(v)

        return to_bool

    if typ == "date":
        lo_s = str(lo) if lo is not None else None
        hi_s = str(hi) if hi is not None else None

        def to_date(v: Any) -> Any:
            if v.__class__ is not str:
                raise wrong(v)
            s = v.strip()
            try:
                s = date.fromisoformat(s).isoformat()
            except ValueError:
                raise wrong(v) from None
            if (lo_s is not None and s < lo_s) or (hi_s is not None and s > hi_s):
                raise _Bad(
                    f"attribute '{name}' of '{type_id}' = {s!r} is out of range;"
                    f" allowed {lo_s or '…'} to {hi_s or '…'}"
                )
            if has_values:
                allowed(s)
            return s

        return to_date

    # string (and any type a plugin declares: kept as text)
    def to_str(v: Any) -> Any:
        if v.__class__ is not str:
            raise wrong(v)
        if values is not None and v not in values:
            allowed(v)
        return v

    return to_str


def compile_validator(et: EventType, *, text: bool = False) -> Callable[[Any], dict[str, Any]]:
    """Return ``validate(attrs) -> canonical attrs`` for one event type (raises ``_Bad``).

    Canonical: nulls (and, for text input, empty cells) dropped, numbers with
    an integral value as integers, text converted to the declared types.
    """
    checks = {name: _attr_check(spec, et.id, text) for name, spec in et.attrs.items()}
    required = frozenset(n for n, s in et.attrs.items() if s.required)
    declared = ", ".join(sorted(et.attrs)) or "(none)"
    tid = et.id

    def validate(attrs: Any) -> dict[str, Any]:
        if attrs.__class__ is not dict:
            raise _Bad(f"'attrs' must be an object of attribute values, got {_show(attrs)}")
        if not text:  # fast path: already canonical JSON values are kept as they are
            for k, v in attrs.items():
                c = checks.get(k)
                if c is None or v is None or c(v) is not v:
                    break
            else:
                if required and not required <= attrs.keys():
                    raise _Bad(missing_message(required - attrs.keys()))
                return attrs
        out = {}
        for k, v in attrs.items():
            if v is None or (text and v == ""):
                continue
            c = checks.get(k)
            if c is None:
                raise _Bad(
                    f"unknown attribute '{k}' for event type '{tid}'; declared attributes: {declared}"
                )
            out[k] = c(v)
        if required and not required <= out.keys():
            raise _Bad(missing_message(required - out.keys()))
        return out

    def missing_message(missing: Iterable[str]) -> str:
        titles = [
            f"'{m}'" + (f" ({et.attrs[m].title})" if et.attrs[m].title else "")
            for m in sorted(missing)
        ]
        return f"missing required attribute {', '.join(titles)} for event type '{tid}'"

    return validate


# --- time ------------------------------------------------------------------------


_MMSS = {f":{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
_HHMM = {f"{h:02d}:{m:02d}": h * 3600 + m * 60 for h in range(24) for m in range(60)}


class TimeParser(Protocol):
    """A ``time_parser`` result: callable, with its local-hour cache exposed."""

    local_hours: dict[str, int]
    low: int
    high: int

    def __call__(self, text: str) -> int: ...


def time_parser(scheme: Scheme) -> TimeParser:
    """``parse(text) -> UTC epoch seconds`` for ISO 8601 times (raises ``ValueError``).

    Same results as ``Clock.parse_time``, with the two common shapes
    (``YYYY-MM-DDTHH:MM:SS`` local, and with ``Z``/``±HH:MM``) computed from a
    per-hour cache: ingest sees the same hours again and again.
    """
    clock = scheme.clock
    local_hours: dict[str, int] = {}
    utc_hours: dict[str, int] = {}
    slow = clock.parse_time

    def parse(text: str) -> int:
        n = len(text)
        if n >= 19 and text[10] in "T ":
            key = text[:13]
            if n == 19:
                base = local_hours.get(key)
                if base is None:
                    base = slow(key + ":00:00")
                    if len(local_hours) > 500_000:
                        local_hours.clear()
                    local_hours[key] = base
                off = _MMSS.get(text[13:19])
                if off is not None:
                    return base + off
            elif (n == 20 and text[19] == "Z") or (
                n == 25 and text[19] in "+-" and text[22] == ":"
            ):
                base = utc_hours.get(key)
                if base is None:
                    base = int(
                        datetime.fromisoformat(key + ":00:00").replace(tzinfo=UTC).timestamp()
                    )
                    if len(utc_hours) > 500_000:
                        utc_hours.clear()
                    utc_hours[key] = base
                off = _MMSS.get(text[13:19])
                if off is not None:
                    if n == 20:
                        return base + off
                    tz = _HHMM.get(text[20:25])
                    if tz is not None:
                        return base + off - tz if text[19] == "+" else base + off + tz
        return slow(text)

    low = scheme.clock.day_start(_date(FIRST_YEAR, 1, 1))
    high = scheme.clock.day_start(_date(LAST_YEAR + 1, 1, 1))

    def checked(text: str) -> int:
        at = parse(text)
        if not low <= at < high:
            raise ValueError(f"{text!r} is outside {TIME_RANGE}; check the year")
        return at

    fast = cast(TimeParser, checked)
    fast.local_hours = local_hours  # read by the ingest hot loop
    fast.low, fast.high = low, high
    return fast


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
        else:
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


# --- events ------------------------------------------------------------------------


class _EventIngest:
    def __init__(self, scheme: Scheme, text: bool):
        self.scheme = scheme
        self.text = text
        self.validators = {
            tid: compile_validator(et, text=text) for tid, et in scheme.event_types.items()
        }
        self.parse_at = time_parser(scheme)
        self.zoned_hours: dict[str, int] = {}  # "YYYY-MM-DDTHH+08:00" -> epoch of HH:00:00
        self.canonical: dict[str, dict[bytes, str]] = {}  # type -> raw attrs -> canonical

    def _unknown_type(self, typ: str) -> str:
        known = sorted(self.scheme.event_types)
        close = difflib.get_close_matches(typ, known, n=3)
        msg = f"unknown event type '{typ}'"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        if len(known) <= 20:
            msg += f" Declared types: {', '.join(known)}"
        else:
            msg += f" Declare it in events.yaml or use one of the {len(known)} declared types"
        return msg

    def _core(self, rec: dict) -> tuple[str, str, str, str]:
        """The slow path: exact reasons for missing or mistyped id/type/subject/at."""
        out = []
        for f in ("id", "type", "subject", "at"):
            v = rec.get(f)
            if v is None or v == "" or (isinstance(v, str) and not v.strip()):
                raise _Bad(
                    f"missing required field '{f}' (an event needs id, type, subject and at)"
                )
            if f == "at":
                if v.__class__ is not str:
                    raise _Bad(f"cannot read time {_show(v)} in 'at': {TIME_HINT}")
            elif v.__class__ is int and f != "type":
                v = str(v)
            elif v.__class__ is not str:
                raise _Bad(f"field '{f}' must be a string, got {_show(v)}")
            out.append(v)
        return out[0], out[1], out[2], out[3]

    def process(self, b: _Batch, items: list[tuple[int, Any, Any]]) -> None:
        rows, repeats, rejects = self.prepare(items, b.s.batch)
        for r in rejects:
            b.reject(*r)

        def raw_of(line: int) -> Any:
            return next((_raw_text(rw, rec) for ln, rec, rw in items if ln == line), None)

        self.store(b, rows, repeats, raw_of)

    def prepare(
        self, items: list[tuple[int, Any, Any]], batch_id: int
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Check and canonicalise a chunk; no database access (it may run in a worker).

        Returns the rows to insert (first occurrence of each id), the rows of
        later occurrences of an id in this chunk, and the rejects as
        ``(line, record id, reason, raw text, column)``.
        """
        validators = self.validators
        parse_at = self.parse_at
        hours = parse_at.local_hours
        zoned = self.zoned_hours
        low, high = parse_at.low, parse_at.high
        memo = self.canonical
        rows: list[tuple[Any, ...]] = []  # (id, type, subject, at, attrs, amends, batch, line)
        seen: set[str] = set()
        repeats: list[tuple[Any, ...]] = []
        rejects: list[tuple[Any, ...]] = []
        for line, rec, raw in items:
            if rec.__class__ is not dict:
                if isinstance(rec, Exception):
                    rejects.append(
                        (line, None, str(rec), _raw_text(raw, rec), getattr(rec, "col", 1))
                    )
                else:
                    rejects.append((
                        line, None,
                        f"a record must be an object with id, type, subject and at, got {_show(rec)}",
                        _raw_text(raw, rec), 1,
                    ))  # fmt: skip
                continue
            try:
                eid = rec["id"]
                typ = rec["type"]
                subj = rec["subject"]
                at = rec["at"]
            except KeyError:
                eid = typ = subj = at = None
            try:
                if not (
                    eid.__class__ is str and typ.__class__ is str and subj.__class__ is str
                    and at.__class__ is str and eid and subj
                ):  # fmt: skip
                    eid, typ, subj, at = self._core(rec)
                if (
                    len(at) == 19
                    and (base := hours.get(at[:13])) is not None
                    and (off := _MMSS.get(at[13:19])) is not None
                ):
                    ts = base + off
                elif (
                    len(at) == 25  # with an offset: the hour's start in that offset, cached
                    and (base := zoned.get(at[:13] + at[19:])) is not None
                    and (off := _MMSS.get(at[13:19])) is not None
                    and low <= base + off < high
                ):
                    ts = base + off
                else:
                    try:
                        ts = parse_at(at)
                    except (ValueError, OverflowError, OSError):
                        if not at.strip():
                            self._core(rec)  # says which field is missing
                        raise _Bad(time_problem(at)) from None
                    if len(at) == 25 and at[13:19] in _MMSS and len(zoned) < 500_000:
                        zoned[at[:13] + at[19:]] = ts - _MMSS[at[13:19]]
                validate = validators.get(typ)
                if validate is None:
                    if not typ.strip():
                        self._core(rec)
                    raise _Bad(self._unknown_type(typ))
                if len(rec) == 5 and "attrs" in rec:
                    # most events repeat a few attribute sets: their canonical JSON is
                    # remembered by the raw attributes' JSON (validation is pure)
                    amends = None
                    raw_attrs = rec["attrs"]
                    known = memo.get(typ)
                    if known is None:
                        known = memo[typ] = {}
                    key = _dumps(raw_attrs)
                    attrs_json = known.get(key)
                    if attrs_json is None:
                        attrs_json = _dumps(validate(raw_attrs), option=_SORT).decode()
                        if len(known) >= 50_000:
                            known.clear()
                        known[key] = attrs_json
                else:
                    attrs, amends = self._merged(rec, validate)
                    attrs_json = _dumps(attrs, option=_SORT).decode()
            except _Bad as e:
                rid = eid if eid.__class__ in (str, int) else rec.get("id")
                if rid.__class__ not in (str, int):
                    rid = None
                rejects.append((line, rid, str(e), _raw_text(raw, rec), 1))
                continue
            row = (eid, typ, subj, ts, attrs_json, amends, batch_id, line)
            if eid in seen:
                repeats.append(row)
            else:
                seen.add(eid)
                rows.append(row)
        return rows, repeats, rejects

    def store(
        self, b: _Batch, rows: list[tuple[Any, ...]], repeats: list[tuple[Any, ...]],
        raw_of: Callable[[int], Any],
    ) -> None:  # fmt: skip
        """Insert a prepared chunk; ids already stored are duplicates or conflicts."""
        if not rows:
            return
        conn = b.conn
        # The UNIQUE id index decides: insert what is new, then look only at what was not.
        n = conn.executemany(
            "INSERT OR IGNORE INTO events (id, type, subject, at, attrs, amends, batch, line)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        ).rowcount
        b.s.accepted += n
        if n == len(rows) and not repeats:
            return
        ignored = []
        if n < len(rows):
            mine = set()  # ids this chunk stored just now
            for part in _in_chunks([r[0] for r in rows]):
                q = ",".join("?" * len(part))
                for eid, bt, ln in conn.execute(
                    f"SELECT id, batch, line FROM events WHERE id IN ({q})", part
                ):
                    if bt == b.s.batch:
                        mine.add((eid, ln))
            ignored = [r for r in rows if (r[0], r[7]) not in mine]
        self._settle(b, ignored, repeats, {r[0]: r for r in rows}, raw_of)

    def store_staged(
        self, b: _Batch, src: str, lo: int, hi: int, repeats: list[tuple[Any, ...]],
        firsts: dict[str, tuple[Any, ...]], raw_of: Callable[[int], Any],
    ) -> None:  # fmt: skip
        """Insert a chunk a worker staged in its own database (attached as ``src``,
        rows ``lo``..``hi``): one statement, no row crosses into Python."""
        conn = b.conn
        batch = b.s.batch
        count = hi - lo + 1
        n = 0
        if count > 0:
            n = conn.execute(
                "INSERT OR IGNORE INTO events (id, type, subject, at, attrs, amends, batch, line)"
                f" SELECT id, type, subject, at, attrs, amends, ?, line FROM {src}.ev"
                " WHERE rowid BETWEEN ? AND ?",
                [batch, lo, hi],
            ).rowcount
            b.s.accepted += n
        if n == count and not repeats:
            return
        ignored: list[tuple[Any, ...]] = []
        if n < count:
            ignored = conn.execute(
                f"SELECT w.id, w.type, w.subject, w.at, w.attrs, w.amends, ?, w.line FROM {src}.ev w"
                " WHERE w.rowid BETWEEN ? AND ? AND NOT EXISTS (SELECT 1 FROM main.events e"
                " WHERE e.id = w.id AND e.batch = ? AND e.line = w.line)",
                [batch, lo, hi, batch],
            ).fetchall()
        self._settle(b, ignored, repeats, firsts, raw_of)

    def _settle(
        self, b: _Batch, ignored: list[tuple[Any, ...]], repeats: list[tuple[Any, ...]],
        firsts: dict[str, tuple[Any, ...]], raw_of: Callable[[int], Any],
    ) -> None:  # fmt: skip
        """Judge the rows whose id was stored before (``ignored``) against the stored
        event, and the chunk's later occurrences of an id (``repeats``) against the
        one that counts: the stored event, or the chunk's first (``firsts``)."""
        # id -> (content, file, line) of the stored event; content as in a row: r[1:6]
        winner: dict[str, tuple[tuple[Any, ...], str | None, int | None]] = {}
        for part in _in_chunks([r[0] for r in ignored]):
            q = ",".join("?" * len(part))
            for eid, typ, subj, at, attrs, amends, f, ln in b.conn.execute(
                "SELECT e.id, e.type, e.subject, e.at, e.attrs, e.amends, b.file, e.line"
                f" FROM events e LEFT JOIN batches b ON b.id = e.batch WHERE e.id IN ({q})",
                part,
            ):
                winner[eid] = ((typ, subj, at, attrs, amends), f, ln)
        for r in ignored:
            self._judge(b, r, winner[r[0]], raw_of)
        for r in repeats:
            w = winner.get(r[0])
            if w is None:
                w0 = firsts[r[0]]
                w = (w0[1:6], b.s.file, w0[7])
            self._judge(b, r, w, raw_of)

    def _judge(
        self, b: _Batch, row: tuple[Any, ...], earlier: tuple[tuple[Any, ...], str | None, int | None],
        raw_of: Callable[[int], Any],
    ) -> None:  # fmt: skip
        """A row whose id is already taken: duplicate (same content) or conflicting.

        Content is type, subject, time, canonical attributes and amends, so a JSON
        Lines event and the same event as a CSV row are duplicates."""
        if tuple(earlier[0]) == tuple(row[1:6]):  # rows from worker processes are lists
            b.s.duplicates += 1
            return
        eid, line = row[0], row[7]
        b.conflict(
            line, eid,
            f"conflicts with event '{eid}' accepted earlier at {_earlier(earlier[1], earlier[2])}:"
            " same id, different content. Give this event a new id, or send a"
            f" correction with its own id and amends: {eid}",
            raw_of(line),
        )  # fmt: skip

    def _merged(
        self, rec: dict, validate: Callable[[Any], dict[str, Any]]
    ) -> tuple[dict, str | None]:
        """Attributes from ``attrs`` and other top-level keys; ``amends``."""
        a = rec.get("attrs")
        if a is None:
            merged = {}
        elif a.__class__ is dict:
            merged = dict(a)
        else:
            raise _Bad(f"'attrs' must be an object of attribute values, got {_show(a)}")
        for k, v in rec.items():
            if k not in _CORE_KEYS:
                if k in merged and merged[k] is not None:
                    raise _Bad(f"attribute '{k}' is given twice, at top level and in 'attrs'")
                merged[k] = v
        attrs = validate(merged)
        amends = rec.get("amends")
        if amends is not None:
            if amends.__class__ is int:
                amends = str(amends)
            elif amends.__class__ is not str:
                raise _Bad(f"'amends' must be the id of an earlier event, got {_show(amends)}")
            if not amends:
                amends = None
        return attrs, amends


_CORE_KEYS = frozenset(("id", "type", "subject", "at", "amends", "attrs"))


# --- subjects ----------------------------------------------------------------------


def _split(v: Any, what: str) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [p.strip() for p in v.split("|") if p.strip()]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return [x.strip() for x in v if x.strip()]
    raise _Bad(f"'{what}' must be a list of strings or a text separated by '|', got {_show(v)}")


def _links(v: Any) -> dict[str, str]:
    if v is None or v == "":
        return {}
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if isinstance(x, int) and not isinstance(x, bool):
                x = str(x)
            if not isinstance(x, str) or not x:
                raise _Bad(f"link '{k}' must name a subject id, got {_show(x)}")
            out[str(k)] = x
        return out
    if isinstance(v, str):
        out = {}
        for part in v.split("|"):
            part = part.strip()
            if not part:
                continue
            name, eq, target = part.partition("=")
            if not eq or not name.strip() or not target.strip():
                raise _Bad(
                    f"cannot read link {part!r}: write links as name=id|name=id,"
                    " e.g. legal_representative=P0001"
                )
            out[name.strip()] = target.strip()
        return out
    raise _Bad(f"'links' must be an object {{name: subject id}} or name=id|name=id, got {_show(v)}")


def _checked(
    b: _Batch,
    items: list[tuple[int, Any, Any]],
    what: str,
    parse: Callable[[dict], Any],
    id_key: str,
) -> Iterator[tuple[int, dict, Any, Any]]:
    """Parse each record with ``parse``; reject (with line and reason) what is no object or bad."""
    for line, rec, raw in items:
        if rec.__class__ is not dict:
            reason = (
                str(rec)
                if isinstance(rec, Exception)
                else f"a {what} record must be an object, got {_show(rec)}"
            )
            b.reject(line, None, reason, raw, getattr(rec, "col", 1), rec=rec)
            continue
        try:
            parsed = parse(rec)
        except _Bad as e:
            rid = rec.get(id_key)
            b.reject(line, rid if isinstance(rid, (str, int)) else None, str(e), raw, rec=rec)
            continue
        yield line, rec, raw, parsed


class _SubjectIngest:
    def __init__(self, scheme: Scheme, conn: sqlite3.Connection):
        self.scheme = scheme
        self.grids = set(scheme.grids) | {r[0] for r in conn.execute("SELECT id FROM grids")}
        self.seen: dict[str, tuple[str, int]] = {}  # id -> (hash, line) within this file

    def _record(self, rec: dict) -> tuple[Any, ...]:
        scheme = self.scheme
        unknown = [k for k in rec if k not in SUBJECT_FIELDS]
        if unknown:
            raise _Bad(
                f"unknown field '{unknown[0]}'; subject fields are {', '.join(SUBJECT_FIELDS)}"
            )
        sid = rec.get("id")
        if isinstance(sid, int) and not isinstance(sid, bool):
            sid = str(sid)
        if not isinstance(sid, str) or not sid.strip():
            raise _Bad("missing required field 'id' (a subject needs id and groups)")
        sid = sid.strip()
        groups = _split(rec.get("groups"), "groups")
        if not groups:
            raise _Bad("missing required field 'groups' (a subject needs id and groups)")
        for g in groups:
            if g not in scheme.groups:
                raise _Bad(
                    f"unknown group '{g}'; " + _suggest(g, scheme.groups, "the scheme's groups are")
                )
        groups = sorted(set(groups))
        kinds = {scheme.groups[g].kind for g in groups}
        if len(kinds) > 1:
            raise _Bad(
                f"groups {', '.join(groups)} mix persons and organisations; a subject is one or the other"
            )
        kind = kinds.pop()
        name = rec.get("name")
        name = "" if name is None else str(name).strip()
        grid = rec.get("grid")
        grid = None if grid is None or grid == "" else str(grid).strip()
        if grid is not None and grid not in self.grids:
            close = difflib.get_close_matches(grid, sorted(self.grids), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise _Bad(
                f"unknown grid '{grid}'{hint} Grids come from jurisdictions.yaml or an ingested"
                " jurisdictions file"
            )
        tags = sorted(set(_split(rec.get("tags"), "tags")))
        code = rec.get("code")
        code = None if code is None or code == "" else str(code).strip().upper()
        links = _links(rec.get("links"))
        h = _hash(groups, kind, name, grid, tags, code, links)
        return sid, groups, kind, name, grid, tags, code, links, h

    def process(self, b: _Batch, items: list[tuple[int, Any, Any]]) -> None:
        conn = b.conn
        cands = [
            (line, raw, rec, c)
            for line, rec, raw, c in _checked(b, items, "subject", self._record, "id")
        ]
        if not cands:
            return
        ids = list({c[3][0] for c in cands})
        stored: dict[str, str] = {}
        for part in _in_chunks(ids):
            q = ",".join("?" * len(part))
            stored.update(
                conn.execute(f"SELECT id, hash FROM subjects WHERE id IN ({q})", part).fetchall()
            )
        upserts: list[tuple[Any, ...]] = []
        memberships: list[tuple[str, str]] = []
        changed: list[tuple[str]] = []
        s = b.s
        for line, raw, rec, c in cands:
            sid, groups, kind, name, grid, tags, code, links, h = c
            prev = self.seen.get(sid)
            if prev is not None:
                if prev[0] == h:
                    s.duplicates += 1
                else:
                    b.conflict(
                        line, sid,
                        f"conflicts with subject '{sid}' at {s.file}:{prev[1]}: same id, different"
                        " content in one file. Keep one of the two records",
                        raw, rec,
                    )  # fmt: skip
                continue
            self.seen[sid] = (h, line)
            old = stored.get(sid)
            if old == h:
                s.duplicates += 1
                continue
            if old is not None:
                s.updated += 1
                changed.append((sid,))
            s.accepted += 1
            if code is not None and kind == "organization":
                why = uscc_problem(code)
                if why:
                    b.warn(line, sid, why, raw, rec)
            upserts.append(
                (
                    sid,
                    kind,
                    name,
                    grid,
                    _dumps(tags).decode(),
                    code,
                    _dumps(links, option=_SORT).decode(),
                    h,
                )
            )
            memberships.extend((sid, g) for g in groups)
        if changed:
            conn.executemany("DELETE FROM memberships WHERE subject = ?", changed)
        if upserts:
            conn.executemany(
                "INSERT OR REPLACE INTO subjects (id, kind, name, grid, tags, code, links, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                upserts,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO memberships (subject, grp) VALUES (?, ?)", memberships
            )


# --- jurisdictions -----------------------------------------------------------------


class _JurisdictionIngest:
    def __init__(self, scheme: Scheme, conn: sqlite3.Connection):
        self.seen: dict[str, tuple[tuple[Any, ...], int]] = {}

    def _record(self, rec: dict) -> tuple[str, str, str, str, str, str]:
        unknown = [k for k in rec if k not in JURISDICTION_FIELDS]
        if unknown:
            raise _Bad(
                f"unknown column '{unknown[0]}'; jurisdiction columns are {', '.join(JURISDICTION_FIELDS)}"
            )

        def val(k: str) -> str:
            v = rec.get(k)
            return "" if v is None else str(v).strip()

        for k in ("grid_id", "community_id", "street_id"):
            if not val(k):
                raise _Bad(
                    f"missing required field '{k}' (a jurisdiction row needs street_id,"
                    " community_id and grid_id)"
                )
        gid, cid, sid = val("grid_id"), val("community_id"), val("street_id")
        return (gid, val("grid") or gid, cid, val("community") or cid, sid, val("street") or sid)

    def process(self, b: _Batch, items: list[tuple[int, Any, Any]]) -> None:
        conn = b.conn
        s = b.s
        rows = []
        for line, rec, raw, row in _checked(b, items, "jurisdiction", self._record, "grid_id"):
            prev = self.seen.get(row[0])
            if prev is not None:
                if prev[0] == row:
                    s.duplicates += 1
                else:
                    b.conflict(
                        line, row[0],
                        f"conflicts with grid '{row[0]}' at {s.file}:{prev[1]}: same grid_id,"
                        " different names or community. Keep one of the two rows",
                        raw, rec,
                    )  # fmt: skip
                continue
            self.seen[row[0]] = (row, line)
            old = conn.execute(
                "SELECT id, name, community, community_name, street, street_name FROM grids WHERE id = ?",
                [row[0]],
            ).fetchone()
            if old is not None and tuple(old) == row:
                s.duplicates += 1
                continue
            if old is not None:
                s.updated += 1
            s.accepted += 1
            rows.append(row)
        if rows:
            conn.executemany(
                "INSERT OR REPLACE INTO grids (id, name, community, community_name, street, street_name)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )


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
            from .errors import UsageError

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
            chunk = list(islice(items, CHUNK))
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
_STAGE_PREFIX = ".gridcredit-ingest-"


def _worker_init(scheme: Scheme) -> None:
    gc.disable()
    _WORKER["events"] = _EventIngest(scheme, False)


def _chunk_lines(data: bytes) -> list[bytes]:
    """A chunk's lines, split as a file's ``readlines`` splits them (at ``\n`` only)."""
    return io.BytesIO(data).readlines()


def _worker_chunk(args: tuple[int, str, int, int, str]) -> bytes:
    """Check the lines of one byte range of the file, read here (the parent sends where
    they are, not the lines), and stage the rows in this worker's database in
    ``folder``. Returns the lines read, the database and rowid range staged, the
    chunk's repeated ids with the first row of each, and the rejects."""
    from .builtin.formats import json_error

    n0, path, offset, size, folder = args
    with open(path, "rb") as f:
        f.seek(offset)
        lines = _chunk_lines(f.read(size))
    loads = orjson.loads
    items = []
    for n, line in enumerate(lines, n0):
        try:
            rec = loads(line)
        except orjson.JSONDecodeError as e:
            if not line.strip():
                continue
            rec = json_error(e, line)
        items.append((n, rec, line))
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
    import shutil
    import tempfile

    row = conn.execute("PRAGMA database_list").fetchone()
    where = os.path.dirname(row[2]) if row and row[2] else tempfile.gettempdir()
    try:
        for name in os.listdir(where):
            if name.startswith(_STAGE_PREFIX):
                pid = name[len(_STAGE_PREFIX) :].split("-")[0]
                if pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(os.path.join(where, name), ignore_errors=True)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=where)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class _Staged:
    """A JSON Lines events file checked and staged by worker processes, before the
    batch's transaction; ``store`` copies it into the ledger inside it."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path
        self.folder = _stage_folder(conn)
        self.schemas: dict[str, str] = {}  # staged database -> its schema name here
        # (first line, offset, size, the worker's pending result) of each chunk
        self.pending: list[tuple[int, int, int, Any]] = []
        # (first line, offset, size, the worker's result) of each chunk, in file order
        self.chunks: list[tuple[int, int, int, list[Any]]] = []

    def submit(self, pool: Any) -> _Staged:
        """Hand every chunk of the file to the workers (they check and stage it while
        this process goes on: an earlier file's batch, say)."""
        from .builtin.formats import BOM

        try:
            with open(self.path, "rb") as f:
                offset = 3 if f.peek(3)[:3] == BOM else 0
                f.seek(offset)
                n0 = 1
                while True:
                    data = f.read(CHUNK * 128)
                    if not data:
                        break
                    if not data.endswith(b"\n"):
                        data += f.readline()  # whole lines only
                    task = (n0, str(self.path), offset, len(data), self.folder)
                    self.pending.append(
                        (n0, offset, len(data), pool.apply_async(_worker_chunk, (task,)))
                    )
                    n0 += data.count(b"\n") + (not data.endswith(b"\n"))
                    offset += len(data)
        except BaseException:
            self.close()
            raise
        return self

    def collect(self, bar: Any) -> None:
        """Wait for the workers' results, in file order; attach their databases."""
        conn = self.conn
        from .builtin.formats import NOT_UTF8, gbk_refusal

        gbk_checked = False
        for n0, offset, size, res in self.pending:
            result = orjson.loads(res.get())
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


def _conn(db: Any) -> sqlite3.Connection:
    return db.conn if hasattr(db, "conn") else db


def ingest_records(
    db: Any,
    scheme: Scheme,
    records: Iterable[dict[str, Any]],
    *,
    file: str = "<records>",
    kind: str | None = None,
    text_values: bool = False,
) -> BatchSummary:
    """Ingest in-memory records (scenarios, tests) as one batch; line numbers count from 1."""
    items = ((n, rec, None) for n, rec in enumerate(records, 1))
    return _run(
        _conn(db), scheme, items, BatchSummary(file, kind or ""), kind=kind, text=text_values
    )


def input_formats(pm: Any = None) -> list[InputFormat]:
    """Every registered input format, plugins' first, the built-ins last."""
    from .builtin.formats import BUILTIN_FORMATS

    found: list[InputFormat] = []
    if pm is not None:
        for group in pm.hook.register_input_formats():
            found.extend(group or [])
    for f in BUILTIN_FORMATS:
        if f not in found:
            found.append(f)
    return found


def format_for(path: Path, formats: Sequence[InputFormat]) -> InputFormat:
    name = path.name.lower()
    for f in formats:
        if any(name.endswith(s.lower()) for s in f.suffixes):
            return f
    known = sorted({s for f in formats for s in f.suffixes})
    raise InputError(
        f"{path}: cannot tell the format from the file name; name it with one of {', '.join(known)}"
    )


def ingest_file(
    db: Any,
    scheme: Scheme,
    path: str | Path,
    *,
    kind: str | None = None,
    progress: bool | None = None,
    formats: Sequence[InputFormat] | None = None,
    workers: int | None = None,
) -> BatchSummary:
    """Ingest one file as one batch in one transaction; see the module docstring.

    ``workers``: processes that check a large JSON Lines events file while
    this one writes (``None``: :func:`default_workers` for files of at least
    ``PARALLEL_MIN_BYTES``; ``0``: never). The result is the same either way.
    """
    path = Path(path)
    fmt = format_for(path, formats if formats is not None else input_formats())
    pool = None
    try:
        n = _workers_for(path, fmt, kind, workers) if path.is_file() else 0
        staged = None
        if n:
            pool = _new_pool(scheme, n)
            staged = _Staged(_conn(db), path).submit(pool)
        return _ingest(db, scheme, path, fmt, kind, progress, staged)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _ingest(
    db: Any, scheme: Scheme, path: Path, fmt: InputFormat, kind: str | None,
    progress: bool | None, staged: _Staged | None,
) -> BatchSummary:  # fmt: skip
    """One file's batch; ``staged``: its chunks handed to workers already."""
    if not path.is_file():
        if staged is not None:
            staged.close()
        raise InputError(f"{path}: no such file; check the path")
    summary = BatchSummary(str(path), kind or "")
    raw_reader = fmt.read_raw is not None
    items: Iterator[tuple[int, Any, Any]]
    if raw_reader:
        items = fmt.read_raw(path)  # type: ignore[misc]
    else:
        items = ((n, rec, None) for n, rec in fmt.read(path))
    bar = None
    if progress is not False:
        from tqdm import tqdm

        bar = tqdm(
            total=path.stat().st_size if raw_reader else None,
            unit="B" if raw_reader else "rec",
            unit_scale=True,
            desc=path.name,
            disable=None if progress is None else False,
            delay=0.5,
            leave=False,
            file=sys.stderr,
        )
        if bar.disable:
            bar = None
    try:
        return _run(
            _conn(db), scheme, items, summary, kind=kind, text=fmt.text_values, bar=bar,
            staged=staged,
        )  # fmt: skip
    except OSError as e:
        raise InputError(f"{path}: cannot read file: {e.strerror or e}") from e
    finally:
        if bar is not None:
            bar.close()


def _workers_for(
    path: Path, fmt: InputFormat, kind: str | None, workers: int | None,
    default: Callable[[], int] = default_workers,
) -> int:  # fmt: skip
    """How many workers should check this file: 0 unless it is a JSON Lines events
    file worth splitting (``workers`` None: ``default()`` for a file of at least
    ``PARALLEL_MIN_BYTES``) in UTF-8 (the reader refuses other text in its turn)."""
    from .builtin.formats import JSONL, not_utf8

    read_raw = fmt.read_raw
    if fmt is not JSONL or read_raw is None or workers == 0 or kind not in (None, "events"):
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
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(
        workers, initializer=_worker_init, initargs=(scheme,)
    )


def ingest_files(
    db: Any,
    scheme: Scheme,
    paths: Iterable[str | Path],
    *,
    kind: str | None = None,
    progress: bool | None = None,
    pm: Any = None,
    workers: int | None = None,
) -> list[BatchSummary]:
    """Ingest files, one batch each, and return their accounting.

    ``kind`` forces ``events``, ``subjects`` or ``jurisdictions`` (default:
    told from the first record's keys). ``progress``: ``None`` shows a bar
    for long files when stderr is a terminal, ``True`` always, ``False``
    never. ``pm``: the plugin manager (default ``get_plugin_manager()``); its
    input formats are used and ``before_ingest``/``after_ingest`` fired.

    With workers, the next file's chunks are handed to them before this
    process stores a file, so checking one file and storing another overlap;
    each file is still its own batch, stored in order.
    """
    if pm is None:
        from .plugins import get_plugin_manager

        pm = get_plugin_manager()
    files = [Path(p) for p in paths]
    formats = input_formats(pm)
    fmts = [format_for(f, formats) for f in files]  # fail on names before touching the database
    pm.hook.before_ingest(db=db, files=[str(f) for f in files])
    pool: Any = None
    cores = functools.cache(default_workers)  # the load average read once, for the pool
    staged: dict[int, _Staged] = {}

    def submit(i: int) -> None:
        nonlocal pool
        if i >= len(files) or i in staged:
            return
        try:
            n = _workers_for(files[i], fmts[i], kind, workers, cores) if files[i].is_file() else 0
        except (OSError, GridcreditError):
            return  # reported when the file's turn comes
        if not n:
            return
        if pool is None:
            pool = _new_pool(scheme, n)
        staged[i] = _Staged(_conn(db), files[i]).submit(pool)

    out = []
    try:
        for i, f in enumerate(files):
            submit(i)
            submit(i + 1)  # checked by the workers while this one is stored
            out.append(_ingest(db, scheme, f, fmts[i], kind, progress, staged.pop(i, None)))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        for rest in staged.values():
            rest.close()
    pm.hook.after_ingest(db=db, batches=[b.as_dict() for b in out])
    return out


def sync_grids(db: Any, scheme: Scheme) -> int:
    """Write the scheme's grids (``jurisdictions.yaml``) into ``grids``; return how many."""
    conn = _conn(db)
    rows = [
        (g.id, g.name, g.community, g.community_name, g.street, g.street_name)
        for g in scheme.grids.values()
    ]
    with _Transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO grids (id, name, community, community_name, street, street_name)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)
