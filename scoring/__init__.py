"""gridcredit: community credit-point schemes as a repository.

The public plugin API: a plugin imports what it needs from here::

    from scoring import Operator, hookimpl

``hookimpl`` marks hook implementations; ``Operator``, ``PointsForm``,
``InputFormat``, ``Metric`` and ``Publisher`` are what the ``register_*``
hooks return (see :mod:`scoring.hookspecs`). They are imported on first use,
so ``import scoring`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .assess import Metric
    from .compile import PointsForm
    from .conditions import Operator
    from .ingest import InputFormat
    from .plugins import Plugins
    from .publish import Publisher

__version__ = "0.1.0"
__all__ = [
    "InputFormat",
    "Metric",
    "Operator",
    "Plugins",
    "PointsForm",
    "Publisher",
    "hookimpl",
    "__version__",
]

# public name -> the module that defines it
_PUBLIC = {
    "Operator": "conditions",
    "PointsForm": "compile",
    "InputFormat": "ingest",
    "Metric": "assess",
    "Publisher": "publish",
    "Plugins": "plugins",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'scoring' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
