"""Month 3 as an incremental Spark run vs all three months from scratch (local[N]).

    .venv/bin/python benchmarks/spark_incremental.py [--events 20000] [--master local[2]]

Generates the demo county, scores January and February into a ledger (two runs),
then times the March run on it; and times one run of all three files into a fresh
ledger. Prints one line of seconds. Each timing is the ``score`` call only (the
SparkSession is started before).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--residents", type=int, default=2_000)
    p.add_argument("--master", default="local[2]")
    args = p.parse_args()

    from scoring.demo import generate_county
    from scoring.loader import load_scheme
    from scoring.spark.run import score
    from scoring.spark.session import get_session

    scheme = load_scheme(ROOT)
    spark = get_session(args.master)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate_county(out, scheme, events=args.events, residents=args.residents)
        subjects = [str(out / "subjects.jsonl")]
        months = [str(p) for p in sorted(out.glob("events-*.jsonl"))]
        inc = str(out / "incremental")
        score(spark, str(ROOT), subjects, months[:1], inc)
        score(spark, str(ROOT), [], months[1:2], inc)
        t = time.perf_counter()
        r3 = score(spark, str(ROOT), [], months[2:], inc)
        incremental = time.perf_counter() - t
        t = time.perf_counter()
        full = score(spark, str(ROOT), subjects, months, str(out / "full"))
        scratch = time.perf_counter() - t
    print(
        f"{args.master}, demo county {args.events:,} events: month 3 incremental"
        f" {incremental:.1f} s ({r3.summary.events:,} events scored) vs all three months"
        f" from scratch {scratch:.1f} s ({full.summary.events:,} events)"
    )
    spark.stop()


if __name__ == "__main__":
    main()
