"""Compile ``when`` conditions into plain Python closures, once per rule.

A compiled condition is ``test(attrs, subject, group, etype) -> bool``;
nothing is parsed or looked up per event beyond the dict reads it needs.
Operators come from the scheme's plugin registry (``register_operators``,
``scheme.plugins.operators``); the built-ins live in ``scoring.builtin.operators``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MISSING = object()

Test = Callable[[Any], bool]
Condition = Callable[[dict, Any, str, str], bool]


# The operator a bare value means: ``attrs.x: v`` is ``attrs.x: {eq: v}``. This is the
# condition language's shorthand, not a special case of the operator: the registry's
# ``eq`` (built-in or not) is what it compiles, validates and renders with.
SHORTHAND = "eq"


@dataclass(frozen=True)
class Wording:
    """What an operator's ``render`` gets to word one test in Chinese (``scoring.render``)."""

    field: str  # as written: ``attrs.hours``, ``type``, ``subject.tags``
    title: str  # its Chinese title from events.yaml (``服务时长``), or a fixed word
    unit: str  # its unit (``小时``), or ""
    value: Callable[[Any], str]  # a value in Chinese: a code's title, 是/否, a number


@dataclass(frozen=True)
class Operator:
    """A condition operator: ``compile(value)`` returns ``test(x) -> bool``.

    ``types`` lists the attribute types it applies to (for ``validate``);
    ``on_missing`` is the result when the field is absent (or a function of
    the operator's value giving it).

    The rest is optional and lets the core treat every operator alike, built-in
    or not: ``render`` words a test in Chinese for the rule book (default: the
    field's title, ``description`` and the value); ``aliases`` are what a rule
    writer may type meaning it (``>=``, ``大于等于``: validate suggests the
    operator); ``value_shape`` says what ``validate`` checks of the value against
    the attribute's declaration beyond ``compile``: ``"value"`` (one value of the
    attribute), ``"values"`` (a list of them), ``"text"`` (text, on text
    attributes), ``"ordered"`` (a number or date) or ``"range"`` (two, low first);
    ``never_if_undeclared`` makes validate say a value outside the declared ones
    means the test never holds; ``never_within(v, lo, hi)`` says whether a test
    with number ``v`` can never hold on an attribute declared from ``lo`` to ``hi``
    (either may be None), for validate's warning.
    """

    name: str
    compile: Callable[[Any], Test]
    types: tuple[str, ...] = ("integer", "number", "string", "boolean", "date")
    on_missing: bool | Callable[[Any], bool] = False
    description: str = ""
    # fast(key, value): an optional whole-test closure for ``attrs.<key>: {name: value}``
    # that skips the getter indirection (None: use the general path); it must give
    # the general path's results, a missing attribute included
    fast: Callable[[str, Any], Condition | None] | None = None
    render: Callable[[Wording, Any], str] | None = None
    aliases: tuple[str, ...] = ()
    value_shape: str = ""
    never_if_undeclared: bool = False
    never_within: Callable[[float, float | None, float | None], bool] | None = None

    def word(self, w: Wording, value: Any) -> str:
        """This test in Chinese, e.g. ``服务时长不少于0.5小时``."""
        if self.render is not None:
            return self.render(w, value)
        return default_wording(self.name, self.description, w, value)


def default_wording(name: str, description: str, w: Wording, value: Any) -> str:
    """An operator without its own ``render``: title, description (or the name), value."""
    return f"{w.title}{description or f' {name} '}“{value}”"


@dataclass
class SubjectView:
    """What a condition may read of a subject (``subject.*``)."""

    id: str
    grid: str = ""
    community: str = ""
    street: str = ""
    tags: frozenset[str] = field(default_factory=frozenset)
    links: dict[str, str] = field(default_factory=dict)
    # the subject's state at the event (subject.graded, subject.tier, subject.listed): set by the scorer,
    # probe(subject, group, what); None outside a scoring run (the fields read as missing)
    probe: Any = field(default=None, repr=False, compare=False)


class ConditionError(ValueError):
    """A condition cannot be compiled; ``path`` locates it inside the ``when`` data."""

    def __init__(self, message: str, path: tuple[Any, ...] = ()):
        super().__init__(message)
        self.path = path


COMBINATORS = ("all", "any", "not")


def _getter(field_name: str) -> Callable[[dict, Any, str, str], Any]:
    if field_name.startswith("attrs."):
        key = field_name[6:]
        return lambda a, s, g, t: a.get(key, MISSING)
    simple: dict[str, Callable[[dict, Any, str, str], Any]] = {
        "type": lambda a, s, g, t: t,
        "subject": lambda a, s, g, t: s.id,
        "subject.id": lambda a, s, g, t: s.id,
        "subject.group": lambda a, s, g, t: g,
        "subject.grid": lambda a, s, g, t: s.grid,
        "subject.community": lambda a, s, g, t: s.community,
        "subject.street": lambda a, s, g, t: s.street,
        "subject.tags": lambda a, s, g, t: s.tags,
        "subject.graded": lambda a, s, g, t: s.probe(s.id, g, "graded") if s.probe else MISSING,
        "subject.tier": lambda a, s, g, t: s.probe(s.id, g, "tier") if s.probe else MISSING,
        "subject.listed": lambda a, s, g, t: s.probe(s.id, g, "listed") if s.probe else MISSING,
    }
    if field_name in simple:
        return simple[field_name]
    raise ConditionError(
        f"unknown field '{field_name}': use attrs.<name>, type, subject, subject.group,"
        " subject.grid, subject.community, subject.street, subject.tags, subject.graded,"
        " subject.tier or subject.listed"
    )


def compile_condition(
    cond: Any, operators: dict[str, Operator], path: tuple[Any, ...] = ()
) -> Condition:
    """Compile condition data (see docs/design.md) into one closure."""
    if cond is None:
        return lambda a, s, g, t: True
    if not isinstance(cond, dict):
        raise ConditionError("a condition must be a mapping of field: test", path)
    parts: list[Condition] = []
    for key, value in cond.items():
        here = (*path, key)
        if key == "all" or key == "any":
            if not isinstance(value, list):
                raise ConditionError(f"'{key}' takes a list of conditions", here)
            subs = [compile_condition(c, operators, (*here, i)) for i, c in enumerate(value)]
            parts.append(_all_of(subs) if key == "all" else _any_of(subs))
        elif key == "not":
            parts.append(_none_of([compile_condition(value, operators, here)]))
        else:
            parts.append(_field_test(str(key), value, operators, here))
    if len(parts) == 1:
        return parts[0]
    return lambda a, s, g, t: all(f(a, s, g, t) for f in parts)


def _all_of(subs: list[Condition]) -> Condition:
    return lambda a, s, g, t: all(f(a, s, g, t) for f in subs)


def _any_of(subs: list[Condition]) -> Condition:
    return lambda a, s, g, t: any(f(a, s, g, t) for f in subs)


def _none_of(subs: list[Condition]) -> Condition:
    return lambda a, s, g, t: not any(f(a, s, g, t) for f in subs)


def _field_test(
    name: str, spec: Any, operators: dict[str, Operator], path: tuple[Any, ...]
) -> Condition:
    try:
        get = _getter(name)
    except ConditionError as e:
        raise ConditionError(str(e), path) from None
    if not isinstance(spec, dict):
        spec = {SHORTHAND: spec}
    fast = _fast_attr_test(name, spec, operators)
    if fast is not None:
        return fast
    tests: list[tuple[Test, bool]] = []
    for op_name, value in spec.items():
        op = operators.get(op_name)
        if op is None:
            raise ConditionError(
                f"unknown operator '{op_name}'; known: {', '.join(sorted(operators))}",
                (*path, op_name),
            )
        try:
            miss = op.on_missing(value) if callable(op.on_missing) else op.on_missing
            tests.append((op.compile(value), bool(miss)))
        except (ValueError, TypeError) as e:
            raise ConditionError(f"operator '{op_name}': {e}", (*path, op_name)) from None
    if len(tests) == 1:
        test, miss = tests[0]

        def one(a: dict, s: Any, g: str, t: str) -> bool:
            x = get(a, s, g, t)
            if x is MISSING or x is None:
                return miss
            return test(x)

        return one

    def many(a: dict, s: Any, g: str, t: str) -> bool:
        x = get(a, s, g, t)
        if x is MISSING or x is None:
            return all(miss for _, miss in tests)
        return all(test(x) for test, _ in tests)

    return many


def _fast_attr_test(name: str, spec: dict, operators: dict[str, Operator]) -> Condition | None:
    """The operator's own fast form for a one-test ``attrs.x`` condition, if it has one
    (the built-in ``eq`` and comparisons do: ``attrs.x: v``, ``attrs.x: {gte: n}``)."""
    if not name.startswith("attrs.") or len(spec) != 1:
        return None
    ((op_name, value),) = spec.items()
    op = operators.get(op_name)
    if op is None or op.fast is None:
        return None
    return op.fast(name[6:], value)


def condition_fields(cond: Any) -> list[tuple[str, str, Any, tuple[Any, ...]]]:
    """Every (field, operator, value, path) in a condition, for static checks."""
    out: list[tuple[str, str, Any, tuple[Any, ...]]] = []

    def walk(c: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(c, dict):
            return
        for key, value in c.items():
            if key in ("all", "any") and isinstance(value, list):
                for i, sub in enumerate(value):
                    walk(sub, (*path, key, i))
            elif key == "not":
                walk(value, (*path, key))
            elif isinstance(value, dict):
                for op, v in value.items():
                    out.append((str(key), str(op), v, (*path, key, op)))
            else:
                out.append((str(key), SHORTHAND, value, (*path, key)))

    walk(cond, ())
    return out


# fields that read the event or the account's group, never the subject itself
_EVENT_FIELDS = ("type", "subject.group")


def reads_subject(cond: Any) -> bool:
    """Whether a condition reads anything of the subject beyond its group (the
    evaluator memoises the others by event attributes)."""
    return any(
        not (f.startswith("attrs.") or f in _EVENT_FIELDS) for f, *_ in condition_fields(cond)
    )
