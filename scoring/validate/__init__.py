"""Check a scheme's ``rules/`` folder: JSON Schema first, then meaning.

``check_scheme`` runs in two passes over what ``loader.read_scheme`` parsed:

1. every file against its JSON Schema (Draft 2020-12, shipped in
   ``scoring/schemas``), each error turned into plain English and located at
   the YAML node (``file:line:col``);
2. semantic checks (references between files, tier bands, operators against
   attribute types, rule versions, durations ...) on the files that passed
   pass 1. Names other files define (groups, tiers, event types, rule ids) are
   gathered leniently from every file that could be read, so a schema error
   in one file never causes a flood of "unknown ..." errors in another.

Every message says what is wrong, where (the rule, tier or item it concerns)
and how to fix it. All problems of all files are collected in one run.

The package, by concern: ``schema`` (pass 1 and its explanations),
``messages`` (where a problem is and how it is worded), ``base`` (names the
files define, gathered leniently, and the small checks every part uses),
``scheme`` (scheme.yaml, jurisdictions, events, assessments, catalog),
``rules`` (packs, rule versions, points) and ``conditions`` (``when`` tests
against attribute types).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import Problem
from .rules import _RuleChecks
from .schema import _schema_name_for, explain_schema_error, schema_problems
from .scheme import _SchemeChecks

__all__ = ["check_scheme", "explain_schema_error", "schema_problems", "validate_scheme"]


# --------------------------------------------------------------------------
# entry points


def validate_scheme(path: str | Path) -> list[Problem]:
    """Read and check a scheme folder; YAML problems and check problems, sorted."""
    from ..errors import SchemeError
    from ..loader import read_scheme

    try:
        raw = read_scheme(path)
    except SchemeError as e:
        return list(e.problems)
    from ..plugins import build_plugins, plugins_dir_of

    problems = list(raw.problems)
    # the same plugins load_scheme builds: a scheme's own operator is known here too
    problems += check_scheme(raw, plugins=build_plugins(plugins_dir_of(raw.root)))
    return sorted(set(problems))


def check_scheme(raw: Any, plugins: Any = None) -> list[Problem]:
    """Schema and semantic checks of a ``RawScheme``; every problem found, sorted.

    ``plugins``: the scheme's :class:`scoring.plugins.Plugins` (default: built
    from the repository's ``plugins/``), whose operators, points forms and
    metrics the rules may use.
    """
    if plugins is None:
        from ..plugins import build_plugins, plugins_dir_of

        plugins = build_plugins(plugins_dir_of(raw.root))
    problems: list[Problem] = []
    passed: set[str] = set()
    for display, data in raw.files.items():
        schema_name = _schema_name_for(raw, display)
        if schema_name is None:
            passed.add(display)
            continue
        found = schema_problems(display, data, schema_name, plugins.operators)
        problems += found
        if not any(p.severity == "error" for p in found):
            passed.add(display)
    problems += _Semantics(raw, passed, plugins).run()
    return _once_per_default(raw, sorted(set(problems)))


def _default_spots(raw: Any) -> set[tuple[str, int, int]]:
    """Every ``file, line, col`` inside a ``defaults:`` block (scheme.yaml or a pack)."""
    spots: set[tuple[str, int, int]] = set()

    def walk(file: str, node: Any) -> None:
        for attr in ("key_pos", "val_pos"):
            spots.update((file, *pos) for pos in (getattr(node, attr, None) or {}).values())
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        for child in children:
            walk(file, child)

    for file in [raw.scheme_file, *raw.pack_files()]:
        data = raw.files.get(file)
        if isinstance(data, dict) and isinstance(data.get("defaults"), dict):
            walk(file, data["defaults"])
    return spots


_RULE_NAME = re.compile(r"rule '[^']*'")


def _once_per_default(raw: Any, problems: list[Problem]) -> list[Problem]:
    """A mistake in ``defaults:`` is merged into every rule that inherits it, and each copy
    keeps the position of the defaults line: report it once there, not once per rule."""
    spots = _default_spots(raw)
    if not spots:
        return problems
    at: dict[tuple[str, int, int], list[Problem]] = {}
    for p in problems:
        if (p.file, p.line, p.col) in spots:
            at.setdefault((p.file, p.line, p.col), []).append(p)
    drop: set[Problem] = set()
    for here in at.values():
        named = [p for p in here if "'defaults." in p.message]
        seen: set[tuple[str, str]] = set()
        for p in here:
            said = (p.severity, _RULE_NAME.sub("rule", p.message))
            if (named and p not in named) or said in seen:
                drop.add(p)
            seen.add(said)
    return [p for p in problems if p not in drop]


class _Semantics(_SchemeChecks, _RuleChecks):
    """Pass 2: every semantic check, in the order ``run`` gives."""

    # -- run ----------------------------------------------------------------

    def run(self) -> list[Problem]:
        if self.ok(self.scheme_file):
            self.check_scheme_file()
        jfile = self.raw.jurisdictions_file()
        if self.ok(jfile):
            self.check_jurisdictions(jfile)
        if self.ok(self.events_file):
            self.check_events()
        if self.events_missing and self.rules:
            self.problems.append(
                Problem(
                    self.events_file,
                    1,
                    1,
                    "events.yaml is missing: every event type a rule scores must be declared"
                    " there with its attributes; create it (see docs/design.md)",
                )
            )
        self.check_rules()
        afile = self.raw.display("assessments.yaml")
        if self.ok(afile):
            self.check_assessments(afile)
        cfile = self.raw.display("catalog.yaml")
        if self.ok(cfile):
            self.check_catalog(cfile)
        return self.problems
