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

    Afterwards the objects the run keeps (subjects, memos: millions at 1M events)
    are handed to the oldest generation as they are (``freeze`` then ``unfreeze``
    moves them, without a pass over them): otherwise the first allocation after
    ``enable`` walks them all as young objects (0.3 s after a 1M-event score).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if not gc.get_freeze_count():  # never thaw what a host program froze itself
                gc.freeze()
                gc.unfreeze()
            gc.enable()
