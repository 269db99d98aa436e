"""Killing `gridcredit publish` at any point, or filling its disk, never leaves a broken
site: the rerun completes the month with the same bytes an uninterrupted run writes.

Found in review (issue 19): the month was closed and its manifest written in the
first seconds of a publish, the look-up files and the private codes last; a kill
in between (7 of 12 kills) or a full disk left a site without personal look-up,
the rerun was refused ("published already") and `gridcredit build` built it.

The kills are real: ``gridcredit publish`` runs as a subprocess and kills itself
with SIGKILL at a named point (``GRIDCREDIT_TEST_KILL_AT``, see
:func:`scoring.publish.files.checkpoint`). The disk-full case fills a real small
tmpfs (this test mounts one; it runs as root in CI).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scoring.demo import generate_county
from scoring.publish.files import LOCK, MARKER, publish_lock, unfinished_publish, write_atomic

ROOT = Path(__file__).resolve().parent.parent
GRIDCREDIT = [sys.executable, "-m", "scoring.cli"]
KEY = "5e" * 32
MONTH = "2024-02"


def gc(case: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRIDCREDIT_TEST_KILL_AT"}
    if kill_at:
        env["GRIDCREDIT_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [*GRIDCREDIT, "--scheme", str(ROOT), "--db", str(case / "l.db"), *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def publish(
    case: Path, month: str = MONTH, *, site: Path | None = None, kill_at: str | None = None
):
    return gc(case, "publish", month, "--site", str(site or case / "site"), kill_at=kill_at)


def digests(*folders: Path) -> dict[str, str]:
    """sha256 of every file under ``folders`` (a finished publish leaves no lock file)."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = f"{folder.name}/{p.relative_to(folder).as_posix()}"
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A small county with January published and February ingested, not yet closed."""
    root = tmp_path_factory.mktemp("resume")
    files = generate_county(root / "input", ROOT, events=1200, residents=250)
    case = root / "base"
    case.mkdir()
    (case / "private").mkdir()
    (case / "private" / "lookup.key").write_text(KEY + "\n")  # the same codes in every copy
    r = gc(case, "ingest", "-q", str(files.subjects), *map(str, files.events[:2]))
    assert r.returncode == 0, r.stderr
    r = publish(case, "2024-01")
    assert r.returncode == 0, r.stderr
    return case


def copy_case(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest)
    return dest


@pytest.fixture(scope="module")
def reference(base, tmp_path_factory) -> dict[str, str]:
    """The site and private files of an uninterrupted publish of February."""
    case = copy_case(base, tmp_path_factory.mktemp("ref") / "case")
    r = publish(case)
    assert r.returncode == 0, r.stderr
    files = digests(case / "site", case / "private")
    assert sum(1 for f in files if f.startswith("site/lookup/") and f.endswith(".js")) >= 250
    assert f"private/codes-{MONTH}.csv" in files and f"site/data/{MONTH}/manifest.json" in files
    return files


def closed(case: Path, month: str) -> bool:
    with sqlite3.connect(case / "l.db") as conn:
        row = conn.execute("SELECT closed FROM periods WHERE month = ?", [month]).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize(
    "point",
    [
        "publish-started",  # early: the marker written, no page yet
        "month-closed",  # after the close, before the publish began
        "month-file:5",  # during the month's pages
        "lookup-file:100",  # during the look-up files (a temporary file not yet renamed)
        "codes-file",  # during the private codes file
        "files-written",  # everything written, not yet marked finished
    ],
)
def test_a_killed_publish_is_completed_by_the_rerun_byte_for_byte(base, reference, tmp_path, point):
    case = copy_case(base, tmp_path / "case")
    killed = publish(case, kill_at=point)
    assert killed.returncode == -9, (point, killed.stdout, killed.stderr)
    assert closed(case, MONTH)  # the close is committed before any of these points
    if point != "month-closed":
        assert unfinished_publish(case / "site") == MONTH
    # no file is ever cut short: whatever exists is the old or the finished bytes
    site_files = [p for p in (case / "site").rglob("*") if p.is_file()]
    assert all(p.stat().st_size > 0 for p in site_files if p.name != LOCK)
    again = publish(case)
    assert again.returncode == 0, (point, again.stderr)
    assert "Traceback" not in again.stderr
    if point != "month-closed":
        assert f"completing the unfinished publish of {MONTH}" in again.stderr
    assert unfinished_publish(case / "site") is None
    got = digests(case / "site", case / "private")
    assert sorted(got) == sorted(reference), set(got) ^ set(reference)
    assert [f for f in got if got[f] != reference[f]] == []
    # and now it is published: a third run is refused as before
    third = publish(case)
    assert third.returncode == 1 and "published already" in third.stderr


def test_build_refuses_a_site_whose_publish_did_not_finish(base, tmp_path):
    case = copy_case(base, tmp_path / "case")
    assert publish(case, kill_at="lookup-file:3").returncode == -9
    built = gc(case, "build", "--config", str(_config(case / "site", case)))
    assert built.returncode == 1, built.stdout
    assert "Traceback" not in built.stderr
    assert f"the publish of {MONTH}" in built.stderr and "did not finish" in built.stderr
    assert f"`gridcredit publish {MONTH}` again" in built.stderr
    assert not (case / "public").exists()
    # another month cannot be published over the unfinished one either
    other = publish(case, "2024-03")
    assert other.returncode == 1 and f"gridcredit publish {MONTH}" in other.stderr


def test_a_second_publish_of_the_same_site_is_refused_clearly(base, tmp_path):
    case = copy_case(base, tmp_path / "case")
    with publish_lock(case / "site"):  # a publish under way in this process
        second = publish(case)
    assert second.returncode == 1, second.stdout
    assert f"another `gridcredit publish` (pid {os.getpid()}) is writing the site" in second.stderr
    assert "Traceback" not in second.stderr
    assert not closed(case, MONTH)  # refused before it closed anything
    assert publish(case).returncode == 0  # the lock went with its holder
    assert not (case / "site" / LOCK).exists()


def test_two_publish_runs_at_once_one_is_refused_the_other_finishes(base, reference, tmp_path):
    """Two real processes: the first stops itself among the look-up files (SIGSTOP),
    the second is refused at once, the first then finishes the month alone."""
    case = copy_case(base, tmp_path / "case")
    env = {**os.environ, "GRIDCREDIT_TEST_KILL_AT": "stop:lookup-file:20"}
    cmd = [*GRIDCREDIT, "--scheme", str(ROOT), "--db", str(case / "l.db")]
    first = subprocess.Popen(
        [*cmd, "publish", MONTH, "--site", str(case / "site")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while Path(f"/proc/{first.pid}/stat").read_text().split(")")[1].split()[0] != "T":
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = publish(case)
        assert second.returncode == 1, second.stdout
        assert f"another `gridcredit publish` (pid {first.pid}) is writing the site" in (
            second.stderr
        )
        assert "Traceback" not in second.stderr
    finally:
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    got = digests(case / "site", case / "private")
    assert sorted(got) == sorted(reference) and got == reference


def test_a_kill_while_writing_the_key_leaves_no_empty_key(base, tmp_path):
    """Found in review: a kill between creating and writing private/lookup.key left a
    0-byte key, and every later publish was refused as if the key were damaged."""
    case = copy_case(base, tmp_path / "case")
    (case / "private" / "lookup.key").unlink()
    with sqlite3.connect(case / "l.db") as conn:  # a ledger that never published
        conn.execute("DELETE FROM state WHERE key = 'lookup_secret'")
    shutil.rmtree(case / "site")
    killed = publish(case, "2024-01", kill_at="key-file")
    assert killed.returncode == -9, killed.stderr
    assert not (case / "private" / "lookup.key").exists()  # the whole key or none
    again = publish(case, "2024-01")
    assert again.returncode == 0, again.stderr
    key = case / "private" / "lookup.key"
    assert len(bytes.fromhex(key.read_text().strip())) == 32
    assert key.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (case / "private").iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)],
            check=True, capture_output=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.fail(f"cannot mount a tmpfs (run as root; the disk-full test needs one): {e}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_a_clean_message_and_the_rerun_completes(base, tmp_path, small_disk):
    """Found in review: a full disk ended publish in a traceback, with a 0-byte look-up file."""
    case = copy_case(base, tmp_path / "case")
    site = small_disk / "site"  # January again, into a new site on a small disk
    pages = [p for d in ("months/2024-01", "data/2024-01") for p in (case / "site" / d).rglob("*")]
    room = sum(-(-p.stat().st_size // 4096) * 4096 for p in pages if p.is_file()) * 5 // 4
    # room for the month's pages but not for its look-up files
    subprocess.run(["mount", "-o", f"remount,size={room}", str(small_disk)], check=True)
    full = publish(case, "2024-01", site=site)
    assert full.returncode == 1, full.stdout
    err = full.stderr
    assert "Traceback" not in err
    assert f"publish 2024-01: the disk is full: cannot write {site}/lookup/" in err, err
    assert "Free disk space there" in err and "`gridcredit publish 2024-01` again" in err
    assert unfinished_publish(site) == "2024-01"
    # nothing half-written: no temporary file, no empty file, the pages written are final
    assert [p for p in site.rglob(".*.gc-tmp")] == []
    assert all(p.stat().st_size > 0 for p in site.rglob("*") if p.is_file() and p.name != LOCK)
    assert (site / "months/2024-01/index.md").read_bytes() == (
        base / "site/months/2024-01/index.md"
    ).read_bytes()
    assert gc(case, "build", "--config", str(_config(site, case))).returncode == 1
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = publish(case, "2024-01", site=site)
    assert again.returncode == 0, again.stderr
    assert unfinished_publish(site) is None
    shutil.rmtree(case / "site")
    shutil.copytree(site, case / "site")
    got, want = digests(case / "site", case / "private"), digests(base / "site", base / "private")
    assert sorted(got) == sorted(want), set(got) ^ set(want)
    assert [f for f in got if got[f] != want[f]] == []


def _config(site: Path, where: Path) -> Path:
    config = where / "mkdocs.yml"
    config.write_text(f"site_name: t\ndocs_dir: {site}\nsite_dir: public\n", "utf-8")
    return config


def test_write_atomic_never_leaves_a_partial_file(tmp_path, monkeypatch):
    """A failed write keeps the old bytes and leaves no temporary file; errors name the file."""
    import errno

    path = tmp_path / "page.md"
    path.write_bytes(b"old\n")
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as e:
        write_atomic(path, b"new page\n")
    assert e.value.filename == str(path)
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.md"]
    monkeypatch.setattr(os, "write", real_write)
    write_atomic(path, b"new page\n", mode=0o600)
    assert path.read_bytes() == b"new page\n" and path.stat().st_mode & 0o777 == 0o600


def test_the_marker_and_lock_are_never_in_the_built_site():
    """Dot files are left out of every MkDocs build (its default exclude)."""
    from mkdocs.structure.files import _default_exclude

    for name in (MARKER, LOCK, ".index.md.gc-tmp", "lookup/.ab.js.gc-tmp"):
        assert _default_exclude.match_file(name), name
