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
"""

from __future__ import annotations

import difflib
import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import sqlite_utils

from ..errors import GridcreditError, SchemeError
from ..model import Rule, Scheme, TablePoints
from ..yamlsafe import PosDict, PosList, YamlProblem, load_yaml

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


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    file: str  # as displayed (relative to the working directory when possible)
    path: Path
    line: int
    name: str
    data: PosDict
    defaults: dict[str, Any]
    rules_dir: Path | None  # from ``rules:`` in the file or the scenario; None: the caller's

    @property
    def is_table(self) -> bool:
        return "table" in self.data

    def keywords(self, scheme: Scheme | None = None) -> list[str]:
        """What ``-k`` matches: the scenario's name, its file, every rule id it names
        (``rule:`` anywhere in it) and, given the scheme, the ids of the rules that
        score the event types it records (found in review: ``-k res-fire-lane``
        selected nothing, although two scenarios test that rule)."""
        words = [self.name, self.path.stem, self.path.name]
        types: set[str] = set()
        stack: list[Any] = [self.data, self.defaults]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, found in (("rule", None), ("type", types)):
                    value = node.get(key)
                    if isinstance(value, str):
                        if found is not None:
                            found.add(value)
                        elif value not in words:
                            words.append(value)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        if scheme is not None and types:
            words += sorted({r.id for r in scheme.rules if types & set(r.on)} - set(words))
        return words

    def row_labels(self) -> list[tuple[int, str]]:
        """(line, label) of each table row."""
        t = self.data.get("table") or {}
        cols = list(t.get("columns") or [])
        rows = t.get("rows") or []
        out = []
        for i, row in enumerate(rows):
            line = _line(rows, i, self.line)
            inputs = [
                f"{c.removeprefix('attrs.')}={_show(v)}"
                for c, v in zip(cols, row if isinstance(row, list) else [])
                if c not in OUTPUT_COLUMNS
            ]
            out.append((line, f"row {i + 1}: {', '.join(inputs)}" if inputs else f"row {i + 1}"))
        return out


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _line(container: Any, key: Any, default: int = 0) -> int:
    if isinstance(container, PosDict) and key in container.val_pos:
        return container.val_pos[key][0]
    if (
        isinstance(container, PosList)
        and isinstance(key, int)
        and 0 <= key < len(container.item_pos)
    ):
        return container.item_pos[key][0]
    pos = getattr(container, "pos", None)
    return pos[0] if pos else default


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


_SCHEMA: dict[str, Any] | None = None


def _validator(defn: str) -> Any:
    global _SCHEMA
    from importlib import resources

    from jsonschema import Draft202012Validator

    if _SCHEMA is None:
        text = (
            resources.files("scoring")
            .joinpath("schemas", "scenario.schema.json")
            .read_text("utf-8")
        )
        _SCHEMA = json.loads(text)
    schema = {k: v for k, v in _SCHEMA.items() if k != "$id"}
    defs = dict(schema["$defs"])
    head = dict(defs["file"])
    head["properties"] = {k: v for k, v in head["properties"].items() if k != "scenarios"}
    head["required"] = []
    defs["file_head"] = head
    schema = {"$defs": defs, "$ref": f"#/$defs/{defn}"}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _schema_failures(data: Any, defn: str, file: str, scenario: str) -> list[Failure]:
    """What the scenario schema refuses, in the validator's words, at its line."""
    from ..validate import explain_schema_error

    errors = sorted(
        _validator(defn).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
    )
    # an unknown key (a typo) explains the other complaints about the same mapping
    typo_at = {tuple(e.absolute_path) for e in errors if e.validator == "additionalProperties"}
    errors = [
        e
        for e in errors
        if e.validator == "additionalProperties" or tuple(e.absolute_path) not in typo_at
    ]
    patterned = {tuple(e.absolute_path) for e in errors if e.validator == "pattern"}
    out = []
    for e in errors:
        if e.validator == "format" and tuple(e.absolute_path) in patterned:
            continue  # '2024-3' fails the pattern too: said once
        if (
            e.validator == "required"
            and not e.absolute_path
            and defn == "scenario"
            and "name" in data
        ):
            line = getattr(data, "pos", (0, 0))[0]
            out.append(
                Failure(
                    file,
                    line,
                    scenario,
                    "a scenario needs 'expect' (what must come out) or 'table'",
                )
            )
            continue
        for p in explain_schema_error(e, file, data):
            out.append(Failure(file, p.line, scenario, p.message))
    return out[:8]


def load_scenario_file(path: str | Path) -> tuple[list[Scenario], list[Failure]]:
    """Read one scenario file: its scenarios, and the problems that stop any of them running."""
    path = Path(path)
    file = _display(path)
    try:
        data = load_yaml(path, file)
    except YamlProblem as e:
        p = e.problem
        return [], [Failure(file, p.line, "", p.message)]
    if not isinstance(data, PosDict):
        msg = (
            "a scenario file must be a mapping with 'name' (one scenario) or 'scenarios:' (a list)"
        )
        return [], [Failure(file, 1, "", msg)]
    base = path.parent
    file_rules = base / data["rules"] if isinstance(data.get("rules"), str) else None
    fails: list[Failure] = []
    if "scenarios" in data:
        head = PosDict({k: v for k, v in data.items() if k != "scenarios"})
        head.pos, head.key_pos, head.val_pos = data.pos, data.key_pos, data.val_pos
        problems = _schema_failures(head, "file_head", file, "")
        scs = data["scenarios"]
        if not isinstance(scs, PosList) or not scs:
            problems.append(
                Failure(
                    file, _line(data, "scenarios", 1), "", "'scenarios' must be a list of scenarios"
                )
            )
        if problems:
            return [], problems
        defaults = dict(data.get("defaults") or {})
        items = []
        for sc, (line, _) in zip(scs, scs.item_pos):
            name = (
                str(sc.get("name", f"scenario at line {line}"))
                if isinstance(sc, dict)
                else f"line {line}"
            )
            bad = _schema_failures(sc, "scenario", file, name)
            if bad:
                fails.extend(bad)
            else:
                items.append((sc, line))
    else:
        problems = _schema_failures(data, "scenario", file, str(data.get("name", "")))
        if problems:
            return [], problems
        defaults = {}
        items = [(data, data.pos[0])]
    out = []
    names: dict[str, int] = {}
    for sc, line in items:
        name = str(sc["name"])
        if name in names:
            fails.append(Failure(file, line, name, f"another scenario in this file has the same name"
                                 f" (line {names[name]}); give each scenario its own name"))  # fmt: skip
        names[name] = line
        d = {**defaults, **dict(sc.get("defaults") or {})}
        rules = base / sc["rules"] if isinstance(sc.get("rules"), str) else file_rules
        out.append(Scenario(file, path, line, name, sc, d, rules))
    return out, fails


def scenario_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files named or found under the folders named (``*.yaml``/``*.yml``, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [
                f
                for f in sorted(p.rglob("*.y*ml"))
                if f.suffix in (".yaml", ".yml") and not (SKIP_DIRS & set(f.relative_to(p).parts))
            ]
            out.extend(found)
        else:
            out.append(p)
    return out


def is_scenario_file(path: Path) -> bool:
    """A YAML file inside a ``scenarios`` folder and not under ``bad``/``fixtures``."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    parts = set(path.parts[:-1])
    return "scenarios" in parts and not (SKIP_DIRS & parts)


def find_scheme_for(path: Path) -> Path | None:
    """Walk up from a scenario file to the first folder holding ``rules/scheme.yaml``."""
    for d in [path.parent, *path.parents]:
        if (d / "rules" / "scheme.yaml").is_file():
            return d / "rules"
    return None


# --------------------------------------------------------------------------- -k selection


def _tokens(expr: str) -> list[str]:
    out, word = [], ""
    for ch in expr:
        if ch in "() \t":
            if word:
                out.append(word)
                word = ""
            if ch in "()":
                out.append(ch)
        else:
            word += ch
    if word:
        out.append(word)
    return out


def matches_select(expr: str | None, keywords: Sequence[str]) -> bool:
    """pytest-style ``-k``: words match as case-insensitive substrings; ``and or not ( )``."""
    if not expr or not expr.strip():
        return True
    words = [k.lower() for k in keywords]
    toks = _tokens(expr)
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise _SelectError(f"-k {expr!r}: the expression ends too early")
        pos += 1
        return toks[pos - 1]

    def or_() -> bool:
        v = and_()
        while peek() == "or":
            take()
            v = and_() or v
        return v

    def and_() -> bool:
        v = not_()
        while peek() == "and":
            take()
            v = not_() and v
        return v

    def not_() -> bool:
        if peek() == "not":
            take()
            return not not_()
        t = take()
        if t == "(":
            v = or_()
            if peek() != ")":
                raise _SelectError(f"-k {expr!r}: a '(' is not closed")
            if take() != ")":
                raise _SelectError(f"-k {expr!r}: a '(' is not closed")
            return v
        if t in (")", "and", "or"):
            raise _SelectError(f"-k {expr!r}: unexpected '{t}'")
        t = t.lower()
        return any(t in w for w in words)

    v = or_()
    if pos != len(toks):
        raise _SelectError(f"-k {expr!r}: unexpected '{toks[pos]}'")
    return v


class _SelectError(GridcreditError):
    exit_code = 2


# --------------------------------------------------------------------------- the runner


class ScenarioRunner:
    """Runs scenarios against one scheme, loaded and compiled once; collects coverage."""

    def __init__(self, rules_dir: str | Path):
        from ..compile import compile_scheme
        from ..ingest import sync_grids
        from ..ledger import memory_db
        from ..loader import find_rules_dir, load_scheme

        self.rules_dir = find_rules_dir(rules_dir)
        self.scheme: Scheme = load_scheme(self.rules_dir)
        self.compiled = compile_scheme(self.scheme)
        self.template = memory_db()
        sync_grids(self.template, self.scheme)
        self.titles = self.scheme.rule_titles()
        self.coverage = _CoverageTracker(self.scheme)
        self._tables: dict[tuple[str, int], list[CaseResult]] = {}

    # -- helpers

    def fresh_db(self) -> sqlite_utils.Database:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.template.conn.backup(conn)
        return sqlite_utils.Database(conn)

    def rule_ref(self, rule_id: str) -> str:
        title = self.titles.get(rule_id)
        if title is None:
            a = next((a for a in self.scheme.assessments if a.id == rule_id), None)
            if a is not None:
                return f"assessment {rule_id} ({a.title})"
            item = self.scheme.catalog.get(rule_id)
            if item is not None:
                return f"redemption {rule_id} ({item.title})"
            return rule_id
        return f"rule {rule_id} ({title})"

    def limit_text(self, rule_id: str) -> str:
        versions = [r for r in self.scheme.rule_versions(rule_id) if r.limit]
        if not versions:
            return ""
        lim = versions[-1].limit
        assert lim is not None
        parts = []
        if lim.max_points is not None:
            parts.append(f"cap {lim.max_points} points/{lim.per}")
        if lim.max_count is not None:
            parts.append(f"at most {lim.max_count} times/{lim.per}")
        return ", ".join(parts)

    # -- one scenario

    def run(self, sc: Scenario, *, row: int | None = None) -> list[CaseResult]:
        """Run one scenario; a table scenario gives one result per row (``row``: only that one)."""
        if sc.is_table:
            key = (sc.file, sc.line)
            if key not in self._tables:
                self._tables[key] = self._run_table(sc)
            results = self._tables[key]
            return results if row is None else [results[min(row, len(results) - 1)]]
        t0 = time.perf_counter()
        res = CaseResult(sc.file, sc.line, sc.name)
        try:
            self._run_plain(sc, res)
        except GridcreditError as e:
            res.failures.append(Failure(sc.file, sc.line, sc.name, str(e)))
        res.seconds = time.perf_counter() - t0
        return [res]

    def _fail(self, sc: Scenario, line: int, message: str) -> Failure:
        return Failure(sc.file, line, sc.name, message)

    def _subjects(self, sc: Scenario, fails: list[Failure]) -> tuple[list[dict], list[int]]:
        subs, lines = [], []
        raw = sc.data.get("subjects") or []
        d = sc.defaults
        for i, s in enumerate(raw):
            rec: dict[str, Any] = {"id": s} if isinstance(s, str) else dict(s)
            for k in ("groups", "grid", "tags"):
                if k not in rec and k in d:
                    rec[k] = d[k]
            subs.append(rec)
            lines.append(_line(raw, i, sc.line))
        return subs, lines

    def _events(self, sc: Scenario, subjects: list[dict]) -> tuple[list[dict], list[int]]:
        evs, lines = [], []
        raw = sc.data.get("events") or []
        only = subjects[0]["id"] if len(subjects) == 1 else None
        for i, e in enumerate(raw):
            rec = dict(e)
            rec.setdefault("id", f"e{i + 1:04d}")
            if "subject" not in rec and only is not None:
                rec["subject"] = only
            if isinstance(rec.get("attrs"), dict):
                rec["attrs"] = dict(rec["attrs"])
            evs.append(rec)
            lines.append(_line(raw, i, sc.line))
        return evs, lines

    def _ingest(
        self, sc: Scenario, db: sqlite_utils.Database, records: list[dict], lines: list[int],
        kind: str, fails: list[Failure],
    ) -> None:  # fmt: skip
        from ..ingest import ingest_records

        if not records:
            return
        b = ingest_records(db, self.scheme, records, file=sc.file, kind=kind)
        what = "subject" if kind == "subjects" else "event"
        for line, rid, reason in db.execute(
            "SELECT line, record_id, reason FROM rejects WHERE batch = ? AND reason NOT LIKE 'warning:%'",
            [b.batch],
        ).fetchall():
            at = lines[line - 1] if line and 0 < line <= len(lines) else sc.line
            fails.append(
                self._fail(sc, at, f"{what} {rid or ''} was rejected: {reason}".replace("  ", " "))
            )

    def _ingest_file(
        self, sc: Scenario, db: sqlite_utils.Database, key: str, kind: str, fails: list[Failure]
    ) -> None:
        from ..ingest import ingest_file

        name = sc.data.get(key)
        if not isinstance(name, str):
            return
        p = sc.path.parent / name
        line = _line(sc.data, key, sc.line)
        if not p.is_file():
            fails.append(self._fail(sc, line, f"{key} {name}: no such file next to the scenario"))
            return
        b = ingest_file(db, self.scheme, p, kind=kind, progress=False, workers=0)
        for fline, rid, reason in db.execute(
            "SELECT line, record_id, reason FROM rejects WHERE batch = ? AND reason NOT LIKE 'warning:%'",
            [b.batch],
        ).fetchall():
            fails.append(
                self._fail(sc, line, f"{_display(p)}:{fline}: {rid or ''} rejected: {reason}")
            )

    def _setup(self, sc: Scenario, res: CaseResult) -> tuple[sqlite_utils.Database, dict[str, Any]]:
        """Fresh ledger with the scenario's subjects and events, scored and assessed."""
        from ..assess import run_assessment
        from ..evaluate import score

        db = self.fresh_db()
        fails = res.failures
        subjects, slines = self._subjects(sc, fails)
        events, elines = self._events(sc, subjects)
        self._ingest(sc, db, subjects, slines, "subjects", fails)
        self._ingest_file(sc, db, "subjects_file", "subjects", fails)
        self._ingest(sc, db, events, elines, "events", fails)
        self._ingest_file(sc, db, "events_file", "events", fails)
        score(db, self.scheme, self.compiled)
        ev_line = {e["id"]: ln for e, ln in zip(events, elines)}
        for rid, reason in db.execute(
            "SELECT record_id, reason FROM rejects WHERE batch = 0"
        ).fetchall():
            fails.append(self._fail(sc, ev_line.get(rid, sc.line), f"event {rid}: {reason}"))
        assess = sc.data.get("assess") or []
        for i, period in enumerate(assess):
            try:
                run_assessment(db, self.scheme, str(period))
            except GridcreditError as e:
                fails.append(self._fail(sc, _line(assess, i, sc.line), f"assess {period}: {e}"))
        self.coverage.collect(db)
        ctx: dict[str, Any] = {"subjects": {s["id"] for s in subjects}, "events": ev_line}
        ctx["subjects"] |= {r[0] for r in db.execute("SELECT id FROM subjects").fetchall()}
        ctx["events"] = {**{r[0]: sc.line for r in db.execute("SELECT id FROM events")}, **ev_line}
        return db, ctx

    def _as_of(self, sc: Scenario, item: Any, db: sqlite_utils.Database) -> int:
        from ..ledger import default_as_of

        text = item.get("as_of") if isinstance(item, dict) else None
        text = text or sc.data.get("as_of")
        if text:
            return self.scheme.clock.end_of_day(str(text))
        return default_as_of(db, self.scheme)

    def _run_plain(self, sc: Scenario, res: CaseResult) -> None:
        db, ctx = self._setup(sc, res)
        if res.failures:  # inputs did not go in as written: expectations would mislead
            return
        expect = sc.data.get("expect") or {}
        check = _Checker(self, sc, db, ctx, res.failures)
        for key, fn in (
            ("balances", check.balance),
            ("entries", check.entry),
            ("trial_entries", check.trial_entry),
            ("redemptions", check.redemption),
            ("lists", check.list_member),
            ("ranks", check.rank),
            ("assessments", check.assessment),
        ):
            items = expect.get(key) or []
            for i, item in enumerate(items):
                fn(item, _line(items, i, sc.line))
        res.failures.sort(key=lambda f: f.line)

    # -- table scenarios

    def _run_table(self, sc: Scenario) -> list[CaseResult]:
        t0 = time.perf_counter()
        t = sc.data["table"]
        labels = sc.row_labels()
        results = [CaseResult(sc.file, line, f"{sc.name} [{label}]") for line, label in labels]
        setup = CaseResult(sc.file, sc.line, sc.name)
        rule_id = t.get("rule")
        versions = self.scheme.rule_versions(rule_id) if rule_id else []
        tline = _line(sc.data, "table", sc.line)
        if rule_id and not versions:
            setup.failures.append(
                self._fail(sc, _line(t, "rule", tline), _unknown("rule", rule_id, self.titles))
            )
        rule = versions[-1] if versions else None
        group = (
            t.get("group") or (t.get("subject") or {}).get("groups") or sc.defaults.get("groups")
        )
        if isinstance(group, list):
            group = group[0] if group else None
        group = group or (rule.group if rule else None)
        if not group or group not in self.scheme.groups:
            setup.failures.append(self._fail(sc, tline, _unknown("group", str(group), self.scheme.groups)
                                             if group else "table needs 'group' (or 'rule')"))  # fmt: skip
        if setup.failures:
            for r in results:
                r.failures = list(setup.failures)
            return results
        cols = list(t["columns"])
        template = dict(t.get("event") or {})
        etype_default = template.get("type") or (rule.on[0] if rule else None)
        at_default = template.get("at") or _default_time(rule)
        subjects: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        expected: list[dict[str, Any]] = []
        for i, row in enumerate(t["rows"]):
            sid = f"T{i + 1:03d}"
            subj: dict[str, Any] = {"id": sid, "groups": [group]}
            for k in ("grid", "tags"):
                if k in sc.defaults:
                    subj[k] = sc.defaults[k]
            for k, v in (t.get("subject") or {}).items():
                subj[k] = v
            subj["groups"] = subj.get("groups") or [group]
            subj["id"] = sid
            attrs = dict(template.get("attrs") or {})
            ev: dict[str, Any] = {
                "id": f"row{i + 1:03d}",
                "type": etype_default,
                "subject": sid,
                "at": at_default,
            }
            exp: dict[str, Any] = {}
            if len(row) != len(cols):
                results[i].failures.append(self._fail(sc, labels[i][0], f"row has {len(row)} values"
                                                      f" but the table has {len(cols)} columns"))  # fmt: skip
            for c, v in zip(cols, row):
                if c in OUTPUT_COLUMNS:
                    exp[c] = v
                elif c == "at":
                    ev["at"] = v
                elif c == "type":
                    ev["type"] = v
                elif c == "subject.grid":
                    subj["grid"] = v
                elif c == "subject.tags":
                    subj["tags"] = v
                else:
                    attrs[c.removeprefix("attrs.")] = v
            ev["attrs"] = {k: v for k, v in attrs.items() if v is not None}
            subjects.append(subj)
            events.append(ev)
            expected.append(exp)
        scratch = CaseResult(sc.file, sc.line, sc.name)
        tsc = Scenario(sc.file, sc.path, sc.line, sc.name, PosDict(), sc.defaults, sc.rules_dir)
        db = self.fresh_db()
        self._ingest(tsc, db, subjects, [r.line for r in results], "subjects", scratch.failures)
        self._ingest(tsc, db, events, [r.line for r in results], "events", scratch.failures)
        from ..evaluate import score

        score(db, self.scheme, self.compiled)
        self.coverage.collect(db)
        for f in scratch.failures:  # a reject belongs to its row
            for r in results:
                if r.line == f.line:
                    r.failures.append(Failure(f.file, f.line, r.name, f.message))
        trial = bool(rule and rule.status == "trial")
        table = "trial_entries" if trial else "entries"
        as_of_text = t.get("as_of") or sc.data.get("as_of")
        for i, (r, exp) in enumerate(zip(results, expected)):
            if r.failures:
                continue
            eid, sid = events[i]["id"], subjects[i]["id"]
            sql = f"SELECT points, wallet, reason FROM {table} WHERE event = ?"
            params: list[Any] = [eid]
            if rule_id:
                sql += " AND rule = ?"
                params.append(rule_id)
            got = db.execute(sql, params).fetchall()
            actual: dict[str, Any] = {
                "points": sum(g[0] for g in got) if got else None,
                "wallet": sum(g[1] for g in got) if got else None,
                "reason": ",".join(sorted({g[2] for g in got})) if got else None,
            }
            if "score" in exp or "tier" in exp:
                from ..ledger import balances

                as_of = self.scheme.clock.end_of_day(str(as_of_text)) if as_of_text else None
                bal = balances(db, self.scheme, as_of=as_of, group=group, subject=sid)
                actual["score"] = bal[0].score if bal else None
                actual["tier"] = bal[0].tier if bal else None
            what = self.rule_ref(rule_id) if rule_id else "all rules"
            for c, want in exp.items():
                have = actual.get(c)
                if _same(want, have):
                    continue
                if c == "points" and have is None:
                    msg = f"expected {what} to give {_show(want)} points, but it did not match this event"
                elif c == "points" and want is None:
                    # have is not None: _same() accepted None against None above
                    msg = f"expected {what} not to match this event, but it gave {_signed(cast(int, have))}"
                else:
                    msg = f"expected {c} {_show(want)}, got {_show(have)} from {what}"
                    if c in ("points", "wallet") and actual.get("reason") == "capped":
                        msg += " (the match was capped: the period's limit was already used)"
                r.failures.append(Failure(r.file, r.line, r.name, msg))
        per = (time.perf_counter() - t0) / max(1, len(results))
        for r in results:
            r.seconds = per
        return results


def _default_time(rule: Rule | None) -> str:
    """A time inside the newest version of the rule (its first day, 10:00); else 2024-06-03."""
    if rule is not None and rule.effective_text[0]:
        return f"{rule.effective_text[0]}T10:00:00"
    return "2024-06-03T10:00:00"


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


# --------------------------------------------------------------------------- expectations


class _Checker:
    def __init__(
        self,
        runner: ScenarioRunner,
        sc: Scenario,
        db: sqlite_utils.Database,
        ctx: dict,
        fails: list[Failure],
    ):
        self.r = runner
        self.scheme = runner.scheme
        self.sc = sc
        self.db = db
        self.ctx = ctx
        self.fails = fails

    def fail(self, line: int, msg: str) -> None:
        self.fails.append(Failure(self.sc.file, line, self.sc.name, msg))

    def _subject_ok(self, sid: str, line: int) -> bool:
        if sid not in self.ctx["subjects"]:
            self.fail(line, _unknown("subject", sid, self.ctx["subjects"])
                      + " (not among this scenario's subjects)")  # fmt: skip
            return False
        return True

    def _group_of(self, item: dict, line: int) -> str | None:
        sid = str(item["subject"])
        grp = item.get("group")
        if grp is not None:
            if grp not in self.scheme.groups:
                self.fail(line, _unknown("group", str(grp), self.scheme.groups))
                return None
            return str(grp)
        gs = [r[0] for r in self.db.execute("SELECT grp FROM memberships WHERE subject = ?", [sid])]
        if len(gs) == 1:
            return gs[0]
        self.fail(line, f"subject {sid} is in groups {', '.join(gs)}; say which with 'group:'")
        return None

    def _rule_ok(self, rule: Any, line: int) -> bool:
        known = (
            set(self.r.titles) | {a.id for a in self.scheme.assessments} | set(self.scheme.catalog)
        )
        if rule is not None and rule not in known:
            self.fail(line, _unknown("rule", str(rule), self.r.titles))
            return False
        return True

    def _who(self, sid: str, grp: str) -> str:
        return f"{sid} ({grp})"

    def _explain(self, sid: str, grp: str, as_of: int) -> str:
        """The rules behind a balance, biggest first: what a person needs to see to fix it."""
        rows = self.db.execute(
            "SELECT rule, period, SUM(points), SUM(wallet), SUM(reason = 'capped') FROM entries"
            " WHERE subject = ? AND grp = ? AND at <= ? AND (expires_at IS NULL OR expires_at > ?)"
            " GROUP BY rule, period ORDER BY ABS(SUM(points)) DESC, rule LIMIT 6",
            [sid, grp, as_of, as_of],
        ).fetchall()
        parts = []
        for rule, period, pts, wal, capped in rows:
            if not pts and not wal and not capped:
                continue
            text = f"{self.r.rule_ref(rule)} gave {_signed(pts)}"
            if wal != pts:
                text += f" (wallet {_signed(wal)})"
            text += f" in {period}"
            extra = []
            lim = self.r.limit_text(rule)
            if lim:
                extra.append(lim)
            if capped:
                extra.append(f"{capped} match{'es' if capped > 1 else ''} capped")
            if extra:
                text += f" ({'; '.join(extra)})"
            parts.append(text)
        g = self.scheme.groups[grp]
        if not parts:
            return f" — no entries count for {sid} in {grp} at that date (base {g.base_score})"
        return " — " + "; ".join(parts)

    def balance(self, item: dict, line: int) -> None:
        from ..ledger import balances

        sid = str(item["subject"])
        if not self._subject_ok(sid, line):
            return
        grp = self._group_of(item, line)
        if grp is None:
            return
        as_of = self.r._as_of(self.sc, item, self.db)
        got = balances(self.db, self.scheme, as_of=as_of, group=grp, subject=sid)
        if not got:
            self.fail(line, f"{sid} has no {grp} account (is {grp} among its groups?)")
            return
        b = got[0]
        when = f" as of {item['as_of']}" if item.get("as_of") else ""
        for key in ("score", "wallet", "tier"):
            if key not in item:
                continue
            want, have = item[key], getattr(b, key)
            if _same(want, have):
                continue
            msg = f"expected {self._who(sid, grp)} {key} {_show(want)}{when}, got {_show(have)}"
            if key == "tier":
                msg += f" (score {b.score}"
                msg += f", held at most {b.graded} by direct grading)" if b.graded else ")"
            self.fail(item.val_pos.get(key, (line,))[0] if isinstance(item, PosDict) else line,
                      msg + self._explain(sid, grp, as_of))  # fmt: skip

    def entry(self, item: dict, line: int, table: str = "entries") -> None:
        sid = str(item["subject"])
        if not self._subject_ok(sid, line):
            return
        rule = item.get("rule")
        if not self._rule_ok(rule, line):
            return
        grp = item.get("group")
        if grp is not None and grp not in self.scheme.groups:
            self.fail(line, _unknown("group", str(grp), self.scheme.groups))
            return
        ev = item.get("event")
        if ev is not None and ev not in self.ctx["events"]:
            self.fail(line, _unknown("event", str(ev), self.ctx["events"]))
            return
        where, params = ["subject = ?"], [sid]
        for key, col in (("group", "grp"), ("rule", "rule"), ("event", "event")):
            if item.get(key) is not None:
                where.append(f"{col} = ?")
                params.append(item[key])
        rows = self.db.execute(
            f"SELECT points, wallet, reason, event, period, grp, rule FROM {table} WHERE {' AND '.join(where)}"
            " ORDER BY at, id",
            params,
        ).fetchall()
        keep = [
            r for r in rows
            if ("points" not in item or r[0] == item["points"]) and ("wallet" not in item or r[1] == item["wallet"])
            and (item.get("reason") is None or r[2] == item["reason"])
        ]  # fmt: skip
        want_n = item.get("count")
        if (want_n is None and keep) or (want_n is not None and len(keep) == want_n):
            return
        kind = "trial entr" if table == "trial_entries" else "entr"
        desc = [f"for {sid}"]
        if grp:
            desc.append(f"in {grp}")
        if rule:
            desc.append(f"from {self.r.rule_ref(rule)}")
        if ev:
            desc.append(f"on event {ev}")
        shape = []
        if "points" in item:
            shape.append(f"points {_signed(item['points'])}")
        if "wallet" in item:
            shape.append(f"wallet {_signed(item['wallet'])}")
        if item.get("reason"):
            shape.append(f"reason {item['reason']}")
        if want_n is None:
            head = f"expected {'a trial entry' if table == 'trial_entries' else 'an entry'}"
        else:
            head = f"expected {want_n} {kind}{'y' if want_n == 1 else 'ies'}"
        msg = f"{head} {' '.join(desc)}" + (f" with {', '.join(shape)}" if shape else "")
        msg += f", got {len(keep)}"
        if rows:
            seen = [
                f"{_signed(p)}{'' if w == p else f' (wallet {_signed(w)})'} {reason} on {e} in {per}"
                + ("" if rule else f" by {ru}")
                for p, w, reason, e, per, g, ru in rows[:6]
            ]
            msg += "; entries found: " + ", ".join(seen)
            if len(rows) > 6:
                msg += f" … ({len(rows)} in all)"
        elif rule:
            msg += f"; {self.r.rule_ref(rule)} wrote no {kind}ies for {sid}"
        self.fail(line, msg)

    def trial_entry(self, item: dict, line: int) -> None:
        self.entry(item, line, table="trial_entries")

    def redemption(self, item: dict, line: int) -> None:
        ev = str(item["event"])
        if ev not in self.ctx["events"]:
            self.fail(line, _unknown("event", ev, self.ctx["events"]))
            return
        row = self.db.execute(
            "SELECT outcome, reason_code, item, subject, grp, cost FROM redemptions WHERE event = ?",
            [ev],
        ).fetchone()
        if row is None:
            self.fail(line, f"event {ev} made no redemption (is it of type redeem?)")
            return
        outcome, code, it, sid, grp, cost = row
        want = (
            item["outcome"],
            item.get("reason_code", code if item["outcome"] == "rejected" else None),
        )
        if (outcome, code) == want:
            return
        title = self.scheme.catalog[it].title if it in self.scheme.catalog else it
        got = outcome + (f" ({code})" if code else "")
        exp = item["outcome"] + (f" ({item['reason_code']})" if item.get("reason_code") else "")
        msg = f"expected redemption {ev} of {it} ({title}) by {sid} to be {exp}, got {got}"
        if grp in self.scheme.groups:
            from ..ledger import balances

            at = self.db.execute("SELECT at FROM events WHERE id = ?", [ev]).fetchone()[0]
            b = balances(self.db, self.scheme, as_of=at, group=grp, subject=sid)
            if b:
                # the wallet before the request: without its own debit (found in review)
                (own,) = self.db.execute(
                    "SELECT COALESCE(SUM(wallet), 0) FROM entries WHERE event = ? AND subject = ?"
                    " AND grp = ?",
                    [ev, sid, grp],
                ).fetchone()
                msg += (
                    f" — just before it {sid} ({grp}) had score {b[0].score}, tier {b[0].tier},"
                    f" wallet {b[0].wallet - own}; cost {cost}"
                )
        self.fail(line, msg)

    def list_member(self, item: dict, line: int) -> None:
        from ..lists import list_members

        lid, sid = str(item["list"]), str(item["subject"])
        if lid not in {ld.id for ld in self.scheme.lists}:
            self.fail(line, _unknown("list", lid, [ld.id for ld in self.scheme.lists]))
            return
        if not self._subject_ok(sid, line):
            return
        as_of = self.r._as_of(self.sc, item, self.db)
        members = [
            m for m in list_members(self.db, self.scheme, lid, as_of=as_of) if m.subject == sid
        ]
        ld = next(ld for ld in self.scheme.lists if ld.id == lid)
        when = f" as of {item['as_of']}" if item.get("as_of") else ""
        if bool(members) != bool(item["member"]):
            if members:
                why = "; ".join(r.text or r.heading for m in members for r in m.reasons)
                self.fail(
                    line, f"expected {sid} not on list {lid} ({ld.title}){when}, but it is: {why}"
                )
            else:
                from ..ledger import balances

                bs = balances(self.db, self.scheme, as_of=as_of, subject=sid)
                state = ", ".join(f"{b.group} score {b.score} tier {b.tier}" for b in bs)
                self.fail(
                    line,
                    f"expected {sid} on list {lid} ({ld.title}){when}, but it is not ({state})",
                )
            return
        text = item.get("reason")
        if text and members:
            reasons = [f"{r.heading} {r.text}" for m in members for r in m.reasons]
            if not any(text in r for r in reasons):
                self.fail(line, f"expected a reason containing '{text}' for {sid} on {lid}; reasons: "
                          + "; ".join(reasons))  # fmt: skip

    def rank(self, item: dict, line: int) -> None:
        from ..rank import grid_rankings, rankings

        as_of = self.r._as_of(self.sc, item, self.db)
        month = str(item.get("month") or self.scheme.clock.month(as_of))
        within = item.get("within", "scheme")
        have: int | None
        if "grid" in item:
            gid = str(item["grid"])
            grid_group = str(item.get("group", "residents"))
            grid_tables = grid_rankings(
                self.db, self.scheme, month, group=grid_group, within=within
            )
            grid_rows = [r for gt in grid_tables for r in gt.rows if r.grid == gid]
            have = grid_rows[0].rank if grid_rows else None
            who = f"grid {gid}"
        else:
            sid = str(item["subject"])
            if not self._subject_ok(sid, line):
                return
            grp = self._group_of(item, line)
            if grp is None:
                return
            tables = rankings(
                self.db, self.scheme, month, group=grp, by=item.get("by", "score"), within=within
            )
            rows = [r for t in tables for r in t.rows if r.subject == sid]
            have = rows[0].rank if rows else None
            who = self._who(sid, grp)
        if have == item["rank"]:
            return
        ranked = ""
        if "grid" not in item:
            table = next(
                (t for t in tables if any(r.subject == item["subject"] for r in t.rows)), None
            )
            if table:
                ranked = " — " + ", ".join(
                    f"{r.rank}. {r.subject} {r.score}" for r in table.rows[:8]
                )
        self.fail(line, f"expected {who} rank {item['rank']} in {month} (within {within}), got"
                  f" {have if have is not None else 'not ranked'}{ranked}")  # fmt: skip

    def assessment(self, item: dict, line: int) -> None:
        aid = str(item["assessment"])
        if aid not in {a.id for a in self.scheme.assessments}:
            self.fail(line, _unknown("assessment", aid, [a.id for a in self.scheme.assessments]))
            return
        period, scope = str(item["period"]), str(item["scope_id"])
        row = self.db.execute(
            "SELECT value, rank, selected FROM assessment_results WHERE assessment = ? AND period = ?"
            " AND scope_id = ?",
            [aid, period, scope],
        ).fetchone()
        if row is None:
            ran = [str(p) for p in self.sc.data.get("assess") or []]
            hint = "" if period in ran else f"; add {period} to 'assess:'"
            self.fail(line, f"no result of assessment {aid} for {scope} in {period}{hint}")
            return
        value, rank, selected = row
        got = {"value": value, "rank": rank, "selected": bool(selected)}
        for key in ("selected", "value", "rank"):
            if key in item and not _same(item[key], got[key]):
                self.fail(line, f"expected assessment {aid} {period} {scope} {key} {_show(item[key])},"
                          f" got {_show(got[key])} (value {_show(value)}, rank {_show(rank)})")  # fmt: skip


# --------------------------------------------------------------------------- coverage


class _CoverageTracker:
    """Which rule versions, escalation steps and by-table values the scenarios exercised."""

    def __init__(self, scheme: Scheme):
        self.scheme = scheme
        self.items: list[CoverageItem] = []
        self.versions: dict[str, list[tuple[Rule, CoverageItem]]] = defaultdict(list)
        self.steps: dict[int, list[CoverageItem]] = {}
        self.table_items: dict[tuple[int, str], CoverageItem] = {}
        self.by_rules: set[str] = set()
        self.esc_rules: set[str] = set()
        for rule in scheme.rules:
            if rule.status == "retired":
                continue
            n = len(scheme.rule_versions(rule.id))
            label = rule.id
            if n > 1:
                f, u = rule.effective_text
                label += f" [{f or '…'} – {u or '…'}]"
            item = CoverageItem("rule", rule.id, label, rule.title, rule.src)
            self.items.append(item)
            self.versions[rule.id].append((rule, item))
            if rule.escalate:
                self.esc_rules.add(rule.id)
                self.steps[id(rule)] = []
                for i, pts in enumerate(rule.escalate.steps):
                    it = CoverageItem("step", rule.id, f"{label} step {i + 1} ({_signed(pts)})", rule.title,
                                      rule.key_src.get("escalate", rule.src))  # fmt: skip
                    self.steps[id(rule)].append(it)
                    self.items.append(it)
            if isinstance(rule.points, TablePoints):
                self.by_rules.add(rule.id)
                by = rule.points.by
                for k, v in rule.points.table.items():
                    it = CoverageItem("table", rule.id, f"{label} {by} = {_show(k)} ({_signed(int(v))})",
                                      rule.title, rule.key_src.get("points", rule.src))  # fmt: skip
                    self.table_items[(id(rule), _show(k))] = it
                    self.items.append(it)

    def _version(self, rule_id: str, at: int) -> tuple[Rule, CoverageItem] | None:
        for r, it in self.versions.get(rule_id, ()):
            if r.in_force(at):
                return r, it
        return None

    def collect(self, db: sqlite_utils.Database) -> None:
        clock = self.scheme.clock
        for table in ("entries", "trial_entries"):
            for rule, at, note, reason in db.execute(
                f"SELECT DISTINCT rule, at, note, reason FROM {table}"
                " WHERE reason IN ('match', 'capped', 'linked', 'repair')"
            ).fetchall():
                if reason == "repair" and note and note.startswith("credit repair by "):
                    rule = note.removeprefix("credit repair by ")
                v = self._version(rule, at)
                if v is not None:
                    v[1].hit = True
            if self.by_rules:
                marks = ",".join("?" * len(self.by_rules))
                for rule, at, attrs in db.execute(
                    f"SELECT e.rule, e.at, ev.attrs FROM {table} e JOIN events ev ON ev.id = e.event"
                    f" WHERE e.rule IN ({marks}) AND e.reason IN ('match', 'capped')",
                    sorted(self.by_rules),
                ).fetchall():
                    v = self._version(rule, at)
                    if v is None:
                        continue
                    points = v[0].points
                    assert isinstance(points, TablePoints)
                    value = orjson.loads(attrs).get(points.by)
                    it = self.table_items.get((id(v[0]), _show(value)))
                    if it is not None:
                        it.hit = True
            if self.esc_rules:
                marks = ",".join("?" * len(self.esc_rules))
                seen: dict[tuple, list[int]] = defaultdict(list)
                for rule, s, g, at in db.execute(
                    f"SELECT rule, subject, grp, at FROM {table} WHERE rule IN ({marks})"
                    " AND reason IN ('match', 'capped') ORDER BY at, id",
                    sorted(self.esc_rules),
                ).fetchall():
                    v = self._version(rule, at)
                    if v is None:
                        continue
                    r = v[0]
                    esc = r.escalate  # a version without escalation: no window
                    times = seen[(rule, s, g)]
                    floor = clock.sub(at, esc.within) if esc else -(2**62)
                    n = 1 + sum(1 for t in times if t > floor)
                    times.append(at)
                    steps = self.steps.get(id(r), [])
                    if steps:
                        steps[min(n, len(steps)) - 1].hit = True

    def result(self) -> Coverage:
        return Coverage(list(self.items))


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
    from ..loader import find_rules_dir

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
