"""What a scenario run reports: failures, case results, coverage, the report;
and the small wordings the runner and the checker share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SYSTEM_TYPES = ("redeem", "withdraw", "objection", "survey")
OUTPUT_COLUMNS = ("points", "wallet", "reason", "score", "tier")
INPUT_COLUMNS = ("at", "type", "subject.grid", "subject.tags")
SKIP_DIRS = frozenset({"bad", "fixtures"})


# --------------------------------------------------------------------------- results


@dataclass
class Failure:
    """One expectation that did not hold (or an input error), located in a scenario file."""

    file: str
    line: int
    scenario: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        head = f"{where}: {self.scenario}: " if self.scenario else f"{where}: "
        return head + self.message


@dataclass
class CaseResult:
    """One scenario, or one row of a table scenario."""

    file: str
    line: int
    name: str
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class CoverageItem:
    kind: str  # rule | step | table
    rule: str
    label: str  # what exactly: "res-volunteer", "step 3 (-20)", "role = speaker (3)"
    title: str
    src: tuple[str, int, int]
    hit: bool = False

    def where(self) -> str:
        f, line, _ = self.src
        return f"{f}:{line}" if f else ""


@dataclass
class Coverage:
    items: list[CoverageItem] = field(default_factory=list)

    def _pct(self, items: Sequence[CoverageItem]) -> float:
        return 100.0 * sum(1 for i in items if i.hit) / len(items) if items else 100.0

    @property
    def percent(self) -> float:
        """Share of all items (rule versions, escalation steps, table values) exercised."""
        return self._pct(self.items)

    def of(self, kind: str) -> list[CoverageItem]:
        return [i for i in self.items if i.kind == kind]

    def percent_of(self, kind: str) -> float:
        return self._pct(self.of(kind))

    @property
    def missing(self) -> list[CoverageItem]:
        return [i for i in self.items if not i.hit]


@dataclass
class Report:
    cases: list[CaseResult] = field(default_factory=list)
    errors: list[Failure] = field(default_factory=list)  # files that could not be read at all
    coverage: Coverage = field(default_factory=Coverage)
    min_coverage: float | None = None
    seconds: float = 0.0
    deselected: int = 0

    @property
    def failures(self) -> list[Failure]:
        return self.errors + [f for c in self.cases for f in c.failures]

    @property
    def failed_cases(self) -> list[CaseResult]:
        return [c for c in self.cases if c.failures]

    @property
    def coverage_ok(self) -> bool:
        return self.min_coverage is None or self.coverage.percent + 1e-9 >= self.min_coverage

    @property
    def ok(self) -> bool:
        return not self.failures and self.coverage_ok


# --------------------------------------------------------------------------- wording


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _same(want: Any, have: Any) -> bool:
    if want is None or have is None:
        return want is None and have is None
    if (
        isinstance(want, (int, float))
        and isinstance(have, (int, float))
        and not isinstance(want, bool)
    ):
        return float(want) == float(have)
    return str(want) == str(have)


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {what} '{name}'{hint}"
