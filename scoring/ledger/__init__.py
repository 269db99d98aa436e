"""The SQLite ledger: schema and migrations, reads, and the bulk writer and reader.

- ``schema``: tables, indexes, migrations, ``connect``/``memory_db``, the ``state`` table;
- ``reads``: balances, explanations, account sums, kept totals, latest times;
- ``writer``: the SQL that stores a score run's output, and the forked writer process;
- ``reader``: the forked process that reads a big run's events in order;
- ``bulk``: the paused garbage collector and the bulk children's connections.

The ledger is append-only for closed months. Every balance is base score plus
entries, so any number can be explained entry by entry. This package imports
nothing from ``scoring.evaluate``: the scorer writes through it, not the reverse.
"""

from __future__ import annotations

from .reads import (
    Balance,
    ExplainLine,
    account_sums,
    balances,
    capped_tier,
    default_as_of,
    explain,
    keep_totals,
    kept_totals_month,
    last_scored,
    latest_time,
)
from .schema import (
    ASSESSMENT,
    ENTRY_COLUMNS,
    ENTRY_INDEXES,
    EXPIRING,
    PAGE_SIZE,
    TOTALS_MONTH,
    check_precision,
    connect,
    corrections,
    get_state,
    memory_db,
    migrations,
    set_state,
)

__all__ = [
    "ASSESSMENT",
    "Balance",
    "ENTRY_COLUMNS",
    "ENTRY_INDEXES",
    "EXPIRING",
    "ExplainLine",
    "PAGE_SIZE",
    "TOTALS_MONTH",
    "account_sums",
    "balances",
    "capped_tier",
    "connect",
    "corrections",
    "default_as_of",
    "explain",
    "get_state",
    "keep_totals",
    "kept_totals_month",
    "last_scored",
    "latest_time",
    "memory_db",
    "migrations",
    "set_state",
    "check_precision",
]
