"""``close MONTH`` on the Spark ledger: the month's figures, hash and totals, frozen.

What SQLite's :func:`scoring.periods.close_month` writes, computed over the Parquet
ledger and written as a new version (the tables it does not change hard-linked by
:func:`.ledger.carry`, then ``CURRENT`` switched):

* ``month_balances``: score, wallet and tier at the month's last second (the Spark
  ``balances``: one grouped pass in Spark SQL, tiers on the driver) and the points
  posted to the month (one grouped pass); partitioned by ``month=``, so a close
  adds one folder and carries the others;
* ``periods``: the month closed, with the ledger hash of its entries: SHA-256 over
  the entries in id order (:func:`scoring.periods.entry_line`). The order is the
  hash's input, so Spark sorts the month's entries by id and the driver folds them
  as they stream in, partition by partition (O(entries of the month) on one core,
  about 1.5 s per 300k entries; nothing else of the close runs on the driver but
  the tiers);
* ``closed_totals``: each account's never-expiring points and wallet over the
  entries posted up to the month (as ``keep_totals``).

The refusals (closed already, an earlier month open, a gap, no events yet) are
:func:`scoring.periods.check_closable`'s, the SQLite path's own, in the same words.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..ledger import ENTRY_COLUMNS
from ..model import Scheme
from ..periods import check_closable, check_month, entry_line, month_end
from . import ledger as store


def has_table(version: Path, name: str) -> bool:
    return (version / name).exists()


def read_table(spark: Any, version: Path, name: str) -> Any:
    """A table of ``version``; an empty one if this version has none yet."""
    if has_table(version, name):
        return store.table(spark, version, name)
    return spark.createDataFrame([], store.SCHEMAS[name])


def periods_rows(spark: Any, version: Path) -> dict[str, dict[str, Any]]:
    """``periods`` of a version: month → row (few: one per month)."""
    return {r["month"]: r.asDict() for r in read_table(spark, version, "periods").collect()}


def closed_of(periods: dict[str, dict[str, Any]]) -> set[str]:
    return {m for m, r in periods.items() if r["closed"]}


def ledger_hash(spark: Any, version: Path, month: str) -> str:
    """:func:`scoring.periods.ledger_hash` of the Spark ledger: the same bytes folded."""
    from pyspark.sql import functions as F

    h = hashlib.sha256()
    rows = (
        store.table(spark, version, "entries")
        .filter(F.col("period") == month)
        .select("id", *ENTRY_COLUMNS)
        .orderBy("id")
    )
    lines: list[bytes] = []
    for r in rows.toLocalIterator(prefetchPartitions=True):
        lines.append(entry_line(tuple(r)))
        if len(lines) == 10_000:
            lines.append(b"")
            h.update(b"\n".join(lines))
            lines = []
    if lines:
        lines.append(b"")
        h.update(b"\n".join(lines))
    return h.hexdigest()


def events_seen(spark: Any, version: Path) -> int | None:
    """SQLite's ``MAX(seq) FROM events``: events are numbered 1, 2, … as accepted."""
    if has_table(version, "events"):
        n = store.table(spark, version, "events").count()
    else:
        meta = store.read_meta(version)
        n = sum(b.get("accepted", 0) for b in meta.get("batches", []) if b.get("kind") == "events")
    return n or None


def month_figures(spark: Any, version: Path, scheme: Scheme, month: str) -> list[tuple]:
    """``month_balances`` rows of ``month`` computed from the ledger (not frozen)."""
    from pyspark.sql import functions as F

    from .balances import balances

    earned = {
        (s, g): int(p)
        for s, g, p in store.table(spark, version, "entries")
        .filter(F.col("period") == month)
        .groupBy("subject", "grp")
        .agg(F.sum("points"))
        .collect()
    }
    return [
        (month, b.subject, b.group, b.score, b.wallet, b.tier, earned.get((b.subject, b.group), 0))
        for b in balances(spark, version, scheme, as_of=month_end(scheme, month))
    ]


def check(spark: Any, version: Path, scheme: Scheme, month: str) -> dict[str, dict[str, Any]]:
    """Refuse as SQLite's close refuses; returns the version's ``periods`` rows."""
    from pyspark.sql import functions as F

    check_month(month)
    periods = periods_rows(spark, version)
    closed = closed_of(periods)
    entries = store.table(spark, version, "entries")
    before = (
        []
        if month in closed
        else sorted(
            r[0]
            for r in entries.filter(F.col("period") < month).select("period").distinct().collect()
        )
    )
    latest = store.read_meta(version).get("latest_time")
    check_closable(
        month,
        closed,
        before,
        scheme.clock.month(latest) if latest is not None else None,
        lambda: bool(entries.filter(F.col("period") == month).limit(1).count()),
    )
    return periods


def close(spark: Any, ledger: str, scheme: Scheme, month: str) -> dict[str, Any]:
    """Close ``month`` of the Spark ledger; returns the month's record as
    :func:`scoring.periods.month_record` gives it."""
    from pyspark.sql import functions as F

    src = store.current(ledger)
    periods = check(spark, src, scheme, month)
    figures = month_figures(spark, src, scheme, month)
    digest = ledger_hash(spark, src, month)
    totals = (
        store.table(spark, src, "entries")
        .filter(F.col("period") <= month)
        .groupBy("subject", "grp")
        .agg(
            F.sum(F.when(F.col("expires_at").isNull(), F.col("points")).otherwise(0)).alias(
                "fixed"
            ),
            F.sum("wallet").alias("wallet"),
        )
    )
    old = periods.get(month) or {}
    periods[month] = {
        "month": month,
        "closed": 1,
        "ledger_hash": digest,
        "late_events": old.get("late_events") or 0,
        "closed_at_seq": events_seen(spark, src),
    }
    dst = store.new_version(ledger)
    carry_all(src, dst, but=("periods", "closed_totals"))
    add_rows(spark, dst, "month_balances", figures, by="month")
    totals.orderBy("subject", "grp").write.parquet(str(dst / "closed_totals"))
    write_rows(spark, dst, "periods", [periods[m] for m in sorted(periods)])
    store.write_meta(dst, store.read_meta(src))
    store.switch(ledger, dst)
    return {
        "month": month,
        "closed": True,
        "hash": digest,
        "late_events": periods[month]["late_events"],
        "closed_at_seq": periods[month]["closed_at_seq"],
    }


def carry_all(src: Path, dst: Path, but: tuple[str, ...]) -> None:
    """Every table of ``src`` but ``but`` into ``dst`` unchanged (hard links)."""
    for d in sorted(src.iterdir()):
        if d.is_dir() and not d.name.startswith((".", "_")) and d.name not in but:
            store.carry(src, dst, d.name)


def write_rows(spark: Any, version: Path, name: str, rows: list[Any]) -> None:
    """A small table written whole (``periods``: one row a month)."""
    spark.createDataFrame(rows, store.SCHEMAS[name]).coalesce(1).write.parquet(str(version / name))


def add_rows(spark: Any, version: Path, name: str, rows: list[Any], by: str | None = None) -> None:
    """Rows added to a carried table of ``version``: written to a scratch folder, then
    their files moved in beside the carried (hard-linked) ones, which stay untouched."""
    if not rows:
        return
    scratch = version / f".add-{name}-{uuid.uuid4().hex[:6]}"
    df = spark.createDataFrame(rows, store.SCHEMAS[name]).coalesce(1)
    (df.write.partitionBy(by) if by else df.write).parquet(str(scratch))
    tag = uuid.uuid4().hex[:8]
    for f in scratch.rglob("*.parquet"):
        out = version / name / f.parent.relative_to(scratch)
        out.mkdir(parents=True, exist_ok=True)
        f.rename(out / f"{tag}-{f.name}")
    shutil.rmtree(scratch)
