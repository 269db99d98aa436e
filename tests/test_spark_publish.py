"""``close`` / ``assess`` / ``publish MONTH`` from the Spark ledger give what the SQLite
path gives: the month figures, hashes, totals, assessment results and award entries
(ids included), and the same site and private files, byte for byte.

The demo county (a few thousand events) is scored by both paths, then each month is
published by ``scoring.pipeline.run_month`` (SQLite) and ``python -m scoring.spark
publish`` (Spark). One SparkSession on ``local[2]`` for the test session, as in
tests/test_spark.py; without pyspark or Java these skip and say why.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from scoring.errors import PeriodClosedError

ROOT = Path(__file__).resolve().parent.parent
MONTHS = ("2024-01", "2024-02", "2024-03")
KEY = "5" * 64  # the same look-up key for both paths: the same codes, the same files

pytestmark = pytest.mark.spark


def digests(*roots: Path) -> dict[str, str]:
    """sha256 of every file under the roots, by path relative to the roots' parent."""
    return {
        str(p.relative_to(root.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def spark_cli(*args: str) -> str:
    from scoring.spark.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        main(list(args))
    return out.getvalue()


def refusal(fn) -> str:
    with pytest.raises(PeriodClosedError) as e:
        fn()
    return str(e.value)


@pytest.fixture(scope="module")
def published(tmp_path_factory, spark):
    """Both paths: the county scored, then each month published; refusals on the way."""
    from scoring.demo import generate_county
    from scoring.evaluate import score as sqlite_score
    from scoring.ingest import ingest_file, sync_grids
    from scoring.ledger import memory_db
    from scoring.loader import load_scheme
    from scoring.periods import close_month
    from scoring.pipeline import run_month
    from scoring.publish.files import unfinished_publish
    from scoring.spark.close import close
    from scoring.spark.run import score

    scheme = load_scheme(ROOT)
    out = tmp_path_factory.mktemp("county")
    generate_county(out, scheme, events=4000, residents=400, months=MONTHS)
    subjects = [out / "subjects.jsonl"]
    events = sorted(out.glob("events-*.jsonl"))
    db = memory_db()
    sync_grids(db, scheme)
    for p in subjects:
        ingest_file(db, scheme, p, kind="subjects", progress=False)
    for p in events:
        ingest_file(db, scheme, p, kind="events", progress=False, workers=0)
    sqlite_score(db, scheme)
    ledger = out / "ledger"
    score(spark, str(ROOT), [str(p) for p in subjects], [str(p) for p in events], str(ledger),
          partitions=3)  # fmt: skip
    paths = {}
    for side in ("sqlite", "spark"):
        (out / side / "private").mkdir(parents=True)
        (out / side / "private" / "lookup.key").write_text(KEY + "\n")
        paths[side] = (out / side / "site", out / side / "private")
    refusals = []
    # an earlier month with entries still open
    refusals.append((refusal(lambda: close_month(db, scheme, "2024-02")),
                     refusal(lambda: close(spark, str(ledger), scheme, "2024-02"))))  # fmt: skip
    printed, killed = [], None
    for month in MONTHS:
        run_month(db, scheme, month, paths["sqlite"][0], private_dir=paths["sqlite"][1])
        args = ["publish", month, "--scheme", str(ROOT), "--ledger", str(ledger),
                "--site", str(paths["spark"][0]), "--private", str(paths["spark"][1])]  # fmt: skip
        if month == MONTHS[1]:
            # killed once it has assessed and closed the month and marked the site: the
            # rerun below completes it (the files are compared with SQLite's below)
            killed = subprocess.run(
                [sys.executable, "-m", "scoring.spark", *args, "--master", "local[1]"],
                env={**os.environ, "GRIDCREDIT_TEST_KILL_AT": "publish-started"},
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            killed = (killed.returncode, unfinished_publish(paths["spark"][0]))
        printed.append(spark_cli(*args))
    for month in ("2024-03", "2024-05", "2024-04"):  # closed already; a gap; no events yet
        refusals.append((refusal(lambda m=month: close_month(db, scheme, m)),
                         refusal(lambda m=month: close(spark, str(ledger), scheme, m))))  # fmt: skip
    return scheme, db, ledger, paths, refusals, printed, killed


def spark_rows(spark, ledger: Path, name: str, cols: str) -> list[tuple]:
    from scoring.spark import ledger as store

    df = store.table(spark, store.current(str(ledger)), name)
    return sorted(tuple(r) for r in df.select(*cols.split(", ")).collect())


def sqlite_rows(db, name: str, cols: str, where: str = "1") -> list[tuple]:
    return sorted(tuple(r) for r in db.execute(f"SELECT {cols} FROM {name} WHERE {where}"))


def test_month_figures_hashes_and_totals_are_the_sqlite_paths(published, spark):
    scheme, db, ledger, *_ = published
    cols = "month, subject, grp, score, wallet, tier, earned"
    mine = spark_rows(spark, ledger, "month_balances", cols)
    assert mine == sqlite_rows(db, "month_balances", cols)
    assert {r[0] for r in mine} == set(MONTHS) and len(mine) > 3 * 400
    cols = "month, closed, ledger_hash, late_events, closed_at_seq"
    periods = spark_rows(spark, ledger, "periods", cols)
    assert periods == sqlite_rows(db, "periods", cols)
    assert [p[0] for p in periods] == list(MONTHS) and all(p[1] == 1 and p[2] for p in periods)
    cols = "subject, grp, fixed, wallet"
    assert spark_rows(spark, ledger, "closed_totals", cols) == sqlite_rows(
        db, "closed_totals", cols
    )


def test_assessment_results_and_award_entries_are_equal_ids_included(published, spark):
    scheme, db, ledger, *_ = published
    cols = "assessment, period, scope_id, value, rank, selected, badge"
    results = spark_rows(spark, ledger, "assessment_results", cols)
    assert results == sqlite_rows(db, "assessment_results", cols)
    # every assessment of the quarter ran, and some selected and awarded
    assert {r[0] for r in results} == {a.id for a in scheme.assessments if a.period == "quarter"}
    assert any(r[5] for r in results)
    cols = "id, subject, grp, account, points, wallet, rule, pack_hash, event, at, period, " \
        "reason, ref, expires_at, grade, grade_until, note"  # fmt: skip
    awards = spark_rows(spark, ledger, "entries", cols)
    awards = [r for r in awards if r[11] == "assessment"]
    assert awards and awards == sqlite_rows(db, "entries", cols, "reason = 'assessment'")
    # and the whole ledger is still the SQLite one, entry for entry
    assert spark_rows(spark, ledger, "entries", cols) == sqlite_rows(db, "entries", cols)


def test_every_site_and_private_file_is_byte_identical(published):
    *_, paths, _, printed, _ = published
    mine, theirs = digests(*paths["spark"]), digests(*paths["sqlite"])
    assert mine.keys() == theirs.keys()
    differ = [p for p in mine if mine[p] != theirs[p]]
    assert not differ, differ[:5]
    for month in MONTHS:
        assert f"site/data/{month}/manifest.json" in mine
        assert f"private/codes-{month}.csv" in mine
    assert sum(p.startswith("site/") and "lookup" in p for p in mine) > 100
    assert all("wrote " in out for out in printed)
    # the month killed midway was closed by the killed run, so its rerun only publishes
    assert ["closed: ledger hash" in out for out in printed] == [True, False, True]


def test_a_publish_killed_midway_is_completed_by_running_it_again(published):
    *_, killed = published
    # SIGKILLed at the checkpoint, the site marked unfinished; the rerun completed it with
    # the same files as SQLite's (test_every_site_and_private_file_is_byte_identical)
    assert killed == (-signal.SIGKILL, MONTHS[1])


def test_the_refusals_say_what_sqlite_says(published):
    *_, refusals, _, _ = published
    assert len(refusals) == 4
    for sqlite_message, spark_message in refusals:
        assert spark_message == sqlite_message
    words = [r[0] for r in refusals]
    assert "earlier month 2024-01 has entries" in words[0]
    assert "closed (published) already" in words[1]
    assert "2024-04 is still open" in words[2]
    assert "it has no entries" in words[3]


def test_publishing_again_is_refused_and_the_ledger_is_unchanged(published, spark):
    from scoring.errors import GridcreditError
    from scoring.spark import ledger as store
    from scoring.spark.month import publish

    scheme, db, ledger, paths, *_ = published
    before = store.current(str(ledger))
    with pytest.raises(GridcreditError, match="is published already"):
        publish(spark, str(ledger), scheme, "2024-03", paths["spark"][0],
                private_dir=paths["spark"][1])  # fmt: skip
    assert store.current(str(ledger)) == before


def test_the_close_command_refuses_with_the_message_and_exit_code(published, capsys):
    from scoring.spark.cli import main

    scheme, db, ledger, *_, refusals, _, _ = published
    with pytest.raises(SystemExit) as e:
        main(["close", "2024-03", "--scheme", str(ROOT), "--ledger", str(ledger)])
    assert e.value.code == PeriodClosedError("").exit_code != 0
    assert capsys.readouterr().err == f"error: {refusals[1][0]}\n"
