"""Memory of one Spark scoring task, per event: the figure that sizes partitions.

    .venv/bin/python benchmarks/spark_memory.py                    # 100k, 300k, 1M events
    .venv/bin/python benchmarks/spark_memory.py --events 200000 --json out.json

A scoring task (``scoring.spark.partition.score_partition``) holds its partition's
events and the entries they give in memory until it hands its output to Spark.
This runs that very function outside Spark, in a child process per size, on
the demo county's events (ingested by the SQLite path, then fed to the task as
Arrow batches of ``IN_SCHEMA`` as Spark would feed them), and reports the
child's peak resident memory above its baseline and the scoring time, per
event. The capacity plan (docs/spark-capacity.md) divides executor memory by
this figure. Run it at two resident counts (``--residents``) for the memory
per subject besides the memory per event. Needs pyarrow (the ``spark`` extra), not Java.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(db_path: str) -> None:
    """One measurement: feed the ledger's subjects and events to one scoring task."""
    import sqlite3

    import pyarrow as pa

    from scoring.spark.partition import IN_SCHEMA, arrow_schema, score_partition

    schema = arrow_schema(IN_SCHEMA)
    names = schema.names
    conn = sqlite3.connect(db_path)
    groups: dict[str, list[str]] = {}
    for s, g in conn.execute("SELECT subject, grp FROM memberships ORDER BY subject, grp"):
        groups.setdefault(s, []).append(g)

    def batches():
        size = 50_000
        cur = conn.execute("SELECT id, kind, grid, tags, links FROM subjects ORDER BY id")
        while rows := cur.fetchmany(size):
            cols = {n: [None] * len(rows) for n in names}
            cols["comp"] = ["c"] * len(rows)
            cols["kind"] = [0] * len(rows)
            cols["id"] = [r[0] for r in rows]
            cols["skind"] = [r[1] for r in rows]
            cols["grid"] = [r[2] for r in rows]
            cols["tags"] = [r[3] for r in rows]
            cols["links"] = [r[4] for r in rows]
            cols["groups"] = [orjson.dumps(groups.get(r[0], [])).decode() for r in rows]
            yield pa.RecordBatch.from_pydict(cols, schema=schema)
        cur = conn.execute("SELECT id, subject, at, type, attrs, amends, batch, line FROM events")
        while rows := cur.fetchmany(size):
            cols = {n: [None] * len(rows) for n in names}
            cols["comp"] = ["c"] * len(rows)
            cols["kind"] = [1] * len(rows)
            cols["id"] = [r[0] for r in rows]
            cols["subject"] = [r[1] for r in rows]
            cols["at"] = [r[2] for r in rows]
            cols["key"] = [f"{r[3]}\x1f{r[4]}" for r in rows]
            cols["amends"] = [r[5] for r in rows]
            cols["fi"] = [r[6] - 2 for r in rows]
            cols["line"] = [r[7] for r in rows]
            yield pa.RecordBatch.from_pydict(cols, schema=schema)

    n = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    n_subjects = conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0]
    base = _rss_kib()
    t0 = time.perf_counter()
    out = list(score_partition(str(ROOT), ["events"])(batches()))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    rows_out = sum(b.num_rows for b in out)
    print(orjson.dumps({
        "events": n, "subjects": n_subjects, "output_rows": rows_out, "seconds": round(seconds, 2),
        "peak_mib": round(peak / 1024, 1), "base_mib": round(base / 1024, 1),
        "bytes_per_event": round((peak - base) * 1024 / n),
        "events_per_s": round(n / seconds),
    }).decode())  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--work", help="folder for the files (default: a scratch folder)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return

    from scoring.demo import generate_county

    work = Path(args.work or tempfile.mkdtemp(prefix="spark-mem-"))
    results = []
    for n in args.events:
        data = work / f"county-{n}-{args.residents}"
        if not (data / "subjects.jsonl").exists():
            generate_county(data, ROOT, events=n, residents=args.residents)
        db = data / "ingested.db"
        if not db.exists():
            g = [str(Path(sys.executable).parent / "gridcredit"), "--scheme", str(ROOT),
                 "--db", str(db)]  # fmt: skip
            files = [str(data / "subjects.jsonl"), *sorted(map(str, data.glob("events-*.jsonl")))]
            subprocess.run([*g, "ingest", "--quiet", *files], check=True, capture_output=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(db)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        r = orjson.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['events']:>10,} events, {r['subjects']:,} subjects: peak {r['peak_mib']:8.1f} MiB (base {r['base_mib']:.1f}),"
            f" {r['bytes_per_event']:,} bytes/event, {r['events_per_s']:,} events/s on one core"
        )
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
