"""pytest plugin: collects rule regression scenarios (``tests/scenarios/*.yaml``).

Registered as the ``pytest11`` entry point ``gridcredit``, so plain ``pytest``
runs the same scenarios as ``gridcredit test``: one item per scenario and one
per table row, failing with the same ``file:line: scenario: expected …, got …``
lines and no Python traceback.

Only YAML files inside a folder named ``scenarios`` are collected, never
anything under ``bad/`` or ``fixtures/``. The scheme is the nearest folder
above the file holding ``rules/scheme.yaml`` (or the file's ``rules:``).
The scheme is loaded once per session and rules folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..errors import SchemeError
from .scenarios import (
    CaseResult,
    Failure,
    Scenario,
    ScenarioRunner,
    coverage_report,
    find_scheme_for,
    is_scenario_file,
    load_scenario_file,
)

_RUNNERS: dict[Path, ScenarioRunner | SchemeError] = {}


def _runner(rules: Path) -> ScenarioRunner | SchemeError:
    key = rules.resolve()
    if key not in _RUNNERS:
        try:
            _RUNNERS[key] = ScenarioRunner(key)
        except SchemeError as e:
            _RUNNERS[key] = e
    return _RUNNERS[key]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(Exception):
    """Raised by a scenario item; carries readable failure lines, shown without a traceback."""

    def __init__(self, failures: list[Failure]):
        super().__init__("\n".join(str(f) for f in failures))
        self.failures = failures


class ScenarioFile(pytest.File):
    def collect(self) -> Any:
        scenarios, problems = load_scenario_file(self.path)
        for f in problems:
            yield ScenarioItem.from_parent(
                self, name=f"line {f.line}", scenario=None, row=None, error=f
            )
        for sc in scenarios:
            if sc.is_table:
                for i, (_, label) in enumerate(sc.row_labels()):
                    yield ScenarioItem.from_parent(
                        self, name=f"{sc.name}[{label}]", scenario=sc, row=i
                    )
            else:
                yield ScenarioItem.from_parent(self, name=sc.name, scenario=sc, row=None)


class ScenarioItem(pytest.Item):
    def __init__(
        self,
        *,
        scenario: Scenario | None,
        row: int | None,
        error: Failure | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.scenario = scenario
        self.row = row
        self.error = error
        if scenario is not None:
            # with the scheme, -k also matches the rules the scenario exercises, as in
            # `gridcredit test` (found in review)
            rules = scenario.rules_dir or find_scheme_for(scenario.path)
            runner = _runner(rules) if rules is not None else None
            scheme = runner.scheme if isinstance(runner, ScenarioRunner) else None
            for word in scenario.keywords(scheme):
                self.extra_keyword_matches.add(word)

    def runtest(self) -> None:
        if self.error is not None:
            raise ScenarioFailed([self.error])
        sc = self.scenario
        assert sc is not None
        rules = sc.rules_dir or find_scheme_for(sc.path)
        if rules is None:
            raise ScenarioFailed([Failure(sc.file, sc.line, sc.name, "no rules/scheme.yaml found in this"
                                          " folder or any folder above it; add 'rules:' to the file")])  # fmt: skip
        runner = _runner(rules)
        if isinstance(runner, SchemeError):
            raise ScenarioFailed([Failure(sc.file, sc.line, sc.name,
                                          f"the rules do not load; run gridcredit validate:\n{runner}")])  # fmt: skip
        results: list[CaseResult] = runner.run(sc, row=self.row)
        failures = [f for r in results for f in r.failures]
        if failures:
            raise ScenarioFailed(failures)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        line = self.error.line if self.error else (self.scenario.line if self.scenario else 1)
        if self.scenario is not None and self.row is not None:
            line = self.scenario.row_labels()[self.row][0]
        return self.path, max(0, line - 1), f"scenario: {self.name}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    runners = [r for r in _RUNNERS.values() if isinstance(r, ScenarioRunner)]
    if not runners:
        return
    from .scenarios import Report

    for r in runners:
        terminalreporter.write_sep("-", f"gridcredit rule coverage ({r.rules_dir})")
        report = Report(coverage=r.coverage.result())
        terminalreporter.write_line(coverage_report(report, limit=20))
