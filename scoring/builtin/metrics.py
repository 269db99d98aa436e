"""The built-in assessment metrics: ``mean sum count median`` of score or points,
``survey`` and ``weighted``. See :mod:`scoring.assess` for their exact meaning."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from ..assess import Metric, MetricContext
from ..hookspecs import hookimpl

Values = dict[str, float | None]


def _aggregate(name: str, fn: Callable[[list[int]], float | None]) -> Metric:
    def compute(ctx: MetricContext, what: Any) -> Values:
        per_subject = ctx.values(str(what))
        if name == "count" and what == "points":
            return {
                scope: float(sum(1 for s in members if per_subject.get(s, 0) > 0))
                for scope, members in ctx.scopes.items()
            }
        out: Values = {}
        for scope, members in ctx.scopes.items():
            vals = [per_subject[s] for s in members if s in per_subject]
            out[scope] = fn(vals) if vals else None
        return out

    return Metric(name, compute, f"{name} of score (period end) or points (earned in the period)")


def _survey(ctx: MetricContext, spec: Any) -> Values:
    respondent = spec.get("respondent") if isinstance(spec, dict) else spec
    by_subject = ctx.surveys(None if respondent is None else str(respondent))
    out: Values = {}
    for scope, members in ctx.scopes.items():
        vals = [v for s in members for v in by_subject.get(s, [])]
        out[scope] = sum(vals) / len(vals) if vals else None
    return out


def _weighted(ctx: MetricContext, spec: Any) -> Values:
    if not isinstance(spec, list) or not spec:
        raise ctx.error("weighted needs a list of {weight: n, <metric>: ...} items")
    parts: list[tuple[float, Values]] = []
    for item in spec:
        if not isinstance(item, dict) or not isinstance(item.get("weight"), (int, float)):
            raise ctx.error(
                f"weighted item {item!r} needs a numeric weight, e.g. {{weight: 40, survey: {{respondent: residents}}}}"
            )
        parts.append((float(item["weight"]), ctx.compute(item)))
    total = sum(w for w, _ in parts)
    out: Values = {}
    for scope in ctx.scopes:
        vals = [(w, v.get(scope)) for w, v in parts]
        if total <= 0 or any(v is None for _, v in vals):
            out[scope] = None  # a missing component: no composite value
        else:
            out[scope] = sum(w * v for w, v in vals if v is not None) / total
    return out


BUILTIN_METRICS = [
    _aggregate("mean", lambda v: sum(v) / len(v)),
    _aggregate("sum", lambda v: float(sum(v))),
    _aggregate("count", lambda v: float(len(v))),
    _aggregate("median", lambda v: float(statistics.median(v))),
    Metric("survey", _survey, "mean attrs.score of the period's survey events, by respondent"),
    Metric("weighted", _weighted, "weighted mean of other metrics (Σ weight × value / Σ weight)"),
]


@hookimpl
def register_metrics() -> list[Metric]:
    return list(BUILTIN_METRICS)
