"""``-k`` selection: a pytest-style expression over scenario names, file names and
table rule ids."""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import GridcreditError

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
