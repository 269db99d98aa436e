"""The driver (``run_scenarios``) and the text report (``format_report``,
``coverage_report``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ...errors import SchemeError
from .load import load_scenario_file, scenario_paths
from .results import Failure, Report
from .runner import ScenarioRunner
from .select import matches_select

# --------------------------------------------------------------------------- driver


def run_scenarios(
    paths: Sequence[str | Path],
    scheme_dir: str | Path,
    *,
    select: str | None = None,
    min_coverage: float | None = None,
) -> Report:
    """Run the scenarios in ``paths`` (files or folders; empty: ``<repo>/tests/scenarios``).

    ``select`` is a pytest-style ``-k`` expression over scenario names, file
    names and table rule ids. Raises ``SchemeError`` when the rules themselves
    do not load (fix those first: ``gridcredit validate``).
    """
    from ...loader import find_rules_dir

    t0 = time.perf_counter()
    rules_dir = find_rules_dir(scheme_dir)
    if not paths:
        paths = [rules_dir.parent / "tests" / "scenarios"]
    report = Report(min_coverage=min_coverage)
    main = ScenarioRunner(rules_dir)
    runners = {rules_dir.resolve(): main}
    files = scenario_paths(paths)
    for p in paths:
        if not Path(p).exists():
            report.errors.append(Failure(str(p), 0, "", "no such file or folder"))
    for f in files:
        if not f.exists():
            continue
        scenarios, problems = load_scenario_file(f)
        report.errors.extend(problems)
        for sc in scenarios:
            runner = main
            if sc.rules_dir is not None:
                key = sc.rules_dir.resolve()
                if key not in runners:
                    try:
                        runners[key] = ScenarioRunner(key)
                    except SchemeError as e:
                        report.errors.append(Failure(sc.file, sc.line, sc.name,
                                                     f"its rules do not load: {e}"))  # fmt: skip
                        continue
                runner = runners[key]
            if sc.is_table:
                rows = sc.row_labels()
                chosen = [
                    i
                    for i, (_, lab) in enumerate(rows)
                    if matches_select(select, [*sc.keywords(runner.scheme), lab])
                ]
                report.deselected += len(rows) - len(chosen)
                if chosen:
                    results = runner.run(sc)
                    report.cases.extend(results[i] for i in chosen)
                continue
            if not matches_select(select, sc.keywords(runner.scheme)):
                report.deselected += 1
                continue
            report.cases.extend(runner.run(sc))
    report.coverage = main.coverage.result()
    report.seconds = time.perf_counter() - t0
    return report


def coverage_report(report: Report, *, limit: int | None = None) -> str:
    """Coverage text: percentages, then every rule, step and table value no scenario exercised."""
    cov = report.coverage
    lines = [
        (
            f"rule coverage: {cov.percent:.1f}% of {len(cov.items)} items"
            f" (rule versions in force {cov.percent_of('rule'):.0f}% of {len(cov.of('rule'))},"
            f" escalation steps {cov.percent_of('step'):.0f}% of {len(cov.of('step'))},"
            f" table values {cov.percent_of('table'):.0f}% of {len(cov.of('table'))})"
        )
    ]
    missing = cov.missing
    if missing:
        lines.append("not exercised by any scenario:")
        words = {"rule": "rule", "step": "escalation", "table": "table value"}
        shown = missing if limit is None else missing[:limit]
        for it in shown:
            where = f"{it.where()}: " if it.where() else ""
            lines.append(f"  {where}{words[it.kind]} {it.label} ({it.title})")
        if len(shown) < len(missing):
            lines.append(f"  … and {len(missing) - len(shown)} more")
    if report.min_coverage is not None and not report.coverage_ok:
        lines.append(
            f"coverage {cov.percent:.1f}% is below the required {report.min_coverage:g}%:"
            " add scenarios for the items above"
        )
    return "\n".join(lines)


def format_report(report: Report) -> str:
    """Everything ``gridcredit test`` prints: failures, a summary line, coverage."""
    out: list[str] = []
    for f in report.errors:
        out.append(str(f))
    for c in report.failed_cases:
        for f in c.failures:
            out.append(str(f))
    if out:
        out.append("")
    passed = sum(1 for c in report.cases if c.passed)
    failed = len(report.cases) - passed
    summary = f"{len(report.cases)} scenarios: {passed} passed, {failed} failed"
    if report.errors:
        summary += f", {len(report.errors)} file error{'s' if len(report.errors) != 1 else ''}"
    if report.deselected:
        summary += f", {report.deselected} deselected"
    summary += f" in {report.seconds:.2f}s"
    out.append(summary)
    out.append(coverage_report(report))
    return "\n".join(out)
