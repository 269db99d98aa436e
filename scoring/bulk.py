"""Helpers for runs over millions of records (ingest, score)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Switch the cyclic garbage collector off for a bulk run, and back on after.

    Such runs make millions of short-lived tuples and no reference cycles, so
    reference counting frees everything and the collector only costs time: a
    quarter of the scorer's event loop at 1M events. A process forked inside
    (the ledger writer, ingest workers) inherits the setting.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
