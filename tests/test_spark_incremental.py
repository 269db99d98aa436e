"""Incremental Spark runs give the ledger of the SQLite path doing the same runs.

Each Spark ``score`` on a ledger with a current version continues it (scoring/spark/
prior.py), as ``gridcredit ingest`` of the new files and ``gridcredit score``
continue a SQLite ledger: the demo county's three monthly files scored month by
month, with late records (an event of month M in the file of month M+1: the
runs rewind), corrections naming events of an earlier run, closed months (late
events post to the first open month) and random splits into runs, compared entry
for entry (ids included) and by ``balances``.

Marker ``spark``; one SparkSession on ``local[2]`` for the test session.
"""

from __future__ import annotations

import io
import random
from contextlib import redirect_stdout
from pathlib import Path

import orjson
import pytest

from scoring.spark.canonical import digests, sqlite_ledger

ROOT = Path(__file__).resolve().parent.parent
AS_OF = ("2024-01-20", "2024-02-29", "2024-03-31", None)

pytestmark = pytest.mark.spark


# --- both paths, run by run -----------------------------------------------------------


def sqlite_db(scheme):
    from scoring.ingest import sync_grids
    from scoring.ledger import memory_db

    db = memory_db()
    sync_grids(db, scheme)
    return db


def sqlite_step(db, scheme, subjects: list[Path], events: list[Path], close: list[str] = ()):
    """One SQLite run: the files ingested in order (a batch each), one score, then the
    months ``close`` closed (``scoring.periods.close_month``)."""
    from scoring.evaluate import score
    from scoring.ingest import ingest_file
    from scoring.periods import close_month

    for p in subjects:
        ingest_file(db, scheme, p, kind="subjects", progress=False)
    for p in events:
        ingest_file(db, scheme, p, kind="events", progress=False, workers=0)
    summary = score(db, scheme)
    for month in close:
        close_month(db, scheme, month)
    return summary


def spark_step(spark, ledger: Path, subjects, events, partitions: int = 4):
    from scoring.spark.run import score

    return score(spark, str(ROOT), [str(p) for p in subjects], [str(p) for p in events],
                 str(ledger), partitions=partitions)  # fmt: skip


def spark_tables(spark, ledger: Path) -> dict:
    from scoring.spark import ledger as store
    from scoring.spark.canonical import spark_ledger

    return spark_ledger(spark, store.current(str(ledger)))


def close_in_spark(spark, ledger: Path, db, month: str) -> None:
    """Close ``month`` in the Spark ledger as SQLite's close marks it: a new version
    with the ``periods`` row (month, closed=1; the other tables carried), which is all
    an incremental run reads of a close (sp-month's ``close`` writes the figures too)."""
    from scoring.spark import ledger as store

    cur = store.current(str(ledger))
    new = store.new_version(str(ledger))
    for d in cur.iterdir():
        if d.is_dir() and d.name != "periods":
            store.carry(cur, new, d.name)
    rows = [tuple(r) for r in db.execute(
        "SELECT month, closed, ledger_hash, late_events, closed_at_seq FROM periods ORDER BY month"
    ).fetchall()]  # fmt: skip
    assert (month, 1) in {(r[0], r[1]) for r in rows}
    spark.createDataFrame(rows, store.SCHEMAS["periods"]).write.parquet(str(new / "periods"))
    store.write_meta(new, store.read_meta(cur))
    store.switch(str(ledger), new)


def entry_ids(db) -> list[tuple]:
    return db.execute(
        "SELECT id, event, subject, rule, reason, ref, note, period FROM entries ORDER BY id"
    ).fetchall()


def spark_entry_ids(spark, ledger: Path, table: str = "entries") -> list[tuple]:
    from scoring.spark import ledger as store

    rows = store.table(spark, store.current(str(ledger)), table).collect()
    return sorted((r.id, r.event, r.subject, r.rule, r.reason, r.ref, r.note, r.period)
                  for r in rows)  # fmt: skip


def assert_same(db, spark, ledger: Path) -> dict:
    a, b = sqlite_ledger(db), spark_tables(spark, ledger)
    for t in a:
        if a[t] != b[t]:
            only_a = sorted(set(a[t]) - set(b[t]), key=repr)[:3]
            only_b = sorted(set(b[t]) - set(a[t]), key=repr)[:3]
            pytest.fail(f"{t} differ: only SQLite {only_a}, only Spark {only_b}")
    assert digests(a) == digests(b)
    assert entry_ids(db) == spark_entry_ids(spark, ledger)
    trial = db.execute(
        "SELECT id, event, subject, rule, reason, ref, note, period FROM trial_entries ORDER BY id"
    ).fetchall()
    assert trial == spark_entry_ids(spark, ledger, "trial_entries")
    return a


def sqlite_balances(db, scheme, as_of: str | None) -> str:
    from scoring.durations import parse_as_of
    from scoring.ledger import balances
    from scoring.ledger.reads import render_balances

    rows = balances(db, scheme, as_of=parse_as_of(scheme, as_of))
    return render_balances(rows, "json", scheme.precision)


def spark_balances(ledger: Path, as_of: str | None) -> str:
    from scoring.spark.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        main(["balances", "--ledger", str(ledger), "--format", "json",
              *(["--as-of", as_of] if as_of else [])])  # fmt: skip
    return out.getvalue()


def batches(db) -> list[tuple]:
    return [tuple(r) for r in db.execute(
        "SELECT id, file, read, accepted, duplicates, conflicting, rejected FROM batches ORDER BY id"
    ).fetchall()]  # fmt: skip


def spark_batches(ledger: Path) -> list[tuple]:
    from scoring.spark import ledger as store

    meta = store.read_meta(store.current(str(ledger)))
    return [(b["batch"], b["file"], b["read"], b["accepted"], b["duplicates"], b["conflicting"],
             b["rejected"]) for b in meta["batches"]]  # fmt: skip


# --- the demo county, month by month ---------------------------------------------------


@pytest.fixture(scope="module")
def county(tmp_path_factory, spark):
    from scoring.demo import generate_county
    from scoring.loader import load_scheme

    scheme = load_scheme(ROOT)
    out = tmp_path_factory.mktemp("county")
    generate_county(out, scheme, events=5000, residents=500)
    return scheme, out, [out / "subjects.jsonl"], sorted(out.glob("events-*.jsonl"))


def test_month_by_month_runs_give_the_sqlite_paths_ledger(county, spark, tmp_path):
    """Three runs, one monthly file each (late records in the next month's file make
    the SQLite runner rewind; Spark does the same): after each run the ledgers are
    equal entry for entry, ids included, and the batches' accounting too."""
    scheme, _, subjects, events = county
    assert len(events) == 3
    db = sqlite_db(scheme)
    ledger = tmp_path / "ledger"
    rescored = []
    for i, month in enumerate(events):
        subs = subjects if i == 0 else []
        done = sqlite_step(db, scheme, subs, [month])
        run = spark_step(spark, ledger, subs, [month])
        tables = assert_same(db, spark, ledger)
        assert spark_batches(ledger) == batches(db)
        # the same events scored (a month, and after a late record the rewound days)
        assert (run.summary.events, run.summary.late) == (done.events, done.late)
        rescored.append((done.rewound_from is not None, run.summary.events))
    assert rescored[1][0] and rescored[1][1] < 5000  # a rewind, not all history
    assert len(tables["entries"]) > 4000 and tables["objections"] and tables["rejects"]
    for as_of in AS_OF:
        assert spark_balances(ledger, as_of) == sqlite_balances(db, scheme, as_of)


def _records(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_bytes().splitlines():
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the demo's dirty lines
        if isinstance(rec, dict) and isinstance(rec.get("id"), str):
            out.setdefault(rec["id"], rec)
    return out


def _write(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_closed_months_late_events_and_corrections_of_earlier_runs(county, spark, tmp_path):
    """January and February closed after their runs: the late records of each month
    post to the next open month and are counted in its ``late_events``; a fourth run
    withdraws a January penalty, upholds an objection to a February event, amends a
    January event, brings a late January event and one of a subject not yet known; a
    fifth brings that subject (the waiting event is scored then). Equal after every
    run, ids included."""
    scheme, out, subjects, events = county
    db = sqlite_db(scheme)
    ledger = tmp_path / "ledger"
    closes = (["2024-01"], ["2024-02"], [])
    for i, (month, close) in enumerate(zip(events, closes, strict=True)):
        subs = subjects if i == 0 else []
        done = sqlite_step(db, scheme, subs, [month], close)
        run = spark_step(spark, ledger, subs, [month])
        assert (run.summary.events, run.summary.late) == (done.events, done.late)
        for m in close:
            close_in_spark(spark, ledger, db, m)
    assert run.summary.late > 0  # February's stragglers in March's file
    assert_same(db, spark, ledger)

    jan, feb = _records(events[0]), _records(events[1])
    (penalty,) = db.execute(
        "SELECT event FROM entries WHERE points < 0 AND reason = 'match' AND period = '2024-01'"
        " AND event NOT IN (SELECT target FROM objections) ORDER BY id LIMIT 1"
    ).fetchone()
    (disputed,) = db.execute(
        "SELECT event FROM entries WHERE reason = 'match' AND period = '2024-02'"
        " AND event NOT IN (SELECT target FROM objections) ORDER BY id DESC LIMIT 1"
    ).fetchone()
    (amended,) = db.execute(
        "SELECT e.event FROM entries e WHERE e.reason = 'match' AND e.period = '2024-01'"
        " AND e.points > 0 AND e.event != ? ORDER BY e.id LIMIT 1",
        [penalty],
    ).fetchone()
    late = dict(jan[amended], id="X-late", at="2024-01-30T10:00:00+08:00")
    extra = [
        {"id": "X-w", "type": "withdraw", "subject": jan[penalty]["subject"],
         "at": "2024-03-20T09:00:00+08:00", "target": penalty},
        {"id": "X-o", "type": "objection", "subject": feb[disputed]["subject"],
         "at": "2024-03-21T09:00:00+08:00", "target": disputed, "status": "upheld"},
        dict(jan[amended], id="X-a", amends=amended, at="2024-03-22T09:00:00+08:00"),
        late,
        dict(jan[amended], id="X-z", subject="Z000001", at="2024-03-23T09:00:00+08:00"),
    ]  # fmt: skip
    fourth = _write(tmp_path / "corrections.jsonl", extra)
    done = sqlite_step(db, scheme, [], [fourth])
    run = spark_step(spark, ledger, [], [fourth])
    assert (run.summary.events, run.summary.late, run.summary.unknown_subject) == (
        done.events, done.late, done.unknown_subject)  # fmt: skip
    tables = assert_same(db, spark, ledger)
    notes = " ".join(r[14] or "" for r in tables["entries"])
    assert f"of event {penalty}" in notes and f"of event {disputed}" in notes
    assert f"of event {amended}" in notes

    grid = orjson.loads(subjects[0].read_bytes().splitlines()[0])["grid"]
    newcomer = _write(
        tmp_path / "newcomer.jsonl",
        [{"id": "Z000001", "groups": ["residents"], "name": "赵新", "grid": grid}],
    )
    done = sqlite_step(db, scheme, [newcomer], [])
    run = spark_step(spark, ledger, [newcomer], [])
    # the waiting event is scored now: March is open, so both rewind from it
    assert done.waited == 1 and done.rewound_from == "X-z"
    assert run.summary.events == done.events
    assert_same(db, spark, ledger)
    assert spark_batches(ledger) == batches(db)
    periods = db.execute("SELECT month, closed, late_events FROM periods ORDER BY month").fetchall()
    assert [tuple(r) for r in periods if r[2]]  # late events counted
    from scoring.spark import ledger as store

    mine = (
        store.table(spark, store.current(str(ledger)), "periods")
        .select("month", "closed", "late_events")
        .orderBy("month")
        .collect()
    )
    assert [tuple(r) for r in mine] == [tuple(r) for r in periods]
    for as_of in AS_OF:
        assert spark_balances(ledger, as_of) == sqlite_balances(db, scheme, as_of)


# --- any split into runs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_county(tmp_path_factory, spark):
    from scoring.demo import generate_county
    from scoring.loader import load_scheme

    scheme = load_scheme(ROOT)
    out = tmp_path_factory.mktemp("small")
    generate_county(out, scheme, events=1500, residents=200)
    return scheme, [out / "subjects.jsonl"], sorted(out.glob("events-*.jsonl"))


@pytest.mark.parametrize("seed", [3, 11])
def test_random_splits_into_runs_give_the_sqlite_paths_ledger(small_county, spark, tmp_path, seed):
    """A property over random splits: the events shuffled into 1-4 files, each scored
    by its own run (the subjects with the first), give on both paths the same ledger,
    ids included; a correction may come before or after the event it names, in another
    run (it then waits, and is scored again when its target comes)."""
    scheme, subjects, events = small_county
    lines = [ln for p in events for ln in p.read_bytes().splitlines(keepends=True)]
    rng = random.Random(seed)
    k = rng.randint(1, 4)
    rng.shuffle(lines)
    files = [tmp_path / f"part{i}.jsonl" for i in range(k)]
    for i, f in enumerate(files):
        f.write_bytes(b"".join(lines[i::k]))
    db = sqlite_db(scheme)
    ledger = tmp_path / "ledger"
    for i, f in enumerate(files):
        subs = subjects if i == 0 else []
        done = sqlite_step(db, scheme, subs, [f])
        run = spark_step(spark, ledger, subs, [f], partitions=rng.randint(1, 7))
        assert run.summary.events == done.events
    assert_same(db, spark, ledger)
    assert spark_batches(ledger) == batches(db)


# --- a run killed midway -----------------------------------------------------------------


def test_a_killed_incremental_run_leaves_the_previous_version(small_county, spark, tmp_path,
                                                              monkeypatch):  # fmt: skip
    """Killed before the pointer switch, the second run leaves the first run's
    version current and readable; the rerun gives the SQLite path's ledger."""
    from scoring.spark import ledger as store

    scheme, subjects, events = small_county
    db = sqlite_db(scheme)
    ledger = tmp_path / "ledger"
    sqlite_step(db, scheme, subjects, events[:1])
    spark_step(spark, ledger, subjects, events[:1])
    before = store.current(str(ledger))
    first = spark_balances(ledger, None)

    def killed(*a, **k):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store, "switch", killed)
    with pytest.raises(KeyboardInterrupt):
        spark_step(spark, ledger, [], events[1:2])
    monkeypatch.undo()
    assert store.current(str(ledger)) == before
    assert spark_balances(ledger, None) == first
    sqlite_step(db, scheme, [], events[1:2])
    spark_step(spark, ledger, [], events[1:2])
    assert_same(db, spark, ledger)
    assert spark_batches(ledger) == batches(db)  # the killed run's batch is not counted
    assert len([d for d in ledger.iterdir() if d.is_dir()]) == 2


def test_unchanged_months_are_hard_linked_into_the_new_version(county, spark, tmp_path):
    """A run that adds only March's events rewrites March and carries January's and
    February's month folders (the same files, hard-linked) and the subjects."""
    from scoring.spark import ledger as store

    scheme, _, subjects, events = county
    ledger = tmp_path / "ledger"
    spark_step(spark, ledger, subjects, events[:2])
    old = store.current(str(ledger))
    late = _write(tmp_path / "march.jsonl", [
        r for r in _records(events[2]).values() if r.get("at", "").startswith("2024-03-1")
    ])  # fmt: skip
    spark_step(spark, ledger, [], [late])
    new = store.current(str(ledger))
    assert new != old

    def inodes(v: Path, sub: str) -> set[int]:
        return {f.stat().st_ino for f in (v / sub).rglob("*.parquet")}

    for sub in ("entries/period=2024-01", "entries/period=2024-02", "events/period=2024-01",
                "subjects", "memberships"):  # fmt: skip
        assert inodes(new, sub) and inodes(new, sub) == inodes(old, sub), sub
    assert inodes(new, "entries/period=2024-03").isdisjoint(inodes(old, "entries/period=2024-02"))
    assert (new / "entries" / "period=2024-03").is_dir()
