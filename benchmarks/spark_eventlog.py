"""Per-stage figures of a Spark run from its event log: tasks, task time, input,
shuffle written and read, spilled bytes. The capacity plan's shuffle sizes come
from here (docs/spark-capacity.md).

    export PYSPARK_SUBMIT_ARGS="--conf spark.eventLog.enabled=true \\
        --conf spark.eventLog.dir=file:///tmp/evlog --conf spark.eventLog.compress=false pyspark-shell"
    .venv/bin/python -m scoring.spark score ... --master 'local[2]'
    .venv/bin/python benchmarks/spark_eventlog.py /tmp/evlog/<app> [--events N] [--json out.json]

``--events N`` adds bytes per input event to each figure.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import orjson

FIELDS = ("tasks", "task_s", "input_b", "shuffle_write_b", "shuffle_write_rows",
          "shuffle_read_b", "spill_b", "result_b")  # fmt: skip


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def stages(path: Path) -> list[dict]:
    """One row per stage attempt that ran tasks, in the order stages finished."""
    per: dict[tuple[int, int], dict] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    names: dict[tuple[int, int], str] = {}
    order: list[tuple[int, int]] = []
    for f in _files(path):
        with open(f, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                if line[:1] != b"{":
                    raise SystemExit(
                        f"{f}: not a plain JSON event log; run with"
                        " --conf spark.eventLog.compress=false"
                    )
                d = orjson.loads(line)
                ev = d.get("Event")
                if ev == "SparkListenerTaskEnd":
                    key = (d["Stage ID"], d["Stage Attempt ID"])
                    m = d.get("Task Metrics") or {}
                    s = per[key]
                    s["tasks"] += 1
                    s["task_s"] += m.get("Executor Run Time", 0) / 1000
                    s["input_b"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0)
                    w = m.get("Shuffle Write Metrics") or {}
                    s["shuffle_write_b"] += w.get("Shuffle Bytes Written", 0)
                    s["shuffle_write_rows"] += w.get("Shuffle Records Written", 0)
                    r = m.get("Shuffle Read Metrics") or {}
                    s["shuffle_read_b"] += r.get("Remote Bytes Read", 0) + r.get(
                        "Local Bytes Read", 0
                    )
                    s["spill_b"] += m.get("Disk Bytes Spilled", 0)
                    s["result_b"] += m.get("Result Size", 0)
                elif ev == "SparkListenerStageCompleted":
                    info = d["Stage Info"]
                    key = (info["Stage ID"], info["Stage Attempt ID"])
                    names[key] = info.get("Stage Name", "")
                    order.append(key)
    return [{"stage": k[0], "name": names.get(k, ""), **per[k]} for k in order if k in per]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", help="an event log file or folder")
    ap.add_argument("--events", type=int, help="input events, for bytes per event")
    ap.add_argument("--json", help="write the rows and totals to this file")
    args = ap.parse_args()
    rows = stages(Path(args.log))
    total = {k: sum(r[k] for r in rows) for k in FIELDS}
    for r in rows:
        print(
            f"{r['stage']:>4} {r['tasks']:>5} tasks {r['task_s']:8.1f}s"
            f"  in {r['input_b'] / 2**20:9.1f} MiB  shuffle w {r['shuffle_write_b'] / 2**20:9.1f} MiB"
            f"  r {r['shuffle_read_b'] / 2**20:9.1f} MiB  spill {r['spill_b'] / 2**20:7.1f} MiB"
            f"  {r['name'][:60]}"
        )
    print(
        f"total: {total['tasks']} tasks, {total['task_s']:.1f} task-s, shuffle written"
        f" {total['shuffle_write_b'] / 2**20:.1f} MiB, spilled {total['spill_b'] / 2**20:.1f} MiB"
    )
    out: dict = {"stages": rows, "total": total}
    if args.events:
        per_event = {k: round(total[k] / args.events, 1) for k in
                     ("input_b", "shuffle_write_b", "shuffle_read_b", "spill_b")}  # fmt: skip
        per_event["task_ms"] = round(total["task_s"] * 1000 / args.events, 4)
        out["per_event"] = per_event
        print("per input event: " + ", ".join(f"{k} {v}" for k, v in per_event.items()))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
