"""What plugins register, looked up in one place: operators, points forms, metrics."""

from __future__ import annotations

from typing import Any

# --------------------------------------------------------------------------
# pass 2: meaning


def _operators() -> dict[str, Any]:
    try:
        from ..conditions import operator_table

        table = operator_table()
        if table:
            return table
    except ImportError:  # a built-in plugin module is missing: the operators still apply
        pass
    from ..builtin.operators import BUILTIN_OPERATORS

    return {op.name: op for op in BUILTIN_OPERATORS}


def _points_forms() -> set[str]:
    forms = {"per", "by"}
    try:
        from ..plugins import get_plugin_manager

        for group in get_plugin_manager().hook.register_points_forms():
            for form in group or []:
                key = getattr(form, "key", None)
                if isinstance(key, str):
                    forms.add(key)
    except ImportError:  # a built-in plugin module is missing: per and by still apply
        pass
    return forms


def _metric_names() -> set[str]:
    """Metric names registered through ``register_metrics`` (built-ins and plugins)."""
    from ..plugins import get_plugin_manager

    names: set[str] = set()
    for metrics in get_plugin_manager().hook.register_metrics():
        names.update(m.name for m in metrics or [])
    return names
