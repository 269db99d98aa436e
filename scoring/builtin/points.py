"""The built-in points forms: ``{per: attr, value: n, round: floor}`` and ``{by: attr, table: {...}}``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..compile import PointsForm
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
        # floor(2 × 1.5) must be 3, not 2.9999: round the product to 9 places first
        return rnd(round(value * x, 9))

    return points


def _by(spec: dict[str, Any]) -> Callable[[dict], int | None]:
    attr = spec["by"]
    table = {str(k): int(v) for k, v in spec["table"].items()}
    default = spec.get("default")

    def points(attrs: dict) -> int | None:
        x = attrs.get(attr)
        if x is None:
            return default
        return table.get(str(x), default)

    return points


@hookimpl
def register_points_forms() -> list[PointsForm]:
    return [PointsForm("per", _per), PointsForm("by", _by)]
