"""Wording and locating problems: type words, hints, ``_Where`` (what a YAML path is called)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

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
    "subject.graded": "boolean",  # a direct grading in force at the event
    "subject.tier": "string",  # the tier at the event (held down by a grading)
    "subject.listed": "tags",  # the ids of the lists the account is on at the event
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


_CONNECTIVES = ("all", "any", "not")


def _operator_hint(name: str, operators: Iterable[str] | None = None) -> str:
    """'; did you mean ...?' for an alias or a near miss of an operator (``operators``: the
    registry's mapping, or just names, which know no aliases), else the list of operators."""
    if operators is None:  # no scheme at hand: the built-ins and installed plugins
        from ..plugins import build_plugins

        operators = build_plugins().operators
    known = sorted(operators)
    # what a rule writer types for a comparison ('>=', '大于等于'): each operator's aliases
    said = name.strip()
    if isinstance(operators, Mapping):
        for meant in known:
            if said in getattr(operators[meant], "aliases", ()):
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
