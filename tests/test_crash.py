"""Killing `gridcredit score` at any moment leaves a consistent ledger; the rerun finishes it."""

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
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
GRIDCREDIT = [sys.executable, "-m", "scoring.cli"]

RULES = [
    {"id": "vol", "title": "志愿服务", "on": "volunteer",
     "points": {"per": "hours", "value": 2, "round": "floor"},
     "limit": {"max_points": 40, "per": "month"}},
    {"id": "park", "title": "违规停车", "on": "parking",
     "escalate": {"within": "30d", "steps": [-5, -10, -20]}},
]  # fmt: skip


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    shutil.copytree(FIXTURES / "engine", root, dirs_exist_ok=True)
    pack = {"pack": "residents", "version": "1", "group": "residents", "rules": RULES}
    (root / "rules" / "packs" / "residents.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True)
    )
    with open(root / "subjects.jsonl", "wb") as f:
        for i in range(500):
            f.write(
                orjson.dumps(
                    {"id": f"R{i:03d}", "groups": ["residents"], "name": "张三", "grid": "G1"}
                )
                + b"\n"
            )
    with open(root / "events.jsonl", "wb") as f:
        for i in range(150_000):
            day, sec = divmod(i * 50, 86400)
            kind = "parking" if i % 7 == 0 else "volunteer"
            rec = {"id": f"e{i:06d}", "type": kind, "subject": f"R{(i * 37) % 500:03d}",
                   "at": "2024-03-01T00:00:00+08:00", "attrs": {"hours": (i % 9) / 2}}  # fmt: skip
            rec["at"] = _at(day, sec)
            f.write(orjson.dumps(rec) + b"\n")
    return root


def _at(day: int, sec: int) -> str:
    from datetime import datetime, timedelta

    return (datetime(2024, 3, 1) + timedelta(days=day, seconds=sec)).isoformat()


def gc(root: Path, db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GRIDCREDIT, "--scheme", str(root), "--db", str(db), *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip


def ledger(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT subject, grp, points, wallet, rule, event, at, period, reason FROM entries ORDER BY id"
        ).fetchall()


def index_names(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


@pytest.mark.slow
@pytest.mark.parametrize("reindex", [False, True], ids=["live-indexes", "rebuilt-indexes"])
def test_kill_during_score_then_rerun_gives_the_same_ledger(county, tmp_path, monkeypatch, reindex):
    # 150k events: below REINDEX_ABOVE the writer keeps the indexes live; a lower
    # threshold takes the drop-and-rebuild path of big runs
    monkeypatch.setenv("GRIDCREDIT_REINDEX_ABOVE", "1000" if reindex else "")
    clean = tmp_path / "clean.db"
    gc(county, clean, "ingest", "-q", str(county / "subjects.jsonl"), str(county / "events.jsonl"))
    crashed = tmp_path / "crashed.db"
    shutil.copy(clean, crashed)
    gc(county, clean, "score")
    expected = ledger(clean)
    assert len(expected) > 100_000

    kills = 0
    for delay in (0.3, 0.8, 1.5):
        proc = subprocess.Popen(
            [*GRIDCREDIT, "--scheme", str(county), "--db", str(crashed), "score"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        rows = ledger(crashed)
        # all or nothing: a killed run leaves no partial ledger
        assert rows in ([], expected)
        # nor a ledger without the indexes a big run drops and rebuilds
        assert {"entries_subject", "entries_event", "entries_ref"} <= index_names(crashed)
        if rows:
            break
    assert kills >= 1, "score finished before it could be killed; raise the event count"
    gc(county, crashed, "score")
    assert ledger(crashed) == expected
    with sqlite3.connect(crashed) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.slow
@pytest.mark.parametrize("reindex", [False, True], ids=["live-indexes", "rebuilt-indexes"])
def test_writer_process_and_single_process_give_the_same_ledger(
    county, tmp_path, monkeypatch, reindex
):
    monkeypatch.setenv("GRIDCREDIT_REINDEX_ABOVE", "1000" if reindex else "")
    base = tmp_path / "base.db"
    gc(county, base, "ingest", "-q", str(county / "subjects.jsonl"), str(county / "events.jsonl"))
    single = tmp_path / "single.db"
    shutil.copy(base, single)
    env = {**os.environ, "GRIDCREDIT_SINGLE_PROCESS": "1"}
    subprocess.run(
        [*GRIDCREDIT, "--scheme", str(county), "--db", str(single), "score"], check=True, env=env,
        capture_output=True,
    )  # fmt: skip
    gc(county, base, "score")  # 150k events: the writer-process path
    assert ledger(base) == ledger(single)
    # kept, or rebuilt after the bulk insert, the same as the migrations create them
    with sqlite3.connect(base) as a, sqlite3.connect(single) as b:
        q = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'"
        assert sorted(a.execute(q)) == sorted(b.execute(q))
        assert {r[0] for r in a.execute(q)} == {
            "entries_subject", "entries_event", "entries_ref", "entries_assessment_at",
            "entries_graded", "entries_period", "entries_expiry",
        }  # fmt: skip


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid``, oldest first (by start time)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append((int(fields[19]), int(entry)))  # (start time, pid)
    return [p for _, p in sorted(out)]


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/stat").exists(),
    reason="finds the score run's helper processes through Linux /proc, which this system lacks",
)
@pytest.mark.parametrize(("helper", "which"), [("ledger writer", 1), ("event reader", 0)])
def test_a_helper_process_killed_mid_run_is_named_with_its_signal(county, tmp_path, helper, which):
    """The out-of-memory killer took a helper of a big score run: a RuntimeError
    traceback said "stopped unexpectedly". Now: which helper, which signal, the
    ledger as it was, and what to do. The reader is forked first, then the writer."""
    clean = tmp_path / "clean.db"
    gc(county, clean, "ingest", "-q", str(county / "subjects.jsonl"), str(county / "events.jsonl"))
    crashed = tmp_path / "crashed.db"
    shutil.copy(clean, crashed)
    proc = subprocess.Popen(
        [*GRIDCREDIT, "--scheme", str(county), "--db", str(crashed), "score"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    victim = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if len(kids) == 2:
            victim = kids[which]
            os.kill(victim, signal.SIGKILL)
            break
        time.sleep(0.005)
    out, err = proc.communicate(timeout=120)
    assert victim is not None, "score finished before its helpers could be seen"
    assert proc.returncode == 1, (out, err)
    assert err == (
        f"error: the {helper} process (pid {victim}) was killed by signal 9 (SIGKILL; the"
        " out-of-memory killer sends it when memory runs out). The score run was rolled back:"
        " the ledger is as it was before it. Run `gridcredit score` again; if this happens"
        " again, score in one process: GRIDCREDIT_SINGLE_PROCESS=1 gridcredit score\n"
    )
    assert ledger(crashed) == []
    gc(county, crashed, "score")
    gc(county, clean, "score")
    assert ledger(crashed) == ledger(clean)
