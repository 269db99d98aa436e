"""The Spark runner's cross-subject stages at scale: ``components`` and ``score``
(which holds the stock stage) seconds of one ``score`` run on the demo county.

    python benchmarks/spark_graph.py --events 1000000 [--code DIR] [--driver-max-edges N]
        [--one-task-events N]

``--code`` runs another checkout of the ``scoring`` package (e.g. the commit before
the stages, from ``git archive``) on the same data, for a before/after figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_RUN = """
import json, sys, time
from pathlib import Path
from scoring.spark.session import get_session
from scoring.spark.run import score
data, ledger, dme, master = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ote = int(sys.argv[6])
spark = get_session(master)
kw = {} if dme < 0 else {"driver_max_edges": dme}
kw.update({} if ote < 0 else {"one_task_events": ote})
t = time.perf_counter()
run = score(spark, sys.argv[5], [str(data / "subjects.jsonl")],
            [str(p) for p in sorted(data.glob("events-*.jsonl"))], ledger, **kw)
print(json.dumps({"seconds": round(time.perf_counter() - t, 1), "stages": run.stages,
                  "stock_rounds": getattr(run, "stock_rounds", None)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--data", help="a folder with the county (made if empty)")
    ap.add_argument("--code", default=str(ROOT), help="the folder holding the scoring package")
    ap.add_argument("--driver-max-edges", type=int, default=-1, help="-1: the code's default")
    ap.add_argument("--one-task-events", type=int, default=-1, help="-1: the code's default")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    data = Path(args.data or tempfile.mkdtemp(prefix="county-"))
    if not (data / "subjects.jsonl").exists():
        from scoring.demo import generate_county

        t = time.perf_counter()
        generate_county(data, ROOT, events=args.events, residents=args.residents)
        print(f"county of {args.events:,} events in {time.perf_counter() - t:.0f}s: {data}")
    with tempfile.TemporaryDirectory() as ledger:
        out = subprocess.run(
            [sys.executable, "-c", ONE_RUN, str(data), ledger, str(args.driver_max_edges),
             args.master, str(ROOT), str(args.one_task_events)],
            cwd=args.code, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        return 1
    print(json.dumps({"code": args.code, **json.loads(out.stdout.strip().splitlines()[-1])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
