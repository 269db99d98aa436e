"""``score`` on Spark: files → checked records → components → the core per partition → Parquet.

The stages, each a Spark job (see docs/spark.md):

1. ingest (:mod:`.ingest`): JSON Lines in line-aligned chunks, CSV one task per
   file, Parquet by rows, each record checked; events deduplicated by id over all
   files (one window over id, by file and line);
   subjects folded per id;
2. components (:mod:`.graph`): the cross-subject edges (links, corrections)
   joined into components (on the driver below a size, else distributed);
3. scoring: subjects and events repartitioned by component, one core per
   partition over its events in (time, id) order; catalog stock as a stage of
   its own (:func:`.graph.score_with_stock`);
4. the ledger (:mod:`.ledger`): every table written to a new version, then the
   pointer switched.

A run on an empty ledger folder scores every event it is given: the ledger it
writes is the one ``gridcredit ingest`` of the same files in the same order and one
``gridcredit score`` give (tests/test_spark.py). On a ledger with a current version
it continues from the stored state as ``gridcredit ingest`` + ``score`` continue a
SQLite ledger (:mod:`.prior`, tests/test_spark_incremental.py).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from ..evaluate.outputs import ScoreSummary
from ..ingest.records import BatchSummary
from . import graph, prior
from . import ledger as store
from .ingest import (
    PARSED_SUBJECTS,
    conflict_reason,
    fold_subject,
    list_files,
    parse_files,
    scheme_of,
    summaries,
)
from .partition import (
    ENTRY_FIELDS,
    OBJECTION_FIELDS,
    OUT_SCHEMA,
    REDEMPTION_FIELDS,
    SUMMED,
    score_partition,
)

DEFAULT_PARTITIONS = 16
REJECT_COLUMNS = (
    "batch int, file string, line long, record_id string, reason string, raw string, waits string"
)
SUBJECT_COLUMNS = (
    "id string, kind string, name string, grid string, tags string, code string, links string,"
    " hash string, groups string"
)
CONTENT = ("type", "subject", "at", "attrs", "amends")


class Run:
    """What a Spark ``score`` did: the files' accounting, the core's counts, the version."""

    def __init__(self) -> None:
        self.batches: list[BatchSummary] = []
        self.summary = ScoreSummary()
        self.version: Path | None = None
        self.stages: dict[str, float] = {}
        self.stock_rounds: list[int] = []  # components scored in each stock round


def _tick(run: Run, stage: str, t0: float) -> float:
    now = time.perf_counter()
    run.stages[stage] = round(run.stages.get(stage, 0.0) + now - t0, 3)
    return now


def score(
    spark: Any, scheme_dir: str, subjects: list[str], events: list[str], ledger: str,
    partitions: int = DEFAULT_PARTITIONS, driver_max_edges: int = graph.DRIVER_MAX_EDGES,
    one_task_events: int | None = None,
) -> Run:  # fmt: skip
    """Score ``events`` of ``subjects`` under the scheme into a new version of ``ledger``.

    ``driver_max_edges``: up to this many component edges are joined on the driver;
    ``one_task_events``: up to this many events of subjects asking for stocked items
    are scored in one task rather than in stock rounds (None: the events over the
    cluster's cores; 0: always rounds). See :mod:`.graph`."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.window import Window

    t0 = t_start = time.perf_counter()
    run = Run()
    scheme_dir = str(Path(scheme_dir).resolve())
    scheme, compiled = scheme_of(scheme_dir)  # a scheme error stops here, before any job
    if not spark.sparkContext.master.startswith("local"):
        # executors elsewhere read the rules from a copy of the scheme folder
        spark.sparkContext.addFile(scheme_dir, recursive=True)
    # an existing ledger is continued from its current version (see prior.py): the
    # new files take the next batch numbers
    prev = prior.load(spark, ledger)
    b0 = len(prev.files) if prev is not None else 0

    # --- 1. ingest: subjects ---------------------------------------------------------
    sfiles = list_files(spark, subjects)
    efiles = list_files(spark, events)
    sbatches = summaries(sfiles.names, "subjects")
    ebatches = summaries(efiles.names, "events")
    for b in sbatches:
        b.batch += b0
    for b in ebatches:
        b.batch += len(sbatches) + b0
    run.batches = [*sbatches, *ebatches]
    reject_frames = []
    persisted: list[Any] = []  # what the run persisted, dropped at its end
    if sfiles.names:
        got = parse_files(spark, scheme_dir, sfiles, "subjects")
        persisted.append(got.cached)
        parsed = got.df
        for fi, n in got.read.items():
            sbatches[fi].read = n
        for fi, n in got.rejected.items():
            sbatches[fi].rejected += n
        reject_frames.append(
            parsed.filter("kind = 'reject'").select(
                (F.col("fi") + 1 + b0).cast("int").alias("batch"),
                F.col("fi"),
                "line",
                F.col("id").alias("record_id"),
                "reason",
                "raw",
                F.lit(None).cast("string").alias("waits"),
            )  # fmt: skip
        )
        fold = fold_subject(sfiles.names)
        records = parsed.filter("kind = 'row'")
        if prev is not None:  # the stored subjects come first (file -1), as in the database
            records = records.unionByName(prior.stored_subjects(spark, prev, PARSED_SUBJECTS))
        folded = (
            records.rdd.groupBy(lambda r: r.id)
            .flatMap(lambda kv, f=fold: [o for o in f(list(kv[1])) if o[0] == "final" or o[1] >= 0])
            .persist()
        )
        persisted.append(folded)
        for (_, fi, what), n in (
            folded.filter(lambda x: x[0] == "count").map(tuple).countByValue().items()
        ):
            b = sbatches[fi]
            setattr(b, what, getattr(b, what) + n)
            if what == "conflicting":
                b.rejected += n
        subject_rows = folded.filter(lambda x: x[0] == "final").map(
            lambda x: (
                x[1].id,
                x[1].skind,
                x[1].name,
                x[1].grid,
                x[1].tags,
                x[1].code,
                x[1].links,
                x[1].hash,
                x[1].groups,
            )  # fmt: skip
        )
        subjects_df = spark.createDataFrame(subject_rows, SUBJECT_COLUMNS)
        reject_frames.append(
            spark.createDataFrame(
                folded.filter(lambda x: x[0] == "reject").map(
                    lambda x, b0=b0: (x[1] + 1 + b0, x[1], x[2], x[3], x[4], x[5], None)
                ),
                "batch int, fi int, line long, record_id string, reason string, raw string,"
                " waits string",
            )
        )
    elif prev is not None:
        subjects_df = prior.stored_subjects(spark, prev, SUBJECT_COLUMNS)
    else:
        subjects_df = spark.createDataFrame([], SUBJECT_COLUMNS)
    subjects_df = subjects_df.persist()
    t0 = _tick(run, "ingest subjects", t0)

    # --- 1. ingest: events -----------------------------------------------------------
    accepted = None
    latest = None
    if efiles.names:
        got = parse_files(spark, scheme_dir, efiles, "events")
        persisted.append(got.cached)
        parsed_e = got.df
        for fi, n in got.read.items():
            ebatches[fi].read = n
        for fi, n in got.rejected.items():
            ebatches[fi].rejected += n
        offset = len(sbatches)
        reject_frames.append(
            parsed_e.filter("kind = 'reject'").select(
                (F.col("fi") + 1 + offset + b0).cast("int").alias("batch"),
                (F.col("fi") + offset).alias("fi"),
                "line",
                F.col("id").alias("record_id"),
                "reason",
                "raw",
                F.lit(None).cast("string").alias("waits"),
            )  # fmt: skip
        )
        rows = parsed_e.filter("kind = 'row'").drop("kind", "reason", "block")
        by_id = Window.partitionBy("id").orderBy("fi", "line")
        judge_names = efiles.names
        if prev is None:
            # one shuffle: every record beside its id's first (by file, line), from the
            # same window (the frame up to the current row: ``first`` is the first's)
            ranked = rows.select(
                "*",
                F.row_number().over(by_id).alias("rn"),
                *[F.first(c).over(by_id).alias("w_" + c) for c in (*CONTENT, "fi", "line")],
            )
            first = F.col("rn") == 1
        else:
            # an id stored by an earlier run: that event is the one accepted (its file
            # is named after the new ones' in the conflict's wording)
            ranked = rows.withColumn("rn", F.row_number().over(by_id))
            winners = ranked.filter("rn = 1").select(
                "id", *[F.col(c).alias("w_" + c) for c in (*CONTENT, "fi", "line")]
            )
            winners, first = prior.stored_winners(spark, prev, winners, len(efiles.names))
            ranked = ranked.join(winners, "id")
            judge_names = [*efiles.names, *prev.files]
        same = F.lit(True)
        for c in CONTENT:
            same = same & F.col(c).eqNullSafe(F.col("w_" + c))
        # accepted (the first), duplicate or conflicting
        judged = ranked.withColumn(
            "status", F.when(first, "accepted").when(same, "duplicates").otherwise("conflict")
        ).persist()
        persisted.append(judged)
        n_conflicts = 0
        for fi, status, n, top in (
            judged.groupBy("fi", "status").agg(F.count("*"), F.max("at")).collect()
        ):
            if status == "accepted":
                ebatches[fi].accepted += n
                latest = top if latest is None else max(latest, top)
            elif status == "duplicates":
                ebatches[fi].duplicates += n
            else:
                n_conflicts += n
        conflicts = []
        if n_conflicts:
            conflicts = (
                judged.filter("status = 'conflict'")
                .rdd.map(lambda r, names=judge_names: conflict_reason(names, r))
                .collect()
            )
        for fi, *_ in conflicts:
            b = ebatches[fi]
            b.conflicting += 1
            b.rejected += 1
        if conflicts:
            reject_frames.append(
                spark.createDataFrame(
                    [
                        (fi + 1 + offset + b0, fi + offset, line, rid, reason, raw, None)
                        for fi, line, rid, reason, raw in conflicts
                    ],  # fmt: skip
                    "batch int, fi int, line long, record_id string, reason string, raw string,"
                    " waits string",
                )
            )
        accepted = judged.filter("status = 'accepted'").select(
            "id", "type", "subject", "at", "attrs", "amends", "fi", "line"
        )
    for b in run.batches:
        assert b.read == b.accepted + b.duplicates + b.rejected, b
    t0 = _tick(run, "ingest events", t0)

    incr = None
    comp_df = None
    score_files = efiles.names
    null = F.lit(None)
    if prev is not None:
        # --- 2.+3. an incremental run: the events to score, their components and
        # their subjects' stored state (prior.py)
        plan = prior.prepare(spark, scheme, compiled, prev, accepted, subjects_df,
                             b0 + len(sbatches))  # fmt: skip
        combined, incr = plan.combined, plan.info
        run.summary.waited = len(plan.requeued)
        if plan.rewind and plan.first is not None:
            run.summary.rewound_from = plan.first[1]
        score_files = [*prev.files, *sfiles.names, *efiles.names]
        t0 = _tick(run, "components", t0)
        out = (
            combined.repartition(partitions, "comp")
            .mapInArrow(score_partition(scheme_dir, score_files, incr=incr), OUT_SCHEMA)
            .persist()
        )
    else:
        # --- 2. components ---------------------------------------------------------------
        pairs = graph.edges(accepted, subjects_df)
        stocked = sorted(i for i, it in scheme.catalog.items() if it.stock is not None)
        comp_df = graph.components(spark, pairs, driver_max_edges).persist()
        t0 = _tick(run, "components", t0)

        # --- 3. scoring ------------------------------------------------------------------
        null = F.lit(None)
        subj_in = (
            subjects_df.join(comp_df, subjects_df.id == comp_df.m_subject, "left").select(
                F.coalesce("comp", "id").alias("comp"),
                F.lit(0).alias("kind"),
                "id",
                null.cast("string").alias("subject"),
                null.cast("long").alias("at"),
                null.cast("string").alias("key"),
                null.cast("string").alias("amends"),
                null.cast("int").alias("fi"),
                null.cast("long").alias("line"),
                F.col("kind").alias("skind"),
                "grid",
                "tags",
                "links",
                "groups",
            )  # fmt: skip
        )
        combined = subj_in
        if accepted is not None:
            ev_in = accepted.join(comp_df, accepted.subject == comp_df.m_subject, "left").select(
                F.coalesce("comp", "subject").alias("comp"), F.lit(1).alias("kind"), "id", "subject",
                "at", F.concat("type", F.lit("\x1f"), "attrs").alias("key"), "amends", "fi", "line",
                *[null.cast("string").alias(c) for c in ("skind", "grid", "tags", "links", "groups")],
            )  # fmt: skip
            combined = subj_in.unionByName(ev_in)
        # stock is a stage of its own (graph.score_with_stock): components with stocked
        # requests are scored in rounds until first come, first served holds, or in one
        # task while they fit its share
        if one_task_events is None:
            one_task_events = (
                sum(b.accepted for b in ebatches) // spark.sparkContext.defaultParallelism
            )
        out, rounds = graph.score_with_stock(
            spark, combined, stocked, {i: scheme.catalog[i].stock for i in stocked}, partitions,
            lambda mode, offset: score_partition(scheme_dir, efiles.names, mode, offset),
            one_task_events=one_task_events,
        )  # fmt: skip
        out = out.persist()
        run.stock_rounds = rounds.scored
    counts: Counter[str] = Counter()
    for (note,) in out.filter("tbl = 'summary'").select("note").collect():
        counts.update(orjson.loads(note))
    for k in SUMMED:
        setattr(run.summary, k, counts.get(k, 0))
    t0 = _tick(run, "score", t0)

    # --- 4. the ledger ---------------------------------------------------------------
    version = store.new_version(ledger)
    run.version = version
    v = str(version)
    numbered_tables, caches = {}, []
    for tbl in ("entries", "trial_entries"):
        rows_t = out.filter(F.col("tbl") == tbl)
        if prev is None and not getattr(run.summary, tbl):
            # none (a scheme without trials): no numbering jobs
            rows_t.select("id", *ENTRY_FIELDS).write.partitionBy("period").parquet(f"{v}/{tbl}")
            continue
        # an incremental run's entries take ids after the stored ones it keeps
        base = prior.kept_max(spark, prev, plan, tbl) if prev is not None else 0
        numbered, cached = _global_ids(rows_t, tbl == "trial_entries", base)
        caches.append(cached)
        if prev is None:
            numbered.write.partitionBy("period").parquet(f"{v}/{tbl}")
        else:  # read twice (its months, then the rows): numbered once
            numbered = numbered.persist()
            caches.append(numbered)
        numbered_tables[tbl] = numbered
    if prev is None:
        out.filter("tbl = 'redemptions'").select(*REDEMPTION_FIELDS).write.partitionBy(
            "period"
        ).parquet(f"{v}/redemptions")
        out.filter("tbl = 'objections'").select(*OBJECTION_FIELDS).write.parquet(f"{v}/objections")
    rejects = out.filter("tbl = 'rejects'").select(
        F.lit(0).alias("batch"), "file", "line", F.col("event").alias("record_id"), "reason",
        null.cast("string").alias("raw"), "waits",
    )  # fmt: skip
    all_files = [*sfiles.names, *efiles.names]
    names = spark.createDataFrame(list(enumerate(all_files)), "fi int, file string")
    for frame in reject_frames:
        rejects = rejects.unionByName(
            frame.join(F.broadcast(names), "fi").select(
                *[c.split()[0] for c in REJECT_COLUMNS.split(",")]
            )
        )
    # the accepted events, by month: what the next run deduplicates and corrects against
    if accepted is not None:
        events_new = accepted.select(
            "id", "type", "subject", "at", "attrs", "amends",
            (F.col("fi") + 1 + len(sbatches) + b0).cast("int").alias("batch"), "line",
            prior.month_col(F.col("at"), scheme.clock.tzname).alias("period"),
        )  # fmt: skip
    else:
        events_new = spark.createDataFrame([], store.SCHEMAS["events"])
    batches = [{k: v for k, v in b.as_dict().items() if k != "problems"} for b in run.batches]
    if prev is None:
        rejects.write.parquet(f"{v}/rejects")
        subjects_df.drop("groups").write.parquet(f"{v}/subjects")
        subjects_df.select(
            F.col("id").alias("subject"),
            F.explode(F.from_json("groups", T.ArrayType(T.StringType()))).alias("grp"),
        ).write.parquet(f"{v}/memberships")
        events_new.write.partitionBy("period").parquet(f"{v}/events")
    else:
        prior.write_version(
            spark, prev, plan, version, entries=numbered_tables["entries"],
            trial=numbered_tables["trial_entries"], out=out, rejects=rejects, events=events_new,
            subjects=subjects_df if sfiles.names else None,
        )  # fmt: skip
        batches = [*prev.meta.get("batches", []), *batches]
        old = prev.meta.get("latest_time")
        latest = old if latest is None else (latest if old is None else max(old, latest))
    for cached in caches:
        cached.unpersist()
    run.summary.seconds = time.perf_counter() - t_start
    store.write_meta(version, {
        "scheme": scheme_dir,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "partitions": partitions,
        "latest_time": latest,
        "batches": batches,
        "summary": {k: getattr(run.summary, k) for k in SUMMED},
    })  # fmt: skip
    store.switch(ledger, version)
    _tick(run, "write", t0)
    for df in (out, subjects_df, *([comp_df] if comp_df is not None else []), *persisted):
        df.unpersist()
    return run


def _global_ids(df: Any, trial: bool, base: int = 0) -> tuple[Any, Any]:
    """Entries numbered as the SQLite path numbers them: in the order the core
    emits them over the whole ledger, which is by (event time, event id), then
    the order within the event (a partition's own ids); ``ref`` and the entry
    numbers in reversal notes renumbered to match.

    Distributed: a window per hour of event time, each hour's offset from the
    hours' counts (no single-partition window). Returns the numbered entries and
    the cached table to drop once they are written.

    ``base``: the largest id kept from earlier runs (ids continue after it); a
    ``ref`` below ``prior.OFFSET`` names such a stored entry and is kept as it is."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    # an hour's entries are numbered by a window; the hours' counts (a few thousand
    # a year) give each hour its offset
    hours = df.select(F.col("part"), F.col("id").alias("lid"), *ENTRY_FIELDS).withColumn(
        "hour", F.floor(F.col("at") / 3600)
    )
    offsets, total = [], base
    for hour, n in sorted(hours.groupBy("hour").count().collect()):
        offsets.append((hour, total))
        total += n
    start = df.sparkSession.createDataFrame(offsets, "hour long, offset long")
    numbered = (
        hours.join(F.broadcast(start), "hour")
        .withColumn(
            "gid",
            F.col("offset")
            + F.row_number().over(Window.partitionBy("hour").orderBy("at", "event", "part", "lid")),
        )
        .drop("hour", "offset")
        .persist()
    )
    # Only reversals and repairs refer to other entries (few): the new ids of what they
    # refer to come through broadcast joins, not through a join of every entry.
    prefix = "reverses trial entry " if trial else "reverses entry "
    repair = "the repair of entry "
    refs = numbered.filter(F.col("ref").isNotNull()).withColumn(
        "b_num", F.regexp_extract("note", repair + "([0-9]+)$", 1).try_cast("long")
    )
    needed = (
        refs.select("part", F.col("ref").alias("lid"))
        .union(refs.filter(F.col("b_num").isNotNull()).select("part", F.col("b_num").alias("lid")))
        .distinct()
    )
    small = numbered.join(F.broadcast(needed), ["part", "lid"]).select("part", "lid", "gid")
    look = small.select(F.col("part").alias("r_part"), F.col("lid").alias("r_lid"),
                        F.col("gid").alias("r_gid"))  # fmt: skip
    rep = small.select(F.col("part").alias("b_part"), F.col("lid").alias("b_lid"),
                       F.col("gid").alias("b_gid"))  # fmt: skip
    fixed = refs.join(
        F.broadcast(look), (F.col("part") == F.col("r_part")) & (F.col("ref") == F.col("r_lid")), "left"
    ).join(
        F.broadcast(rep), (F.col("part") == F.col("b_part")) & (F.col("b_num") == F.col("b_lid")), "left"
    )  # fmt: skip
    note = F.col("note")
    note = F.when(
        F.col("r_gid").isNotNull() & note.startswith(prefix),
        F.regexp_replace(
            note, "^" + prefix + "[0-9]+", F.concat(F.lit(prefix), F.col("r_gid").cast("string"))
        ),
    ).otherwise(note)
    note = F.when(
        F.col("b_gid").isNotNull(),
        F.regexp_replace(
            note, repair + "[0-9]+$", F.concat(F.lit(repair), F.col("b_gid").cast("string"))
        ),
    ).otherwise(note)
    plain = numbered.filter(F.col("ref").isNull()).select(F.col("gid").alias("id"), *ENTRY_FIELDS)
    renumbered = fixed.select(
        F.col("gid").alias("id"),
        *[
            F.coalesce("r_gid", "ref").alias("ref")
            if c == "ref"
            else (note.alias("note") if c == "note" else F.col(c))
            for c in ENTRY_FIELDS
        ],
    )
    return plain.unionByName(renumbered), numbered
