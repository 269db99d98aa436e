"""Defaults for rules, declared once (``defaults:`` in a pack or in scheme.yaml) and merged
into every rule of the scheme as it is read (``loader.read_scheme``), before any check, so
that validate, the loader and every later stage see each rule whole.

    defaults:
      all: {...}          # every rule
      deductions: {...}   # rules that take points
      awards: {...}       # rules that give points

A rule's own keys win, then the pack's (its kind's over ``all``), then the scheme's; a rule
drops a default with ``no_defaults: [escalate, ...]``. A merged value keeps the position of
the ``defaults`` node it came from (a message about it points there).
"""

from __future__ import annotations

from typing import Any

KINDS = ("all", "deductions", "awards")


def rule_kind(r: dict[str, Any]) -> str:
    """``deductions`` when every point value written is negative, ``awards`` when every one
    is positive, else ``""`` (a grading, a repair of nothing, a mixed table)."""
    p = r.get("points")
    values: list[float] = []
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        values = [p]
    elif isinstance(p, dict):
        if isinstance(p.get("value"), (int, float)):
            values = [p["value"]]
        elif isinstance(p.get("table"), dict):
            values = [v for v in p["table"].values() if isinstance(v, (int, float))]
        else:
            for key in ("levels", "brackets"):
                for item in p.get(key) or []:
                    if isinstance(item, dict) and isinstance(item.get("points"), (int, float)):
                        values.append(item["points"])
    esc = r.get("escalate")
    if isinstance(esc, dict):
        values += [s for s in esc.get("steps") or [] if isinstance(s, (int, float))]
    values = [v for v in values if not isinstance(v, bool)]
    if values and all(v < 0 for v in values):
        return "deductions"
    if values and all(v > 0 for v in values):
        return "awards"
    return ""


def apply_defaults(scheme: Any, packs: list[Any]) -> None:
    """Merge the scheme's and each pack's ``defaults`` into the pack's rules, in place."""
    layers = [_layer(scheme)]
    for p in packs:
        if not isinstance(p, dict) or not isinstance(p.get("rules"), list):
            continue
        mine = [*layers, _layer(p)]
        if not any(mine):
            continue
        for r in p["rules"]:
            if isinstance(r, dict):
                _merge(r, mine)


def _layer(data: Any) -> dict[str, Any]:
    d = data.get("defaults") if isinstance(data, dict) else None
    return d if isinstance(d, dict) else {}


def _merge(r: dict[str, Any], layers: list[dict[str, Any]]) -> None:
    kind = rule_kind(r)
    off = r.get("no_defaults")
    skip = set(off) if isinstance(off, list) else set()
    # most specific first: the pack's kind, the pack's all, the scheme's kind, the scheme's all
    for layer in reversed(layers):
        for which in (kind, "all"):
            src = layer.get(which) if which else None
            if not isinstance(src, dict):
                continue
            for key, value in src.items():
                if key in r or key in skip:
                    continue
                r[key] = value
                for attr in ("key_pos", "val_pos"):
                    here, there = getattr(r, attr, None), getattr(src, attr, None)
                    if here is not None and there is not None and key in there:
                        here[key] = there[key]
