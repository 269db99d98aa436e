"""Records and their checks: formats, batch summaries, attribute validators, times."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from datetime import date as _date
from pathlib import Path
from typing import Any, Protocol, cast

import orjson

from ..durations import FIRST_YEAR, LAST_YEAR
from ..errors import Problem
from ..model import AttrSpec, EventType, Scheme

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
    # the format's parser of whole lines (bytes, the first numbered n0) into
    # (line, record | Exception, raw) items: a format that has one is line-based,
    # so a large events file may be split at line ends and checked by worker
    # processes (the built-in JSON Lines format has one)
    parse_lines: Callable[[list[bytes], int], list[tuple[int, Any, Any]]] | None = None


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


# Control characters (C0, DEL, C1, and the Unicode line and paragraph separators): an
# id holding one would print as two lines in `gridcredit rejects` and the site's pages,
# so a record whose id has one is rejected. Callers test ``str.isprintable`` first
# (one C call an id), and this only when that fails: spaces such as U+3000 are not
# printable either, and stay allowed.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_problem(field: str, value: str) -> str | None:
    """Why an id (``field``) with a control character in it is rejected, or None."""
    m = _CONTROL.search(value)
    if m is None:
        return None
    shown = _show(value if len(value) <= 60 else value[:57] + "...")
    return (
        f"field '{field}' = {shown} has the control character U+{ord(m.group()):04X} at"
        f" character {m.start() + 1}: an id is one line of printable text. Remove it (a line"
        " break pasted into a cell, say) and ingest the record again"
    )


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
