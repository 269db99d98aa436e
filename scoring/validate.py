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
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .durations import PERIOD_KINDS, parse_duration
from .errors import Problem
from .yamlsafe import key_position, position

__all__ = ["check_scheme", "schema_problems", "validate_scheme"]

Path_ = tuple[Any, ...]

SYSTEM_EVENT_TYPES = ("redeem", "withdraw", "objection")
SUBJECT_FIELDS = {
    "type": "string",
    "subject": "string",
    "subject.id": "string",
    "subject.group": "string",
    "subject.grid": "string",
    "subject.community": "string",
    "subject.street": "string",
    "subject.tags": "tags",
}
TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "null": "empty",
    "date": "a date",
    "tags": "a set of tags",
}
# keyed by type name; looked up with raw YAML values (possibly None), hence Any
ATTR_TYPE_WORDS: dict[Any, str] = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true/false",
    "date": "a date",
    "tags": "tags",
}
PLURAL_TYPE_WORDS = {
    "integer": "numbers",
    "number": "numbers",
    "string": "text",
    "boolean": "true/false",
    "date": "dates",
    "tags": "tags",
}


# --------------------------------------------------------------------------
# entry points


def validate_scheme(path: str | Path) -> list[Problem]:
    """Read and check a scheme folder; YAML problems and check problems, sorted."""
    from .errors import SchemeError
    from .loader import read_scheme

    try:
        raw = read_scheme(path)
    except SchemeError as e:
        return list(e.problems)
    from .plugins import build_plugins, plugins_dir_of

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
        from .plugins import build_plugins, plugins_dir_of

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
    return sorted(set(problems))


def _schema_name_for(raw: Any, display: str) -> str | None:
    rel = raw.relnames.get(display, "")
    if rel.startswith("packs/"):
        return "pack.schema.json"
    fixed = {
        "scheme.yaml": "scheme.schema.json",
        "events.yaml": "events.schema.json",
        "assessments.yaml": "assessments.schema.json",
        "catalog.yaml": "catalog.schema.json",
    }
    if rel in fixed:
        return fixed[rel]
    if display == raw.jurisdictions_file():
        return "jurisdictions.schema.json"
    return None


# --------------------------------------------------------------------------
# pass 1: JSON Schema


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    folder = resources.files("scoring").joinpath("schemas")
    out: dict[str, dict[str, Any]] = {}
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return out
    for entry in entries:
        if entry.name.endswith(".schema.json"):
            out[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    return out


@cache
def _validator(schema_name: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = _schemas()
    schema = schemas.get(schema_name)
    if schema is None:
        return None
    registry: Registry = Registry()
    for name, s in schemas.items():
        res = Resource.from_contents(s, default_specification=_draft())
        registry = registry.with_resource(s.get("$id", name), res).with_resource(name, res)
    return Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _draft() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


def schema_problems(
    file: str, data: Any, schema_name: str, operators: Iterable[str] | None = None
) -> list[Problem]:
    """Validate one file's data against a shipped schema; plain-English problems."""
    validator = _validator(schema_name)
    if validator is None:
        return []
    if data is None:
        return [Problem(file, 1, 1, "the file is empty; write its settings or delete the file")]
    out: list[Problem] = []
    for err in _one_per_date(validator.iter_errors(data)):
        out += explain_schema_error(err, file, data, operators)
    return out


def _one_per_date(errors: Iterable[Any]) -> list[Any]:
    """A date's pattern and its calendar check both fail on '2024-3': say it once."""
    errors = list(errors)
    patterned = {tuple(e.absolute_path) for e in errors if e.validator == "pattern"}
    return [
        e for e in errors if not (e.validator == "format" and tuple(e.absolute_path) in patterned)
    ]


def explain_schema_error(
    err: Any, file: str, data: Any, operators: Iterable[str] | None = None
) -> list[Problem]:
    """One jsonschema error as plain-English problems at their line and column."""
    path = tuple(err.absolute_path)
    kind = err.validator
    inst = err.instance
    line, col = position(data, path)
    here = _Where(data, path)

    def at(message: str, pos: tuple[int, int] | None = None) -> Problem:
        ln, cl = pos or (line, col)
        return Problem(file, ln, cl, message)

    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(inst, dict):
        allowed = _allowed_keys(err.schema)
        patterns = list((err.schema.get("patternProperties") or {}).keys())
        extras = [
            k for k in inst if k not in allowed and not any(re.search(p, str(k)) for p in patterns)
        ]
        if not extras:
            extras = _quoted(err.message)
        out = []
        for key in extras:
            hint = _did_you_mean(str(key), allowed)
            if not hint:
                hint = f"; allowed keys here: {', '.join(sorted(allowed))}" if allowed else ""
                if patterns and _looks_like_condition(err.schema):
                    hint = (
                        "; a condition field is attrs.<name>, type, subject, subject.group,"
                        " subject.grid, subject.community, subject.street or subject.tags,"
                        " or one of all, any, not"
                    )
            out.append(
                at(
                    f"unknown key '{key}' in {here.container()}{hint}",
                    key_position(data, path, key),
                )
            )
        return out
    if kind == "required" and isinstance(inst, dict):
        return [
            at(
                f"{here.container(capital=True)} has no '{k}'; add '{k}:' {_required_hint(k)}".rstrip()
            )
            for k in err.validator_value
            if k not in inst
        ]
    if kind == "type":
        expected = err.validator_value
        expected = [expected] if isinstance(expected, str) else list(expected)
        words = _or_list([TYPE_WORDS.get(t, t) for t in _dedupe_types(expected)])
        if inst is None and not path:
            return [at("the file is empty; write its settings or delete the file")]
        hint = _type_hint(expected, inst)
        return [at(f"{here.field()} must be {words}, not {_describe(inst)}{hint}")]
    if kind == "enum":
        choices = [str(c) for c in err.validator_value]
        hint = _did_you_mean(str(inst), choices)
        return [
            at(
                f"{here.field()} is {_describe(inst)}, which is not allowed; use one of:"
                f" {', '.join(choices)}{hint}"
            )
        ]
    if kind == "const":
        return [at(f"{here.field()} must be '{err.validator_value}', not {_describe(inst)}")]
    if kind == "format" and err.validator_value == "date":
        return [
            at(
                f"{here.field()} is {_describe(inst)}, which is not a calendar date;"
                " write it as YYYY-MM-DD, e.g. 2024-01-01"
            )
        ]
    if kind == "pattern" and _is_key_error(err, data, path):
        return [at(_key_message(here, path, inst, operators), key_position(data, path, inst))]
    if kind == "pattern":
        return [at(_pattern_message(here, inst, err.schema))]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {
            "minimum": "at least",
            "exclusiveMinimum": "more than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[kind]
        return [at(f"{here.field()} is {inst}; it must be {word} {err.validator_value}")]
    if kind in ("minItems", "minProperties", "minLength"):
        n = err.validator_value
        if n <= 1:
            return [at(f"{here.field()} is empty; give at least one value or remove it")]
        return [at(f"{here.field()} needs at least {n} values")]
    if kind in ("maxItems", "maxProperties", "maxLength"):
        n = err.validator_value
        if kind == "maxProperties" and n == 1 and isinstance(inst, dict):
            return [
                at(
                    f"{here.field()} has {len(inst)} keys ({', '.join(map(str, inst))});"
                    " write only one of them"
                )
            ]
        return [at(f"{here.field()} has more than {n} values")]
    if kind == "uniqueItems":
        seen: set[Any] = set()
        dup = None
        for x in inst:
            hx = _hashable(x)
            if hx in seen:
                dup = x
                break
            seen.add(hx)
        return [at(f"{here.field()} lists {_describe(dup)} twice; list each value once")]
    if kind == "propertyNames":
        sub = err.context[0] if err.context else None
        bad = sub.instance if sub is not None else inst
        return [at(_key_message(here, path, str(bad), operators), key_position(data, path, bad))]
    if kind in ("oneOf", "anyOf"):
        return _explain_alternatives(err, file, data, here, at, operators)
    return [at(f"{here.field()}: {err.message}")]


def _explain_alternatives(
    err: Any, file: str, data: Any, here: _Where, at: Any, operators: Iterable[str] | None = None
) -> list[Problem]:
    inst = err.instance
    branches = err.validator_value
    # "exactly one of these keys" (rule: points | escalate; list reason forms)
    if all(set(b) == {"required"} and len(b["required"]) == 1 for b in branches):
        names = [b["required"][0] for b in branches]
        present = [n for n in names if isinstance(inst, dict) and n in inst]
        options = _or_list([f"'{n}'" for n in names])
        if present:
            return [
                at(
                    f"{here.container(capital=True)} has {_and_list([repr(p) for p in present])};"
                    f" write only one of {options}"
                )
            ]
        return [at(f"{here.container(capital=True)} needs one of {options}")]
    by_branch: dict[int, list[Any]] = {}
    for sub in err.context:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    if not err.context:  # oneOf matched more than one branch
        return [at(f"{here.field()} fits more than one form; {err.message}")]
    fitting = []
    for i, subs in sorted(by_branch.items()):
        top_type = any(s.validator == "type" and not s.relative_path for s in subs)
        if not top_type:
            fitting.append((len(subs), i, subs))
    if not fitting:
        forms = []
        for b in branches:
            b = _resolve(b, err)
            t = b.get("type")
            if "const" in b:
                forms.append(f"'{b['const']}'")
            elif isinstance(t, str):
                forms.append(TYPE_WORDS.get(t, t))
            elif isinstance(t, list):
                forms += [TYPE_WORDS.get(x, x) for x in _dedupe_types(t)]
        words = _or_list(list(dict.fromkeys(forms))) or "another form"
        return [at(f"{here.field()} must be {words}, not {_describe(inst)}{_form_hint(err)}")]

    # the branch that fits best: fewest errors, and sharing most keys with the value
    def score(item: tuple[int, int, list[Any]]) -> tuple[int, int]:
        n, i, _ = item
        props = _allowed_keys(_resolve(branches[i], err))
        shared = len(set(inst) & props) if isinstance(inst, dict) else 0
        return (-shared, n)

    _, _, subs = min(fitting, key=score)
    out: list[Problem] = []
    for sub in subs:
        out += explain_schema_error(sub, file, data, operators)
    return out


def _resolve(schema: Any, err: Any) -> dict[str, Any]:
    if isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref.startswith("#/"):
            for s in _schemas().values():
                node: Any = s
                try:
                    for part in ref[2:].split("/"):
                        node = node[part]
                except (KeyError, TypeError):
                    continue
                return node if isinstance(node, dict) else {}
    return schema if isinstance(schema, dict) else {}


def _allowed_keys(schema: Any) -> set[str]:
    keys: set[str] = set()
    if not isinstance(schema, dict):
        return keys
    keys |= set(schema.get("properties") or {})
    for k in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(k) or []:
            if isinstance(sub, dict):
                keys |= set(sub.get("properties") or {})
    return keys


def _looks_like_condition(schema: dict[str, Any]) -> bool:
    return {"all", "any", "not"} <= set(schema.get("properties") or {})


def _form_hint(err: Any) -> str:
    desc = err.schema.get("description") if isinstance(err.schema, dict) else None
    if desc and re.search(r"[A-Za-z]", desc):
        m = re.search(r"([A-Za-z][^。]*)$", desc)
        if m and ("'" in m.group(1) or ":" in m.group(1)):
            return f" ({m.group(1).strip()})"
    return ""


def _pattern_message(here: _Where, inst: Any, schema: dict[str, Any]) -> str:
    pattern = schema.get("pattern", "")
    if "format" in schema and schema.get("format") == "date":
        return (
            f"{here.field()} is {_describe(inst)}, which is not a date;"
            " write it as YYYY-MM-DD, e.g. 2024-01-01"
        )
    if "(d|days?" in pattern:
        return (
            f"{here.field()} is {_describe(inst)}, which is not a duration; write a number and"
            " a unit, e.g. '365d', '12 months', '3 years'"
        )
    if pattern == "^[a-z][a-z0-9]*(-[a-z0-9]+)*$":
        return (
            f"{here.field()} is {_describe(inst)}; a rule id uses lowercase letters and digits"
            " joined by '-', e.g. res-volunteer"
        )
    if pattern.startswith(("^[a-z]", "^[A-Za-z")):
        return (
            f"{here.field()} is {_describe(inst)}, which is not a usable code; use letters,"
            " digits, '_' and '-' only, starting with a letter"
        )
    return f"{here.field()} is {_describe(inst)}, which does not have the expected form ({pattern})"


def _is_key_error(err: Any, data: Any, path: Path_) -> bool:
    """A ``propertyNames`` check failed: jsonschema reports it at the mapping, with
    the key as the instance; the message belongs to the key, at the key's place."""
    if "propertyNames" not in err.relative_schema_path or not isinstance(err.instance, str):
        return False
    node: Any = data
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, dict) and err.instance in node


def _key_message(
    here: _Where, path: Path_, key: str, operators: Iterable[str] | None = None
) -> str:
    if path and "when" in path and isinstance(path[-1], str) and path[-1] not in _CONNECTIVES:
        return f"unknown operator '{key}' on '{path[-1]}' in {here.owner()}{_operator_hint(key, operators)}"
    if path == ("types",):
        return (
            f"event type '{key}' is not a usable code: an event type's key is the code of"
            " lowercase letters, digits and _ that events and rules name it by (e.g."
            " illegal_parking); put the Chinese name in its 'title:'"
        )
    return (
        f"'{key}' in {here.container()} is not a usable name; use lowercase letters, digits"
        " and _ (e.g. volunteer_service)"
    )


_CONNECTIVES = ("all", "any", "not")
# what a policy officer types for a comparison, and the operator it means
_OPERATOR_WORDS = {
    "=": "eq", "==": "eq", "!=": "ne", "<>": "ne", "≠": "ne",
    ">": "gt", ">=": "gte", "≥": "gte", "<": "lt", "<=": "lte", "≤": "lte",
    "等于": "eq", "不等于": "ne", "大于": "gt", "大于等于": "gte", "不少于": "gte",
    "不低于": "gte", "小于": "lt", "小于等于": "lte", "不超过": "lte", "不高于": "lte",
    "属于": "in", "不属于": "not_in", "介于": "between", "包含": "contains",
    "存在": "exists", "匹配": "matches",
}  # fmt: skip


def _operator_hint(name: str, operators: Iterable[str] | None = None) -> str:
    """'; did you mean 'gte'?' for '>=', 'gte' or '大于等于', else the list of operators."""
    if operators is None:  # no scheme at hand: the built-ins and installed plugins
        from .plugins import build_plugins

        operators = build_plugins().operators
    known = sorted(operators)
    meant = _OPERATOR_WORDS.get(name.strip())
    if meant and meant in known:
        return f"; did you mean '{meant}'?"
    return _did_you_mean(name, known) or f"; known operators: {', '.join(known)}"


def _required_hint(key: str) -> str:
    return {
        "id": "with a unique code",
        "title": "with the public Chinese title",
        "on": "with the event type(s) this rule scores",
        "version": '(quoted text, e.g. "2024.1")',
    }.get(key, "")


def _type_hint(expected: list[str], inst: Any) -> str:
    if "string" in expected and isinstance(inst, (int, float)) and not isinstance(inst, bool):
        return '; put it in quotes, e.g. "2024.1"'
    if "string" in expected and isinstance(inst, bool):
        return "; put it in quotes if you mean the text"
    return ""


def _dedupe_types(types: list[str]) -> list[str]:
    out = list(dict.fromkeys(types))
    if "number" in out and "integer" in out:
        out.remove("integer")
    return out


def _hashable(x: Any) -> Any:
    try:
        hash(x)
        return x
    except TypeError:
        return repr(x)


def _quoted(message: str) -> list[str]:
    m = re.search(r"\((.*)(?:was|were) unexpected\)", message)
    return re.findall(r"'((?:[^'\\]|\\.)*)'", m.group(1)) if m else []


# --------------------------------------------------------------------------
# describing places and values


_SINGULAR = {
    "rules": "rule",
    "streets": "street",
    "communities": "community",
    "grids": "grid",
    "items": "item",
    "assessments": "assessment",
    "lists": "list",
    "reasons": "reason",
    "types": "event type",
    "groups": "group",
    "tier_sets": "tier set",
    "attrs": "attribute",
    "also": "linked entry",
    "weighted": "part",
}
_NAMED_MAPPINGS = {"types", "groups", "tier_sets", "attrs"}
_TOP_NAMES = {"pack": "pack", "scheme": "scheme"}


class _Where:
    """Names the place a path points at: "'limit.per' in rule 'res-volunteer'"."""

    def __init__(self, data: Any, path: Path_):
        self.data = data
        self.path = path
        self.owners: list[tuple[str, int]] = []  # (description, path length where it starts)
        node = data
        i = 0
        while i < len(path):
            step = path[i]
            parent_key = path[i - 1] if i > 0 else None
            try:
                child = node[step]
            except (KeyError, IndexError, TypeError):
                break
            if isinstance(node, list) and parent_key in _SINGULAR:
                noun = _SINGULAR[str(parent_key)]
                if isinstance(child, dict) and isinstance(child.get("id"), (str, int)):
                    self.owners.append((f"{noun} '{child['id']}'", i + 1))
                else:
                    self.owners.append((f"{noun} {step + 1}", i + 1))
            elif isinstance(node, dict) and parent_key in _NAMED_MAPPINGS and i >= 1:
                self.owners.append((f"{_SINGULAR[str(parent_key)]} '{step}'", i + 1))
            node = child
            i += 1

    def _owner_text(self) -> str:
        if not self.owners:
            return ""
        names = [d for d, _ in self.owners[-2:]]
        return " of ".join(reversed(names)) if len(names) == 2 and _nested(names) else names[-1]

    def _rest(self) -> str:
        start = self.owners[-1][1] if self.owners else 0
        rest = self.path[start:]
        text = ""
        for step in rest:
            if isinstance(step, int):
                text += f"[{step + 1}]"
            else:
                text += ("." if text else "") + str(step)
        return text

    def owner(self) -> str:
        """The rule, tier or item the path lies in: "rule 'x'", or "the file"."""
        return self._owner_text() or "the file"

    def field(self) -> str:
        """The value at the path: "'limit.per' in rule 'x'" or "rule 'x'"."""
        rest, owner = self._rest(), self._owner_text()
        if rest and owner:
            return f"'{rest}' in {owner}"
        if rest:
            return f"'{rest}'"
        return owner or "the file"

    def container(self, capital: bool = False) -> str:
        """The mapping at the path, for key errors: "rule 'x'", "'limit' of rule 'x'"."""
        rest, owner = self._rest(), self._owner_text()
        if rest and owner:
            text = f"'{rest}' of {owner}"
        elif rest:
            text = f"'{rest}'"
        else:
            text = owner or "the top level of the file"
        if capital and text.startswith("the"):
            text = "The" + text[3:]
        return text


def _nested(names: list[str]) -> bool:
    inner = names[-1].split(" ")[0]
    return inner in ("attribute", "tier", "grid", "community", "reason", "linked", "part")


def _describe(v: Any) -> str:
    if v is None:
        return "empty"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return f"{v}"
    if isinstance(v, str):
        return f"'{v}'"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return repr(v)


def _did_you_mean(word: str, choices: Iterable[Any]) -> str:
    pool = [str(c) for c in choices]
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _or_list(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _and_list(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


# --------------------------------------------------------------------------
# pass 2: meaning


def _parse_date(v: Any) -> date | None:
    try:
        return date.fromisoformat(str(v))
    except ValueError:
        return None


class _Window:
    """An inclusive date window; ``None`` ends are open."""

    def __init__(self, start: date | None, end: date | None):
        self.start, self.end = start, end

    def overlaps(self, other: _Window) -> bool:
        a0 = self.start or date.min
        a1 = self.end or date.max
        b0 = other.start or date.min
        b1 = other.end or date.max
        return a0 <= b1 and b0 <= a1

    def text(self) -> str:
        if self.start and self.end:
            return f"from {self.start} to {self.end}"
        if self.start:
            return f"from {self.start} on"
        if self.end:
            return f"until {self.end}"
        return "at all times"


class _Version(NamedTuple):
    file: str
    pack: dict[str, Any]
    at: int  # the rule's place in the pack's rules list
    window: _Window


class _Semantics:
    def __init__(self, raw: Any, passed: set[str], plugins: Any):
        self.raw = raw
        self.passed = passed
        self.problems: list[Problem] = []
        self.scheme_file = raw.scheme_file
        self.scheme = raw.files.get(self.scheme_file)
        self.events_file = raw.display("events.yaml")
        self.events = raw.files.get(self.events_file)
        self.plugins = plugins
        self.operators: dict[str, Any] = plugins.operators
        self.points_forms: set[str] = set(plugins.points_forms)
        self._gather()

    # -- helpers ------------------------------------------------------------

    def ok(self, file: str | None) -> bool:
        return file is not None and file in self.passed

    def add(
        self,
        file: str,
        data: Any,
        path: Path_,
        message: str,
        *,
        key: Any = None,
        severity: str = "error",
    ) -> None:
        if key is not None:
            line, col = key_position(data, path, key)
        else:
            line, col = position(data, path)
        self.problems.append(Problem(file, line, col, message, severity))

    # -- names the files define (gathered leniently) -------------------------

    def _gather(self) -> None:
        s = self.scheme if isinstance(self.scheme, dict) else {}
        tier_sets = s.get("tier_sets")
        self.tier_sets: dict[str, list[dict[str, Any]]] | None = None
        if isinstance(tier_sets, dict):
            self.tier_sets = {
                str(k): [t for t in v if isinstance(t, dict)]
                for k, v in tier_sets.items()
                if isinstance(v, list)
            }
        groups = s.get("groups")
        self.groups: dict[str, dict[str, Any]] | None = None
        self.group_tiers: dict[str, list[str] | None] = {}
        if isinstance(groups, dict):
            self.groups = {str(k): v for k, v in groups.items() if isinstance(v, dict)}
            for gid, g in self.groups.items():
                tiers = g.get("tiers")
                if isinstance(tiers, str):
                    ts = (self.tier_sets or {}).get(tiers)
                    self.group_tiers[gid] = [str(t.get("id")) for t in ts] if ts else None
                elif isinstance(tiers, list):
                    self.group_tiers[gid] = [str(t.get("id")) for t in tiers if isinstance(t, dict)]
                else:
                    self.group_tiers[gid] = None

        self.event_types: dict[str, dict[str, dict[str, Any]]] | None = None
        # attribute declarations are only trusted from an events.yaml that passed its
        # schema: a misspelt 'attrs' key would otherwise make every attribute "unknown"
        if (
            self.ok(self.events_file)
            and isinstance(self.events, dict)
            and isinstance(self.events.get("types"), dict)
        ):
            self.event_types = {}
            for tid, t in self.events["types"].items():
                attrs = t.get("attrs") if isinstance(t, dict) else None
                self.event_types[str(tid)] = (
                    {str(k): v for k, v in (attrs or {}).items() if isinstance(v, dict)}
                    if isinstance(attrs, dict)
                    else {}
                )
        self.event_titles: dict[str, str] = {}
        if isinstance(self.events, dict) and isinstance(self.events.get("types"), dict):
            for tid, t in self.events["types"].items():
                if isinstance(t, dict) and isinstance(t.get("title"), str):
                    self.event_titles[str(tid)] = t["title"]
        # no events.yaml at all: one error says so (in ``run``), not one per rule
        self.events_missing = self.events_file not in self.raw.files and self.events_file not in {
            p.file for p in self.raw.problems
        }

        self.grids: set[str] | None = None
        self.communities: set[str] = set()
        self.streets: set[str] = set()
        jfile = self.raw.jurisdictions_file()
        jdata = self.raw.files.get(jfile) if jfile else None
        if isinstance(jdata, dict) and isinstance(jdata.get("streets"), list):
            self.grids = set()
            for st in jdata["streets"]:
                if not isinstance(st, dict):
                    continue
                self.streets.add(str(st.get("id")))
                for c in st.get("communities") or []:
                    if not isinstance(c, dict):
                        continue
                    self.communities.add(str(c.get("id")))
                    for g in c.get("grids") or []:
                        if isinstance(g, dict):
                            self.grids.add(str(g.get("id")))

        # rules: (file, pack, index, rule) for every rule-like mapping
        self.rules: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = []
        self.rule_groups: dict[str, set[str]] = {}
        self.rule_ids_complete = True
        self.rule_sign: dict[str, int] = {}
        for pfile in self.raw.pack_files():
            p = self.raw.files.get(pfile)
            if not isinstance(p, dict) or not isinstance(p.get("rules"), list):
                self.rule_ids_complete = False
                continue
            for i, r in enumerate(p["rules"]):
                if not isinstance(r, dict) or not isinstance(r.get("id"), str):
                    self.rule_ids_complete = False
                    continue
                self.rules.append((pfile, p, i, r))
                self.rule_groups.setdefault(r["id"], set()).add(str(p.get("group")))
                self.rule_sign[r["id"]] = _rule_sign(r)
        if any(p.file in {*self.raw.pack_files()} for p in self.raw.problems):
            self.rule_ids_complete = False
        packs_dir = self.raw.display("packs") + "/"
        if any(p.file.startswith(packs_dir) for p in self.raw.problems):
            self.rule_ids_complete = False
        self.rule_ids = set(self.rule_groups)

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

    # -- scheme.yaml --------------------------------------------------------

    def check_scheme_file(self) -> None:
        f, s = self.scheme_file, self.scheme
        tz = s.get("timezone")
        if isinstance(tz, str):
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                self.add(
                    f,
                    s,
                    ("timezone",),
                    f"unknown time zone '{tz}'; use an IANA name such as Asia/Shanghai",
                )
        for name in s.get("tier_sets") or {}:
            self.check_tiers(f, s, ("tier_sets", name), f"tier set '{name}'")
        for gid, g in (s.get("groups") or {}).items():
            tiers = g.get("tiers")
            if isinstance(tiers, str) and tiers not in (self.tier_sets or {}):
                known = sorted(self.tier_sets or {})
                self.add(
                    f,
                    s,
                    ("groups", gid, "tiers"),
                    f"group '{gid}' uses tier set '{tiers}', which tier_sets does not define"
                    f"{_did_you_mean(tiers, known) or '; defined: ' + ', '.join(known)}",
                )
            elif isinstance(tiers, list):
                self.check_tiers(f, s, ("groups", gid, "tiers"), f"the tiers of group '{gid}'")
        seen: dict[str, Path_] = {}
        for i, ld in enumerate(s.get("lists") or []):
            lid = str(ld.get("id"))
            if lid in seen:
                self.add(
                    f,
                    s,
                    ("lists", i, "id"),
                    f"list id '{lid}' is used twice (first at line {position(s, seen[lid])[0]});"
                    " give each list its own id",
                )
            seen.setdefault(lid, ("lists", i, "id"))
            groups = ld.get("groups")
            for j, gid in enumerate(groups or []):
                self.check_group(f, s, ("lists", i, "groups", j), gid, f"list '{lid}'")
            list_groups = [
                g for g in (groups or list(self.groups or {})) if g in (self.groups or {})
            ]
            for j, reason in enumerate(ld.get("reasons") or []):
                where = f"reason {j + 1} of list '{lid}'"
                base = ("lists", i, "reasons", j)
                tiers = reason.get("tier")
                tier_list = [tiers] if isinstance(tiers, str) else list(tiers or [])
                for k, tier in enumerate(tier_list):
                    tpath = (*base, "tier") if isinstance(tiers, str) else (*base, "tier", k)
                    for gid in list_groups:
                        if not self.check_tier(f, s, tpath, tier, gid, where):
                            break
                for k, rid in enumerate(reason.get("rules") or []):
                    rpath = (*base, "rules", k)
                    if self.check_rule_ref(f, s, rpath, rid, where) and list_groups:
                        owners = self.rule_groups.get(rid, set())
                        if owners and not owners & set(list_groups):
                            self.add(
                                f,
                                s,
                                rpath,
                                f"{where} names rule '{rid}' of group"
                                f" '{min(owners)}', but the list only shows"
                                f" {', '.join(list_groups)}: this reason can never list"
                                " anyone; name a rule of those groups",
                                severity="warning",
                            )
                if "within" in reason:
                    self.check_duration(f, s, (*base, "within"), reason["within"], where)
                lo, hi = reason.get("min_score"), reason.get("max_score")
                if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                    self.add(
                        f,
                        s,
                        (*base, "min_score"),
                        f"{where} has min_score {lo} above max_score {hi}: no score fits; swap"
                        " them",
                    )

    def check_tiers(self, f: str, s: Any, path: Path_, where: str) -> None:
        node: Any = s
        for step in path:
            node = node[step]
        tiers = [t for t in node if isinstance(t, dict)]
        if not tiers:
            return
        seen: dict[str, int] = {}
        for i, t in enumerate(tiers):
            tid = str(t.get("id"))
            if tid in seen:
                self.add(
                    f,
                    s,
                    (*path, i, "id"),
                    f"tier id '{tid}' appears twice in {where}; give each tier its own id",
                )
            seen.setdefault(tid, i)
            lo, hi = t.get("min"), t.get("max")
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                self.add(
                    f,
                    s,
                    (*path, i, "min"),
                    f"tier '{tid}' in {where} has min {lo} above max {hi}: no score fits;"
                    " swap them",
                )
        first, last = tiers[0], tiers[-1]
        if "max" in first:
            self.add(
                f,
                s,
                (*path, 0, "max"),
                f"tier '{first.get('id')}' is the highest in {where} but has max {first['max']}:"
                f" scores above {first['max']} would belong to no tier; remove 'max' from the"
                " highest tier (tiers are listed from highest to lowest)",
            )
        if "min" in last and len(tiers) > 0:
            n = len(tiers) - 1
            self.add(
                f,
                s,
                (*path, n, "min"),
                f"tier '{last.get('id')}' is the lowest in {where} but has min {last['min']}:"
                f" scores below {last['min']} would belong to no tier; remove 'min' from the"
                " lowest tier",
            )
        for i, t in enumerate(tiers):
            tier_id = t.get("id")
            if i < len(tiers) - 1 and "min" not in t:
                self.add(
                    f,
                    s,
                    (*path, i),
                    f"tier '{tier_id}' in {where} has no min; only the lowest tier may leave out"
                    " 'min': write the score where this tier starts",
                )
            if i > 0 and "max" not in t:
                self.add(
                    f,
                    s,
                    (*path, i),
                    f"tier '{tier_id}' in {where} has no max; only the highest tier may leave out"
                    " 'max': write the score where this tier ends",
                )
        for i in range(len(tiers) - 1):
            hi_min, lo_min = tiers[i].get("min"), tiers[i + 1].get("min")
            if isinstance(hi_min, int) and isinstance(lo_min, int) and lo_min >= hi_min:
                self.add(
                    f,
                    s,
                    (*path, i + 1),
                    f"tiers in {where} must be listed from highest to lowest, but"
                    f" '{tiers[i + 1].get('id')}' (from {lo_min}) comes after"
                    f" '{tiers[i].get('id')}' (from {hi_min}); reorder them",
                )
                return
        for i in range(len(tiers) - 1):
            hi_t, lo_t = tiers[i], tiers[i + 1]
            hi_min, lo_max = hi_t.get("min"), lo_t.get("max")
            if not isinstance(hi_min, int) or not isinstance(lo_max, int):
                continue
            hid, lid = hi_t.get("id"), lo_t.get("id")
            if lo_max + 1 < hi_min:
                gap = (
                    f"score {lo_max + 1} belongs"
                    if lo_max + 2 == hi_min
                    else f"scores {lo_max + 1} to {hi_min - 1} belong"
                )
                self.add(
                    f,
                    s,
                    (*path, i, "min"),
                    f"tier '{lid}' ends at {lo_max} but '{hid}' starts at {hi_min}: {gap} to no"
                    f" tier in {where}; set '{hid}' min to {lo_max + 1} or '{lid}' max to"
                    f" {hi_min - 1}",
                )
            elif lo_max >= hi_min:
                both = (
                    f"score {hi_min} belongs"
                    if lo_max == hi_min
                    else f"scores {hi_min} to {lo_max} belong"
                )
                self.add(
                    f,
                    s,
                    (*path, i, "min"),
                    f"tier '{lid}' ends at {lo_max} but '{hid}' starts at {hi_min}: {both} to"
                    f" both tiers in {where}; set '{lid}' max to {hi_min - 1}",
                )

    # -- jurisdictions ------------------------------------------------------

    def check_jurisdictions(self, f: str) -> None:
        j = self.raw.files[f]
        seen: dict[str, tuple[str, Path_]] = {}

        def note(kind: str, ident: Any, path: Path_) -> None:
            key = str(ident)
            if key in seen:
                other_kind, other = seen[key]
                self.add(
                    f,
                    j,
                    path,
                    f"{kind} id '{key}' is already used by a {other_kind} at line"
                    f" {position(j, other)[0]}; every street, community and grid needs its own"
                    " id (subjects name their grid by it)",
                )
            else:
                seen[key] = (kind, path)

        for i, st in enumerate(j.get("streets") or []):
            note("street", st.get("id"), ("streets", i, "id"))
            for k, c in enumerate(st.get("communities") or []):
                note("community", c.get("id"), ("streets", i, "communities", k, "id"))
                for m, g in enumerate(c.get("grids") or []):
                    note(
                        "grid",
                        g.get("id"),
                        ("streets", i, "communities", k, "grids", m, "id"),
                    )

    # -- events.yaml --------------------------------------------------------

    def check_events(self) -> None:
        f, e = self.events_file, self.events
        for tid, t in (e.get("types") or {}).items():
            for name, a in (t.get("attrs") or {}).items():
                where = f"attribute '{name}' of event type '{tid}'"
                base = ("types", tid, "attrs", name)
                atype = a.get("type")
                lo, hi = a.get("min"), a.get("max")
                if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
                    self.add(
                        f,
                        e,
                        (*base, "min"),
                        f"{where} has min {lo} above max {hi}: no value fits; swap them",
                    )
                if atype in ("string", "boolean", "date") and (lo is not None or hi is not None):
                    self.add(
                        f,
                        e,
                        (*base, "min" if lo is not None else "max"),
                        f"{where} is {ATTR_TYPE_WORDS[atype]}, so min/max do not apply;"
                        " remove them or make it a number",
                        severity="warning",
                    )
                for k, v in enumerate(a.get("values") or []):
                    if not _fits_type(v, atype):
                        self.add(
                            f,
                            e,
                            (*base, "values", k),
                            f"value {_describe(v)} in {where} is not"
                            f" {ATTR_TYPE_WORDS.get(atype, atype)}; fix the value or the"
                            " attribute's type",
                        )
        catalog = self.raw.get("catalog.yaml")
        types = e.get("types") or {}
        if isinstance(catalog, dict) and catalog.get("items") and "redeem" not in types:
            self.add(
                f,
                e,
                ("types",),
                "catalog.yaml lists items but no 'redeem' event type is declared, so no"
                " redemption can be recorded; add a 'redeem' type with an 'item' attribute",
                key="types",
                severity="warning",
            )

    # -- rule packs ---------------------------------------------------------

    def check_rules(self) -> None:
        versions: dict[str, list[_Version]] = {}
        for pfile, p, i, r in self.rules:
            pack_window = self.window(p.get("effective"))
            eff = r.get("effective") if isinstance(r.get("effective"), dict) else None
            window = self.window(eff) if eff else pack_window
            versions.setdefault(r["id"], []).append(_Version(pfile, p, i, window))
        for pfile in self.raw.pack_files():
            if not self.ok(pfile):
                continue
            p = self.raw.files[pfile]
            self.check_pack(pfile, p)
            for i, r in enumerate(p.get("rules") or []):
                self.check_rule(pfile, p, i, r)
        for rid, vs in versions.items():
            self.check_versions(rid, vs)
        self.check_groups_have_packs()

    def cite(self, v: _Version) -> str:
        """Where a rule version's id is, in the form problems are printed in."""
        line, col = position(v.pack, ("rules", v.at, "id"))
        return f"{v.file}:{line}:{col}"

    def check_versions(self, rid: str, vs: list[_Version]) -> None:
        """Versions of one rule: one group, windows that neither overlap nor leave gaps."""
        groups = list(dict.fromkeys(str(v.pack.get("group")) for v in vs))
        if len(groups) > 1:
            home = self.home_group(rid, groups)
            first = next(v for v in vs if str(v.pack.get("group")) == home)
            for v in vs:
                if str(v.pack.get("group")) != home and self.ok(v.file):
                    self.add(
                        v.file,
                        v.pack,
                        ("rules", v.at, "id"),
                        f"rule id '{rid}' is already used by group '{home}' at"
                        f" {self.cite(first)}; a rule id belongs to one group and is never"
                        " reused: give this rule a new id",
                    )
            vs = [v for v in vs if str(v.pack.get("group")) == home]
        # the later version is the one a change adds: it carries the problem
        order = sorted(range(len(vs)), key=lambda k: (vs[k].window.start or date.min, k))
        ranked = [vs[k] for k in order]
        for b in range(1, len(ranked)):
            later = ranked[b]
            clash = next((a for a in ranked[:b] if a.window.overlaps(later.window)), None)
            if clash is not None:
                if self.ok(later.file):
                    self.add(
                        later.file,
                        later.pack,
                        ("rules", later.at, "id"),
                        f"rule '{rid}' is defined twice with overlapping effective dates:"
                        f" this version is in force {later.window.text()}, the version at"
                        f" {self.cite(clash)} {clash.window.text()}; versions of one rule need"
                        " disjoint windows: end the earlier one the day before the later one"
                        " starts (effective: {until: ...}), or give this rule a new id",
                    )
                continue
            before = ranked[b - 1]
            end, start = before.window.end, later.window.start
            if end and start and (start - end).days > 1 and self.ok(later.file):
                gap_from, gap_to = end + timedelta(days=1), start - timedelta(days=1)
                days = (gap_to - gap_from).days + 1
                self.add(
                    later.file,
                    later.pack,
                    ("rules", later.at, "id"),
                    f"rule '{rid}' has no version in force from {gap_from} to {gap_to}"
                    f" ({days} day{'s' if days != 1 else ''}): the version at"
                    f" {self.cite(before)} ends {end} and this one starts {start}, so events"
                    f" on those days score nothing under it; end the earlier version on"
                    f" {start - timedelta(days=1)} (effective: {{until: ...}}) unless the pause"
                    " is meant",
                    severity="warning",
                )

    def home_group(self, rid: str, groups: list[str]) -> str:
        """The group a rule id used in several groups belongs to: the one whose other
        rules share its prefix ('res-' in residents), then the one the prefix names
        ('mer' merchants, 'pm' party_members), else the first in file order."""
        prefix = rid.split("-", 1)[0]

        def score(g: str) -> tuple[int, bool, int]:
            shared = sum(
                1
                for other, owners in self.rule_groups.items()
                if other != rid and other.split("-", 1)[0] == prefix and g in owners
            )
            initials = "".join(w[:1] for w in g.split("_"))
            named = g.startswith(prefix) or initials == prefix
            return (shared, named, -groups.index(g))

        return max(groups, key=score)

    def check_groups_have_packs(self) -> None:
        """A group no pack, linked scoring or assessment gives points to stays at its
        base score for ever: usually a pack that is missing or names another group."""
        if not self.ok(self.scheme_file) or not self.groups or not self.rule_ids_complete:
            return
        scored: set[str] = set()
        for pfile in self.raw.pack_files():
            p = self.raw.files.get(pfile)
            if isinstance(p, dict):
                scored.add(str(p.get("group")))
        for _, _, _, r in self.rules:
            for link in r.get("also") or []:
                if isinstance(link, dict):
                    scored.add(str(link.get("group")))
        a_data = self.raw.get("assessments.yaml")
        for a in (a_data.get("assessments") or []) if isinstance(a_data, dict) else []:
            if isinstance(a, dict):
                award = a.get("award")
                target = award.get("group") if isinstance(award, dict) else None
                scored.add(str(target or a.get("group")))
        for gid in self.groups:
            if gid not in scored:
                self.add(
                    self.scheme_file,
                    self.scheme,
                    ("groups",),
                    f"group '{gid}' has no rule pack (and no linked scoring or assessment"
                    f" gives it points), so everyone in it keeps the base score; add a pack"
                    f" with 'group: {gid}' in packs/, or check the 'group:' of your packs",
                    key=gid,
                    severity="warning",
                )

    def window(self, eff: Any) -> _Window:
        if not isinstance(eff, dict):
            return _Window(None, None)
        return _Window(_parse_date(eff.get("from")), _parse_date(eff.get("until")))

    def check_window(
        self,
        f: str,
        data: Any,
        path: Path_,
        eff: Any,
        where: str,
        what: str = "effective window",
    ) -> None:
        if not isinstance(eff, dict):
            return
        w = self.window(eff)
        if w.start and w.end and w.end < w.start:
            self.add(
                f,
                data,
                (*path, "until"),
                f"the {what} of {where} ends ({w.end}) before it starts ({w.start});"
                " swap the dates or correct the typo",
            )

    def check_pack(self, f: str, p: dict[str, Any]) -> None:
        where = f"pack '{p.get('pack')}'"
        self.check_group(f, p, ("group",), p.get("group"), where)
        self.check_window(f, p, ("effective",), p.get("effective"), where)

    def check_rule(self, f: str, p: dict[str, Any], i: int, r: dict[str, Any]) -> None:
        rid = r.get("id")
        where = f"rule '{rid}'"
        base: Path_ = ("rules", i)
        group = p.get("group")
        self.check_window(f, p, (*base, "effective"), r.get("effective"), where)
        if isinstance(r.get("effective"), dict) and isinstance(p.get("effective"), dict):
            rw, pw = self.window(r["effective"]), self.window(p["effective"])
            if (pw.start and (rw.start is None or rw.start < pw.start)) or (
                pw.end and (rw.end is None or rw.end > pw.end)
            ):
                self.add(
                    f,
                    p,
                    (*base, "effective"),
                    f"{where} is in force {rw.text()}, outside its pack's window"
                    f" ({pw.text()}); the rule's own dates win, so check that this is meant",
                    severity="warning",
                )

        # on
        on = r.get("on")
        on_list = [on] if isinstance(on, str) else list(on or [])
        types_ok: list[str] = []
        for k, t in enumerate(on_list):
            path = (*base, "on") if isinstance(on, str) else (*base, "on", k)
            if self.event_types is None:
                continue
            if t not in self.event_types:
                hint = _did_you_mean(t, self.event_types) or self.type_by_title(t)
                self.add(
                    f,
                    p,
                    path,
                    f"{where} scores events of type '{t}', which events.yaml does not"
                    f" declare{hint}",
                )
                continue
            types_ok.append(t)
            if t in SYSTEM_EVENT_TYPES:
                self.add(
                    f,
                    p,
                    path,
                    f"{where} scores '{t}' events, which the engine already handles itself"
                    f" ({'redemptions' if t == 'redeem' else 'corrections'}); a rule on them"
                    " is rarely meant",
                    severity="warning",
                )
        attr_scope = types_ok if len(types_ok) == len(on_list) or self.event_types else []

        # when
        if "when" in r:
            self.check_condition(f, p, (*base, "when"), r["when"], where, attr_scope, on_list)

        # points
        points = r.get("points")
        sign = _rule_sign(r)
        if isinstance(points, dict):
            self.check_points(f, p, (*base, "points"), points, where, attr_scope)
        if points == 0 and "repair" not in r:
            self.add(
                f,
                p,
                (*base, "points"),
                f"{where} gives 0 points and repairs nothing; give it points or remove it",
                severity="warning",
            )
        severity = r.get("severity")
        if severity and sign > 0 and "escalate" not in r:
            self.add(
                f,
                p,
                (*base, "severity"),
                f"{where} has severity '{severity}', which marks a penalty, but it gives"
                " positive points; remove 'severity' or make the points negative",
                severity="warning",
            )

        # escalate
        esc = r.get("escalate")
        if esc is not None and "points" in r:
            self.add(
                f,
                p,
                (*base, "escalate"),
                f"{where} has 'points' and 'escalate'; write only one of them: escalate's"
                " steps are the points",
            )
        if isinstance(esc, dict):
            self.check_duration(f, p, (*base, "escalate", "within"), esc.get("within"), where)
            steps = [s for s in esc.get("steps") or [] if isinstance(s, int)]
            spath = (*base, "escalate", "steps")
            signs = {(s > 0) - (s < 0) for s in steps}
            if 0 in signs:
                k = steps.index(0)
                self.add(
                    f,
                    p,
                    (*spath, k),
                    f"escalate step {k + 1} of {where} is 0; every step should add or take"
                    " points: remove it or give it a value",
                )
            if {1, -1} <= signs:
                self.add(
                    f,
                    p,
                    spath,
                    f"the escalate steps of {where} ({', '.join(map(str, steps))}) mix"
                    " positive and negative values; all steps must have one sign: negative"
                    " for a penalty (e.g. [-5, -10, -20]), positive for a reward",
                )
            elif severity and signs == {1}:
                self.add(
                    f,
                    p,
                    spath,
                    f"{where} is a penalty (severity: {severity}) but its escalate steps"
                    f" ({', '.join(map(str, steps))}) are positive; write them negative,"
                    " e.g. [-5, -10, -20]",
                )
            elif any(abs(steps[k + 1]) < abs(steps[k]) for k in range(len(steps) - 1)):
                self.add(
                    f,
                    p,
                    spath,
                    f"the escalate steps of {where} ({', '.join(map(str, steps))}) get smaller"
                    " for repeat offences; check the order (the n-th time takes step n)",
                    severity="warning",
                )

        # limit
        limit = r.get("limit")
        if isinstance(limit, dict) and r.get("status") != "retired":
            for cap in ("max_points", "max_count"):
                if limit.get(cap) == 0 and not isinstance(limit.get(cap), bool):
                    self.add(
                        f,
                        p,
                        (*base, "limit", cap),
                        f"{where} has {cap} 0, so it can never score; to stop using a rule"
                        " set 'status: retired' (never delete it), otherwise raise the cap",
                    )
            table = (
                (r.get("points") or {}).get("table") if isinstance(r.get("points"), dict) else None
            )
            values = [v for v in (table or {}).values() if isinstance(v, (int, float))]
            if table is not None and isinstance(r["points"].get("default"), (int, float)):
                values.append(r["points"]["default"])
            if "max_points" in limit and any(v > 0 for v in values) and any(v < 0 for v in values):
                self.add(
                    f,
                    p,
                    (*base, "limit", "max_points"),
                    f"{where} both awards and deducts points under one cap: max_points counts"
                    " both together, so good conduct uses up the room left for penalties (and"
                    " the other way round); split it into an award rule and a penalty rule,"
                    " each with its own cap",
                    severity="warning",
                )

        # durations
        expires = r.get("expires")
        if isinstance(expires, dict):
            self.check_duration(f, p, (*base, "expires", "after"), expires.get("after"), where)

        # grade
        grade = r.get("grade")
        if isinstance(grade, dict):
            self.check_duration(f, p, (*base, "grade", "for"), grade.get("for"), where)
            if isinstance(group, str) and self.groups and group in self.groups:
                self.check_tier(f, p, (*base, "grade", "to"), grade.get("to"), group, where)
            if sign > 0:
                self.add(
                    f,
                    p,
                    (*base, "grade"),
                    f"{where} gives points but also holds the tier down (grade); direct"
                    " grading is meant for serious violations",
                    severity="warning",
                )

        # also
        for k, link in enumerate(r.get("also") or []):
            self.check_group(f, p, (*base, "also", k, "group"), link.get("group"), where)
            self.check_link(f, p, (*base, "also", k, "link"), link.get("link"), where)

        # repair
        repair = r.get("repair")
        if isinstance(repair, dict):
            if "within" in repair:
                self.check_duration(f, p, (*base, "repair", "within"), repair.get("within"), where)
            for k, target in enumerate(repair.get("rules") or []):
                tpath = (*base, "repair", "rules", k)
                if target == rid:
                    self.add(
                        f,
                        p,
                        tpath,
                        f"{where} repairs itself; name the penalty rules it repairs",
                    )
                    continue
                if not self.check_rule_ref(f, p, tpath, target, where, "repairs"):
                    continue
                if self.rule_sign.get(target, -1) > 0:
                    self.add(
                        f,
                        p,
                        tpath,
                        f"{where} repairs rule '{target}', which gives points rather than"
                        " taking them; repair undoes penalties: name a penalty rule",
                        severity="warning",
                    )
                owners = self.rule_groups.get(target, set())
                if isinstance(group, str) and owners and group not in owners:
                    self.add(
                        f,
                        p,
                        tpath,
                        f"{where} (group '{group}') repairs rule '{target}' of group"
                        f" '{min(owners)}'; repair only reaches penalties in the same"
                        " group, so this never applies",
                        severity="warning",
                    )

    def type_by_title(self, name: str) -> str:
        """A hint for an event type written by its Chinese name instead of its code."""
        titles = self.event_titles
        if not self.event_types:
            return "; declare it in events.yaml (it has no types yet)"
        if not re.search(r"[^\x00-\x7f]", name):
            return "; declare it in events.yaml"
        close = [c for c, t in titles.items() if t == name] or [
            c for t in difflib.get_close_matches(name, list(titles.values()), n=1, cutoff=0.5)
            for c, ct in titles.items() if ct == t
        ]  # fmt: skip
        codes = (
            "; event types are the codes declared in events.yaml (such as"
            f" {next(iter(self.event_types))}), not their Chinese titles"
        )
        if close:
            return f"{codes}: did you mean '{close[0]}' ({titles[close[0]]})?"
        return f"{codes}; write the code, or declare a new type in events.yaml"

    def check_link(self, f: str, p: Any, path: Path_, name: Any, where: str) -> None:
        """Link names are free-form (a subject's ``links: {name: id}``), so an unknown
        one is a warning, not an error: a county may register its own. But a typo
        silently reaches nobody, so say which names are known."""
        from .render import LINK_WORDS

        if not isinstance(name, str) or name in LINK_WORDS:
            return
        known = ", ".join(f"{k} ({v})" for k, v in LINK_WORDS.items())
        self.add(
            f,
            p,
            path,
            f"{where} also scores the subject's '{name}' link, which is not a known link"
            f" name{_did_you_mean(name, LINK_WORDS) or '.'} Only subjects whose 'links' use"
            " exactly this name are reached, and the site shows the name untranslated."
            f" Known names: {known}",
            severity="warning",
        )

    def check_points(
        self,
        f: str,
        p: Any,
        path: Path_,
        points: dict[str, Any],
        where: str,
        types: list[str],
    ) -> None:
        if "per" in points:
            attr = points.get("per")
            spec = self.attr_spec(f, p, (*path, "per"), attr, types, where, "'points.per'")
            if spec is not None and spec.get("type") not in ("integer", "number"):
                self.add(
                    f,
                    p,
                    (*path, "per"),
                    f"{where} gives points per '{attr}', which is"
                    f" {ATTR_TYPE_WORDS.get(spec.get('type'), spec.get('type'))}, not a number;"
                    " 'per' needs a numeric attribute such as hours (use 'by' with a table for"
                    " text values)",
                )
            if points.get("value") == 0:
                self.add(
                    f,
                    p,
                    (*path, "value"),
                    f"{where} gives 0 points per '{attr}'; give a value or remove the rule",
                    severity="warning",
                )
        elif "by" in points:
            attr = points.get("by")
            spec = self.attr_spec(f, p, (*path, "by"), attr, types, where, "'points.by'")
            table = points.get("table")
            if spec is not None and isinstance(table, dict):
                atype = spec.get("type")
                values = spec.get("values")
                for key in table:
                    kv = _coerce_key(key, atype)
                    if key == "default" and not (isinstance(values, list) and key in values):
                        self.add(
                            f,
                            p,
                            (*path, "table"),
                            f"'default' is inside the table of 'points' in {where}, where it"
                            f" is read as a value of '{attr}' and never matches; move it out of"
                            f" the table, beside 'by:' (by: {attr}, table: {{...}},"
                            f" default: {table[key]})",
                            key=key,
                        )
                        continue
                    if not _fits_type(kv, atype):
                        self.add(
                            f,
                            p,
                            (*path, "table"),
                            f"table key {_describe(key)} in 'points' of {where} is not"
                            f" {ATTR_TYPE_WORDS.get(atype, atype)}, the type of '{attr}'; it"
                            " can never match",
                            key=key,
                        )
                    elif isinstance(values, list) and kv not in values:
                        self.add(
                            f,
                            p,
                            (*path, "table"),
                            f"table key {_describe(key)} in 'points' of {where} is not a value"
                            f" of '{attr}' ({', '.join(map(str, values))})"
                            f"{_did_you_mean(str(key), values) or '; it can never match'}",
                            key=key,
                        )
        else:
            unknown = [k for k in points if k not in self.points_forms]
            if unknown:
                self.add(
                    f,
                    p,
                    path,
                    f"'points' of {where} has an unknown form ('{unknown[0]}'); write a whole"
                    " number, {per: attr, value: n} or {by: attr, table: {...}}",
                )

    def attr_spec(
        self,
        f: str,
        p: Any,
        path: Path_,
        attr: Any,
        types: list[str],
        where: str,
        what: str,
        key: Any = None,
    ) -> dict[str, Any] | None:
        """The attribute's spec if every type in ``types`` declares it (same spec type)."""
        if self.event_types is None or not types or not isinstance(attr, str):
            return None
        missing = [t for t in types if attr not in self.event_types.get(t, {})]
        if missing:
            declared: set[str] = set()
            for t in missing:
                declared |= set(self.event_types.get(t, {}))
            hint = _did_you_mean(attr, declared) or (
                f"; declared: {', '.join(sorted(declared))}" if declared else ""
            )
            self.add(
                f,
                p,
                path,
                f"{what} of {where} uses attribute '{attr}', which event type '{missing[0]}'"
                f" does not declare in events.yaml{hint}",
                key=key,
            )
            return None
        specs = [self.event_types[t][attr] for t in types]
        kinds = {s.get("type") for s in specs}
        if len(kinds) > 1:
            self.add(
                f,
                p,
                path,
                f"{what} of {where} uses attribute '{attr}', which has different types in"
                f" {', '.join(types)} ({', '.join(sorted(map(str, kinds)))}); give it one type"
                " in events.yaml or split the rule",
                key=key,
            )
            return None
        return specs[0]

    def check_condition(
        self,
        f: str,
        p: Any,
        path: Path_,
        cond: Any,
        where: str,
        types: list[str],
        on_list: list[str],
    ) -> None:
        if not isinstance(cond, dict):
            return
        for key, value in cond.items():
            here = (*path, key)
            if key in ("all", "any"):
                for k, sub in enumerate(value or []):
                    self.check_condition(f, p, (*here, k), sub, where, types, on_list)
                continue
            if key == "not":
                self.check_condition(f, p, here, value, where, types, on_list)
                continue
            field = str(key)
            spec: dict[str, Any] | None
            if field.startswith("attrs."):
                spec = self.attr_spec(f, p, path, field[6:], types, where, "'when'", key=key)
                if spec is None:
                    continue
                spec = dict(spec)
            elif field in SUBJECT_FIELDS:
                spec = {"type": SUBJECT_FIELDS[field]}
                known = self.known_values(field, on_list)
                if known is not None:
                    spec["values"] = known
                    spec["_strict"] = True
            else:
                continue  # the schema already refused it
            tests = value if isinstance(value, dict) else {"eq": value}
            for op_name, arg in tests.items():
                opath = (*here, op_name) if isinstance(value, dict) else here
                self.check_test(f, p, opath, field, spec, str(op_name), arg, where)

    def known_values(self, field: str, on_list: list[str]) -> list[str] | None:
        if field == "type":
            return list(on_list)
        if field == "subject.group":
            return sorted(self.groups) if self.groups is not None else None
        if field == "subject.grid":
            return sorted(self.grids) if self.grids is not None else None
        if field == "subject.community":
            return sorted(self.communities) if self.grids is not None else None
        if field == "subject.street":
            return sorted(self.streets) if self.grids is not None else None
        return None

    def check_test(
        self,
        f: str,
        p: Any,
        path: Path_,
        field: str,
        spec: dict[str, Any],
        op_name: str,
        arg: Any,
        where: str,
    ) -> None:
        op = self.operators.get(op_name)
        atype = spec.get("type", "string")
        name = field.removeprefix("attrs.")
        what = f"'{name}'"
        if op is None:
            if self.operators:
                hint = _operator_hint(op_name, self.operators)
                self.add(
                    f,
                    p,
                    path,
                    f"unknown operator '{op_name}' on '{field}' in {where}{hint}",
                )
            return
        op_types = tuple(getattr(op, "types", ()) or ())
        if op_types and atype not in op_types:
            good = [
                o for o, v in self.operators.items() if atype in (getattr(v, "types", ()) or ())
            ]
            self.add(
                f,
                p,
                path,
                f"operator '{op_name}' in {where} cannot be used on {what}, which is"
                f" {ATTR_TYPE_WORDS.get(atype, atype)}: '{op_name}' works on"
                f" {_and_list(list(dict.fromkeys(PLURAL_TYPE_WORDS.get(t, t) for t in op_types)))};"
                f" use {', '.join(sorted(good)[:6])} instead",
            )
            return
        try:
            op.compile(arg)
        except Exception as e:  # noqa: BLE001 - a plugin operator may raise anything
            self.add(f, p, path, f"operator '{op_name}' on '{field}' in {where}: {e}")
            return
        # values against the attribute's declaration
        values = spec.get("values")
        if op_name in ("eq", "ne", "in", "not_in", "contains") and atype != "tags":
            items = arg if isinstance(arg, list) and op_name in ("in", "not_in") else [arg]
            for k, v in enumerate(items):
                vpath = (*path, k) if op_name in ("in", "not_in") else path
                if op_name == "contains":
                    if not isinstance(v, str) and atype == "string":
                        self.add(
                            f,
                            p,
                            vpath,
                            f"'contains' on {what} in {where} needs text, not {_describe(v)}",
                        )
                    continue
                if v is None:
                    continue
                if not _fits_type(v, atype):
                    self.add(
                        f,
                        p,
                        vpath,
                        f"{where} compares {what} with {_describe(v)}, but {what} is"
                        f" {ATTR_TYPE_WORDS.get(atype, atype)}{_type_fix(atype)}",
                    )
                elif isinstance(values, list) and v not in values:
                    kind = {
                        "type": "an event type this rule is on",
                        "subject.group": "a group",
                        "subject.grid": "a grid in the jurisdictions file",
                        "subject.community": "a community in the jurisdictions file",
                        "subject.street": "a street in the jurisdictions file",
                    }.get(field, f"a value of {what}")
                    listing = "" if len(values) > 12 else f" ({', '.join(map(str, values))})"
                    self.add(
                        f,
                        p,
                        vpath,
                        f"{where} compares {what} with {_describe(v)}, which is not {kind}"
                        f"{listing}{_did_you_mean(str(v), values) or '; the test can never hold' if op_name in ('eq', 'in') else ''}",
                    )
        if op_name in ("gt", "gte", "lt", "lte", "between"):
            items = arg if isinstance(arg, list) else [arg]
            for v in items:
                if atype == "date" and _parse_date(v) is None:
                    self.add(
                        f,
                        p,
                        path,
                        f"'{op_name}' on {what} in {where} needs a date (YYYY-MM-DD), not"
                        f" {_describe(v)}",
                    )
                    return
                if atype in ("integer", "number") and (
                    isinstance(v, bool) or not isinstance(v, (int, float))
                ):
                    self.add(
                        f,
                        p,
                        path,
                        f"'{op_name}' on {what} in {where} needs a number, not {_describe(v)}",
                    )
                    return
            if op_name == "between" and len(items) == 2:
                lo, hi = items
                try:
                    if lo > hi:
                        self.add(
                            f,
                            p,
                            path,
                            f"'between: [{lo}, {hi}]' on {what} in {where} starts above its"
                            f" end, so it never holds; write [{hi}, {lo}]",
                        )
                except TypeError:
                    pass
            lo_b, hi_b = spec.get("min"), spec.get("max")
            v = items[0] if items else None
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                never = (
                    (op_name == "gt" and isinstance(hi_b, (int, float)) and v >= hi_b)
                    or (op_name == "gte" and isinstance(hi_b, (int, float)) and v > hi_b)
                    or (op_name == "lt" and isinstance(lo_b, (int, float)) and v <= lo_b)
                    or (op_name == "lte" and isinstance(lo_b, (int, float)) and v < lo_b)
                )
                if never:
                    self.add(
                        f,
                        p,
                        path,
                        f"'{op_name}: {v}' on {what} in {where} can never hold: events.yaml"
                        f" allows {what} only from {lo_b} to {hi_b}",
                        severity="warning",
                    )

    # -- shared reference checks ---------------------------------------------

    def check_group(self, f: str, data: Any, path: Path_, gid: Any, where: str) -> bool:
        if self.groups is None or not isinstance(gid, str):
            return True
        if gid in self.groups:
            return True
        hint = _did_you_mean(gid, self.groups) or (
            f"; groups are: {', '.join(sorted(self.groups))}"
        )
        self.add(
            f,
            data,
            path,
            f"{where} names group '{gid}', which scheme.yaml does not define{hint}",
        )
        return False

    def check_tier(self, f: str, data: Any, path: Path_, tier: Any, gid: str, where: str) -> bool:
        tiers = self.group_tiers.get(gid)
        if tiers is None or not isinstance(tier, str):
            return True
        if tier in tiers:
            return True
        hint = _did_you_mean(tier, tiers) or ""
        self.add(
            f,
            data,
            path,
            f"{where} names tier '{tier}', which is not a tier of group '{gid}'"
            f" ({', '.join(tiers)}){hint}",
        )
        return False

    def check_rule_ref(
        self, f: str, data: Any, path: Path_, rid: Any, where: str, verb: str = "names"
    ) -> bool:
        if not isinstance(rid, str):
            return False
        if rid in self.rule_ids:
            return True
        if not self.rule_ids_complete:
            return False
        hint = _did_you_mean(rid, self.rule_ids) or ""
        self.add(
            f,
            data,
            path,
            f"{where} {verb} rule '{rid}', which no rule pack defines{hint}",
        )
        return False

    def check_duration(self, f: str, data: Any, path: Path_, value: Any, where: str) -> None:
        if value is None:
            return
        try:
            parse_duration(value)
        except ValueError as e:
            self.add(f, data, path, f"{where}: {e}")

    # -- assessments.yaml ------------------------------------------------------

    def check_assessments(self, f: str) -> None:
        a_data = self.raw.files[f]
        seen: dict[str, int] = {}
        survey_values: list[Any] | None = None
        if self.event_types is not None:
            survey = self.event_types.get("survey")
            if survey is not None:
                survey_values = (survey.get("respondent") or {}).get("values")
        for i, a in enumerate(a_data.get("assessments") or []):
            aid = str(a.get("id"))
            where = f"assessment '{aid}'"
            base = ("assessments", i)
            if aid in seen:
                self.add(
                    f,
                    a_data,
                    (*base, "id"),
                    f"assessment id '{aid}' is used twice (first at line"
                    f" {position(a_data, ('assessments', seen[aid], 'id'))[0]}); give each its"
                    " own id",
                )
            seen.setdefault(aid, i)
            self.check_group(f, a_data, (*base, "group"), a.get("group"), where)
            award = a.get("award")
            if isinstance(award, dict) and "group" in award:
                self.check_group(f, a_data, (*base, "award", "group"), award["group"], where)
                if a.get("scope") == "subject" and award["group"] != a.get("group"):
                    self.add(
                        f,
                        a_data,
                        (*base, "award", "group"),
                        f"{where} ranks single subjects of group '{a.get('group')}' but awards"
                        f" group '{award['group']}'; for scope: subject the award goes to the"
                        " subject itself: remove 'award.group'",
                        severity="warning",
                    )
            metric = a.get("metric") or {}
            known = set(self.plugins.metrics)
            for key in metric if isinstance(metric, dict) else ():
                if key not in known:
                    hint = difflib.get_close_matches(str(key), sorted(known), n=1)
                    self.add(
                        f,
                        a_data,
                        (*base, "metric"),
                        f"unknown metric '{key}' in {where}"
                        + (f"; did you mean '{hint[0]}'?" if hint else "")
                        + f" Metrics: {', '.join(sorted(known))}",
                        key=key,
                    )
            parts = metric.get("weighted")
            if isinstance(parts, list):
                total = sum(pt.get("weight", 0) for pt in parts if isinstance(pt, dict))
                if total != 100:
                    self.add(
                        f,
                        a_data,
                        (*base, "metric", "weighted"),
                        f"the weights in {where} add up to {total:g}, not 100; the score is"
                        " the weighted mean either way, but check the shares",
                        severity="warning",
                    )
                for k, pt in enumerate(parts):
                    survey_spec = pt.get("survey") if isinstance(pt, dict) else None
                    if not isinstance(survey_spec, dict):
                        continue
                    spath = (*base, "metric", "weighted", k, "survey", "respondent")
                    if self.event_types is not None and "survey" not in self.event_types:
                        self.add(
                            f,
                            a_data,
                            spath,
                            f"{where} reads survey results, but events.yaml declares no"
                            " 'survey' event type; declare it with attrs respondent and score",
                        )
                        break
                    resp = survey_spec.get("respondent")
                    if isinstance(survey_values, list) and resp not in survey_values:
                        self.add(
                            f,
                            a_data,
                            spath,
                            f"{where} reads surveys by respondent '{resp}', which is not a"
                            " value of 'respondent' in the survey event type"
                            f" ({', '.join(map(str, survey_values))})"
                            f"{_did_you_mean(str(resp), survey_values)}",
                        )

    # -- catalog.yaml --------------------------------------------------------

    def check_catalog(self, f: str) -> None:
        c = self.raw.files[f]
        seen: dict[str, int] = {}
        for i, it in enumerate(c.get("items") or []):
            iid = str(it.get("id"))
            where = f"item '{iid}'"
            base = ("items", i)
            if iid in seen:
                self.add(
                    f,
                    c,
                    (*base, "id"),
                    f"item id '{iid}' is used twice (first at line"
                    f" {position(c, ('items', seen[iid], 'id'))[0]}); redemption events name"
                    " items by id, so give each its own",
                )
            seen.setdefault(iid, i)
            groups = it.get("groups")
            for k, gid in enumerate(groups or []):
                self.check_group(f, c, (*base, "groups", k), gid, where)
            self.check_window(
                f, c, (*base, "available"), it.get("available"), where, "availability window"
            )
            tier = it.get("min_tier")
            if isinstance(tier, str) and self.groups is not None:
                if groups:
                    targets = [g for g in groups if g in self.groups]
                else:
                    targets = [g for g, d in self.groups.items() if d.get("kind") == "person"]
                for gid in targets:
                    if not self.check_tier(f, c, (*base, "min_tier"), tier, gid, where):
                        break


def _rule_sign(r: dict[str, Any]) -> int:
    points = r.get("points")
    values: list[float] = []
    if isinstance(points, (int, float)) and not isinstance(points, bool):
        values = [points]
    elif isinstance(points, dict):
        if isinstance(points.get("value"), (int, float)):
            values = [points["value"]]
        elif isinstance(points.get("table"), dict):
            values = [v for v in points["table"].values() if isinstance(v, (int, float))]
    esc = r.get("escalate")
    if isinstance(esc, dict):
        values += [s for s in esc.get("steps") or [] if isinstance(s, (int, float))]
    if values and all(v < 0 for v in values):
        return -1
    if values and all(v > 0 for v in values):
        return 1
    return 0


def _fits_type(v: Any, atype: Any) -> bool:
    if atype == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if atype == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if atype == "string":
        return isinstance(v, str)
    if atype == "boolean":
        return isinstance(v, bool)
    if atype == "date":
        return isinstance(v, str) and _parse_date(v) is not None
    return True


def _coerce_key(key: Any, atype: Any) -> Any:
    """Table keys are mapping keys: YAML may give '2' for an integer attribute."""
    if atype in ("integer", "number") and isinstance(key, str):
        try:
            return int(key)
        except ValueError:
            try:
                return float(key)
            except ValueError:
                return key
    return key


def _type_fix(atype: Any) -> str:
    return {
        "boolean": "; write true or false without quotes",
        "integer": "; write a whole number without quotes",
        "number": "; write a number without quotes",
        "string": "; put the value in quotes",
        "date": "; write a date as YYYY-MM-DD",
    }.get(str(atype), "")


PERIODS = PERIOD_KINDS
