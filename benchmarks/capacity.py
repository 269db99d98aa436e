"""The province capacity plan, derived from measured figures (docs/spark-capacity.md).

    .venv/bin/python benchmarks/capacity.py --e2e e2e-10m.json --memory memory.json \\
        --eventlog eventlog-1m.json [--cores 200 --executor-memory-gib 16 --executor-cores 4]

Inputs, each written by a benchmark of this folder:

- ``--e2e``: ``spark_e2e.py --json`` (events, the run times of ``local[1]`` and
  ``local[2]``): the per-core rate and the two-core efficiency;
- ``--memory``: ``spark_memory.py --json``: a scoring task's memory per event
  (the slope between the two largest sizes) and its fixed base;
- ``--eventlog``: ``spark_eventlog.py --json --events N``: shuffle bytes per
  input event; ``--ledger-bytes``/``--ledger-events`` the Parquet ledger's size.

It prints the plan as Markdown, every figure with the arithmetic that gives it.
Nothing in it is guessed except what it names as an assumption.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import orjson

GiB = 2**30


def plan(
    e2e: dict, memory: list[dict], eventlog: dict, *, subjects: float, events_year: float,
    cores: int, executor_cores: int, executor_memory_gib: float, python_share: float,
    ledger_bytes_per_event: float | None,
) -> str:  # fmt: skip
    n = e2e["events"]
    runs = e2e["runs"]
    t1, t2 = runs["local[1]"]["run_s"], runs["local[2]"]["run_s"]
    r1 = n / t1  # events per second on one core
    speedup = t1 / t2
    eff = speedup / 2
    # memory = base + slope × events + per_subject × subjects: the slope from the two
    # largest runs with the fewest subjects, the subject term from two runs of equal size
    few = min(m["subjects"] for m in memory)
    mem = sorted((m for m in memory if m["subjects"] == few), key=lambda m: m["events"])
    a, b = mem[-2], mem[-1]
    slope = (b["peak_mib"] - a["peak_mib"]) * 2**20 / (b["events"] - a["events"])
    many = [
        m
        for m in memory
        if abs(m["events"] - b["events"]) < 0.01 * b["events"] and m["subjects"] > few
    ]
    c = many[0] if many else None
    per_subj = ((c["peak_mib"] - b["peak_mib"]) * 2**20 / (c["subjects"] - few)) if c else 0.0
    base = b["peak_mib"] * 2**20 - slope * b["events"] - per_subj * few
    per_event = eventlog["per_event"]
    shuffle = per_event["shuffle_write_b"]
    month = events_year / 12
    per_subject = events_year / subjects

    task_budget = executor_memory_gib * GiB * python_share / executor_cores
    # a monthly run's partition holds its share of the month's events and of all subjects
    per_event_all = slope + per_subj * subjects / month
    max_events = (task_budget - base) / per_event_all
    partitions = math.ceil(month / (max_events / 2))  # half the budget: skew headroom
    partitions = max(partitions, 2 * cores)
    partitions = math.ceil(partitions / cores) * cores
    per_partition = month / partitions
    task_mem = base + slope * per_partition + per_subj * subjects / partitions
    hours = lambda evts, e: evts / (r1 * cores * e) / 3600  # noqa: E731
    lo_eff = min(eff, 0.5)

    out = []
    w = out.append
    w("| measured | value | from |")
    w("|---|---|---|")
    w(f"| events in the benchmark | {n:,} | `spark_e2e.py` |")
    w(f"| `local[1]` run | {t1:,.1f} s → **{r1:,.0f} events/s per core** | {n:,} / {t1:,.1f} |")
    w(f"| `local[2]` run | {t2:,.1f} s → {n / t2:,.0f} events/s | {n:,} / {t2:,.1f} |")
    w(
        f"| `local[2]` / `local[1]` | **{speedup:.2f}×**, efficiency {eff:.2f} per core | {t1:,.1f} / {t2:,.1f}; / 2 |"
    )
    w(
        f"| task memory | {base / 2**20:,.0f} MiB + **{slope:,.0f} bytes per event** | `spark_memory.py`, {a['events']:,} → {b['events']:,} events, {few:,} subjects |"
    )
    if c:
        w(
            f"| task memory per subject | **{per_subj:,.0f} bytes** | `spark_memory.py`, {few:,} → {c['subjects']:,} subjects at {b['events']:,} events |"
        )
    w(f"| shuffle written | **{shuffle:,.0f} bytes per input event** | `spark_eventlog.py` |")
    if ledger_bytes_per_event:
        w(
            f"| Parquet ledger | {ledger_bytes_per_event:,.0f} bytes per input event | size on disk / events |"
        )
    w("")
    w("| province | value | arithmetic |")
    w("|---|---|---|")
    w(f"| subjects | {subjects:,.0f} | given |")
    w(f"| events a year | {events_year:,.0f} ({per_subject:,.0f} per subject) | given |")
    w(f"| events a month | {month:,.0f} | {events_year:,.0f} / 12 |")
    w(
        f"| cluster | {cores} cores: {cores // executor_cores} executors × {executor_cores} cores × {executor_memory_gib:g} GiB | stated |"
    )
    w(
        f"| memory per scoring task | {task_budget / GiB:,.2f} GiB | {executor_memory_gib:g} GiB × {python_share:g} (Python share) / {executor_cores} |"
    )
    w(
        f"| memory per event of a monthly run | {per_event_all:,.0f} B | {slope:,.0f} B + {per_subj:,.0f} B × {subjects:,.0f} subjects / {month:,.0f} events |"
    )
    w(
        f"| events a task can hold | {max_events:,.0f} | ({task_budget / 2**20:,.0f} MiB − {base / 2**20:,.0f} MiB) / {per_event_all:,.0f} B |"
    )
    w(
        f"| `--partitions` for a monthly run | **{partitions:,}** ({per_partition:,.0f} events, {subjects / partitions:,.0f} subjects each) | ≥ month / (half a task's events), ≥ 2 × cores, a multiple of the cores |"
    )
    w(
        f"| a task's memory at that size | {task_mem / GiB:,.2f} GiB of {task_budget / GiB:,.2f} | {base / 2**20:,.0f} MiB + {slope:,.0f} B × {per_partition:,.0f} + {per_subj:,.0f} B × {subjects / partitions:,.0f} |"
    )
    w(
        f"| shuffle per monthly run | {month * shuffle / GiB:,.0f} GiB | {month:,.0f} × {shuffle:,.0f} B |"
    )
    if ledger_bytes_per_event:
        w(
            f"| ledger growth a year | {events_year * ledger_bytes_per_event / 2**40:,.2f} TiB | {events_year:,.0f} × {ledger_bytes_per_event:,.0f} B |"
        )
    w(
        f"| monthly run, measured efficiency | **{hours(month, eff):,.2f} h** | {month:,.0f} / ({r1:,.0f} × {cores} × {eff:.2f}) / 3600 |"
    )
    w(
        f"| monthly run, efficiency {lo_eff:.2f} (network shuffles) | {hours(month, lo_eff):,.2f} h | {month:,.0f} / ({r1:,.0f} × {cores} × {lo_eff:.2f}) / 3600 |"
    )
    w(
        f"| a full year rescored (rule change) | {hours(events_year, lo_eff):,.1f} h | {events_year:,.0f} / ({r1:,.0f} × {cores} × {lo_eff:.2f}) / 3600 |"
    )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--e2e", required=True)
    ap.add_argument("--memory", required=True)
    ap.add_argument("--eventlog", required=True)
    ap.add_argument("--subjects", type=float, default=100e6)
    ap.add_argument("--events-year", type=float, default=5e9)
    ap.add_argument("--cores", type=int, default=200)
    ap.add_argument("--executor-cores", type=int, default=4)
    ap.add_argument("--executor-memory-gib", type=float, default=16)
    ap.add_argument("--python-share", type=float, default=0.5,
                    help="share of an executor's memory given to its Python workers")  # fmt: skip
    ap.add_argument("--ledger-bytes", type=float)
    ap.add_argument("--ledger-events", type=float)
    args = ap.parse_args()
    ledger = (
        args.ledger_bytes / args.ledger_events if args.ledger_bytes and args.ledger_events else None
    )
    print(plan(
        orjson.loads(Path(args.e2e).read_bytes()), orjson.loads(Path(args.memory).read_bytes()),
        orjson.loads(Path(args.eventlog).read_bytes()), subjects=args.subjects,
        events_year=args.events_year, cores=args.cores, executor_cores=args.executor_cores,
        executor_memory_gib=args.executor_memory_gib, python_share=args.python_share,
        ledger_bytes_per_event=ledger,
    ))  # fmt: skip


if __name__ == "__main__":
    main()
