"""The canonical form of a ledger, to compare the SQLite and the Spark paths entry for entry.

Entry ids differ between the paths (one sequence in SQLite, one per partition in
Spark), so an entry is compared by its content, and ``ref`` (the entry a
reversal or repair undoes) by the referenced entry's key ``(event, subject, grp,
rule, reason)``. The canonical entry is::

    (subject, grp, at, event, rule, reason, account, points, wallet, pack_hash,
     period, expires_at, grade, grade_until, note, ref key)

in that order, the rows sorted by it (so by subject, group, event time, event
id, rule first). The other tables: redemptions by event, objections by target,
rejects by (batch, file, line, reason), subjects and memberships by id. The
digest of a table is the SHA-256 of its canonical rows as JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

TABLES = ("entries", "trial_entries", "redemptions", "objections", "rejects", "subjects",
          "memberships")  # fmt: skip
_ENTRY = (
    "subject", "grp", "at", "event", "rule", "reason", "account", "points", "wallet",
    "pack_hash", "period", "expires_at", "grade", "grade_until", "note",
)  # fmt: skip
_COLUMNS = {
    "redemptions": (
        "event",
        "subject",
        "grp",
        "item",
        "quantity",
        "cost",
        "outcome",
        "reason_code",
        "at",
        "period",
        "partner",
    ),  # fmt: skip
    "objections": ("target", "event", "status", "opened_at", "decided_at"),
    "rejects": ("batch", "file", "line", "reason", "record_id", "raw", "waits"),
    "subjects": ("id", "kind", "name", "grid", "tags", "code", "links", "hash"),
    "memberships": ("subject", "grp"),
}


def _key(v: Any) -> tuple:
    """Sort key for rows with None in them (None first)."""
    return tuple((x is not None, x) for x in v)


def canonical_entries(rows: Iterable[dict[str, Any]], key: str = "id") -> list[tuple]:
    """Canonical entries of rows with ``_ENTRY`` columns, ``ref`` and an id column
    ``key`` (a tuple of columns in Spark: see :func:`spark_ledger`)."""
    rows = list(rows)
    by_id = {r[key]: (r["event"], r["subject"], r["grp"], r["rule"], r["reason"]) for r in rows}
    out = []
    for r in rows:
        ref = r["ref"]
        out.append(tuple(r[c] for c in _ENTRY) + (None if ref is None else by_id.get(ref, ref),))
    return sorted(out, key=_key)


def sqlite_ledger(db: Any) -> dict[str, list[tuple]]:
    """The canonical tables of a SQLite ledger (``sqlite_utils.Database``)."""
    out: dict[str, list[tuple]] = {}
    for t in ("entries", "trial_entries"):
        out[t] = canonical_entries(db.query(f"SELECT * FROM {t}"))
    for t, cols in _COLUMNS.items():
        rows = db.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall()
        out[t] = sorted((tuple(r) for r in rows), key=_key)
    return out


def spark_ledger(spark: Any, version: Any) -> dict[str, list[tuple]]:
    """The canonical tables of a Spark ledger version (a folder)."""
    from . import ledger as store

    out: dict[str, list[tuple]] = {}
    for t in ("entries", "trial_entries"):
        rows = []
        for r in store.table(spark, version, t).collect():
            rows.append(r.asDict())
        out[t] = canonical_entries(rows)
    for t, cols in _COLUMNS.items():
        rows = store.table(spark, version, t).select(*cols).collect()
        out[t] = sorted((tuple(r) for r in rows), key=_key)
    return out


def digest(rows: list[tuple]) -> str:
    return hashlib.sha256(orjson.dumps(rows)).hexdigest()


def digests(ledger: dict[str, list[tuple]]) -> dict[str, str]:
    return {t: digest(rows) for t, rows in ledger.items()}
