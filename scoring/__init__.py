"""gridcredit: community credit-point schemes as a repository."""

from __future__ import annotations

__version__ = "0.1.0"
