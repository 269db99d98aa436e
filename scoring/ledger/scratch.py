"""Scratch files a killed run leaves beside the ledger, and their removal by the next.

Two kinds, each removed only when it is provably stale:

* ``.gridcredit-ingest-<pid>-*``: the folder where ingest workers stage a large
  file (``scoring.ingest.parallel``); stale when process ``<pid>`` is gone.
* ``<ledger>-mj*``: an SQLite super-journal (a transaction over attached
  databases); stale when none of the journals it lists exists any more, which
  is SQLite's own rule: only a hot journal that names it ever reads it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

STAGE_PREFIX = ".gridcredit-ingest-"


def alive(pid: int) -> bool:
    """Whether a process of this id exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _stale_super_journal(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return False
    # NUL-terminated journal names, each the full path of a database's journal
    children = [c for c in data.split(b"\0") if c]
    return not any(os.path.exists(os.fsdecode(c)) for c in children)


def clean_stale(ledger: str | Path) -> list[str]:
    """Remove the stale scratch files a killed run left beside ``ledger``; the names
    removed. Errors (a folder not readable, a file just removed) are ignored: the
    next run tries again."""
    ledger = os.path.abspath(ledger)
    folder, base = os.path.split(ledger)
    removed: list[str] = []
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return removed
    for name in names:
        full = os.path.join(folder, name)
        if name.startswith(STAGE_PREFIX):
            pid = name[len(STAGE_PREFIX) :].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
                shutil.rmtree(full, ignore_errors=True)
                removed.append(name)
        elif name.startswith(base + "-mj") and _stale_super_journal(full):
            try:
                os.unlink(full)
            except OSError:
                continue
            removed.append(name)
    return removed
