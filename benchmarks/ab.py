"""A/B benchmark: two gridcredit trees on the same county, in alternating rounds.

This machine is shared and noisy, so a change is judged by the ratio of two
trees measured in turns in one run, never by a lone figure. Each tree must
have its own ``.venv`` (``python3 dev.py`` makes it); each round runs, for
tree A then tree B (B then A in odd rounds), ``gridcredit ingest`` and
``gridcredit score`` on a fresh database as child processes, then the floor.

    .venv/bin/python benchmarks/ab.py --base /path/to/old/tree            # this tree is B
    .venv/bin/python benchmarks/ab.py --base OLD --new NEW --events 1000000 --rounds 3

It prints each round's end-to-end seconds for both trees, B ÷ A as a rate
ratio (above 1: B is faster), the floor ratio of each, and the canonical
hash of both ledgers (``periods.ledger_hash`` of every month), which must
match: a speed-up that changes the ledger is a bug.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=CHILD_ENV, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"ab: {' '.join(cmd[:5])} ... exited {proc.returncode}")
    return time.perf_counter() - start


def ledger_digest(db: Path) -> str:
    """sha256 over every entry, trial entry and redemption, in id order."""
    con = sqlite3.connect(db)
    h = hashlib.sha256()
    for table, order in (("entries", "id"), ("trial_entries", "id"), ("redemptions", "event")):
        for row in con.execute(f"SELECT * FROM {table} ORDER BY {order}"):
            h.update(repr(row).encode())
    con.close()
    return h.hexdigest()[:16]


def run_tree(tree: Path, inputs: list[Path], db: Path) -> tuple[float, float]:
    """(ingest seconds, score seconds) of one fresh run."""
    exe = tree / ".venv" / "bin" / "gridcredit"
    if db.exists():
        db.unlink()
    gc = [str(exe), "--scheme", str(tree), "--db", str(db)]
    return _timed([*gc, "ingest", "--quiet", *map(str, inputs)]), _timed([*gc, "score"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="tree A (the rate before)")
    ap.add_argument("--new", type=Path, default=HERE, help="tree B [this tree]")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.new))
    from scoring.demo import generate_county

    work = Path(args.work or tempfile.mkdtemp(prefix="gridcredit-ab-"))
    files = generate_county(work / "county", args.new, events=args.events, seed=1)
    inputs = [files.subjects, *files.events]
    trees = {"A": args.base.resolve(), "B": args.new.resolve()}
    times: dict[str, list[float]] = {"A": [], "B": [], "floor": []}
    parts: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    floor = [sys.executable, str(HERE / "benchmarks" / "floor.py"), *map(str, files.events)]
    for r in range(args.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for name in order:
            ingest, score = run_tree(trees[name], inputs, work / f"{name}.db")
            parts[name].append((ingest, score))
            times[name].append(ingest + score)
        times["floor"].append(_timed(floor))
        a, b, f = times["A"][-1], times["B"][-1], times["floor"][-1]
        print(
            f"round {r + 1}: A {a:6.1f} s  B {b:6.1f} s  B/A rate {a / b:.3f}"
            f"  floor {f:5.1f} s (A {f / a:.2f}, B {f / b:.2f} of the floor)"
            f"  [ingest A {parts['A'][-1][0]:.1f} B {parts['B'][-1][0]:.1f},"
            f" score A {parts['A'][-1][1]:.1f} B {parts['B'][-1][1]:.1f}]",
            flush=True,
        )
    ratios = [a / b for a, b in zip(times["A"], times["B"], strict=True)]
    print(f"median B/A rate ratio {statistics.median(ratios):.3f} over {args.rounds} rounds")
    da, db_ = ledger_digest(work / "A.db"), ledger_digest(work / "B.db")
    print(f"ledger A {da}  B {db_}  {'identical' if da == db_ else 'DIFFERENT'}")
    if da != db_:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
