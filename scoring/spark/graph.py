"""The cross-subject stages of the Spark runner: components, and catalog stock.

**Components.** What crosses subjects besides stock (see the core's docstring)
decides which subjects must be scored in one partition: a subject and the
subjects it links to (a rule's ``also``), and a correction's subject and the
subject of the event it names. :func:`edges` builds these edges as a DataFrame;
:func:`components` gives (subject, comp) for every subject in a set of more than
itself, ``comp`` the set's least subject id (so the result depends neither on
the order of the edges nor on the partitioning).

Below ``driver_max_edges`` edges (one job brings at most that many) the edges
are joined on the driver by the union-find of :class:`.partition.Components`:
one job instead of the distributed stage's few per round, which costs seconds
of per-job overhead on small inputs. Above it, :func:`star_components` runs the
alternating large-star / small-star iterations (Kiveris et al., "Connected
Components in MapReduce and Beyond", SoCC 2014; GraphFrames' default) on
DataFrames: no edge reaches the driver, each round is checkpointed (a path of n
subjects converges in O(log² n) rounds), and it stops when the edges form
stars, centre the least id, which no further round changes. Both give the same
pairs (tests/test_spark_graph.py).

**Stock** (:class:`StockScorer`, :func:`stock_rounds`): first come, first
served over all subjects, in (time, id) order. A stocked request's outcome is
decided by the subject's own state (availability, tier, per-subject limit: the
checks before the stock one; the wallet: the check after it) and by one
global number, the stock the item has left at its place in (time, id) order. So
the subjects with stocked requests are scored in their own components with the
stock answer of each request *given* (a set of requests told "out of stock"),
each request reporting what it needs from stock; a replay per item in (time,
id) order against the stock gives the answers; the components whose answers
changed are scored again; until no answer changes. A request's report depends
only on the answers of requests before it, so each round fixes at least the
first changed answer for good: the rounds end (at most one per request, two or
three in practice), and at the fixed point each component's run is the run
over all subjects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..evaluate.core import Scorer
from .partition import OUT_OF_STOCK, Components

# up to this many edges the union-find on the driver is used (see the module doc);
# measured in docs/spark.md ("Components")
DRIVER_MAX_EDGES = 200_000
EDGE_SCHEMA = "a string, b string"
COMP_SCHEMA = "m_subject string, comp string"


def edges(accepted: Any, subjects_df: Any) -> Any:
    """(a, b) pairs of subjects that must share a component: links and corrections
    (stock is its own stage). Nothing is collected."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    links = (
        subjects_df.filter("links != '{}'").select(
            F.col("id").alias("a"),
            F.explode(
                F.map_values(F.from_json("links", T.MapType(T.StringType(), T.StringType())))
            ).alias("b"),
        )  # fmt: skip
    )
    if accepted is None:
        return links
    corr = accepted.filter("amends IS NOT NULL OR type IN ('withdraw', 'objection')").select(
        "subject",
        "amends",
        F.when(
            F.col("type").isin("withdraw", "objection"), F.get_json_object("attrs", "$.target")
        ).alias("target"),  # fmt: skip
    )
    targets = (
        corr.select("subject", F.col("amends").alias("t"))
        .union(corr.select("subject", F.col("target").alias("t")))
        .filter("t IS NOT NULL")
    )
    by_id = accepted.select(F.col("id").alias("t"), F.col("subject").alias("ts"))
    fixes = targets.join(by_id, "t").select(F.col("subject").alias("a"), F.col("ts").alias("b"))
    return links.unionByName(fixes)


def components(spark: Any, pairs: Any, driver_max_edges: int = DRIVER_MAX_EDGES) -> Any:
    """(m_subject, comp) of every subject in a component of more than itself, ``comp``
    its least id; on the driver up to ``driver_max_edges`` edges, else distributed."""
    from pyspark.sql import functions as F

    pairs = pairs.filter(F.col("a") != F.col("b"))
    if driver_max_edges > 0:
        few = pairs.limit(driver_max_edges + 1).collect()
        if len(few) <= driver_max_edges:
            comps = Components()
            for a, b in few:
                comps.union(a, b)
            return spark.createDataFrame(comps.mapping(), COMP_SCHEMA)
    return star_components(pairs)


def star_components(pairs: Any, max_rounds: int = 200) -> Any:
    """Connected components of the (a, b) pairs by alternating large-star and
    small-star rounds on DataFrames; (m_subject, comp) as :func:`components`."""
    from pyspark.sql import functions as F

    src, dst, m = F.col("src"), F.col("dst"), F.col("m")
    # undirected edges, each once as (smaller, larger)
    ee = (
        pairs.select(F.least("a", "b").alias("src"), F.greatest("a", "b").alias("dst"))
        .filter(src != dst)
        .distinct()
        .localCheckpoint()
    )
    for _ in range(max_rounds):
        # large-star: every neighbour larger than u joins the least of u's closed
        # neighbourhood (an edge (u, v), u < v, is v as a larger neighbour of u)
        both = ee.unionByName(ee.select(dst.alias("src"), src.alias("dst")))
        least = (
            both.groupBy("src")
            .agg(F.min("dst").alias("m"))
            .select("src", F.least(src, m).alias("m"))
        )
        large = ee.join(least, "src").select(dst.alias("src"), m.alias("dst")).distinct()
        # small-star (edges now larger → smaller): u and its smaller neighbours
        # join the least of them
        low = large.groupBy("src").agg(F.min("dst").alias("m"))
        ee = (
            large.join(low, "src")
            .select(m.alias("src"), dst)
            .filter(src != dst)
            .unionByName(low.select(m.alias("src"), src.alias("dst")))
            .distinct()
            .localCheckpoint()
        )
        # stars (no centre is a leaf, no leaf has two centres) are the fixed point
        ends = ee.select(src.alias("n"), F.lit(1).alias("c"), F.lit(0).alias("l")).unionByName(
            ee.select(dst.alias("n"), F.lit(0).alias("c"), F.lit(1).alias("l"))
        )
        bad = (
            ends.groupBy("n")
            .agg(F.max("c").alias("c"), F.sum("l").alias("l"))
            .filter("(c = 1 AND l > 0) OR l > 1")
        )
        if bad.limit(1).count() == 0:
            return ee.select(dst.alias("m_subject"), src.alias("comp"))
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


# --- stock ---------------------------------------------------------------------------

# what a scoring task in "facts" mode gives back: per stocked request that passed the
# checks before the stock one, whether the wallet would pay ("eligible"/"ineligible");
# per stock given back by a withdrawal or an upheld objection, "return"; each at its
# place (at, event, seq) in the core's order
FACT_SCHEMA = "comp string, item string, at long, event string, seq long, qty long, need string"
OOS_SCHEMA = "event string, comp string"


class StockScorer:
    """Mixin for :class:`~scoring.evaluate.core.Scorer`: a stocked request takes the
    stock answer given (out of stock if its event is in ``oos``, else in stock) and
    reports what it needs from the stock (:data:`FACT_SCHEMA`); what the core does
    otherwise is unchanged. Requests are few: this costs nothing per event."""

    def stock_setup(self: Any, oos: set[str]) -> None:
        self.oos = oos
        self.stock_facts: list[tuple] = []  # (sid, item, at, event, seq, qty, need)
        self._pos: tuple[int, str] = (0, "")
        self._last_redeemed: tuple | None = None

    def _redeem(self: Any, eid: str, sid: str, at: int, attrs: dict) -> None:
        item_id = str(attrs.get("item", ""))
        item = self.scheme.catalog.get(item_id)
        if item is None or item.stock is None:
            super()._redeem(eid, sid, at, attrs)  # type: ignore[misc]
            return
        qty = int(attrs.get("quantity", 1) or 1)
        # the core's test is used + qty > stock: set used so that it answers as given
        self.stock_used[item_id] = item.stock - qty + (1 if eid in self.oos else 0)
        super()._redeem(eid, sid, at, attrs)  # type: ignore[misc]
        row = self.redeemed[-1] if self.redeemed else self._last_redeemed
        if row is None or row[0] != eid:
            return  # an unknown subject: rejected before any check
        code = row[7]
        if code is None:
            need = "eligible"
        elif code == "insufficient_points":
            need = "ineligible"
        elif code == "out_of_stock":  # nothing moved: would the wallet have paid?
            need = "eligible" if self.acct[(sid, row[2])][1] >= row[5] else "ineligible"
        else:
            return  # refused before the stock check: the stock is not asked
        self.stock_facts.append((sid, item_id, at, eid, len(self.stock_facts), qty, need))

    def flush_redemptions(self: Any) -> None:
        if self.redeemed:
            self._last_redeemed = self.redeemed[-1]
        super().flush_redemptions()  # type: ignore[misc]

    def _reverse_entries(self: Any, target: str, eid: str, at: int, period: str) -> None:
        self._pos = (at, eid)  # where a redemption this undoes gives its stock back
        super()._reverse_entries(target, eid, at, period)  # type: ignore[misc]

    def _return_redemption(self: Any, target: str) -> None:
        before = target in self.returned
        granted = None
        if not before:
            granted = self.granted.get(target) or self.prior.granted_redemption(target)
        super()._return_redemption(target)  # type: ignore[misc]
        if granted is None or before or target not in self.returned:
            return
        item_id, sid, qty, _ = granted
        item = self.scheme.catalog.get(item_id)
        if item is not None and item.stock is not None:
            at, eid = self._pos
            self.stock_facts.append((sid, item_id, at, eid, len(self.stock_facts), qty, "return"))


def replay(stock: dict[str, int], used0: dict[str, int] | None = None) -> Any:
    """A ``mapInArrow`` function over :data:`FACT_SCHEMA` rows, whole items sorted by
    (item, at, event, seq) → :data:`OOS_SCHEMA`: the requests the stock refuses, as
    the core's first come, first served test does over all subjects."""
    used0 = used0 or {}

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        used: dict[str, int] = {}
        out_event: list[str] = []
        out_comp: list[str] = []
        for b in batches:
            d = b.to_pydict()
            for comp, item, ev, qty, need in zip(
                d["comp"], d["item"], d["event"], d["qty"], d["need"], strict=True
            ):
                u = used.get(item)
                if u is None:
                    u = used0.get(item, 0)
                if need == "return":
                    u -= qty
                elif u + qty > stock[item]:
                    out_event.append(ev)
                    out_comp.append(comp)
                elif need == "eligible":
                    u += qty
                used[item] = u
        yield pa.RecordBatch.from_pydict(
            {"event": out_event, "comp": out_comp},
            schema=pa.schema([("event", pa.string()), ("comp", pa.string())]),
        )

    return run


class StockRounds:
    """How the stock stage went: rounds, and components scored in each."""

    def __init__(self) -> None:
        self.rounds = 0
        self.scored: list[int] = []


def score_with_stock(
    spark: Any, combined: Any, stocked: list[str], stock: dict[str, int], partitions: int,
    scorer: Any, used0: dict[str, int] | None = None, one_task_events: int = 0,
) -> tuple[Any, StockRounds]:  # fmt: skip
    """The scoring stage with stock as its own stage (see the module doc).

    ``combined``: subject and event rows with their component (``IN_SCHEMA``);
    ``scorer(mode, part_offset)``: the ``mapInArrow`` function of
    :func:`.partition.score_partition` in a mode (``plain``, ``facts``, ``final``).
    Components without a stocked request are scored once (``plain``); the others
    in rounds of ``facts`` until the stock's answers hold, then once ``final``;
    but when those hold no more than ``one_task_events`` events, they are scored
    as one component in one task instead (what a fair share of a task holds: no
    core waits for it, and the rounds would score them three times).
    Returns the scoring output (``OUT_SCHEMA``) and the rounds' counts."""
    from pyspark.sql import functions as F

    from .partition import IN_SCHEMA, OUT_SCHEMA

    info = StockRounds()
    plain_fn = scorer("plain", 0)
    if not stocked:
        return combined.repartition(partitions, "comp").mapInArrow(plain_fn, OUT_SCHEMA), info
    attrs = F.substring_index("key", "\x1f", -1)
    asks = combined.filter(
        (F.col("kind") == 1)
        & F.col("key").startswith("redeem\x1f")
        & F.get_json_object(attrs, "$.item").isin(stocked)
    )
    held = asks.select("comp").distinct().localCheckpoint()
    plain = combined.join(held, "comp", "left_anti").repartition(partitions, "comp")
    out_plain = plain.mapInArrow(plain_fn, OUT_SCHEMA)
    n_held = held.count()
    if n_held == 0:
        return out_plain, info
    inputs = combined.join(held, "comp", "left_semi").localCheckpoint()
    if inputs.filter("kind = 1").count() <= one_task_events:
        first = held.agg(F.min("comp")).first()[0]
        one = combined.join(held.withColumn("held", F.lit(True)), "comp", "left").select(
            F.when(F.col("held"), F.lit(first)).otherwise(F.col("comp")).alias("comp"),
            *[c for c in combined.columns if c != "comp"],
        )
        return one.repartition(partitions, "comp").mapInArrow(plain_fn, OUT_SCHEMA), info
    in_cols = [c.split()[0] for c in IN_SCHEMA.split(",")]
    oos = spark.createDataFrame([], OOS_SCHEMA)
    todo = held
    facts = spark.createDataFrame([], FACT_SCHEMA)
    n_todo = n_held
    limit = None
    while True:
        info.rounds += 1
        info.scored.append(n_todo)
        if info.rounds > 50:  # each round fixes one more answer at least (module doc)
            limit = asks.count() + 1 if limit is None else limit
            if info.rounds > limit:
                raise RuntimeError("the stock rounds did not settle: a bug, please report it")
        fresh = (
            _with_oos(inputs.join(todo, "comp", "left_semi"), oos, in_cols)
            .repartition(partitions, "comp")
            .mapInArrow(scorer("facts", 0), FACT_SCHEMA)
        )
        facts = facts.join(todo, "comp", "left_anti").unionByName(fresh).localCheckpoint()
        new_oos = (
            facts.repartition(partitions, "item")
            .sortWithinPartitions("item", "at", "event", "seq")
            .mapInArrow(replay(stock, used0), OOS_SCHEMA)
            .localCheckpoint()
        )
        changed = (
            new_oos.exceptAll(oos).unionByName(oos.exceptAll(new_oos)).select("comp").distinct()
        ).localCheckpoint()
        oos = new_oos
        n_todo = changed.count()
        if n_todo == 0:
            break
        todo = changed
    final = (
        _with_oos(inputs, oos, in_cols)
        .repartition(partitions, "comp")
        .mapInArrow(scorer("final", partitions), OUT_SCHEMA)
    )
    return out_plain.unionByName(final), info


def _with_oos(rows: Any, oos: Any, cols: list[str]) -> Any:
    """The input rows plus one marker row (kind ``OUT_OF_STOCK``) per request the stock refuses."""
    from pyspark.sql import functions as F

    marks = oos.select(
        "comp", F.lit(OUT_OF_STOCK).alias("kind"), F.col("event").alias("id"),
        *[F.lit(None).cast(t).alias(c) for c, t in (
            ("subject", "string"), ("at", "long"), ("key", "string"), ("amends", "string"),
            ("fi", "int"), ("line", "long"), ("skind", "string"), ("grid", "string"),
            ("tags", "string"), ("links", "string"), ("groups", "string"))],
    )  # fmt: skip
    return rows.select(*cols).unionByName(marks.select(*cols))


class StockCore(StockScorer, Scorer):
    """The core of a component with stocked requests (see :class:`StockScorer`)."""
