"""The Spark ledger: Parquet tables in a version folder, and a pointer to the current one.

    LEDGER/
      CURRENT                 the name of the current version (one line)
      v20260101T120000-1a2b/  one run's ledger
        entries/period=2024-03/part-*.parquet       (partitioned by posting month)
        trial_entries/period=…/  redemptions/period=…/
        objections/  rejects/  subjects/  memberships/
        events/period=…/      the accepted events (their own local month), which the
                              next run deduplicates and corrects against (prior.py)
        periods/              closed months and late events (``close``, later runs)
        meta.json             scheme, files and their accounting, counts, latest time

A run writes a new version folder and, only when every table and ``meta.json``
are written, replaces ``CURRENT`` (a write to a scratch file and a rename, atomic
on a local or POSIX-like file system). A run killed midway leaves ``CURRENT``
naming the previous version, whole; the unfinished folder is removed by the next
run. The version before the current one is kept (a reader may still be on it);
older ones are removed.

Entry ids are the SQLite path's: the order the core emits entries in over the
whole ledger (by event time and id), renumbered after the partitions are scored
(``scoring.spark.run._global_ids``); ``ref`` and the entry numbers in reversal
notes follow.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError, UsageError

POINTER = "CURRENT"
TABLES = (
    "entries", "trial_entries", "redemptions", "objections", "rejects", "subjects", "memberships",
)  # fmt: skip
BY_MONTH = ("entries", "trial_entries", "redemptions")


def _local(ledger: str) -> Path:
    if "://" in ledger and not ledger.startswith("file://"):
        raise UsageError(
            f"--ledger {ledger}: the Spark ledger must be a local or mounted folder for now"
            " (the version pointer is switched by a file rename); mount HDFS/S3 or use a"
            " shared file system"
        )
    return Path(ledger.removeprefix("file://"))


def new_version(ledger: str) -> Path:
    """A fresh version folder under ``ledger``, after removing unfinished ones."""
    root = _local(ledger)
    root.mkdir(parents=True, exist_ok=True)
    keep = set(_kept(root))
    for d in root.iterdir():
        if d.is_dir() and d.name.startswith("v") and d.name not in keep:
            if not (d / "meta.json").exists():  # a killed run's
                shutil.rmtree(d, ignore_errors=True)
    name = time.strftime("v%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    path = root / name
    path.mkdir()
    return path


def _kept(root: Path) -> list[str]:
    p = root / POINTER
    names = p.read_text(encoding="utf-8").split() if p.exists() else []
    return names[:2]  # current, then the one before


def switch(ledger: str, version: Path) -> None:
    """Make ``version`` current (atomically), keep the previous one, remove older ones."""
    root = _local(ledger)
    kept = _kept(root)
    lines = [version.name, *kept[:1]]
    tmp = root / f".{POINTER}.{uuid.uuid4().hex[:6]}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / POINTER)
    for d in root.iterdir():
        if d.is_dir() and d.name.startswith("v") and d.name not in lines:
            shutil.rmtree(d, ignore_errors=True)


def current(ledger: str) -> Path:
    """The current version's folder; a clear error when there is none."""
    root = _local(ledger)
    kept = _kept(root)
    if not kept:
        raise InputError(
            f"{ledger}: no Spark ledger here (no {POINTER} file); run"
            " `python -m scoring.spark score ... --ledger` first"
        )
    return root / kept[0]


def write_meta(version: Path, meta: dict[str, Any]) -> None:
    (version / "meta.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))


def read_meta(version: Path) -> dict[str, Any]:
    return orjson.loads((version / "meta.json").read_bytes())


_ENTRY = (
    "id long, subject string, grp string, account string, points long, wallet long,"
    " rule string, pack_hash string, event string, at long, reason string, ref long,"
    " expires_at long, grade string, grade_until long, note string, period string"
)
SCHEMAS = {
    "entries": _ENTRY,
    "trial_entries": _ENTRY,
    "redemptions": (
        "event string, subject string, grp string, item string, quantity long, cost long,"
        " outcome string, reason_code string, at long, partner string, period string"
    ),
    "objections": "target string, event string, status string, opened_at long, decided_at long",
    "rejects": (
        "batch int, file string, line long, record_id string, reason string, raw string,"
        " waits string"
    ),
    "subjects": (
        "id string, kind string, name string, grid string, tags string, code string,"
        " links string, hash string"
    ),
    "memberships": "subject string, grp string",
    # written by incremental runs (the accepted events, for dedupe and corrections
    # across runs) and by ``close`` (the SQLite tables of the same names and columns)
    "events": (
        "id string, type string, subject string, at long, attrs string, amends string,"
        " batch int, line long, period string"
    ),
    "periods": (
        "month string, closed int, ledger_hash string, late_events long, closed_at_seq long"
    ),
    "month_balances": (
        "month string, subject string, grp string, score long, wallet long, tier string,"
        " earned long"
    ),
    "closed_totals": "subject string, grp string, fixed long, wallet long",
    "assessment_results": (
        "assessment string, period string, scope_id string, value double, rank long,"
        " selected int, badge string"
    ),
}


def carry(src: Path, dst: Path, name: str) -> None:
    """Give version ``dst`` the table ``name`` of version ``src`` unchanged: every file
    hard-linked (copied across devices), so a new version costs no rewrite of the
    tables it does not change, and removing ``src`` later leaves ``dst`` whole."""
    root = src / name
    if not root.exists():
        return
    for d, _, files in os.walk(root):
        out = dst / name / Path(d).relative_to(root)
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            try:
                os.link(Path(d) / f, out / f)
            except OSError:
                shutil.copy2(Path(d) / f, out / f)


def table(spark: Any, version: Path, name: str) -> Any:
    """A table of a version as a DataFrame (partition folders give ``period`` back;
    the schema is given, so an empty table reads as empty)."""
    return spark.read.schema(SCHEMAS[name]).parquet(str(version / name))
