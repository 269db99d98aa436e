"""The floor: the least work any ingest + score of these files must do.

Parse every line with the same JSON parser the engine uses (orjson), insert
one row per event and one ledger row per event with raw ``sqlite3``
``executemany``, all in one transaction. No validation, no rules, no
accounting. ``gridcredit ingest`` + ``gridcredit score`` should stay within
a small factor of this (the target is at least half its speed).

    python benchmarks/floor.py events-2024-01.jsonl events-2024-02.jsonl ...
    python benchmarks/floor.py --json --db /tmp/floor.db FILE...   # for e2e.py
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

SCHEMA = """
CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, type TEXT, subject TEXT,
                     at TEXT, attrs TEXT);
CREATE TABLE entries (id INTEGER PRIMARY KEY, subject TEXT, grp TEXT, points INTEGER,
                      rule TEXT, event TEXT, at TEXT);
"""


def _records(paths: list[Path]) -> Iterator[tuple[str, str, str, str, str]]:
    loads, dumps = orjson.loads, orjson.dumps
    for path in paths:
        with open(path, "rb") as f:
            for line in f:
                try:
                    r = loads(line)
                    yield (
                        r["id"],
                        r["type"],
                        r["subject"],
                        r["at"],
                        dumps(r.get("attrs") or {}).decode(),
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue


def run_floor(paths: list[Path], db_path: Path) -> dict[str, float]:
    """Load the files into a fresh database; return lines, events and seconds."""
    if db_path.exists():
        db_path.unlink()
    start = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # the same settings as scoring/ledger.py
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-200000")
    conn.executescript(SCHEMA)
    events: list[tuple[str, str, str, str, str]] = []
    n = 0
    conn.execute("BEGIN")
    # Chunks keep memory bounded; still one transaction.
    for rec in _records(paths):
        events.append(rec)
        if len(events) >= 50_000:
            n += _insert(conn, events)
            events = []
    n += _insert(conn, events)
    conn.execute("COMMIT")
    conn.close()
    seconds = time.perf_counter() - start
    lines = sum(_count_lines(p) for p in paths)
    return {"lines": lines, "events": n, "seconds": seconds}


def _insert(conn: sqlite3.Connection, events: list[tuple[str, str, str, str, str]]) -> int:
    conn.executemany(
        "INSERT OR IGNORE INTO events (id, type, subject, at, attrs) VALUES (?, ?, ?, ?, ?)",
        events,
    )
    conn.executemany(
        "INSERT INTO entries (subject, grp, points, rule, event, at) VALUES (?, ?, ?, ?, ?, ?)",
        [(e[2], "residents", 1, e[1], e[0], e[3]) for e in events],
    )
    return len(events)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="events JSON Lines files")
    ap.add_argument("--db", type=Path, help="database to (re)create [default: a temporary file]")
    ap.add_argument("--json", action="store_true", help="print one JSON object (for e2e.py)")
    args = ap.parse_args(argv)
    for p in args.files:
        if not p.is_file():
            print(f"floor: {p}: no such file", file=sys.stderr)
            return 2
    tmp = None
    if args.db is None:
        fd, name = tempfile.mkstemp(suffix=".db", prefix="floor-")
        os.close(fd)
        tmp = args.db = Path(name)
    try:
        result = run_floor(args.files, args.db)
    finally:
        if tmp is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(tmp) + suffix).unlink(missing_ok=True)
    rate = result["lines"] / result["seconds"] if result["seconds"] else 0.0
    if args.json:
        print(json.dumps({**result, "lines_per_s": rate}))
    else:
        print(
            f"floor: {result['lines']:,} lines ({result['events']:,} events) in"
            f" {result['seconds']:.2f}s = {rate:,.0f} events/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
