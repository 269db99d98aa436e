"""Rule regression scenarios: the reference scenarios pass with full coverage; a broken
rule makes ``run_scenarios`` and plain ``pytest`` fail with lines policy staff can act on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.errors import GridcreditError
from scoring.testing.scenarios import (
    coverage_report,
    format_report,
    load_scenario_file,
    matches_select,
    run_scenarios,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"


def line_of(path: Path, text: str, after: str | None = None) -> int:
    """1-based line of the first line containing ``text`` (after the line containing ``after``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = 0
    if after is not None:
        start = next(i for i, ln in enumerate(lines) if after in ln)
    return next(i for i, ln in enumerate(lines) if i >= start and text in ln) + 1


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the scheme repository (rules and scenarios) to break."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(SCENARIOS, tmp_path / "tests" / "scenarios")
    return tmp_path


def break_rules(repo: Path) -> None:
    """Wrong cap (40 → 50 a month) on volunteering and wrong sign (-20 → 20) on fire lanes."""
    pack = repo / "rules" / "packs" / "residents.yaml"
    text = pack.read_text(encoding="utf-8")
    assert text.count("limit: {max_points: 40, per: month}") == 1
    text = text.replace(
        "limit: {max_points: 40, per: month}", "limit: {max_points: 50, per: month}"
    )
    assert text.count("points: -20\n") == 1
    text = text.replace("points: -20\n", "points: 20\n")
    pack.write_text(text, encoding="utf-8")


def test_reference_scenarios_pass_with_full_coverage() -> None:
    report = run_scenarios([SCENARIOS], ROOT, min_coverage=100)
    assert report.failures == [], format_report(report)
    assert len(report.cases) >= 150
    cov = report.coverage
    assert cov.percent == 100.0
    assert len(cov.of("rule")) == 67  # 66 rules, one with two versions
    assert len(cov.of("step")) == 17
    assert len(cov.of("table")) == 63
    assert report.ok
    assert report.seconds < 10
    text = format_report(report)
    assert "0 failed" in text and "rule coverage: 100.0% of 147 items" in text


def test_broken_rule_fails_with_actionable_messages(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_rules(repo_copy)
    monkeypatch.chdir(repo_copy)
    report = run_scenarios([], repo_copy)
    assert not report.ok
    messages = [str(f) for f in report.failures]
    sem = repo_copy / "tests" / "scenarios" / "semantics.yaml"
    cap_line = line_of(sem, "score: 1040, wallet: 40, as_of: 2024-03-31", after="封顶截到剩余额度")
    assert (
        f"tests/scenarios/semantics.yaml:{cap_line}: 封顶截到剩余额度，额度用完的匹配仍可见: expected R1"
        " (residents) score 1040 as of 2024-03-31, got 1046 (base 1000) — rule res-volunteer"
        " (参加志愿服务) gave +46 in 2024-03 (cap 50 points/month). Check these rules' points, caps"
        " and validity, or the expected score"
    ) in messages
    sign_line = line_of(sem, "score: 980, as_of: 2026-03-04")
    assert (
        f"tests/scenarios/semantics.yaml:{sign_line}: 有效期：到期后不再计入: expected R1 (residents)"
        " score 980 as of 2026-03-04, got 1020 (base 1000) — rule res-fire-lane (占用堵塞消防通道)"
        " gave +20 in 2024-03. Check these rules' points, caps and validity, or the expected score"
    ) in messages
    res = repo_copy / "tests" / "scenarios" / "residents.yaml"
    row = line_of(res, "[24, 40, 40]")
    assert (
        f"tests/scenarios/residents.yaml:{row}: 志愿服务按小时计分，不足1分不计，每月最多40分 [row 6: hours=24]:"
        " expected points 40, got 48 from rule res-volunteer (参加志愿服务). Check the points the rule"
        " gives (rules/packs/residents.yaml:18), or correct the row"
    ) in messages
    # nothing else is blamed: every failure names one of the two broken rules' scenarios
    assert all("res-volunteer" in m or "res-fire-lane" in m or "tier" in m for m in messages), (
        messages
    )
    assert "Traceback" not in format_report(report)


def test_broken_rule_fails_plain_pytest_without_traceback(repo_copy: Path) -> None:
    break_rules(repo_copy)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/scenarios"],
        cwd=repo_copy, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "expected R1 (residents) score 1040 as of 2024-03-31, got 1046" in out
    assert "rule res-volunteer (参加志愿服务) gave +46 in 2024-03 (cap 50 points/month)" in out
    assert "FAILED tests/scenarios/semantics.yaml::封顶截到剩余额度，额度用完的匹配仍可见" in out
    assert (
        "FAILED tests/scenarios/residents.yaml::志愿服务按小时计分，不足1分不计，每月最多40分[row 6: hours=24]"
        in out
    )
    assert "Traceback" not in out and "def runtest" not in out
    assert "gridcredit rule coverage" in out


def test_pytest_collects_only_scenario_folders(repo_copy: Path) -> None:
    (repo_copy / "tests" / "bad" / "scenarios").mkdir(parents=True)
    (repo_copy / "tests" / "bad" / "scenarios" / "x.yaml").write_text("name: [\n", encoding="utf-8")
    (repo_copy / "tests" / "fixtures" / "scenarios").mkdir(parents=True)
    (repo_copy / "tests" / "fixtures" / "scenarios" / "y.yaml").write_text(
        "a: 1\n", encoding="utf-8"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=repo_copy, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests/scenarios/semantics.yaml::" in proc.stdout
    assert "tests/bad" not in proc.stdout and "tests/fixtures" not in proc.stdout


def test_coverage_names_what_is_missing() -> None:
    report = run_scenarios([SCENARIOS / "semantics.yaml"], ROOT, min_coverage=100)
    assert report.failures == []
    cov = report.coverage
    assert 0 < cov.percent < 100
    hit = {i.label for i in cov.items if i.hit}
    assert {"res-volunteer", "res-illegal-parking step 3 (-20)", "mer-counterfeit"} <= hit
    assert "res-pet" in hit  # trial rules count through their shadow entries
    assert "res-credit-repair" in hit  # repair rules count through the entries they repair
    assert "res-council" not in hit
    text = coverage_report(report)
    assert "rules/packs/residents.yaml:" in text
    assert "table value res-council role = speaker (+3) (参加社区议事协商)" in text
    assert "escalation res-noise step 1 (-3) (噪音扰民经核实)" in text
    assert "is below the required 100%" in text
    assert not report.ok  # every scenario passed, but coverage is short


def test_select_with_k_expression() -> None:
    report = run_scenarios([SCENARIOS], ROOT, select="封顶 and not 扣分")
    names = [c.name for c in report.cases]
    assert names == ["封顶截到剩余额度，额度用完的匹配仍可见"]
    assert report.deselected > 100
    rows = run_scenarios([SCENARIOS], ROOT, select="res-blood-donation")
    # the table's five rows, and a scenario that records blood donations (the rule it
    # exercises is a keyword too)
    assert [c.name for c in rows.cases if "[row" not in c.name] == ["无偿献血每年最多60分"]
    assert sum("无偿献血每200毫升10分 [row" in c.name for c in rows.cases) == 5
    assert matches_select("(a or b) and not c", ["xa"])
    assert not matches_select("(a or b) and not c", ["xa", "c"])
    with pytest.raises(GridcreditError, match="not closed"):
        matches_select("(a or b", ["a"])


def test_input_errors_are_failures_with_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "scenarios" / "input.yaml"
    f.parent.mkdir()
    f.write_text(
        """scenarios:
  - name: 规则编号写错
    subjects: [{id: R1, groups: [residents]}]
    events:
      - {type: volunteer_service, at: 2024-03-01T09:00, hours: 2}
    expect:
      entries:
        - {subject: R1, rule: res-volunter, points: 4}
      balances:
        - {subject: R9, score: 1004}
        - {subject: R1, group: residentz, score: 1004}
  - name: 事件被拒收
    subjects: [{id: R1, groups: [residents]}]
    events:
      - {type: volunteer_service, at: 2024-03-01T09:00, hours: 30}
      - {type: voluntear_service, at: 2024-03-01T09:00}
    expect:
      balances:
        - {subject: R1, score: 1000}
  - name: 拼写错误的键
    expect:
      balances:
        - {subject: R1, scroe: 1000}
""",
        encoding="utf-8",
    )
    (tmp_path / "scenarios" / "broken.yaml").write_text("name: x\nexpect: [\n", encoding="utf-8")
    report = run_scenarios([tmp_path / "scenarios"], ROOT)
    text = format_report(report)
    assert "Traceback" not in text
    msgs = [str(x) for x in report.failures]
    shown = str(f)
    assert any(m.startswith(f"{shown}:8: 规则编号写错: unknown rule 'res-volunter'; did you mean res-volunteer")
               for m in msgs), msgs  # fmt: skip
    assert any(m.startswith(f"{shown}:10: 规则编号写错: unknown subject 'R9'") for m in msgs), msgs
    assert any(
        m.startswith(f"{shown}:11: 规则编号写错: unknown group 'residentz'") for m in msgs
    ), msgs
    assert any(
        m.startswith(f"{shown}:15: 事件被拒收: event e0001 was rejected:") and "hours" in m
        for m in msgs
    ), msgs
    assert any(m.startswith(f"{shown}:16: 事件被拒收: event e0002 was rejected:") and "voluntear_service" in m
               for m in msgs), msgs  # fmt: skip
    assert (
        f"{shown}:23: 拼写错误的键: unknown key 'scroe' in 'expect.balances[1]'; did you mean 'score'?"
        in msgs
    ), msgs
    assert sum(1 for m in msgs if "拼写错误的键" in m) == 1
    assert any("broken.yaml:3:" in m and "YAML syntax error" in m for m in msgs), msgs


def test_load_scenario_file_single_and_defaults(tmp_path: Path) -> None:
    f = tmp_path / "one.yaml"
    f.write_text(
        "name: 单个场景\ndefaults: {groups: [residents]}\nsubjects: [R1]\n"
        "events:\n  - {type: volunteer_service, at: 2024-03-01T09:00, hours: 2}\n"
        "expect:\n  balances:\n    - {subject: R1, score: 1004, wallet: 4, tier: A}\n",
        encoding="utf-8",
    )
    scenarios, problems = load_scenario_file(f)
    assert problems == [] and [s.name for s in scenarios] == ["单个场景"]
    report = run_scenarios([f], ROOT)
    assert report.failures == [] and len(report.cases) == 1
    f.write_text(
        f.read_text(encoding="utf-8").replace("1004, wallet: 4", "1005, wallet: 4"),
        encoding="utf-8",
    )
    report = run_scenarios([f], ROOT)
    assert [str(x).split(": ", 1)[1] for x in report.failures] == [
        (
            "单个场景: expected R1 (residents) score 1005, got 1004 (base 1000) — rule res-volunteer"
            " (参加志愿服务) gave +4 in 2024-03 (cap 40 points/month). Check these rules' points, caps"
            " and validity, or the expected score"
        )
    ]


def test_impossible_dates_in_a_scenario_are_file_errors(tmp_path: Path) -> None:
    """2024-02-30 matches the date pattern; it must still be named at its line,
    in the validator's words, not crash the run with "day is out of range"."""
    f = tmp_path / "dates.yaml"
    f.write_text(
        "scenarios:\n"
        "  - name: 不存在的日期\n"
        "    subjects: [R1]\n"
        "    expect:\n"
        "      balances:\n"
        "        - {subject: R1, score: 1000, as_of: 2024-02-30}\n"
        "  - name: 月份少写一位\n"
        "    as_of: 2024-3\n"
        "    subjects: [R1]\n"
        "    expect:\n"
        "      balances:\n"
        "        - {subject: R1, score: 1000}\n",
        encoding="utf-8",
    )
    report = run_scenarios([f], ROOT)
    msgs = [str(x) for x in report.failures]
    assert msgs == [
        f"{f}:6: 不存在的日期: 'expect.balances[1].as_of' is '2024-02-30', which is not a"
        " calendar date; write it as YYYY-MM-DD, e.g. 2024-01-01",
        f"{f}:8: 月份少写一位: 'as_of' is '2024-3', which is not a date; write it as"
        " YYYY-MM-DD, e.g. 2024-01-01",
    ], msgs


def test_a_wrong_redemption_expectation_shows_the_wallet_before_the_request(tmp_path: Path) -> None:
    """Found in review: the message showed the wallet after the debit, so a granted
    request read 'wallet 0; cost 40' and contradicted itself."""
    f = tmp_path / "redeem.yaml"
    f.write_text(
        "name: 积分够却期望被拒\n"
        "defaults: {groups: [residents]}\n"
        "subjects: [R1]\n"
        "events:\n"
        "  - {type: volunteer_service, at: 2024-03-02T09:00, hours: 20}\n"
        "  - {id: x1, type: redeem, at: 2024-03-10T10:00, item: detergent, quantity: 2}\n"
        "expect:\n"
        "  redemptions:\n"
        "    - {event: x1, outcome: rejected, reason_code: insufficient_points}\n",
        encoding="utf-8",
    )
    (msg,) = [str(x) for x in run_scenarios([f], ROOT).failures]
    assert "got granted — just before it R1 (residents) had score 1040, tier" in msg, msg
    assert msg.endswith("wallet 40; cost 40"), msg


def test_plain_pytest_selects_the_scenarios_that_exercise_a_rule(repo_copy: Path) -> None:
    """Found in review: `pytest -k res-fire-lane` selected nothing while
    `gridcredit test -k res-fire-lane` found the scenarios that record the event."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
         "-k", "res-fire-lane", "tests/scenarios"],
        cwd=repo_copy, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^[1-9]\d*/\d+ tests collected", out, re.M), out
