"""Moved to :mod:`scoring.ledger.bulk`; this name stays for its importers."""

from __future__ import annotations

from .ledger.bulk import child_connection, paused_gc

__all__ = ["child_connection", "paused_gc"]
