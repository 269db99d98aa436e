"""Month 3 as an incremental Spark run vs all three months from scratch (local[N]).

    .venv/bin/python benchmarks/spark_incremental.py [--events 20000] [--master local[2]]

Generates the demo county, scores January and February into a ledger (two runs),
then times the March run on it; and times one run of all three files into a fresh
ledger. Prints one line of seconds. Each timing is the ``score`` call only (the
SparkSession is started before). With ``--close`` January and February are closed
before March's run (``periods`` rows as ``close`` writes them), as in the monthly
routine (score, close, publish): February's stragglers in March's file are then late
and March's run scores March's file only; without it they rewind February.
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
    p.add_argument("--close", action="store_true", help="close January and February first")
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
        if args.close:
            _close(spark, inc, ["2024-01", "2024-02"])
        t = time.perf_counter()
        r3 = score(spark, str(ROOT), [], months[2:], inc)
        incremental = time.perf_counter() - t
        t = time.perf_counter()
        full = score(spark, str(ROOT), subjects, months, str(out / "full"))
        scratch = time.perf_counter() - t
    print(
        f"{args.master}, {'closed' if args.close else 'open'} Jan/Feb, demo county {args.events:,} events: month 3 incremental"
        f" {incremental:.1f} s ({r3.summary.events:,} events scored) vs all three months"
        f" from scratch {scratch:.1f} s ({full.summary.events:,} events)"
    )
    for name, r in (("month 3", r3), ("from scratch", full)):
        print(f"  {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.stages.items()))
    spark.stop()


def _close(spark, ledger: str, months: list[str]) -> None:
    """A version with ``periods`` rows closing ``months`` (what an incremental run
    reads of a close), the other tables carried."""
    from scoring.spark import ledger as store

    cur = store.current(ledger)
    new = store.new_version(ledger)
    for d in cur.iterdir():
        if d.is_dir():
            store.carry(cur, new, d.name)
    rows = [(m, 1, None, 0, None) for m in months]
    spark.createDataFrame(rows, store.SCHEMAS["periods"]).write.parquet(str(new / "periods"))
    store.write_meta(new, store.read_meta(cur))
    store.switch(ledger, new)


if __name__ == "__main__":
    main()
