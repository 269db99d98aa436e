"""The Spark runner end to end, on local[1] and local[2], beside the SQLite path on the same files.

    .venv/bin/python benchmarks/spark_e2e.py                       # 1,000,000 events
    .venv/bin/python benchmarks/spark_e2e.py --events 100000       # quicker
    .venv/bin/python benchmarks/spark_e2e.py --masters 'local[1]' 'local[2]' --work /tmp/se2e --keep
    .venv/bin/python benchmarks/spark_e2e.py --events 10000000 --data /data/county-10m --json 10m.json

For the demo county of N event lines (``scoring.demo.generate_county``, 20,000
residents by default), it runs, each as a child process as a user would:

1. ``gridcredit ingest`` of the subjects and events files, then ``gridcredit score``
   (the SQLite path);
2. ``python -m scoring.spark score … --master M`` for each master M (a fresh JVM each);

and prints input lines per second of each (wall time of the child, JVM start
included, and the runner's own time without it), the Spark stages' times, the
load average before and after each run, and the ratio local[2] / local[1].
``--json FILE`` writes the figures. ``--data DIR`` keeps the generated county in
DIR and reuses it when it is there (generating 10M events takes minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--work", help="folder for files and ledgers (default: a scratch folder)")
    ap.add_argument("--data", help="folder of the generated county, reused when present")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite path")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()

    from scoring.demo import generate_county

    work = Path(args.work or tempfile.mkdtemp(prefix="spark-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else work / f"county-{args.events}-{args.residents}"
    if not (data / "subjects.jsonl").exists():
        print(f"generating {args.events:,} events into {data} ...", flush=True)
        generate_county(data, ROOT, events=args.events, residents=args.residents)
    else:
        print(f"reusing {data}", flush=True)
    subjects = str(data / "subjects.jsonl")
    events = sorted(str(p) for p in data.glob("events-*.jsonl"))
    lines = sum(1 for p in events for _ in open(p, "rb"))
    figures: dict = {"events": lines, "residents": args.residents, "cores": os.cpu_count(),
                     "runs": {}}  # fmt: skip
    print(f"{lines:,} event lines in {len(events)} files, {args.residents:,} residents")

    if not args.no_sqlite:
        db = work / "sqlite.db"
        db.unlink(missing_ok=True)
        g = [str(BIN / "gridcredit"), "--scheme", str(ROOT), "--db", str(db)]
        w1, _ = timed([*g, "ingest", "--quiet", subjects, *events])
        w2, out = timed([*g, "score"])
        figures["runs"]["sqlite"] = {"ingest_s": round(w1, 2), "score_s": round(w2, 2),
                                     "wall_s": round(w1 + w2, 2),
                                     "events_per_s": round(lines / (w1 + w2))}  # fmt: skip
        print(
            f"sqlite     ingest {w1:7.1f}s  score {w2:7.1f}s  -> {lines / (w1 + w2):9,.0f} lines/s",
            flush=True,
        )

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    for master in args.masters:
        ledger = work / f"ledger-{re.sub(r'[^0-9a-z]', '', master)}"
        shutil.rmtree(ledger, ignore_errors=True)
        cmd = [sys.executable, "-m", "scoring.spark", "score", "--scheme", str(ROOT),
               "--subjects", subjects, "--events", *events, "--ledger", str(ledger),
               "--master", master, "--partitions", str(args.partitions)]  # fmt: skip
        load0 = os.getloadavg()[0]
        wall, out = timed(cmd, env)
        load = (round(load0, 2), round(os.getloadavg()[0], 2))
        own = float(re.search(r" in ([0-9.]+)s \(", out).group(1))  # type: ignore[union-attr]
        stages = dict(
            (k.strip(), float(v))
            for k, v in re.findall(r"([a-z ]+) ([0-9.]+)s", out.split("stages: ")[-1])
        )
        figures["runs"][master] = {"wall_s": round(wall, 2), "run_s": own,
                                   "events_per_s": round(lines / wall),
                                   "run_events_per_s": round(lines / own), "stages": stages,
                                   "load_before_after": load}  # fmt: skip
        print(f"{master:<10} wall {wall:7.1f}s  run {own:7.1f}s  -> {lines / wall:9,.0f} lines/s"
              f" ({lines / own:,.0f} without JVM start)  load {load[0]:.1f} -> {load[1]:.1f}"
              f"  stages: {stages}", flush=True)  # fmt: skip
    runs = figures["runs"]
    if "local[1]" in runs and "local[2]" in runs:
        ratio = runs["local[1]"]["run_s"] / runs["local[2]"]["run_s"]
        figures["ratio_local2_local1"] = round(ratio, 2)
        stage_ratio = {k: round(v / runs["local[2]"]["stages"][k], 2)
                       for k, v in runs["local[1]"]["stages"].items()
                       if runs["local[2]"]["stages"].get(k)}  # fmt: skip
        figures["stage_ratios"] = stage_ratio
        print(f"local[2] / local[1]: {ratio:.2f}x  by stage: {stage_ratio}")
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
