"""Helpers for runs over millions of records (ingest, score): the garbage
collector paused, the bulk children's connections and pipes."""

from __future__ import annotations

import gc
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import apsw

from ..errors import GridcreditError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows, where no child process runs (no fork)
    fcntl = None  # type: ignore[assignment]

# The pipe to a bulk child holds a whole batch (20,000 entries are ~0.7 MB of JSON), so
# handing one over never waits for the other end to read it (Linux; elsewhere the default).
PIPE_BYTES = 1 << 20


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


def child_connection(path: str, *, timeout_s: float = 120) -> apsw.Connection:
    """A connection for a bulk child process (ingest worker, event reader, ledger
    writer), through APSW rather than the standard library's ``sqlite3``.

    APSW binds and reads rows two to three times faster (at 1M rows: the ledger
    writer's CPU 7.2 s against 5.2 s, an ingest worker's staging 1.1 s against
    0.4 s a file). It carries its own SQLite build, so it is only used in a
    process that holds no other connection to the same file: SQLite's POSIX
    locks belong to the process, and closing one library's handle would drop
    the other's locks. A forked child holds none: locks are not inherited, and
    the parent's handles it inherits stay open, unused, until it exits.
    Autocommit, as ``sqlite3.connect(..., isolation_level=None)``.
    """
    conn = apsw.Connection(path)
    conn.set_busy_timeout(int(timeout_s * 1000))
    return conn


def pipe_size(conn: Any) -> None:
    """Let a pipe hold a whole batch (``PIPE_BYTES``; Linux, elsewhere the default)."""
    if PIPE_BYTES and hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # above the system's pipe-max-size: the default then


class HelperDied(GridcreditError):
    """A bulk child process (the ledger writer, the event reader) died mid-run."""


DISK_FULL = (
    "the disk is full ({error}): nothing of the step under way was written, and the"
    " ledger is as it was before it. Free disk space beside the ledger (and in the"
    " temporary folder, where large sorts spill) and run the command again: what was"
    " finished before is kept, and nothing is done twice"
)


def helper_died(what: str, proc: Any) -> HelperDied:
    """The error of a bulk child that stopped without a word: which one, and how."""
    proc.join(timeout=5)
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        how = f"was killed by signal {-code} ({name}"
        how += "; the out-of-memory killer sends it when memory runs out)" if -code == 9 else ")"
    elif code is None:
        how = "stopped answering"
    else:
        how = f"exited with status {code}"
    return HelperDied(
        f"the {what} process (pid {proc.pid}) {how}. The score run was rolled back:"
        " the ledger is as it was before it. Run `gridcredit score` again; if this"
        " happens again, score in one process: GRIDCREDIT_SINGLE_PROCESS=1 gridcredit score"
    )
