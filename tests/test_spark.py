"""The Spark runner gives the SQLite path's ledger: entry for entry (ids included) and
``balances`` byte for byte, on the demo county and on the scenario schemes' inputs.

These run on ``local[2]`` with one SparkSession for the test session. They need
pyspark and Java 17: ``python3 dev.py test`` installs both (the ``spark`` extra and
Debian's ``openjdk-17-jre-headless``); without them they skip and say why.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import orjson
import pytest

from scoring.spark.canonical import digests, sqlite_ledger

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"
AS_OF = ("2024-01-15", "2024-02-29", "2024-03-31", None)

pytestmark = pytest.mark.spark


def sqlite_run(scheme, subjects: list[Path], events: list[Path]):
    """The SQLite path: each file ingested in order (one batch each), one score run."""
    from scoring.evaluate import score
    from scoring.ingest import ingest_file, sync_grids
    from scoring.ledger import memory_db

    db = memory_db()
    sync_grids(db, scheme)
    for p in subjects:
        ingest_file(db, scheme, p, kind="subjects", progress=False)
    for p in events:
        ingest_file(db, scheme, p, kind="events", progress=False, workers=0)
    score(db, scheme)
    return db


def spark_run(spark, subjects, events, ledger: Path, partitions: int = 4):
    from scoring.spark import ledger as store
    from scoring.spark.canonical import spark_ledger
    from scoring.spark.run import score

    run = score(spark, str(ROOT), [str(p) for p in subjects], [str(p) for p in events],
                str(ledger), partitions=partitions)  # fmt: skip
    return run, spark_ledger(spark, store.current(str(ledger)))


def sqlite_balances(db, scheme, as_of: str | None, group: str | None = None, fmt="json") -> str:
    """What ``gridcredit balances --format json|csv`` prints (the CLI's own code)."""
    from scoring.durations import parse_as_of
    from scoring.ledger import balances
    from scoring.ledger.reads import render_balances

    rows = balances(db, scheme, as_of=parse_as_of(scheme, as_of), group=group)
    return render_balances(rows, fmt, scheme.precision)


def spark_balances_cli(ledger: Path, *args: str) -> str:
    from scoring.spark.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        main(["balances", "--ledger", str(ledger), *args])
    return out.getvalue()


def entry_ids(db) -> list[tuple]:
    return db.execute("SELECT id, event, subject, rule, reason, ref, note FROM entries").fetchall()


def spark_entry_ids(spark, ledger: Path) -> list[tuple]:
    from scoring.spark import ledger as store

    rows = store.table(spark, store.current(str(ledger)), "entries").collect()
    return sorted((r.id, r.event, r.subject, r.rule, r.reason, r.ref, r.note) for r in rows)


def assert_same(a: dict, b: dict) -> None:
    for t in a:
        if a[t] != b[t]:
            only_a = sorted(set(a[t]) - set(b[t]), key=repr)[:3]
            only_b = sorted(set(b[t]) - set(a[t]), key=repr)[:3]
            pytest.fail(f"{t} differ: only SQLite {only_a}, only Spark {only_b}")
    assert digests(a) == digests(b)


# --- the demo county -----------------------------------------------------------------


@pytest.fixture(scope="module")
def county(tmp_path_factory, spark):
    from scoring.demo import generate_county
    from scoring.loader import load_scheme

    scheme = load_scheme(ROOT)
    out = tmp_path_factory.mktemp("county")
    generate_county(out, scheme, events=5000, residents=500)
    subjects = [out / "subjects.jsonl"]
    events = sorted(out.glob("events-*.jsonl"))
    db = sqlite_run(scheme, subjects, events)
    ledger = out / "ledger"
    run, spark_tables = spark_run(spark, subjects, events, ledger)
    return scheme, db, ledger, run, spark_tables, subjects, events


def test_demo_county_ledgers_are_equal_entry_for_entry(county, spark):
    scheme, db, ledger, run, spark_tables, _, _ = county
    tables = sqlite_ledger(db)
    assert len(tables["entries"]) > 4000 and tables["rejects"] and tables["objections"]
    assert_same(tables, spark_tables)
    # the ids too: the Spark path numbers entries as the SQLite path does
    assert entry_ids(db) == spark_entry_ids(spark, ledger)


def test_demo_county_accounting_is_the_sqlite_paths(county):
    scheme, db, ledger, run, *_ = county
    batches = db.execute(
        "SELECT file, read, accepted, duplicates, conflicting, rejected FROM batches ORDER BY id"
    ).fetchall()
    mine = [(b.file, b.read, b.accepted, b.duplicates, b.conflicting, b.rejected)
            for b in run.batches]  # fmt: skip
    assert mine == [tuple(b) for b in batches]
    for b in run.batches:
        assert b.read == b.accepted + b.duplicates + b.rejected
    assert sum(b.duplicates for b in run.batches) > 0  # the demo's dirty records are there


@pytest.mark.parametrize("as_of", AS_OF)
def test_demo_county_balances_json_are_byte_identical(county, as_of):
    scheme, db, ledger, *_ = county
    args = ["--format", "json"] + (["--as-of", as_of] if as_of else [])
    mine = spark_balances_cli(ledger, *args)
    assert mine == sqlite_balances(db, scheme, as_of)
    assert len(orjson.loads(mine)) > 500


def test_demo_county_balances_of_a_group_as_csv(county):
    scheme, db, ledger, *_ = county
    group = next(iter(scheme.groups))
    mine = spark_balances_cli(ledger, "--group", group, "--format", "csv", "--as-of", "2024-02-15")
    assert mine == sqlite_balances(db, scheme, "2024-02-15", group, "csv")
    assert mine.startswith("subject,group,score,wallet,tier\n")


def test_random_splits_of_the_events_give_the_same_ledger(county, spark, tmp_path):
    """A property over random splits: the events shuffled into 1-4 files and scored
    in 1-7 partitions give the ledger of the one-file order (ids included)."""
    _, db, _, _, base, subjects, events = county
    lines = [ln for p in events for ln in p.read_bytes().splitlines(keepends=True)]
    rng = random.Random(20)
    for trial in range(2):
        k = rng.randint(1, 4)
        rng.shuffle(lines)
        files = [tmp_path / f"t{trial}-part{i}.jsonl" for i in range(k)]
        for i, f in enumerate(files):
            f.write_bytes(b"".join(lines[i::k]))
        _, tables = spark_run(spark, subjects, files, tmp_path / f"l{trial}", rng.randint(1, 7))
        for t in ("entries", "trial_entries", "redemptions", "objections", "subjects"):
            assert tables[t] == base[t], (trial, t)
        assert spark_entry_ids(spark, tmp_path / f"l{trial}") == entry_ids(db)


# --- the scenario schemes ------------------------------------------------------------


def _prefixed_scenarios(out: Path) -> tuple[Path, Path]:
    """Every (non-table) scenario's subjects and events in one subjects and one events
    file, each scenario's ids prefixed ``s<n>-`` (subjects, links, events, corrected
    events) so they do not collide; stock and the clock are shared, as on one ledger."""
    from scoring.loader import find_rules_dir
    from scoring.testing.scenarios import ScenarioRunner, load_scenario_file

    runner = ScenarioRunner(find_rules_dir(ROOT))
    subjects: list[dict] = []
    events: list[dict] = []
    n = 0
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenarios, _ = load_scenario_file(path)
        for sc in scenarios:
            if sc.is_table:
                continue  # the table scenarios' rows are scored by test_scenarios
            n += 1
            p = f"s{n}-"
            subs, _ = runner._subjects(sc, [])
            evs, _ = runner._events(sc, subs)
            for key, into in (("subjects_file", subs), ("events_file", evs)):
                name = sc.data.get(key)
                if isinstance(name, str):
                    for line in (sc.path.parent / name).read_bytes().splitlines():
                        if line.strip():
                            into.append(orjson.loads(line))
            for s in subs:
                s = dict(s, id=p + str(s["id"]))
                if isinstance(s.get("links"), dict):
                    s["links"] = {k: p + str(v) for k, v in s["links"].items()}
                subjects.append(s)
            for e in evs:
                e = dict(e, id=p + str(e["id"]))
                if "subject" in e:
                    e["subject"] = p + str(e["subject"])
                for k in ("amends", "target"):
                    if e.get(k):
                        e[k] = p + str(e[k])
                if isinstance(e.get("attrs"), dict) and e["attrs"].get("target"):
                    e["attrs"] = dict(e["attrs"], target=p + str(e["attrs"]["target"]))
                events.append(e)
    assert n > 40
    s_path, e_path = out / "subjects.jsonl", out / "events.jsonl"
    s_path.write_bytes(b"".join(orjson.dumps(s, default=str) + b"\n" for s in subjects))
    e_path.write_bytes(b"".join(orjson.dumps(e, default=str) + b"\n" for e in events))
    return s_path, e_path


def test_scenario_inputs_give_equal_ledgers_and_balances(spark, tmp_path):
    from scoring.loader import load_scheme

    scheme = load_scheme(ROOT)
    s_path, e_path = _prefixed_scenarios(tmp_path)
    # withdrawals, at the year's end, of repaired penalties and of events with trial
    # entries: reversals whose notes name entries ("reverses entry 12 of the repair
    # of entry 9", "reverses trial entry 3"), renumbered by the Spark path
    first = sqlite_run(scheme, [s_path], [e_path])
    targets = first.execute(
        "SELECT DISTINCT p.event, p.subject FROM entries r JOIN entries p ON p.id = r.ref"
        " WHERE r.reason = 'repair' UNION SELECT * FROM (SELECT DISTINCT event, subject"
        " FROM trial_entries WHERE reason = 'match' ORDER BY event LIMIT 3)"
    ).fetchall()
    with open(e_path, "ab") as f:
        for i, (event, subject) in enumerate(targets):
            f.write(orjson.dumps({"id": f"zw{i}", "type": "withdraw", "subject": subject,
                                  "at": "2024-12-30T10:00", "target": event}) + b"\n")  # fmt: skip
    db = sqlite_run(scheme, [s_path], [e_path])
    tables = sqlite_ledger(db)
    # what makes the scenarios: reversals, linked points, repairs, redemptions, objections
    reasons = {r[5] for r in tables["entries"]}
    assert {"match", "reversal", "linked", "redeem", "repair"} <= reasons, reasons
    notes = [r[14] or "" for t in ("entries", "trial_entries") for r in tables[t]]
    assert any("of the repair of entry" in n for n in notes)
    assert any(n.startswith("reverses trial entry") for n in notes)
    assert tables["redemptions"] and tables["objections"]
    ledger = tmp_path / "ledger"
    _, spark_tables = spark_run(spark, [s_path], [e_path], ledger)
    assert_same(tables, spark_tables)
    assert entry_ids(db) == spark_entry_ids(spark, ledger)
    for as_of in AS_OF:
        args = ["--format", "json"] + (["--as-of", as_of] if as_of else [])
        assert spark_balances_cli(ledger, *args) == sqlite_balances(db, scheme, as_of)


# --- the ledger's versions -----------------------------------------------------------


def test_a_run_killed_before_the_switch_leaves_the_previous_ledger(county, spark, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    """Everything is written to a new version; killed before the pointer moves, the
    ledger reads as before, and the rerun gives the same ledger."""
    from scoring.spark import ledger as store

    _, db, _, _, base, subjects, events = county
    ledger = tmp_path / "ledger"
    spark_run(spark, subjects, events[:1], ledger)
    before = store.current(str(ledger))
    first = spark_balances_cli(ledger)

    def killed(*a, **k):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store, "switch", killed)
    with pytest.raises(KeyboardInterrupt):
        spark_run(spark, subjects, events, ledger)
    monkeypatch.undo()
    assert store.current(str(ledger)) == before
    assert spark_balances_cli(ledger) == first
    _, tables = spark_run(spark, subjects, events, ledger)
    assert tables["entries"] == base["entries"]
    # the unfinished version was removed; the previous one is kept beside the current
    assert len([d for d in ledger.iterdir() if d.is_dir()]) == 2


def test_balances_without_a_ledger_says_what_to_do(tmp_path, capsys):
    from scoring.spark.cli import main

    with pytest.raises(SystemExit) as e:
        main(["balances", "--ledger", str(tmp_path / "nothing")])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "no Spark ledger here" in err and "scoring.spark score" in err


# --- Spark stays optional ------------------------------------------------------------


@pytest.mark.no_spark
def test_the_sqlite_path_never_imports_pyspark(tmp_path):
    """Importing scoring (and scoring.spark) and running the SQLite CLI end to end
    loads no module of pyspark or py4j."""
    code = f"""
import sys
from click.testing import CliRunner
import scoring, scoring.spark, scoring.spark.cli
from scoring.cli import cli
from scoring.demo import generate_county
generate_county({str(tmp_path)!r}, {str(ROOT)!r}, events=300, residents=50)
r = CliRunner()
db = {str(tmp_path / "g.db")!r}
for args in (["ingest", {str(tmp_path / "subjects.jsonl")!r}], ["ingest", {str(tmp_path / "events-2024-01.jsonl")!r}],
             ["score"], ["balances", "--format", "json"]):
    res = r.invoke(cli, ["--scheme", {str(ROOT)!r}, "--db", db, *args])
    assert res.exit_code == 0, res.output
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j"))
print(loaded)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- CSV input -----------------------------------------------------------------------


def test_csv_and_json_lines_inputs_give_the_sqlite_paths_ledger_and_rejects(spark, tmp_path):
    """CSV files are read by the same reader: a CSV event and the same event in JSON
    Lines are duplicates, a bad value is rejected at its line with the same reason,
    the same id with other content conflicts and names the accepted record."""
    from scoring.loader import load_scheme

    scheme = load_scheme(ROOT)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(
        "id,groups,grid\nR1,residents,S01C01G01\nR2,residents,S01C01G01\n"
        "R1,residents,S01C01G01\nR3,nosuchgroup,S01C01G01\n",
        encoding="utf-8",
    )
    events_csv = tmp_path / "events.csv"
    events_csv.write_text(
        "id,type,subject,at,hours\n"
        "v1,volunteer_service,R1,2024-01-06T09:00,20\n"
        "v2,volunteer_service,R2,2024-01-07T09:00,abc\n"
        "v1,volunteer_service,R1,2024-01-06T09:00,20\n"
        'v3,volunteer_service,R2,"2024-02-06T09:00",5\n',
        encoding="utf-8",
    )
    events_jsonl = tmp_path / "events.jsonl"
    events_jsonl.write_bytes(
        b'{"id": "v1", "type": "volunteer_service", "subject": "R1", "at": "2024-01-06T09:00",'
        b' "attrs": {"hours": 20}}\n'
        b'{"id": "v3", "type": "volunteer_service", "subject": "R2", "at": "2024-02-06T09:00",'
        b' "attrs": {"hours": 6}}\n'
        b"not json\n"
    )
    db = sqlite_run(scheme, [subjects], [events_csv, events_jsonl])
    tables = sqlite_ledger(db)
    reasons = " | ".join(r[3] for r in tables["rejects"])
    assert "conflicts with event 'v3'" in reasons and "unknown group" in reasons, reasons
    ledger = tmp_path / "ledger"
    run, spark_tables = spark_run(spark, [subjects], [events_csv, events_jsonl], ledger)
    assert_same(tables, spark_tables)
    counts = db.execute(
        "SELECT read, accepted, duplicates, conflicting, rejected FROM batches ORDER BY id"
    ).fetchall()
    assert [(b.read, b.accepted, b.duplicates, b.conflicting, b.rejected)
            for b in run.batches] == [tuple(c) for c in counts]  # fmt: skip
    assert spark_balances_cli(ledger) == sqlite_balances(db, scheme, None)
