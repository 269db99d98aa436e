"""The Spark runner's cross-subject stages (scoring/spark/graph.py): the distributed
components equal the driver's union-find; the ledger with them equals SQLite's."""

from __future__ import annotations

import random

import pytest

from scoring.spark.partition import Components

pytestmark = pytest.mark.spark


def union_find(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    comps = Components()
    for a, b in pairs:
        if a != b:
            comps.union(a, b)
    return comps.mapping()


def star(spark, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    from scoring.spark.graph import EDGE_SCHEMA, components

    df = spark.createDataFrame(pairs, EDGE_SCHEMA).repartition(3)
    return sorted(tuple(r) for r in components(spark, df, driver_max_edges=0).collect())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_graphs_give_the_union_finds_components(spark, seed):
    rng = random.Random(seed)
    n = rng.randint(20, 300)
    ids = [f"S{rng.randint(0, 10**6):07d}" for _ in range(n)]
    pairs = [(rng.choice(ids), rng.choice(ids)) for _ in range(rng.randint(n // 4, n // 2))]
    pairs += [(a, a) for a in ids[:3]] + pairs[:5]  # self-links and repeats change nothing
    want = union_find(pairs)
    assert len({c for _, c in want}) > 1  # more than one component
    assert star(spark, pairs) == want
    # and in any order: the least id labels a component whatever the edges' order
    rng.shuffle(pairs)
    assert star(spark, [(b, a) for a, b in pairs]) == want


def test_a_path_of_a_thousand_subjects_converges_to_one_component(spark):
    ids = [f"P{i:04d}" for i in range(1000)]
    rng = random.Random(7)
    order = ids[:]
    rng.shuffle(order)  # a path through the ids in random order: long, not sorted
    pairs = list(zip(order, order[1:]))
    got = star(spark, pairs)
    assert got == [(s, "P0000") for s in ids[1:]]


def test_below_the_threshold_the_driver_joins_the_same_components(spark):
    from scoring.spark.graph import EDGE_SCHEMA, components

    rng = random.Random(11)
    pairs = [(f"A{rng.randint(0, 99):02d}", f"A{rng.randint(0, 99):02d}") for _ in range(60)]
    df = spark.createDataFrame(pairs, EDGE_SCHEMA)
    driver = sorted(tuple(r) for r in components(spark, df, driver_max_edges=1000).collect())
    assert driver == union_find(pairs) == star(spark, pairs)


# --- stock as its own stage ------------------------------------------------------------


def scarce_stock(out, seed: int, residents: int = 300) -> tuple:
    """Residents earning a few points and asking, many times, for the stocked items
    (eggs: stock 300, rice: 200) and an unstocked one (detergent), some asks
    withdrawn: the stock runs out, and a request refused for stock leaves the wallet
    to a later one (so the stock's answers move the subjects' later outcomes)."""
    import orjson

    rng = random.Random(seed)
    ids = [f"R{i:04d}" for i in range(residents)]
    subjects = [{"id": s, "groups": ["residents"], "grid": "S01C01G01"} for s in ids]
    events: list[dict] = []
    asks: list[dict] = []
    for n in range(residents * 12):
        s = rng.choice(ids)
        day = 1 + rng.randrange(28)
        at = f"2024-{1 + rng.randrange(4):02d}-{day:02d}T{8 + rng.randrange(10):02d}:00"
        eid = f"e{n:05d}"
        r = rng.random()
        if r < 0.4:
            events.append({"id": eid, "type": "volunteer_service", "subject": s, "at": at,
                           "attrs": {"hours": rng.choice([5, 10, 20])}})  # fmt: skip
        elif r < 0.95:
            item = rng.choice(["eggs-30", "eggs-30", "eggs-30", "rice-5kg", "detergent"])
            attrs = {"item": item, "quantity": rng.choice([1, 1, 1, 2])}
            events.append({"id": eid, "type": "redeem", "subject": s, "at": at, "attrs": attrs})
            asks.append(events[-1])
        else:  # a withdrawal of an earlier ask: its stock comes back mid-stream
            earlier = [e for e in asks if e["at"] < at]
            if earlier:
                who = rng.choice(earlier)
                events.append({"id": eid, "type": "withdraw", "subject": who["subject"],
                               "at": at, "attrs": {"target": who["id"]}})  # fmt: skip
    s_path, e_path = out / "subjects.jsonl", out / "events.jsonl"
    s_path.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in subjects))
    e_path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return s_path, e_path


def spark_score(spark, subjects, events, ledger, **kw):
    from scoring.spark import ledger as store
    from scoring.spark.canonical import spark_ledger
    from scoring.spark.run import score
    from tests.test_spark import ROOT

    run = score(spark, str(ROOT), [str(p) for p in subjects], [str(p) for p in events],
                str(ledger), **kw)  # fmt: skip
    return run, spark_ledger(spark, store.current(str(ledger)))


@pytest.mark.parametrize("seed", [5, 6])
def test_scarce_stock_and_many_redeemers_give_the_sqlite_ledger(spark, tmp_path, seed):
    """Stock as its own stage: subjects scored apart, the stock replayed per item in
    (time, id) order, the components whose answers changed scored again: the ledger
    (ids included) is the SQLite path's, where one core saw every request."""
    from scoring.loader import load_scheme
    from scoring.spark.canonical import sqlite_ledger
    from tests.test_spark import ROOT, assert_same, entry_ids, spark_entry_ids, sqlite_run

    s_path, e_path = scarce_stock(tmp_path, seed)
    db = sqlite_run(load_scheme(ROOT), [s_path], [e_path])
    tables = sqlite_ledger(db)
    codes = {r[7] for r in tables["redemptions"]}
    assert {None, "out_of_stock", "insufficient_points", "withdrawn"} <= codes, codes
    run, mine = spark_score(spark, [s_path], [e_path], tmp_path / "ledger", partitions=3,
                            one_task_events=0)  # fmt: skip
    # the first answers (all in stock) were wrong for some: more than one round ran,
    # the later ones on the changed components only
    assert len(run.stock_rounds) >= 2 and run.stock_rounds[-1] < run.stock_rounds[0]
    assert_same(tables, mine)
    assert entry_ids(db) == spark_entry_ids(spark, tmp_path / "ledger")


def test_the_county_with_distributed_components_gives_the_sqlite_ledger(spark, tmp_path):
    """The components stage without the driver (threshold 0): the same ledger."""
    from scoring.demo import generate_county
    from scoring.loader import load_scheme
    from scoring.spark.canonical import sqlite_ledger
    from tests.test_spark import ROOT, assert_same, entry_ids, spark_entry_ids, sqlite_run

    scheme = load_scheme(ROOT)
    generate_county(tmp_path, scheme, events=3000, residents=300)
    subjects = [tmp_path / "subjects.jsonl"]
    events = sorted(tmp_path.glob("events-*.jsonl"))
    db = sqlite_run(scheme, subjects, events)
    tables = sqlite_ledger(db)
    # links (households, legal representatives) and corrections make components
    assert b'"links"' in subjects[0].read_bytes()
    assert "reversal" in {r[5] for r in tables["entries"]}
    run, mine = spark_score(spark, subjects, events, tmp_path / "ledger", driver_max_edges=0)
    assert run.stock_rounds == []  # a small county's stock askers fit one task: no rounds
    assert_same(tables, mine)
    assert entry_ids(db) == spark_entry_ids(spark, tmp_path / "ledger")


def test_the_scenarios_through_the_stock_rounds_give_the_sqlite_ledger(spark, tmp_path):
    """Every scenario's inputs in one ledger (stock shared across scenarios), the stock
    stage forced into rounds: the ledger and the redemptions are the SQLite path's."""
    from scoring.loader import load_scheme
    from scoring.spark.canonical import sqlite_ledger
    from tests.test_spark import (
        ROOT,
        _prefixed_scenarios,
        assert_same,
        entry_ids,
        spark_entry_ids,
        sqlite_run,
    )

    s_path, e_path = _prefixed_scenarios(tmp_path)
    db = sqlite_run(load_scheme(ROOT), [s_path], [e_path])
    tables = sqlite_ledger(db)
    assert "out_of_stock" in {r[7] for r in tables["redemptions"]}
    run, mine = spark_score(spark, [s_path], [e_path], tmp_path / "ledger", one_task_events=0)
    assert run.stock_rounds
    assert_same(tables, mine)
    assert entry_ids(db) == spark_entry_ids(spark, tmp_path / "ledger")
