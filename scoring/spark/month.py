"""``assess PERIOD`` and ``publish MONTH`` on the Spark ledger: the same results, the same site.

Assessments (:func:`assess`) run SQLite's own selection code
(:func:`scoring.assess._assess_one`: scopes, ranking units, competition ranks,
``select``, bands, award entries) with a :class:`SparkMetrics` context whose
figures are Spark SQL over the Parquet ledger: scores at the period's end (the
Spark ``balances``, or the frozen ``month_balances``), points earned in the
period, and the period's surveys (the ``events`` table). The award entries get the
ids SQLite gives them (after the ledger's largest) and go into ``entries`` in a
new version with the results (``assessment_results``).

Publishing (:func:`publish`) runs, as ``scoring.pipeline.run_month`` does, the
assessments of the periods ending with the month, the close (:mod:`.close`), then
the SQLite path's publisher (:func:`scoring.pipeline.publish_month`: the same
``month_data``, the same ``scheme.plugins.publishers``, the same resumable, atomic
file writing) over a **month view**: a SQLite database on the driver holding only
what the month's pages read, selected from the Parquet ledger in Spark SQL:

* per account: subjects, memberships and the frozen month figures
  (``month_balances`` up to the month: rankings, grid rankings, trends, history);
* the periods, the assessment results and the open objections;
* the entries the pages show: those posted in the look-up window (the last 12
  published months), assessment awards, the entries behind direct gradings and
  public-list reasons, and every entry that refers to one of those (reversals,
  repairs).

The heavy passes over the whole ledger (balances at the month's end, the month's
hash and totals, the period's sums) are Spark's; the view is the size of what the
site publishes (every account and a year of each person's entries, which the
look-up files hold anyway), so the same page code serves both ledgers and the files
are the same bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from ..assess import (
    AssessmentRun,
    MetricContext,
    _already,
    _assess_one,
    _check_reached,
    assessment_results,
    check_period,
    periods_ending_in,
)
from ..errors import GridcreditError, UsageError
from ..ledger import ENTRY_COLUMNS, memory_db, set_state
from ..model import Scheme
from ..periods import PostingCalendar, check_month
from . import ledger as store
from .close import add_rows, carry_all, close, has_table, periods_rows, read_table

HISTORY_MONTHS = 12  # scoring.publish.data.HISTORY_MONTHS (not imported: no publisher here)


# --------------------------------------------------------------------------
# Assessments
# --------------------------------------------------------------------------


class SparkMetrics(MetricContext):
    """:class:`scoring.assess.MetricContext` with its ledger reads in Spark SQL."""

    def __init__(self, spark: Any, version: Path, *args: Any) -> None:
        super().__init__(*args)
        self.spark, self.version = spark, version

    def _entries(self) -> Any:
        return store.table(self.spark, self.version, "entries")

    def scores(self) -> dict[str, int]:
        if "scores" not in self._cache:
            from pyspark.sql import functions as F

            from .balances import balances

            month = self.months[-1]
            if periods_rows(self.spark, self.version).get(month, {}).get("closed"):
                figs = {
                    s: int(sc)
                    for s, sc in read_table(self.spark, self.version, "month_balances")
                    .filter((F.col("month") == month) & (F.col("grp") == self.group))
                    .select("subject", "score")
                    .collect()
                }
            else:
                figs = {
                    b.subject: b.score
                    for b in balances(
                        self.spark, self.version, self.scheme, as_of=self.as_of, group=self.group
                    )
                }
            awarded = dict(
                self._entries()
                .filter(
                    (F.col("grp") == self.group)
                    & (F.col("reason") == "assessment")
                    & (F.col("at") == self.as_of)
                )
                .groupBy("subject")
                .agg(F.sum("points"))
                .collect()
            )
            self._cache["scores"] = {s: v - (awarded.get(s) or 0) for s, v in figs.items()}
        return self._cache["scores"]

    def earned(self) -> dict[str, int]:
        if "earned" not in self._cache:
            from pyspark.sql import functions as F

            rows = (
                self._entries()
                .filter(
                    (F.col("grp") == self.group)
                    & F.col("period").isin(self.months)
                    & (F.col("reason") != "assessment")
                )
                .groupBy("subject")
                .agg(F.sum("points"))
                .collect()
            )
            self._cache["earned"] = {s: int(p) for s, p in rows}
        return self._cache["earned"]

    def surveys(self, respondent: str | None) -> dict[str, list[float]]:
        key = ("survey", respondent)
        if key not in self._cache:
            from pyspark.sql import functions as F

            if not has_table(self.version, "events"):
                raise GridcreditError(
                    f"{self.version}: this Spark ledger keeps no events table, which survey"
                    f" metrics read (assessment {self.assessment.id}); score the events again"
                    " with this version of gridcredit"
                )
            ev = store.table(self.spark, self.version, "events")
            gone = (
                ev.filter(F.col("type") == "withdraw")
                .select(F.get_json_object("attrs", "$.target").alias("id"))
                .filter(F.col("id").isNotNull())
                .union(ev.filter(F.col("amends").isNotNull()).select(F.col("amends").alias("id")))
                .union(
                    read_table(self.spark, self.version, "objections")
                    .filter(F.col("status") == "upheld")
                    .select(F.col("target").alias("id"))
                )
            )
            rows = (
                ev.filter(
                    (F.col("type") == "survey")
                    & (F.col("at") >= self.start)
                    & (F.col("at") < self.end)
                )
                .join(gone, "id", "left_anti")
                .select("subject", "attrs", "at", "id")
                .orderBy("at", "id")
                .collect()
            )
            out: dict[str, list[float]] = {}
            # surveys are few: their attributes are read here as SQLite's json_extract does
            for s, attrs, _, _ in rows:
                a = orjson.loads(attrs) if attrs else {}
                if respondent is not None and a.get("respondent") != respondent:
                    continue
                v = a.get("score")
                if isinstance(v, (int, float)):
                    out.setdefault(s, []).append(float(v))
            self._cache[key] = out
        return self._cache[key]


@dataclass
class Assessed:
    runs: list[AssessmentRun] = field(default_factory=list)
    version: Path | None = None


def assess(spark: Any, ledger: str, scheme: Scheme, period: str) -> Assessed:
    """Run the assessments of ``period`` on the Spark ledger, as
    :func:`scoring.assess.run_assessment` does on SQLite; a period assessed before is
    left as it is (its runs come back with ``new=False`` and no results re-read)."""
    from pyspark.sql import functions as F

    kind = check_period(period)
    todo = [a for a in scheme.assessments if a.period == kind]
    src = store.current(ledger)
    out = Assessed(version=src)
    start, end = scheme.clock.period_bounds(period)
    entries = store.table(spark, src, "entries")
    in_period = entries.filter((F.col("at") >= start) & (F.col("at") < end)).select("at")
    if has_table(src, "events"):
        in_period = (
            store.table(spark, src, "events")
            .filter((F.col("at") >= start) & (F.col("at") < end))
            .select("at")
            .union(in_period)
        )
    if not todo or not in_period.limit(1).count():
        return out  # nothing happened in the period: every unit would tie at its base score
    view = _view(spark, src, scheme, entries.filter(F.col("reason") == "assessment"))
    _check_reached(view, scheme, period, end)
    metrics = scheme.plugins.metrics
    calendar = PostingCalendar(view, scheme)
    context = partial(SparkMetrics, spark, src)
    runs = []
    for a in todo:
        if _already(view, a, period):
            out.runs.extend(assessment_results(view, scheme, period, assessment=a.id))
            continue
        runs.append(_assess_one(view, scheme, a, period, metrics, calendar, context))
    out.runs.extend(runs)
    if not runs:
        return out
    # awards are numbered as SQLite's INSERTs number them: after the largest id, in order
    (top,) = entries.agg(F.max("id")).first()
    next_id = (top or 0) + 1
    awards = []
    for run in runs:
        for e in run.awards:
            awards.append({"id": next_id, **e})
            next_id += 1
    results = [
        (r.assessment, r.period, r.scope_id, r.value, r.rank, int(r.selected), r.badge)
        for run in runs
        for r in run.results
    ]
    dst = store.new_version(ledger)
    carry_all(src, dst, but=())
    add_rows(spark, dst, "entries", [_entry_row(e) for e in awards], by="period")
    add_rows(spark, dst, "assessment_results", results)
    store.write_meta(dst, store.read_meta(src))
    store.switch(ledger, dst)
    out.version = dst
    return out


_ENTRY_ORDER = [c.split()[0] for c in store.SCHEMAS["entries"].split(",")]


def _entry_row(e: dict[str, Any]) -> tuple:
    return tuple(e[c] for c in _ENTRY_ORDER)


# --------------------------------------------------------------------------
# The month view: a driver-side SQLite database of what the pages read
# --------------------------------------------------------------------------


def _view(
    spark: Any,
    version: Path,
    scheme: Scheme,
    entries: Any | None,
    months: list[str] | None = None,
) -> sqlite_utils.Database:
    """A SQLite ledger (the SQLite path's schema) holding the per-account tables of
    ``version``, the ``entries`` given (a DataFrame, selected in Spark) and the frozen
    figures of ``months`` (none if ``None``)."""
    from pyspark.sql import functions as F

    from ..ingest import sync_grids

    db = memory_db()
    sync_grids(db, scheme)
    cols = {
        "subjects": "id, kind, name, grid, tags, code, links, hash",
        "memberships": "subject, grp",
        "periods": "month, closed, ledger_hash, late_events, closed_at_seq",
        "month_balances": "month, subject, grp, score, wallet, tier, earned",
        "assessment_results": "assessment, period, scope_id, value, rank, selected, badge",
        "objections": "target, event, status, opened_at, decided_at",
    }
    for name, c in cols.items():
        df = read_table(spark, version, name)
        if name == "month_balances":
            if not months:
                continue
            df = df.filter(F.col("month").isin(months))
        _fill(db, name, c, df.select(*c.split(", ")))
    if entries is not None:
        c = ", ".join(("id", *ENTRY_COLUMNS))
        _fill(db, "entries", c, entries.select(*c.split(", ")))
    latest = store.read_meta(version).get("latest_time")
    if latest is not None:  # what `last_scored` reads (the time is what is asked)
        set_state(db, "last_scored", orjson.dumps([latest, ""]).decode())
    return db


def _fill(db: sqlite_utils.Database, name: str, cols: str, df: Any) -> None:
    marks = ", ".join("?" * len(cols.split(", ")))
    sql = f"INSERT INTO {name} ({cols}) VALUES ({marks})"
    db.execute("BEGIN")
    batch: list[tuple] = []
    for r in df.toLocalIterator(prefetchPartitions=True):
        batch.append(tuple(r))
        if len(batch) == 10_000:
            db.conn.executemany(sql, batch)
            batch = []
    db.conn.executemany(sql, batch)
    db.execute("COMMIT")


def month_view(spark: Any, version: Path, scheme: Scheme, month: str) -> sqlite_utils.Database:
    """The SQLite month view that ``scoring.publish.month_data`` reads for a closed
    ``month`` (see the module docs for what it holds)."""
    from pyspark.sql import functions as F

    periods = periods_rows(spark, version)
    months = sorted({m for m, r in periods.items() if r["closed"] and m <= month} | {month})
    window = months[-HISTORY_MONTHS:]
    # the rules whose entries a public list shows (scoring.lists.list_members)
    list_rules: set[str] = set()
    for ld in scheme.lists:
        for rs in ld.reasons:
            list_rules.update(rs.rules or [])
            if rs.severity:
                list_rules.update(r.id for r in scheme.rules if r.severity == rs.severity)
    entries = store.table(spark, version, "entries")
    shown = (
        F.col("period").isin(window)
        | (F.col("reason") == "assessment")
        | F.col("grade").isNotNull()
        | (F.col("rule").isin(sorted(list_rules)) & F.col("reason").isin("match", "linked"))
    )
    base = entries.filter(shown)
    refs = entries.filter(F.col("ref").isNotNull()).join(
        base.select(F.col("id").alias("ref")), "ref", "left_semi"
    )
    return _view(
        spark,
        version,
        scheme,
        base.unionByName(refs.select(*base.columns)).dropDuplicates(["id"]),
        months=window,
    )


def trends(spark: Any, version: Path, month: str) -> list[Any]:
    """The site's trends (``scoring.publish.data._trends``) in Spark SQL: mean score,
    accounts and tier counts per month and group, over the frozen figures up to
    ``month`` (the mean is a double of the integer sum, as SQLite's AVG)."""
    from pyspark.sql import functions as F

    from ..publish.data import TrendPoint

    mb = read_table(spark, version, "month_balances").filter(F.col("month") <= month)
    tiers: dict[tuple[str, str], dict[str, int]] = {}
    for m, g, tier, n in mb.groupBy("month", "grp", "tier").count().collect():
        tiers.setdefault((m, g), {})[tier] = n
    rows = mb.groupBy("month", "grp").agg(F.avg("score"), F.count("*")).orderBy("month", "grp")
    return [
        TrendPoint(m, g, round(mean, 2), n, dict(sorted(tiers[(m, g)].items())))
        for m, g, mean, n in rows.collect()
    ]


# --------------------------------------------------------------------------
# Publish
# --------------------------------------------------------------------------


@dataclass
class Published:
    month: str
    assessed: list[AssessmentRun] = field(default_factory=list)
    closed: dict[str, Any] | None = None
    paths: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def publish(
    spark: Any,
    ledger: str,
    scheme: Scheme,
    month: str,
    site_dir: Path,
    *,
    private_dir: Path | None = None,
    force: bool = False,
) -> Published:
    """Assess, close and publish ``month`` of the Spark ledger into ``site_dir``: the
    files ``scoring.pipeline.run_month`` writes for the SQLite ledger of the same
    inputs, byte for byte (personal codes into ``private_dir``)."""
    from ..pipeline import check_publishable, publish_month, publish_write_error
    from ..publish.data import month_data
    from ..publish.files import checkpoint, publish_lock

    check_month(month)
    site_dir = Path(site_dir)
    out = Published(month)
    t = time.perf_counter()
    try:
        # one publish per site: a second one is refused before it assesses or closes anything
        with publish_lock(site_dir):
            check_publishable(site_dir, month, force=force)
            for period in periods_ending_in(month):
                out.assessed.extend(assess(spark, ledger, scheme, period).runs)
            t = _tick(out, "assess", t)
            version = store.current(ledger)
            if not periods_rows(spark, version).get(month, {}).get("closed"):
                out.closed = close(spark, ledger, scheme, month)
                checkpoint("month-closed")
            t = _tick(out, "close", t)
            view = month_view(spark, store.current(ledger), scheme, month)
            t = _tick(out, "month view", t)
            spark_trends = trends(spark, store.current(ledger), month)
            out.paths = publish_month(
                view, scheme, month, site_dir, private_dir=private_dir, force=force,
                gather=partial(month_data, trends=spark_trends),
            )  # fmt: skip
            _tick(out, "publish", t)
    except OSError as e:
        raise publish_write_error(e, month, site_dir) from None
    return out


def _tick(out: Published, stage: str, t0: float) -> float:
    now = time.perf_counter()
    out.seconds[stage] = round(now - t0, 3)
    return now


__all__ = ["SparkMetrics", "UsageError", "assess", "month_view", "publish"]
