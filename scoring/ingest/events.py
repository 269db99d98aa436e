"""Events: checked, canonicalised and stored (or found duplicate, conflicting, rejected)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from ..model import Scheme
from .batch import _Batch, _earlier, _in_chunks, _raw_text
from .records import (
    _MMSS,
    _SORT,
    TIME_HINT,
    _Bad,
    _dumps,
    _show,
    compile_validator,
    control_problem,
    time_parser,
    time_problem,
)

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
        msg = f"unknown event type {_show(typ)}"  # escaped: a line break stays on this line
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
                if not (eid.isprintable() and subj.isprintable()):  # rare: then the exact check
                    bad = control_problem("id", eid) or control_problem("subject", subj)
                    if bad:
                        raise _Bad(bad)
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
                if rid.__class__ not in (str, int) or (
                    rid.__class__ is str and not rid.isprintable() and control_problem("id", rid)
                ):
                    rid = None  # shown escaped in the reason, never as a line of its own
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
            elif not amends.isprintable() and (bad := control_problem("amends", amends)):
                raise _Bad(bad)
            if not amends:
                amends = None
        return attrs, amends


_CORE_KEYS = frozenset(("id", "type", "subject", "at", "amends", "attrs"))
