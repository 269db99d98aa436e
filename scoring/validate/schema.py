"""Pass 1: every file against its JSON Schema, each error explained in plain English."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from ..errors import Problem
from ..yamlsafe import key_position, position
from .messages import (
    _CONNECTIVES,
    TYPE_WORDS,
    Path_,
    _and_list,
    _dedupe_types,
    _describe,
    _did_you_mean,
    _hashable,
    _operator_hint,
    _or_list,
    _quoted,
    _required_hint,
    _type_hint,
    _Where,
)

# The bounds the schemas put on rule numbers (see schemas/*.json): every points value,
# per-unit value, cap, step, award, cost, base score and tier bound is within
# ±VALUE_BOUND, so a balance stays far inside SQLite's 64-bit integers; a duration
# written as a bare number of days is at most MAX_DAYS (100 years).
VALUE_BOUND = 1_000_000
MAX_DAYS = 36_525


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
            out[entry.name] = _in_units(json.loads(entry.read_text(encoding="utf-8")))
    return out


POINTS_COMMENT = "points:"  # how a schema marks a point value (a decimal where a precision allows)


def _in_units(schema: Any) -> Any:
    """The shipped schemas let an editor accept ``points: 0.5`` (a point value is a
    ``number`` marked ``$comment: "points: ..."``); the engine checks the files after
    ``precision.scale_files`` turned every point value into whole units, so here a marked
    value is a whole number again, and ``0.5`` at whole points keeps its precise message."""
    if isinstance(schema, dict):
        out = {k: _in_units(v) for k, v in schema.items()}
        if str(out.get("$comment", "")).startswith(POINTS_COMMENT) and out.get("type") == "number":
            out["type"] = "integer"
        return out
    if isinstance(schema, list):
        return [_in_units(v) for v in schema]
    return schema


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
            wide = next((ch for ch in "：，" if ch in str(key)), None)
            if wide is not None:
                # {max_points：20, per: year}: YAML saw no ':' and read one key 'max_points：20'
                kl, kc = key_position(data, path, key)
                ascii_ = {"：": "':' and a space", "，": "','"}[wide]
                out.append(
                    at(
                        f"'{key}' in {here.container()} has a full-width '{wide}' where YAML"
                        f" needs {ascii_}, so it is read as one unknown key; switch the input"
                        " method to half-width (English) punctuation and type it again",
                        (kl, kc + str(key).index(wide)),
                    )
                )
                continue
            hint = _did_you_mean(str(key), allowed)
            if not hint:
                hint = f"; allowed keys here: {', '.join(sorted(allowed))}" if allowed else ""
                if patterns and _looks_like_condition(err.schema):
                    hint = (
                        "; a condition field is attrs.<name>, type, subject, subject.group,"
                        " subject.grid, subject.community, subject.street, subject.tags,"
                        " subject.graded, subject.tier, subject.listed,"
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
        bound = err.validator_value
        if bound == MAX_DAYS and kind == "maximum":
            return [
                at(
                    f"{here.field()} is {inst} days, longer than 100 years; write at most"
                    f" {MAX_DAYS} (days) or '100 years'"
                )
            ]
        if abs(bound) >= VALUE_BOUND:  # the bound that keeps every sum inside 64 bits
            lo = err.schema.get("minimum", 0)
            return [
                at(
                    f"{here.field()} is {inst}, outside the range gridcredit accepts here"
                    f" ({lo:,} to {err.schema.get('maximum', VALUE_BOUND):,}), which keeps every"
                    " score and balance inside what the ledger can store; write a number in"
                    " that range"
                )
            ]
        return [at(f"{here.field()} is {inst}; it must be {word} {bound}")]
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
