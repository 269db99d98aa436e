"""Master data: subjects and jurisdictions (a changed record updates the stored one)."""

from __future__ import annotations

import difflib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from ..model import Scheme
from .batch import _Batch, _hash, _in_chunks, _suggest
from .records import (
    _SORT,
    JURISDICTION_FIELDS,
    SUBJECT_FIELDS,
    _Bad,
    _dumps,
    _show,
    control_problem,
    uscc_problem,
)

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
            if not isinstance(rid, (str, int)) or (
                isinstance(rid, str) and control_problem("", rid)
            ):
                rid = None  # an id with a line break in it is shown escaped, in the reason
            b.reject(line, rid, str(e), raw, rec=rec)
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
        if not sid.isprintable() and (bad := control_problem("id", sid)):
            raise _Bad(bad)
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
        for k, v in (("grid_id", gid), ("community_id", cid), ("street_id", sid)):
            if not v.isprintable() and (bad := control_problem(k, v)):
                raise _Bad(bad)
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
