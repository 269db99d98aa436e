"""``balances`` over a Spark ledger: SPEC §7's contract, as ``gridcredit balances``.

The sums are Spark SQL over the Parquet entries (one pass, grouped by account);
the tiers are the scheme's, on the driver, from those sums and the gradings in
force (few), exactly as :func:`scoring.ledger.balances` computes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..ledger.reads import Balance, assemble_balances
from . import ledger as store


def default_as_of(scheme: Any, latest: int | None) -> int:
    """End of the local day of the latest event ("now" as far as the data knows)."""
    if latest is None:
        return 2**62
    clock = scheme.clock
    return clock.end_of_day(clock.local(latest).date())


def balances(
    spark: Any, version: Path, scheme: Any, *, as_of: int | None = None, group: str | None = None
) -> list[Balance]:
    """Score, wallet and tier of every subject-group, sorted by group then subject."""
    from pyspark.sql import functions as F

    meta = store.read_meta(version)
    t = as_of if as_of is not None else default_as_of(scheme, meta.get("latest_time"))
    entries = store.table(spark, version, "entries")
    members = store.table(spark, version, "memberships")
    if group is not None:
        members = members.filter(F.col("grp") == group)
    e = entries.filter(F.col("at") <= t)
    sums = e.groupBy("subject", "grp").agg(
        F.sum(
            F.when(
                F.col("expires_at").isNull() | (F.col("expires_at") > t), F.col("points")
            ).otherwise(0)
        ).alias("p"),
        F.sum("wallet").alias("w"),
    )
    rows = (
        members.join(sums, ["subject", "grp"], "left")
        .select("subject", "grp", F.coalesce("p", F.lit(0)), F.coalesce("w", F.lit(0)))
        .orderBy("grp", "subject")
        .collect()
    )
    # several gradings at once: the worst holds; a reversed or repaired penalty lifts its grading
    graded = e.filter(F.col("grade").isNotNull() & (F.col("grade_until") > t))
    undo = e.filter(F.col("reason").isin("reversal", "repair") & F.col("ref").isNotNull()).select(
        F.col("ref").alias("id")
    )
    gradings = graded.join(undo, ["id"], "left_anti").select("subject", "grp", "grade").collect()
    return assemble_balances(scheme, rows, gradings)
