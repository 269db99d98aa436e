"""No record lost, clear errors where there were none, and what a killed run leaves
behind (issue 19, items 5-8): the records corpus, newer ledgers, a full disk under
``score``, a multi-file ingest with a refused file, objections across a rewind,
and stale scratch files."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from conftest import ev, put

from scoring import ledger
from scoring.cli import cli
from scoring.evaluate import score
from scoring.ingest import ingest_file, ingest_files
from scoring.loader import load_scheme

HERE = Path(__file__).parent
MINI = HERE / "fixtures" / "mini" / "rules"
ROOT = HERE / "fixtures" / "mini"
GRIDCREDIT = [sys.executable, "-m", "scoring.cli"]


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(MINI, check=False)


@pytest.fixture
def db(tmp_path):
    return ledger.connect(tmp_path / "ledger.db")


def rec(eid, subject="P1", at="2024-03-05T10:00:00", **attrs):
    return {"id": eid, "type": "volunteer_service", "subject": subject, "at": at,
            "attrs": attrs or {"hours": 1}}  # fmt: skip


def line(r) -> bytes:
    return orjson.dumps(r)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# --- the records corpus: each kind of bad input, its exact accounting --------------------

GBK = "清扫".encode("gbk")  # not UTF-8

# name -> (file name, bytes, (read, accepted, duplicates, rejected))
CORPUS = {
    # a lone CR (old Mac line end) joined two records into one rejected line: 5 records, 4 read
    "jsonl-lone-cr": (
        "events.jsonl",
        b"".join(line(rec(f"E{i}")) + b"\n" for i in (1, 2))
        + line(rec("E3")) + b"\r" + line(rec("E4")) + b"\n"
        + line(rec("E5")) + b"\n",
        (5, 5, 0, 0),
    ),
    # the same, its second record bad: counted and rejected on its own
    "jsonl-lone-cr-bad-half": (
        "events.jsonl",
        line(rec("E1")) + b"\r" + b'{"id": "E2",, }' + b"\n" + line(rec("E3")) + b"\n",
        (3, 2, 0, 1),
    ),
    # a line break in an event id would forge a line of `gridcredit rejects`
    "event-id-newline": (
        "events.jsonl",
        line(rec("E1")) + b"\n" + line(rec("E2\nforged: all good")) + b"\n",
        (2, 1, 0, 1),
    ),
    "subject-id-escape": (
        "events.jsonl",
        line(rec("E1", subject="P1\x1b[2J")) + b"\n" + line(rec("E2")) + b"\n",
        (2, 1, 0, 1),
    ),
    "amends-id-cr": (
        "events.jsonl",
        line({**rec("E1"), "amends": "E0\r"}) + b"\n" + line(rec("E2")) + b"\n",
        (2, 1, 0, 1),
    ),
    "csv-event-id-newline": (
        "events.csv",
        b"id,type,subject,at,hours\n"
        b'"E1\nE9",volunteer_service,P1,2024-03-05T10:00:00,1\n'
        b"E2,volunteer_service,P1,2024-03-05T11:00:00,1\n",
        (2, 1, 0, 1),
    ),
    "subjects-id-newline": (
        "subjects.jsonl",
        b'{"id": "K1\\nK2", "groups": ["residents"], "grid": "S01C01G01"}\n'
        b'{"id": "K3", "groups": ["residents"], "grid": "S01C01G01"}\n',
        (2, 1, 0, 1),
    ),
    # one GBK line in an otherwise ASCII file: that line only
    "gbk-line-in-ascii-csv": (
        "events.csv",
        b"id,type,subject,at,hours,activity\n"
        b"E1,volunteer_service,P1,2024-03-05T10:00:00,1,sweep\n"
        b"E2,volunteer_service,P1,2024-03-05T11:00:00,1," + GBK + b"\n"
        b"E3,volunteer_service,P1,2024-03-05T12:00:00,1,\n",
        (3, 2, 0, 1),
    ),
    "gbk-line-in-ascii-jsonl": (
        "events.jsonl",
        line(rec("E1")) + b"\n"
        + line(rec("E2", hours=1, activity="x")).replace(b'"x"', b'"' + GBK + b'"') + b"\n"
        + line(rec("E3")) + b"\n" + line(rec("E1")) + b"\n",
        (4, 2, 1, 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_the_records_corpus_accounts_for_every_record(db, scheme, tmp_path, case):
    name, data, expected = CORPUS[case]
    path = tmp_path / name
    path.write_bytes(data)
    s = ingest_file(db, scheme, path, progress=False, workers=0)
    assert (s.read, s.accepted, s.duplicates, s.rejected) == expected
    assert s.read == s.accepted + s.duplicates + s.rejected
    (stored,) = db.execute(
        "SELECT count(*) FROM rejects WHERE reason NOT LIKE 'warning:%'"
    ).fetchone()
    assert stored == s.rejected
    # no reason and no record id holds a line break: each prints as one line
    for rid, reason in db.execute("SELECT record_id, reason FROM rejects"):
        assert "\n" not in reason and "\r" not in reason and "\x1b" not in reason
        assert rid is None or rid.isprintable()


@pytest.mark.parametrize("case", ["jsonl-lone-cr", "gbk-line-in-ascii-jsonl", "event-id-newline"])
def test_the_workers_account_for_the_corpus_as_this_process_does(scheme, tmp_path, case):
    name, data, expected = CORPUS[case]
    path = tmp_path / name
    path.write_bytes(data)
    got = []
    for workers in (0, 2):
        db = ledger.connect(tmp_path / f"w{workers}.db")
        s = ingest_file(db, scheme, path, progress=False, workers=workers)
        got.append((
            (s.read, s.accepted, s.duplicates, s.rejected),
            db.execute("SELECT id, line FROM events ORDER BY seq").fetchall(),
            db.execute("SELECT line, reason FROM rejects ORDER BY line, reason").fetchall(),
        ))  # fmt: skip
    assert got[0] == got[1]
    assert got[0][0] == expected


def test_records_a_lone_cr_joined_are_each_stored_at_their_line(db, scheme, tmp_path):
    _, data, _ = CORPUS["jsonl-lone-cr"]
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    ingest_file(db, scheme, path, progress=False)
    assert db.execute("SELECT id, line FROM events ORDER BY seq").fetchall() == [
        ("E1", 1), ("E2", 2), ("E3", 3), ("E4", 3), ("E5", 4),
    ]  # fmt: skip


def test_a_control_character_in_an_id_is_rejected_with_where_it_is(db, scheme, tmp_path):
    _, data, _ = CORPUS["event-id-newline"]
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    ingest_file(db, scheme, path, progress=False)
    assert db.execute("SELECT line, record_id, reason FROM rejects").fetchall() == [(
        2, None,
        "field 'id' = 'E2\\nforged: all good' has the control character U+000A at character 3:"
        " an id is one line of printable text. Remove it (a line break pasted into a cell,"
        " say) and ingest the record again",
    )]  # fmt: skip
    # and `gridcredit rejects` prints one line for it, no forged one
    result = run("--scheme", ROOT, "--db", tmp_path / "ledger.db", "rejects")
    assert result.exit_code == 0
    assert [ln for ln in result.output.splitlines() if "forged" in ln] == [
        f"{path}:2: field 'id' = 'E2\\nforged: all good' has the control character U+000A at"
        " character 3: an id is one line of printable text. Remove it (a line break pasted"
        " into a cell, say) and ingest the record again"
    ]
    assert not any(ln.startswith("forged") for ln in result.output.splitlines())


def test_a_gbk_line_in_an_ascii_file_loses_that_line_only(db, scheme, tmp_path):
    _, data, _ = CORPUS["gbk-line-in-ascii-csv"]
    path = tmp_path / "events.csv"
    path.write_bytes(data)
    s = ingest_file(db, scheme, path, progress=False)
    assert db.execute("SELECT line, reason FROM rejects").fetchall() == [
        (3, "not UTF-8 text at line 3, byte 47: save the file as UTF-8")
    ]
    assert [r[0] for r in db.execute("SELECT id FROM events ORDER BY seq")] == ["E1", "E3"]
    assert s.rejected == 1


# --- a multi-file ingest meets a file refused as a whole ---------------------------------


def test_a_refused_file_does_not_stop_the_files_after_it(tmp_path, scheme):
    one, bad, two = tmp_path / "one.jsonl", tmp_path / "bad.jsonl", tmp_path / "two.jsonl"
    one.write_bytes(line(rec("E1")) + b"\n")
    bad.write_bytes("\ufeff".encode("utf-16-le") + line(rec("E9")).decode().encode("utf-16-le"))
    two.write_bytes(line(rec("E2")) + b"\n" + b"{,}\n")
    db = ledger.connect(tmp_path / "l.db")
    from scoring.ingest import FilesRefused

    seen = []
    with pytest.raises(FilesRefused) as err:
        ingest_files(db, scheme, [one, bad, two], progress=False, on_batch=seen.append)
    assert [s.file for s in err.value.summaries] == [str(one), str(two)]
    assert seen == err.value.summaries
    assert [str(e).split(":")[0] for e in err.value.errors] == [str(bad)]
    assert [r[0] for r in db.execute("SELECT id FROM events ORDER BY seq")] == ["E1", "E2"]

    # the command prints each stored file's accounting, the refusal, and what to do
    dbp = tmp_path / "cli.db"
    result = run("--scheme", ROOT, "--db", dbp, "ingest", "-q", one, bad, two)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{one}: read 1 = accepted 1 + duplicates 0 + rejected 0",
        f"{two}: read 2 = accepted 1 + duplicates 0 + rejected 1",
    ]
    err_lines = result.stderr.splitlines()
    assert err_lines[0] == (
        "1 records rejected; each is kept with its file, line and reason: see `gridcredit rejects`"
    )
    assert err_lines[1].startswith(f"error: {bad}:1: the file is UTF-16 or UTF-32 text")
    assert err_lines[2] == (
        "1 of 3 files refused as a whole: nothing of it was stored; the other 2 were"
        " ingested (above). Fix it and ingest it again"
    )
    assert "Traceback" not in result.output


# --- a ledger from a newer gridcredit ------------------------------------------------------


def _newer(path: Path, rename: bool = False) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
            " VALUES ('gridcredit', 'm099_from_the_future', '2031-01-01')"
        )
        conn.execute("PRAGMA user_version = 99")
        conn.execute("UPDATE state SET value = '9.1.0' WHERE key = 'schema_by'")
        if rename:
            conn.execute("ALTER TABLE entries RENAME COLUMN points TO score_points")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.mark.parametrize("rename", [False, True], ids=["new-migration", "renamed-column"])
@pytest.mark.parametrize("command", ["score", "balances", "ingest"])
def test_a_ledger_from_a_newer_gridcredit_is_refused_and_left_as_it_was(tmp_path, rename, command):
    events = tmp_path / "events.jsonl"
    events.write_bytes(line(rec("E1")) + b"\n")
    dbp = tmp_path / "ledger.db"
    assert run("--scheme", ROOT, "--db", dbp, "ingest", "-q", events).exit_code == 0
    _newer(dbp, rename)
    before = dbp.read_bytes()
    args = ["ingest", "-q", str(events)] if command == "ingest" else [command]
    result = run("--scheme", ROOT, "--db", dbp, *args)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {dbp}: the ledger was made by gridcredit 9.1.0: schema version 99 (migration"
        " m099_from_the_future) is newer than this gridcredit 0.1.0 knows (schema version"
        f" {ledger.schema.schema_version()}). Nothing was read or written. Upgrade gridcredit"
        " (pip install -U gridcredit) and run the command again\n"
    )
    assert dbp.read_bytes() == before
    assert not Path(str(dbp) + "-wal").exists() or Path(str(dbp) + "-wal").stat().st_size == 0


def test_a_ledger_records_its_schema_version_and_maker(tmp_path):
    from scoring import __version__

    db = ledger.connect(tmp_path / "l.db")
    assert db.execute("PRAGMA user_version").fetchone() == (ledger.schema.schema_version(),)
    assert ledger.get_state(db, "schema_by") == __version__
    # an older ledger (no user_version yet) is read and gets both
    with sqlite3.connect(tmp_path / "l.db") as conn:
        conn.execute("PRAGMA user_version = 0")
        conn.execute("DELETE FROM state")
    db = ledger.connect(tmp_path / "l.db")
    assert db.execute("PRAGMA user_version").fetchone() == (ledger.schema.schema_version(),)


# --- a full disk under a single-process score ---------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A small tmpfs (root only); the test says why it cannot run without one."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"needs a small tmpfs to fill (mount as root): {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_under_score_says_so_and_leaves_the_ledger_as_it_was(tmp_path, small_disk):
    """A full disk in a single-process score said "cannot rollback - no transaction is
    active ... restore it from a backup": SQLite had rolled back already, and the
    second ROLLBACK hid the first error. A real full disk (a small tmpfs)."""
    subjects, events = tmp_path / "subjects.jsonl", tmp_path / "events.jsonl"
    subjects.write_bytes(b"".join(
        line({"id": f"R{i}", "groups": ["residents"], "grid": "S01C01G01"}) + b"\n"
        for i in range(500)
    ))  # fmt: skip
    with open(events, "wb") as f:
        for i in range(15_000):
            at = f"2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00"
            f.write(line(rec(f"E{i:05d}", subject=f"R{i % 500}", at=at)) + b"\n")
    made = tmp_path / "made.db"
    gc = [*GRIDCREDIT, "--scheme", str(ROOT), "--db"]
    subprocess.run(
        [*gc, str(made), "ingest", "-q", str(subjects), str(events)], check=True,
        capture_output=True,
    )  # fmt: skip
    with sqlite3.connect(made) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    full = small_disk / "ledger.db"
    shutil.copy(made, full)
    # fill the disk but for a little room: the ledger opens, the run's entries do not fit
    room = shutil.disk_usage(small_disk).free - 96 * 1024
    with open(small_disk / "filler", "wb") as f:
        f.write(b"\0" * max(room, 0))
    env = {**os.environ, "GRIDCREDIT_SINGLE_PROCESS": "1"}
    proc = subprocess.run([*gc, str(full), "score"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(
        "error: the disk is full (database or disk is full): nothing of the step under way was"
        " written, and the ledger is as it was before it. Free disk space"
    ), proc.stderr
    assert "cannot rollback" not in proc.stderr and "Traceback" not in proc.stderr
    (small_disk / "filler").unlink()
    with sqlite3.connect(full) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM entries").fetchone() == (0,)
    # space freed, the rerun finishes it as a run on a roomy disk does
    subprocess.run([*gc, str(full), "score"], check=True, capture_output=True, env=env)
    subprocess.run([*gc, str(made), "score"], check=True, capture_output=True, env=env)
    q = "SELECT subject, points, event, at, period, reason FROM entries ORDER BY id"
    with sqlite3.connect(full) as a, sqlite3.connect(made) as b:
        assert a.execute(q).fetchall() == b.execute(q).fetchall()
        assert len(a.execute(q).fetchall()) > 1000


# --- objections: the same however the events were split into runs ------------------------

PARKING = {
    "id": "park", "title": "违规停车", "on": "parking",
    "escalate": {"within": "365d", "steps": [-5, -10, -20]},
}  # fmt: skip
OBJECTION_EVENTS = [
    ev("p1", "parking", "P1", "2024-03-01"),
    ev("o1", "objection", "P1", "2024-03-02", target="p1", status="open"),
    ev("o3", "objection", "P1", "2024-03-10", target="p1", status="upheld"),
    ev("late", "parking", "P2", "2024-03-05"),  # sorts between o1 and o3: a rewind
]


@pytest.mark.parametrize("split", [[4], [3, 1], [1, 2, 1], [2, 2]])
def test_objections_do_not_depend_on_how_the_events_were_split_into_runs(engine_scheme, split):
    s = engine_scheme(residents=[PARKING])
    whole = ledger.memory_db()
    put(whole, s, OBJECTION_EVENTS)
    score(whole, s)
    parts = ledger.memory_db()
    i = 0
    for n in split:
        put(parts, s, OBJECTION_EVENTS[i : i + n])
        score(parts, s)
        i += n
    q = "SELECT target, event, status, opened_at, decided_at FROM objections ORDER BY target"
    assert parts.execute(q).fetchall() == whole.execute(q).fetchall()
    (row,) = whole.execute(q).fetchall()
    assert row[1:3] == ("o3", "upheld") and row[3] < row[4]  # opened at o1, decided at o3
    e = "SELECT subject, points, event, reason FROM entries ORDER BY subject, event, reason"
    assert parts.execute(e).fetchall() == whole.execute(e).fetchall()


# --- stale scratch files ------------------------------------------------------------------


def test_the_ingest_scratch_folder_of_a_killed_ingest_is_removed_by_the_next_run(tmp_path, scheme):
    """A real SIGKILL while the workers stage a large file leaves
    ``.gridcredit-ingest-<pid>-*``; the next command removes it (its owner is gone)."""
    prefix = ".gridcredit-ingest-"
    events = tmp_path / "events.jsonl"
    with open(events, "wb") as f:
        for i in range(200_000):
            f.write(
                line(rec(f"E{i:06d}", at=f"2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00")) + b"\n"
            )
    dbp = tmp_path / "ledger.db"
    code = (
        "import sys\n"
        "from scoring import ledger\n"
        "from scoring.ingest import ingest_file\n"
        "from scoring.loader import load_scheme\n"
        f"s = load_scheme({str(MINI)!r}, check=False)\n"
        f"ingest_file(ledger.connect({str(dbp)!r}), s, {str(events)!r}, progress=False, workers=2)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        left: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            left = [p for p in tmp_path.iterdir() if p.name.startswith(prefix)]
            if left and any(left[0].iterdir()):
                break
            time.sleep(0.02)
        assert left, "the ingest ended before its scratch folder could be seen"
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its workers
    finally:
        proc.wait()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(prefix)] == left
    # a folder of a process that is alive stays
    mine = tmp_path / f"{prefix}{os.getpid()}-live"
    mine.mkdir()
    ledger.connect(dbp)  # the next run, any command
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(prefix)] == [mine.name]
    assert ledger.connect(dbp).execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_a_stale_super_journal_is_removed_and_a_live_one_kept(tmp_path):
    """SQLite's own rule: a super-journal only matters while a journal it lists exists
    (a hot journal names it). Written by hand here: a real one needs a kill between
    two fsyncs of a commit over attached databases in rollback-journal mode."""
    dbp = tmp_path / "ledger.db"
    ledger.connect(dbp)
    stale = tmp_path / "ledger.db-mj0A1B2C3D"
    stale.write_bytes(str(tmp_path / "gone.db-journal").encode() + b"\0")
    live = tmp_path / "ledger.db-mj4E5F6071"
    hot = tmp_path / "stage.db-journal"
    hot.write_bytes(b"journal")
    live.write_bytes(str(hot).encode() + b"\0")
    ledger.connect(dbp)
    assert not stale.exists()
    assert live.exists()
