"""Scoring hot paths: pytest-benchmark cases on the reference scheme and the demo county.

    .venv/bin/pytest benchmarks/test_bench_evaluate.py --benchmark-enable

Each case reports its time; ``test_score_demo_month`` also reports the ratio
to a baseline measured in the same process (inserting the same number of
ledger rows with raw ``executemany``), so the figure survives a noisy machine.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from scoring.compile import compile_scheme
from scoring.conditions import SubjectView, compile_condition
from scoring.demo import generate_county
from scoring.evaluate import score
from scoring.ingest import ingest_files
from scoring.ledger import ENTRY_COLUMNS, connect
from scoring.loader import load_scheme
from scoring.plugins import build_plugins

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(ROOT)


@pytest.fixture(scope="module")
def county(scheme, tmp_path_factory):
    """50,000 demo events ingested once into a template database."""
    out = tmp_path_factory.mktemp("county")
    files = generate_county(out, scheme, events=50_000, months=["2024-03"], residents=5_000)
    db = connect(out / "template.db")
    ingest_files(db, scheme, [files.subjects, *files.events], progress=False)
    db.conn.close()
    return out / "template.db"


def test_compile_reference_scheme(benchmark, scheme):
    compiled = benchmark(compile_scheme, scheme)
    assert len(compiled.rules) >= 60


def test_condition_eval(benchmark):
    test = compile_condition(
        {"attrs.hours": {"gte": 0.5}, "subject.tags": {"contains": "志愿者"}},
        build_plugins().operators,
    )
    view = SubjectView("R1", tags=frozenset({"志愿者"}))
    attrs = {"hours": 2}

    def run():
        for _ in range(10_000):
            test(attrs, view, "residents", "volunteer_service")

    benchmark(run)
    assert test(attrs, view, "residents", "volunteer_service")


def test_score_demo_month(benchmark, scheme, county, tmp_path):
    import shutil

    counter = iter(range(10_000))

    def setup():
        path = tmp_path / f"run{next(counter)}.db"
        shutil.copy(county, path)
        return (connect(path),), {}

    def run(db):
        return score(db, scheme)

    summary = benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    assert summary.events > 45_000

    # baseline in the same process: the same number of raw ledger inserts
    rows = [("R1", "residents", "score", 1, 1, "r", "h", f"e{i}", i, "2024-03", "match",
             None, None, None, None, None) for i in range(summary.entries)]  # fmt: skip
    conn = sqlite3.connect(tmp_path / "floor.db")
    conn.execute(f"CREATE TABLE entries ({', '.join(ENTRY_COLUMNS)})")
    t = time.perf_counter()
    with conn:
        conn.executemany(
            f"INSERT INTO entries VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})", rows
        )
    floor = time.perf_counter() - t
    if benchmark.stats:  # None with --benchmark-disable
        benchmark.extra_info["ratio_to_raw_inserts"] = round(benchmark.stats["min"] / floor, 2)
