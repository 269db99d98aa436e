"""The second reference scheme, examples/weihai (Weihai/Wendeng credit measures written in
the rule language): it validates with no problem at all, and its regression scenarios,
whose numbers were computed by hand from the measures, pass. (``pytest examples/weihai``
collects the same scenarios one by one through the gridcredit pytest plugin.)"""

from __future__ import annotations

from pathlib import Path

from scoring.testing.scenarios import format_report, run_scenarios
from scoring.validate import validate_scheme

WEIHAI = Path(__file__).resolve().parent.parent / "examples" / "weihai"


def test_weihai_validates_without_warnings() -> None:
    problems = validate_scheme(WEIHAI)
    assert [str(p) for p in problems] == []


def test_weihai_scenarios_pass() -> None:
    report = run_scenarios([WEIHAI / "tests" / "scenarios"], WEIHAI)
    assert report.failures == [] and report.errors == [], format_report(report)
    assert len(report.cases) >= 5
