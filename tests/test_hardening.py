"""Rules that validate accepts can never break scoring or the ledger, and rules
files that are not regular files are refused (issue 19, items 3 and 4).

Anything that could hang (a FIFO) or fill memory (a symlink to /dev/zero) runs
the real command line in a subprocess with a timeout, so a regression fails
here instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.compile import ENTRY_BOUND, PointsForm, clamp_points, compile_points
from scoring.plugins import build_plugins
from scoring.yamlsafe import YamlProblem, read_rules_file

HERE = Path(__file__).parent
MINI = HERE / "fixtures" / "mini" / "rules"
TIMEOUT = 60 * float(os.environ.get("GRIDCREDIT_SLOW", "1"))

SUBJECTS = [
    {"id": "M1", "groups": ["merchants"], "name": "鑫源超市", "grid": "S01C01G02"},
    {"id": "R1", "groups": ["residents"], "name": "张三", "grid": "S01C01G01"},
]


def cli(repo: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``gridcredit --scheme repo ARGS`` in a subprocess; never a traceback."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from scoring.cli import cli; cli()",
            "--scheme",
            str(repo),
            "--db",
            str(repo / "ledger.db"),
            *map(str, args),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=repo,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scheme repository in tmp with the mini rules."""
    root = tmp_path / "repo"
    shutil.copytree(MINI, root / "rules")
    return root


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


# --------------------------------------------------------------------------
# item 4: regular files only


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("where", ["packs/zz.yaml", "events.yaml", "scheme.yaml"])
def test_validate_score_and_test_refuse_what_is_not_a_regular_file(
    repo: Path, kind: str, where: str
) -> None:
    path = repo / "rules" / where
    if path.exists():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    want = f"rules/{where}:1:1: not a regular file"
    for command in ("validate", "score", "test"):
        proc = cli(repo, command)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        out = proc.stdout + proc.stderr
        assert want in out, (command, out)
        assert "regular files only" in out


def test_a_scenario_file_that_is_a_fifo_fails_cleanly(repo: Path) -> None:
    scenarios = repo / "tests" / "scenarios"
    scenarios.mkdir(parents=True)
    os.mkfifo(scenarios / "pipe.yaml")
    proc = cli(repo, "test", scenarios / "pipe.yaml")
    assert proc.returncode == 1
    assert "pipe.yaml:1" in proc.stdout + proc.stderr
    assert "not a regular file" in proc.stdout + proc.stderr


def test_a_symlink_to_a_file_inside_the_repository_is_read(repo: Path) -> None:
    shared = repo / "shared"
    shared.mkdir()
    pack = repo / "rules" / "packs" / "residents.yaml"
    shutil.move(pack, shared / "residents.yaml")
    pack.symlink_to(Path("..") / ".." / "shared" / "residents.yaml")
    proc = cli(repo, "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_symlink_out_of_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    shutil.copyfile(repo / "rules" / "packs" / "residents.yaml", outside)
    (repo / "rules" / "packs" / "residents.yaml").unlink()
    (repo / "rules" / "packs" / "residents.yaml").symlink_to(outside)
    proc = cli(repo, "validate")
    assert proc.returncode == 1
    assert "rules/packs/residents.yaml:1:1: a symbolic link to" in proc.stderr
    assert "outside the scheme repository" in proc.stderr


def test_the_size_limit_holds_while_reading() -> None:
    """/proc files say they are 0 bytes long: only counting while reading stops them."""
    proc_file = Path("/proc/self/status")
    if not proc_file.is_file() or proc_file.stat().st_size != 0:
        pytest.skip(
            "needs a file whose size says 0 while it has content (Linux /proc/self/status);"
            " this system has none, so the while-reading limit cannot be shown here"
        )
    with pytest.raises(YamlProblem) as e:
        read_rules_file(proc_file, "status.yaml", limit=16)
    assert str(e.value.problem) == (
        "status.yaml:1:1: file is over 0.0 MB; rule files are limited to 0.0 MB."
        " Split it or remove the oversized value"
    )
    assert read_rules_file(proc_file, "status.yaml").startswith(b"Name:")


# --------------------------------------------------------------------------
# item 3: numbers that cannot break scoring or the ledger


def test_points_that_validate_refuses_stop_score_cleanly(repo: Path) -> None:
    pack = repo / "rules" / "packs" / "merchants.yaml"
    text = pack.read_text("utf-8")
    pack.write_text(text.replace("points: -50", "points: 4611686018427387904", 1), "utf-8")
    for command in ("validate", "score"):
        proc = cli(repo, command)
        assert proc.returncode == 1
        out = proc.stdout + proc.stderr
        assert "is 4611686018427387904, outside the range gridcredit accepts here" in out


def test_a_huge_attribute_is_capped_and_the_ledger_still_reads(repo: Path) -> None:
    """``per`` over an attribute events.yaml gives no max (amount_yuan): ingest lets
    numbers up to 2**53 through, and 10,000 points a yuan of 9e15 used to end every
    ``score`` in an OverflowError; now the entry is held to the bound, and balances
    and explain work."""
    (repo / "rules" / "packs" / "fines.yaml").write_text(
        'pack: fines\nversion: "2024.1"\ngroup: merchants\ntitle: 按货值扣分\nrules:\n'
        "  - id: mer-fine-per-yuan\n    title: 按涉案货值扣分\n    on: counterfeit_goods\n"
        "    points: {per: amount_yuan, value: -10000}\n",
        encoding="utf-8",
    )
    assert cli(repo, "validate").returncode == 0
    subjects = write_jsonl(repo / "subjects.jsonl", SUBJECTS)
    events = write_jsonl(
        repo / "events.jsonl",
        [
            {
                "id": "e1",
                "type": "counterfeit_goods",
                "subject": "M1",
                "at": "2024-03-02T09:00:00",
                "attrs": {"amount_yuan": 9_000_000_000_000_000},
            },
            {
                "id": "e2",
                "type": "counterfeit_goods",
                "subject": "M1",
                "at": "2024-03-03T09:00:00",
                "attrs": {"amount_yuan": 1e13},
            },
            {
                "id": "e3",
                "type": "counterfeit_goods",
                "subject": "M1",
                "at": "2024-03-04T09:00:00",
                "attrs": {"amount_yuan": 50},
            },
        ],  # fmt: skip
    )
    assert cli(repo, "ingest", "-q", "--strict", subjects, events).returncode == 0
    scored = cli(repo, "score")
    assert scored.returncode == 0, scored.stdout + scored.stderr
    balances = cli(repo, "balances", "--as-of", "2024-03-31", "--format", "json")
    assert balances.returncode == 0, balances.stdout + balances.stderr
    rows = {(r["subject"], r["group"]): r for r in json.loads(balances.stdout)}
    # base 1000, three counterfeit entries of -50, fines of -1,000,000 (capped) twice
    # and -500,000 (50 yuan)
    assert rows[("M1", "merchants")]["score"] == 1000 - 3 * 50 - 2 * ENTRY_BOUND - 500_000
    explained = cli(repo, "explain", "M1", "--as-of", "2024-03-31")
    assert explained.returncode == 0, explained.stdout + explained.stderr
    assert "-1000000" in explained.stdout.replace(",", "")


def test_every_points_form_is_held_to_the_bound() -> None:
    forms = dict(build_plugins().points_forms)
    per = compile_points({"per": "h", "value": 2, "round": "ceil"}, forms)
    assert per is not None
    got = [per({"h": x}) for x in (1.5, 1e300, -1.7e308, 10**400, -(10**400), 5e5, 500001)]
    assert got == [
        3,
        ENTRY_BOUND,
        -ENTRY_BOUND,
        ENTRY_BOUND,
        -ENTRY_BOUND,
        ENTRY_BOUND,
        ENTRY_BOUND,
    ]
    fixed = compile_points(2**80, forms)
    assert fixed is not None and fixed({}) == ENTRY_BOUND
    # a plugin's form that knows no bound is wrapped
    forms["raw"] = PointsForm("raw", lambda spec: lambda attrs: attrs.get("v"))
    raw = compile_points({"raw": 1}, forms)
    assert raw is not None
    assert [raw({"v": v}) for v in (7, 2**70, -(2**70), float("inf"), None)] == [
        7, ENTRY_BOUND, -ENTRY_BOUND, ENTRY_BOUND, None
    ]  # fmt: skip
    assert clamp_points(float("nan")) is None
