"""Rule regression scenarios (``tests/scenarios/*.yaml``) and rule coverage.

A scenario gives subjects and events and says what the ledger must show:
balances, entries (also capped and trial ones), redemption outcomes, list
memberships, ranks and assessment results. ``run_scenarios`` runs each one
in a fresh in-memory ledger through the real ingest → score → assess path,
and reports every expectation that does not hold as
``file:line: scenario: expected …, got …`` with the rules involved, in words
policy staff can act on. The format is documented in
``schemas/scenario.schema.json`` and in the guide page
``site/guide/change-a-rule.md``.

A file holds one scenario (a mapping with ``name``) or several
(``scenarios: [...]``, with optional file-wide ``defaults`` and ``rules``).

The table form (``table:``) checks one rule on many inputs: each row is its
own case with a fresh subject and one event, e.g. hours → points.

The scheme is loaded and compiled once per rules folder and reused; each
scenario starts from a copy of a prepared empty ledger (SQLite backup), so
hundreds of scenarios run in a few seconds.

Coverage: from the ledgers of all scenarios run, which rule versions (rule
id × effective window), escalation steps and ``by`` table values were
exercised. ``format_report`` prints failures, a summary and the coverage.

The package: ``load`` (files, schema, ``Scenario``), ``select`` (``-k``),
``runner`` (``ScenarioRunner``), ``checker`` (expectations), ``coverage``,
``results`` (what a run reports) and ``report`` (``run_scenarios``, the text report).
"""

from __future__ import annotations

from .load import Scenario, find_scheme_for, is_scenario_file, load_scenario_file
from .report import coverage_report, format_report, run_scenarios
from .results import CaseResult, Coverage, CoverageItem, Failure, Report
from .runner import ScenarioRunner
from .select import matches_select

__all__ = [
    "CaseResult",
    "Coverage",
    "CoverageItem",
    "Failure",
    "Report",
    "Scenario",
    "ScenarioRunner",
    "coverage_report",
    "find_scheme_for",
    "format_report",
    "is_scenario_file",
    "load_scenario_file",
    "matches_select",
    "run_scenarios",
]
