"""The built-in condition operators."""

from __future__ import annotations

from typing import Any

import re2

from ..conditions import MISSING, Condition, Operator, Wording, default_wording
from ..hookspecs import hookimpl

NUMERIC = ("integer", "number", "date")


def _num(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"needs a number or date, not {v!r}")
    return v


def _cmp(fn):  # comparisons tolerate mixed int/float but not str-vs-number
    def compile_(v: Any):
        v = _num(v)

        def test(x: Any) -> bool:
            try:
                return fn(x, v)
            except TypeError:
                return False

        return test

    return compile_


def _in(v: Any):
    if not isinstance(v, list):
        raise ValueError("needs a list of values, e.g. in: [minor, general]")
    s = frozenset(v)
    return lambda x: x in s


def _not_in(v: Any):
    test = _in(v)
    return lambda x: not test(x)


def _between(v: Any):
    if not (isinstance(v, list) and len(v) == 2):
        raise ValueError("needs two values [low, high], e.g. between: [1, 5]")
    lo, hi = _num(v[0]), _num(v[1])

    def test(x: Any) -> bool:
        try:
            return lo <= x <= hi
        except TypeError:
            return False

    return test


def _exists(v: Any):
    if not isinstance(v, bool):
        raise ValueError("needs true or false")
    return lambda x: v  # only reached when the field is present


def _contains(v: Any):
    def test(x: Any) -> bool:
        try:
            return v in x
        except TypeError:
            return False

    return test


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the validator reports a bad pattern, not RE2 on stderr


# RE2's \d \w \s are ASCII only; Python's, which rules were written for, are Unicode
# (\w matches 清, \d matches ５): the pattern says them in Unicode classes instead.
_OUTSIDE = {"d": r"\p{Nd}", "D": r"\P{Nd}", "w": r"[\p{L}\p{N}_]", "W": r"[^\p{L}\p{N}_]",
            "s": r"[\s\p{Z}]", "S": r"[^\s\p{Z}]"}  # fmt: skip
_INSIDE = {"d": r"\p{Nd}", "w": r"\p{L}\p{N}_", "s": r"\s\p{Z}"}


def unicode_classes(pattern: str) -> str:
    r"""``pattern`` with ``\d \w \s`` (and their negations) as Unicode classes, for RE2.

    Raises ValueError for what RE2 cannot say the Unicode way: a word boundary
    (``\b``, ``\B``) and a negated class inside brackets (``[\W]``)."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e in "bB":
                raise ValueError(
                    f"\\{e} (a word boundary) is not supported in patterns: Chinese has no spaces"
                    " between words; match the text itself, e.g. '清扫' or '^清扫'"
                )
            if in_class and e in "DWS":
                raise ValueError(f"\\{e} inside [...] is not supported; write [^...] instead")
            out.append((_INSIDE if in_class else _OUTSIDE).get(e, c + e))
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):  # [:alpha:] inside a class
                end = pattern.find(":]", i + 2)
                if end != -1:
                    out.append(pattern[i : end + 2])
                    i = end + 2
                    continue
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a ']' first in a class is itself
                out.append("]")
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _matches(v: Any):
    # RE2 matches in time linear in the text: no pattern a rule writer types, such as
    # '^(a+)+$', can stall a scoring run by backtracking. It has no backreferences or
    # lookarounds, which rules never need.
    if not isinstance(v, str):
        raise ValueError("needs a pattern text")
    try:
        pattern = unicode_classes(v)
    except ValueError as e:
        raise ValueError(f"pattern {v!r} cannot be used: {e}") from None
    try:
        rx = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as e:
        why = e.args[0] if e.args else ""
        why = why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
        if "escape sequence" in why or "perl operator" in why:
            why += (
                "; back-references such as \\1 and look-arounds such as (?=...) are not supported"
            )
        raise ValueError(f"pattern {v!r} does not compile: {why}") from None
    search = rx.search
    return lambda x: isinstance(x, str) and search(x) is not None


def _fast_eq(key: str, value: Any) -> Condition | None:
    if value is None or isinstance(value, (list, dict)):
        return None
    return lambda a, s, g, t: a.get(key, MISSING) == value


def _fast_compare(cmp: Any):
    """``attrs.x: {gte: n}`` without the getter: a missing or non-numeric value fails."""

    def fast(key: str, value: Any) -> Condition | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        v = float(value)

        def compare(a: dict, s: Any, g: str, t: str) -> bool:
            x = a.get(key)
            if x is None or isinstance(x, (bool, str)) or not isinstance(x, (int, float)):
                return False
            return cmp(float(x), v)

        return compare

    return fast


# --------------------------------------------------------------------------
# wording for the rule book (scoring.render): 服务时长不少于0.5小时


def _or(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return "、".join(words[:-1]) + "或" + words[-1]


def _word_eq(w: Wording, v: Any) -> str:
    if w.field == "subject.graded" and isinstance(v, bool):
        return "处于直接判级（尚未修复）期间" if v else "不处于直接判级期间"
    if isinstance(v, bool):
        return w.title if v else f"{w.title}：否"
    if w.field == "type":
        return f"事件为“{w.value(v)}”"
    return f"{w.title}为“{w.value(v)}”"


def _word_ne(w: Wording, v: Any) -> str:
    return f"{w.title}不为“{w.value(v)}”"


def _word_one_of(word: str):
    def render(w: Wording, v: Any) -> str:
        items = [f"“{w.value(x)}”" for x in (v if isinstance(v, list) else [v])]
        return f"{w.title}{word}{_or(items)}"

    return render


def _word_compare(word: str):
    return lambda w, v: f"{w.title}{word}{w.value(v)}{w.unit}"


def _word_between(w: Wording, v: Any) -> str:
    if isinstance(v, list) and len(v) == 2:
        return f"{w.title}在{w.value(v[0])}{w.unit}至{w.value(v[1])}{w.unit}之间"
    return default_wording("between", "介于", w, v)


def _word_exists(w: Wording, v: Any) -> str:
    return f"填写了{w.title}" if v else f"未填写{w.title}"


def _word_contains(w: Wording, v: Any) -> str:
    if w.field == "subject.tags":
        return f"带有“{v}”标签"
    if w.field == "subject.listed":
        return f"事件发生时在{w.value(v)}上"
    return f"{w.title}包含“{v}”"


def _word_matches(w: Wording, v: Any) -> str:
    return f"{w.title}符合格式 `{v}`"


# --------------------------------------------------------------------------
# the operators

BUILTIN_OPERATORS = [
    Operator(
        "eq",
        lambda v: lambda x: x == v,
        description="等于",
        fast=_fast_eq,
        render=_word_eq,
        aliases=("=", "==", "等于"),
        value_shape="value",
        never_if_undeclared=True,
    ),
    Operator(
        "ne",
        lambda v: lambda x: x != v,
        on_missing=True,
        description="不等于",
        render=_word_ne,
        aliases=("!=", "<>", "≠", "不等于"),
        value_shape="value",
    ),
    Operator(
        "in",
        _in,
        description="属于",
        render=_word_one_of("为"),
        aliases=("属于",),
        value_shape="values",
        never_if_undeclared=True,
    ),
    Operator(
        "not_in",
        _not_in,
        on_missing=True,
        description="不属于",
        render=_word_one_of("不为"),
        aliases=("不属于",),
        value_shape="values",
    ),
    Operator(
        "gt",
        _cmp(lambda x, v: x > v),
        NUMERIC,
        description="大于",
        fast=_fast_compare(float.__gt__),
        render=_word_compare("超过"),
        aliases=(">", "大于"),
        value_shape="ordered",
        never_within=lambda v, lo, hi: hi is not None and v >= hi,
    ),
    Operator(
        "gte",
        _cmp(lambda x, v: x >= v),
        NUMERIC,
        description="不少于",
        fast=_fast_compare(float.__ge__),
        render=_word_compare("不少于"),
        aliases=(">=", "≥", "大于等于", "不少于", "不低于"),
        value_shape="ordered",
        never_within=lambda v, lo, hi: hi is not None and v > hi,
    ),
    Operator(
        "lt",
        _cmp(lambda x, v: x < v),
        NUMERIC,
        description="小于",
        fast=_fast_compare(float.__lt__),
        render=_word_compare("少于"),
        aliases=("<", "小于"),
        value_shape="ordered",
        never_within=lambda v, lo, hi: lo is not None and v <= lo,
    ),
    Operator(
        "lte",
        _cmp(lambda x, v: x <= v),
        NUMERIC,
        description="不超过",
        fast=_fast_compare(float.__le__),
        render=_word_compare("不超过"),
        aliases=("<=", "≤", "小于等于", "不超过", "不高于"),
        value_shape="ordered",
        never_within=lambda v, lo, hi: lo is not None and v < lo,
    ),
    Operator(
        "between",
        _between,
        NUMERIC,
        description="介于",
        render=_word_between,
        aliases=("介于",),
        value_shape="range",
    ),
    Operator(
        "contains",
        _contains,
        ("string", "tags"),
        description="包含",
        render=_word_contains,
        aliases=("包含",),
        value_shape="text",
    ),
    Operator(
        "matches",
        _matches,
        ("string",),
        description="符合模式",
        render=_word_matches,
        aliases=("匹配",),
    ),
    # exists: false holds exactly when the field is missing
    Operator(
        "exists",
        _exists,
        on_missing=lambda v: not v,
        description="存在",
        render=_word_exists,
        aliases=("存在",),
    ),
]


@hookimpl
def register_operators() -> list[Operator]:
    return list(BUILTIN_OPERATORS)
