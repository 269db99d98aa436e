"""``gridcredit explain`` for a policy clerk: each entry line says what escalation did to its
points (a repeat offence doubled, an escalation step) and when the entry stops counting.
Found in review: a doubled entry looked like a wrong number, and nothing said when an entry
would expire. Whole points here; the weihai scheme (fractional) at the end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from conftest import FIXTURES, ev, put

from scoring.cli import cli
from scoring.evaluate import score
from scoring.ledger import connect, explain
from scoring.loader import load_scheme

ROOT = Path(__file__).resolve().parent.parent


def ledger(tmp_path: Path, rules: list[dict[str, Any]], events: list[dict]) -> Any:
    """The engine fixture with these residents' rules, the events scored into a ledger
    file; returns ``run(*args)`` giving the CLI's output."""
    root = tmp_path / "scheme"
    shutil.copytree(FIXTURES / "engine", root)
    pack = {"pack": "residents", "version": "1", "group": "residents", "rules": rules}
    (root / "rules" / "packs" / "residents.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    s = load_scheme(root)
    db_path = tmp_path / "ledger.db"
    db = connect(db_path)
    put(db, s, events)
    score(db, s)
    db.conn.close()

    def run(*args: str) -> str:
        out = CliRunner().invoke(cli, ["--scheme", str(root), "--db", str(db_path), *args])
        assert out.exit_code == 0, out.output
        return out.stdout

    return run


DOUBLED = {"id": "park", "title": "违规停车", "on": "parking", "points": -5,
           "escalate": {"within": "1 year", "factor": 2}, "expires": {"after": "12 months"}}  # fmt: skip
PARKING = [
    ev("a", "parking", "P1", "2024-03-01T10:00"),
    ev("b", "parking", "P1", "2024-03-05T10:00"),  # within a year of a: doubled
    ev("c", "parking", "P1", "2025-04-01T10:00"),  # a year after both: a first offence again
]


def test_a_doubled_repeat_says_so_and_every_entry_when_it_expires(tmp_path) -> None:
    run = ledger(tmp_path, [DOUBLED], PARKING)
    lines = run("explain", "P1", "--as-of", "2024-03-31").splitlines()
    assert lines[3:] == [
        "  2024-03-01     -5     +0    995  违规停车 (park)  [expires 2025-03-01]",
        "  2024-03-05    -10     +0    985  违规停车 (park)"
        "  [×2 再犯 (repeat: 2nd within 1 year); expires 2025-03-05]",
    ]
    lines = run("explain", "P1").splitlines()
    assert lines[3:] == [
        "  2024-03-01     -5     +0   1000  违规停车 (park)  [expired 2025-03-01]",
        "  2024-03-05    -10     +0   1000  违规停车 (park)"
        "  [×2 再犯 (repeat: 2nd within 1 year); expired 2025-03-05]",
        "  2025-04-01     -5     +0    995  违规停车 (park)  [expires 2026-04-01]",
    ]


def test_explain_json_carries_expiry_and_repeat(tmp_path) -> None:
    run = ledger(tmp_path, [DOUBLED], PARKING)
    rows = json.loads(run("explain", "P1", "--format", "json"))
    assert [(r["expires"], r["repeat"], r["escalation"]) for r in rows] == [
        ("2025-03-01", 1, ""),
        ("2025-03-05", 2, "×2 再犯 (repeat: 2nd within 1 year)"),
        ("2026-04-01", 1, ""),
    ]


def test_escalation_steps_are_named(tmp_path) -> None:
    steps = {"id": "noise", "title": "噪音扰民", "on": "noise",
             "escalate": {"within": "365d", "steps": [-5, -10]}}  # fmt: skip
    run = ledger(tmp_path, [steps], [
        ev("a", "noise", "P1", "2024-03-01T10:00"),
        ev("b", "noise", "P1", "2024-03-02T10:00"),
        ev("c", "noise", "P1", "2024-03-03T10:00"),  # the last step repeats
    ])  # fmt: skip
    lines = run("explain", "P1").splitlines()
    assert lines[3:] == [
        "  2024-03-01     -5     +0    995  噪音扰民 (noise)  [step 1 of 2 (first within 365 days)]",
        "  2024-03-02    -10     +0    985  噪音扰民 (noise)"
        "  [step 2 of 2 再犯 (repeat: 2nd within 365 days)]",
        "  2024-03-03    -10     +0    975  噪音扰民 (noise)"
        "  [step 2 of 2 再犯 (repeat: 3rd within 365 days)]",
    ]


def test_a_withdrawn_offence_leaves_the_window_as_the_scorer_does(tmp_path) -> None:
    run = ledger(tmp_path, [DOUBLED], [
        ev("a", "parking", "P1", "2024-03-01T10:00"),
        ev("b", "parking", "P1", "2024-03-05T10:00"),
        ev("w", "withdraw", "P1", "2024-03-06T10:00", target="b"),
        ev("c", "parking", "P1", "2024-03-07T10:00"),  # b withdrawn: c is the 2nd, doubled
    ])  # fmt: skip
    rows = json.loads(run("explain", "P1", "--format", "json"))
    assert [(r["event"], r["points"], r["reason"], r["repeat"]) for r in rows] == [
        ("a", -5, "match", 1),
        ("b", -10, "match", 2),
        ("w", 10, "reversal", 0),
        ("c", -10, "match", 2),
    ]


def test_entries_without_escalation_or_expiry_read_as_before(tmp_path) -> None:
    plain = {"id": "sort", "title": "垃圾分类", "on": "sorting", "points": 2}
    run = ledger(tmp_path, [plain], [ev("a", "sorting", "P1", "2024-03-01T10:00")])
    assert (
        run("explain", "P1").splitlines()[3] == "  2024-03-01     +2     +2   1002  垃圾分类 (sort)"
    )
    (line,) = [x for x in explain_lines(run) if x["event"] == "a"]
    assert (line["expires"], line["repeat"], line["escalation"]) == ("", 0, "")


def explain_lines(run: Any) -> list[dict]:
    return json.loads(run("explain", "P1", "--format", "json"))


def test_the_library_counts_repeats_of_a_fractional_scheme(tmp_path) -> None:
    """examples/weihai: 楼道内给电动车充电 −10, doubled within a year (its pack's defaults)."""
    s = load_scheme(ROOT / "examples" / "weihai")
    db = connect(tmp_path / "w.db")
    subjects = [{"id": "P1", "groups": ["persons"], "name": "张三", "grid": "LS01G1"}]
    put(db, s, [
        ev("c1", "ebike_charging", "P1", "2024-03-03T10:00"),
        ev("c2", "ebike_charging", "P1", "2024-03-10T10:00"),
    ], subjects)  # fmt: skip
    score(db, s)
    lines = explain(db, s, "P1", as_of=s.clock.end_of_day("2024-03-31"))
    assert [(x.points, x.repeat, x.escalation, x.expires) for x in lines] == [
        (-100, 1, "", "2025-03-03"),
        (-200, 2, "×2 再犯 (repeat: 2nd within 1 year)", "2025-03-10"),
    ]
