"""Monthly benchmark: the demo county run as a county runs it, one month at a time.

``e2e.py`` ingests every month and scores them in one go. A county does it
monthly: ``gridcredit ingest`` of the month's file, ``gridcredit score``,
``gridcredit close`` of the month, on a ledger that grows each time, and each
file carries a few events late for the month closed before it. This script
times those three commands for each month (children, start-up included),
after ingesting the subjects, and prints seconds and events/s per step.

    .venv/bin/python benchmarks/monthly.py                  # 1,000,000 events, 3 months
    .venv/bin/python benchmarks/monthly.py --events 100000
    .venv/bin/python benchmarks/monthly.py --months 12 --events 4000000   # a year
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from e2e import _gridcredit, _run  # noqa: E402  (after the path set-up)

from scoring.demo import generate_county  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Monthly ingest, score and close of the demo county.")
    ap.add_argument("--events", type=int, default=1_000_000, help="events lines [1,000,000]")
    ap.add_argument("--residents", type=int, default=20_000, help="county size [20,000]")
    ap.add_argument("--months", type=int, default=3, help="months from 2024-01, 1-24 [3]")
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--scheme", type=Path, default=REPO, help="scheme repository [this repo]")
    ap.add_argument("--work", type=Path, help="work folder [a temporary folder]")
    args = ap.parse_args(argv)
    if args.events <= 0:
        ap.error("--events must be positive")
    if not 1 <= args.months <= 24:
        ap.error("--months must be from 1 to 24")
    months = [f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(args.months)]
    work = args.work or Path(tempfile.mkdtemp(prefix="gridcredit-monthly-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        files = generate_county(
            work / "county", args.scheme, events=args.events, seed=args.seed,
            residents=args.residents, months=months,
        )  # fmt: skip
        print(f"gridcredit monthly benchmark: {args.events:,} events in {len(files.events)} months"
              f" (generated in {time.perf_counter() - start:.1f}s); work folder {work}")  # fmt: skip
        gc = [*_gridcredit(), "--scheme", str(args.scheme), "--db", str(work / "gridcredit.db")]
        step = _run([*gc, "ingest", "--quiet", str(files.subjects)], REPO)
        print(f"\n  subjects ingest {step.seconds:6.1f}s")
        print(
            f"\n  {'month':<8} {'events':>9} {'ingest':>8} {'score':>8} {'close':>8} {'total':>8}"
        )
        total_s = 0.0
        for path in files.events:
            month = re.search(r"(\d{4}-\d{2})", path.name)
            if month is None:
                raise SystemExit(f"monthly: cannot tell the month of {path.name}")
            n = files.stats.per_file[path.name]
            ingest = _run([*gc, "ingest", "--quiet", str(path)], REPO)
            score = _run([*gc, "score"], REPO)
            close = _run([*gc, "close", month.group(1)], REPO)
            s = ingest.seconds + score.seconds + close.seconds
            total_s += s
            print(f"  {month.group(1):<8} {n:>9,} {ingest.seconds:>7.1f}s {score.seconds:>7.1f}s"
                  f" {close.seconds:>7.1f}s {s:>7.1f}s   ({n / s:,.0f} events/s)")  # fmt: skip
            sys.stdout.flush()
        print(f"\n  all months: {total_s:.1f}s, {args.events / total_s:,.0f} events/s")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
