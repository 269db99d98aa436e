"""gridcredit: community credit-point schemes as a repository."""

from __future__ import annotations

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
