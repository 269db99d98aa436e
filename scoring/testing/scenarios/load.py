"""Reading scenario files: the YAML (checked against ``scenario.schema.json``), the
``Scenario`` it describes, and finding scenario files and their scheme."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...model import Scheme
from ...yamlsafe import PosDict, PosList, YamlProblem, load_yaml
from .results import OUTPUT_COLUMNS, SKIP_DIRS, Failure, _show

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
    from ...validate import explain_schema_error

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
