"""Every user-facing exception of gridcredit.

A message says what went wrong, where (``file:line:col`` or the record), and
how to fix it. The CLI turns these into a clean message and an exit code;
nothing a user can cause ends in a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about an input file, located at ``file:line:col`` (1-based)."""

    file: str
    line: int
    col: int
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"


class GridcreditError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(GridcreditError):
    """The command was called wrongly (exit 2)."""

    exit_code = 2


class InputError(GridcreditError):
    """An input file or record cannot be used."""


class SchemeError(GridcreditError):
    """The rules folder has errors; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PeriodClosedError(GridcreditError):
    """A closed month was asked to change."""
