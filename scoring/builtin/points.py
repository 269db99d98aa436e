"""The built-in points forms: ``{per: attr, value: n, round: floor}`` and ``{by: attr, table: {...}}``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..compile import ENTRY_BOUND, PointsForm, clamp_points
from ..hookspecs import hookimpl

_ROUND: dict[str, Callable[[float], int]] = {
    "floor": math.floor,
    "ceil": math.ceil,
    # half away from zero, as people round (Python's round() is banker's rounding)
    "round": lambda x: int(math.copysign(math.floor(abs(x) + 0.5), x)),
}


def _per(spec: dict[str, Any]) -> Callable[[dict], int | None]:
    attr, value = spec["per"], spec.get("value", 1)
    rnd = _ROUND[spec.get("round", "floor")]

    def points(attrs: dict) -> int | None:
        x = attrs.get(attr)
        if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
            return None
        try:
            p = value * x
        except OverflowError:  # an integer attribute too large for a float
            return 0 if value == 0 else clamp_points(x if value > 0 else -x)
        if -ENTRY_BOUND <= p <= ENTRY_BOUND:
            # floor(2 × 1.5) must be 3, not 2.9999: round the product to 9 places first
            return rnd(round(p, 9))
        # an attribute events.yaml does not bound (1e300 hours): the entry is capped
        # at the bound, never an OverflowError or a balance past 64 bits
        return clamp_points(p)

    return points


def _by(spec: dict[str, Any]) -> Callable[[dict], int | None]:
    attr = spec["by"]
    table = {str(k): clamp_points(int(v)) for k, v in spec["table"].items()}
    default = spec.get("default")
    if default is not None:
        default = clamp_points(default)

    def points(attrs: dict) -> int | None:
        x = attrs.get(attr)
        if x is None:
            return default
        return table.get(str(x), default)

    return points


@hookimpl
def register_points_forms() -> list[PointsForm]:
    # both bounded: per caps its product, by's numbers are validated (and capped here)
    return [PointsForm("per", _per, bounded=True), PointsForm("by", _by, bounded=True)]
