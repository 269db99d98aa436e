"""The Spark runner's parallel ingest and Parquet input give the SQLite path's ledger.

A JSON Lines file is read in line-aligned chunks by many tasks; the line numbers,
rejects and per-file accounting must stay exactly those of the SQLite path, also
for what a chunk cannot judge alone (a line that is not UTF-8, a BOM, a bad last
line without its newline): such a file is read whole. Parquet files are read as
records of their columns, a record's position being its row number.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_spark import (
    ROOT,
    assert_same,
    entry_ids,
    spark_balances_cli,
    spark_entry_ids,
    spark_run,
    sqlite_balances,
    sqlite_run,
)

from scoring.spark.canonical import sqlite_ledger

pytestmark = pytest.mark.spark

ACCOUNTS = ("file", "read", "accepted", "duplicates", "conflicting", "rejected")


def _batches(db) -> list[tuple]:
    return [tuple(b) for b in db.execute(f"SELECT {', '.join(ACCOUNTS)} FROM batches ORDER BY id")]


def _mine(run) -> list[tuple]:
    return [tuple(getattr(b, a) for a in ACCOUNTS) for b in run.batches]


@pytest.fixture(scope="module")
def small_county(tmp_path_factory):
    from scoring.demo import generate_county
    from scoring.loader import load_scheme

    scheme = load_scheme(ROOT)
    out = tmp_path_factory.mktemp("county")
    generate_county(out, scheme, events=3000, residents=300)
    return scheme, out, [out / "subjects.jsonl"], sorted(out.glob("events-*.jsonl"))


def _dirty(events: list[Path], out: Path) -> list[Path]:
    """The county's events with what a chunk border could get wrong: blank lines,
    CR LF and lone-CR line ends, bad JSON, a repeated id far from its first."""
    lines = [ln for p in events for ln in p.read_bytes().splitlines(keepends=True)]
    first = lines[10]
    dirty = []
    for i, ln in enumerate(lines):
        dirty.append(ln)
        if i % 97 == 5:
            dirty.append(b"\n")
        if i % 211 == 7:
            dirty.append(b"{not json\n")
        if i % 301 == 9:
            dirty[-1] = ln.rstrip(b"\n") + b"\r\n"
    dirty.insert(len(dirty) // 2, first.rstrip(b"\n") + b"\r" + lines[11])  # a lone CR joins two
    dirty.append(first)
    files = [out / "a.jsonl", out / "b 事件%20.jsonl"]  # a name Spark escapes
    half = len(dirty) // 2
    files[0].write_bytes(b"".join(dirty[:half]))
    files[1].write_bytes(b"".join(dirty[half:]))
    return files


def test_json_lines_read_in_many_chunks_keep_lines_rejects_and_accounting(
    small_county, spark, tmp_path, monkeypatch
):
    from scoring.spark import ingest

    scheme, _, subjects, events = small_county
    files = _dirty(events, tmp_path)
    monkeypatch.setattr(ingest, "MIN_SPLIT", 16 * 1024)
    monkeypatch.setattr(ingest, "MAX_SPLIT", 16 * 1024)
    # a chunk's lines also come to its task in several Arrow batches
    batch = "spark.sql.execution.arrow.maxRecordsPerBatch"
    old = spark.conf.get(batch)
    spark.conf.set(batch, "40")
    try:
        # the files really are read in many chunks, each in several pieces
        listed = ingest.list_files(spark, [str(f) for f in files])
        got = ingest.parse_files(spark, str(ROOT), listed, "events")
        pieces = got.cached.filter("kind = 'lines'").select("fi", "block").collect()
        got.cached.unpersist()
        assert len(set(pieces)) >= 8 and len(pieces) > 2 * len(set(pieces)), len(pieces)
        run, tables = spark_run(spark, subjects, files, tmp_path / "ledger")
    finally:
        spark.conf.set(batch, old)

    db = sqlite_run(scheme, subjects, files)
    expected = sqlite_ledger(db)
    assert len(expected["rejects"]) > 15
    assert_same(expected, tables)
    assert _mine(run) == _batches(db)
    assert spark_entry_ids(spark, tmp_path / "ledger") == entry_ids(db)


def test_what_a_chunk_cannot_judge_reads_the_file_whole(small_county, spark, tmp_path,
                                                         monkeypatch):  # fmt: skip
    """A line that is not UTF-8, a BOM, a bad last line without a newline: the
    rejects and their reasons are the whole-file reader's."""
    from scoring.spark import ingest

    scheme, _, subjects, events = small_county
    monkeypatch.setattr(ingest, "MIN_SPLIT", 16 * 1024)
    monkeypatch.setattr(ingest, "MAX_SPLIT", 16 * 1024)
    lines = events[0].read_bytes().splitlines(keepends=True)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b"".join([*lines[:300], b'{"id": "caf\xe9"}\n', *lines[300:600]]))
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + b"".join(lines[600:900]))
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[900:1200]) + b'{"id": "x", "type": "volunteer_serv')
    files = [latin, bom, cut]
    db = sqlite_run(scheme, subjects, files)
    run, tables = spark_run(spark, subjects, files, tmp_path / "ledger")
    expected = sqlite_ledger(db)
    reasons = " | ".join(str(r[3]) for r in expected["rejects"])
    assert "not UTF-8" in reasons and "cut short" in reasons, reasons
    assert_same(expected, tables)
    assert _mine(run) == _batches(db)


def _to_parquet(src: Path, jsonl: Path, parquet: Path) -> None:
    """The records of a JSON Lines file (its lines that are JSON) as JSON Lines and as
    Parquet: one column per top-level field (objects as structs), in the same order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = []
    for ln in src.read_bytes().splitlines():
        try:
            recs.append(orjson.loads(ln))
        except orjson.JSONDecodeError:
            continue  # a line that is no record has no row
    jsonl.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    table = pa.Table.from_struct_array(pa.array(recs))
    pq.write_table(table, parquet, row_group_size=300)


def test_parquet_input_gives_the_json_lines_ledger(small_county, spark, tmp_path):
    """Subjects and events as Parquet (a folder of files, as Spark writes them) give
    the ledger, accounting and rejects of the same records as JSON Lines."""
    scheme, _, subjects, events = small_county
    folder = tmp_path / "events 事件"  # a name Spark escapes
    folder.mkdir()
    as_jsonl = [tmp_path / "subjects.jsonl"]
    pq_subjects = [tmp_path / "subjects.parquet"]
    _to_parquet(subjects[0], as_jsonl[0], pq_subjects[0])
    for p in events:
        as_jsonl.append(tmp_path / p.name)
        _to_parquet(p, as_jsonl[-1], folder / (p.stem + ".parquet"))
    (folder / "_SUCCESS").write_bytes(b"")

    db = sqlite_run(scheme, as_jsonl[:1], as_jsonl[1:])
    run, tables = spark_run(spark, pq_subjects, [folder], tmp_path / "ledger")
    expected = sqlite_ledger(db)
    for t in ("entries", "trial_entries", "redemptions", "objections", "subjects"):
        assert tables[t] == expected[t], t
    assert spark_entry_ids(spark, tmp_path / "ledger") == entry_ids(db)
    # the same accounting, file by file (the Parquet files in their names' order)
    assert [b[1:] for b in _mine(run)] == [b[1:] for b in _batches(db)]
    assert [b.file for b in run.batches[1:]] == [str(folder / (p.stem + ".parquet"))
                                                 for p in events]  # fmt: skip
    assert spark_balances_cli(tmp_path / "ledger") == sqlite_balances(db, scheme, None)
    # a reject's position is its row number (from 1): the JSON Lines record's line
    lines = {(Path(r[1]).stem, r[2], r[3]) for r in expected["rejects"]}
    rows = {(Path(r[1]).stem, r[2], r[3]) for r in tables["rejects"]}
    assert len(rows) >= 2 and rows == lines


# --- the demo county at 100k events ----------------------------------------------------


@pytest.mark.slow
def test_demo_county_of_100k_events_gives_the_sqlite_ledger(spark, tmp_path):
    """The issue's bar: the demo county of 100,000 events (20,000 residents, its
    dirty records, repeats and corrections) gives the same ledger on both paths:
    every table, the entry ids, the per-file accounting and ``balances`` JSON."""
    from scoring.demo import generate_county
    from scoring.loader import load_scheme

    scheme = load_scheme(ROOT)
    generate_county(tmp_path, scheme, events=100_000, residents=20_000)
    subjects = [tmp_path / "subjects.jsonl"]
    events = sorted(tmp_path.glob("events-*.jsonl"))
    db = sqlite_run(scheme, subjects, events)
    run, tables = spark_run(spark, subjects, events, tmp_path / "ledger", partitions=8)
    expected = sqlite_ledger(db)
    assert len(expected["entries"]) > 90_000 and expected["rejects"] and expected["objections"]
    assert_same(expected, tables)
    assert spark_entry_ids(spark, tmp_path / "ledger") == entry_ids(db)
    assert _mine(run) == _batches(db)
    for as_of in ("2024-02-29", None):
        args = ["--format", "json"] + (["--as-of", as_of] if as_of else [])
        assert spark_balances_cli(tmp_path / "ledger", *args) == sqlite_balances(db, scheme, as_of)
