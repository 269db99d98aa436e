"""Ingest speed: pytest-benchmark case (100k events) and a 1M-event measurement.

    .venv/bin/pytest benchmarks/test_bench_ingest.py --benchmark-enable
    .venv/bin/python benchmarks/test_bench_ingest.py 1000000

The script mode prints events/s of ``ingest_file`` and of a raw floor
(``orjson.loads`` + ``executemany`` of the same rows, no checks).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

from scoring.ingest import ingest_file
from scoring.ledger import connect
from scoring.loader import load_scheme

_HASH = "0" * 32  # a content hash is 32 hex characters: same row size as ingest writes
MINI = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mini" / "rules"

_KINDS = (
    (
        "volunteer_service",
        lambda r: {"hours": r.choice((0.5, 1, 1.5, 2, 3, 4)), "activity": "清扫楼道"},
    ),
    ("council_meeting", lambda r: {"role": r.choice(("attendee", "speaker", "organizer"))}),
    ("garbage_sorting_check", lambda r: {"result": r.choice(("pass", "pass", "fail"))}),
    ("illegal_parking", lambda r: {"location": "3号楼北侧"}),
    ("pet_violation", lambda r: {"kind": r.choice(("no_leash", "fouling"))}),
)


def write_events(path: Path, n: int, *, seed: int = 1, subjects: int = 20_000) -> Path:
    """A simple synthetic event stream (not the demo county): ``n`` valid JSON Lines events."""
    r = random.Random(seed)
    with open(path, "wb") as f:
        buf = []
        for i in range(n):
            typ, attrs = _KINDS[i % len(_KINDS)]
            month = 1 + (i * 12) // n
            rec = {
                "id": f"E{i:08d}",
                "type": typ,
                "subject": f"P{r.randrange(subjects):06d}",
                "at": f"2024-{month:02d}-{r.randint(1, 28):02d}T{r.randint(7, 21):02d}:"
                f"{r.randrange(60):02d}:{r.randrange(60):02d}",
                "attrs": attrs(r),
            }
            buf.append(orjson.dumps(rec))
            if len(buf) >= 10_000:
                f.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            f.write(b"\n".join(buf) + b"\n")
    return path


def raw_floor(db_path: Path, events: Path) -> int:
    """orjson.loads + executemany of the same rows in one transaction, no checks."""
    db = connect(db_path)
    conn = db.conn
    loads, dumps = orjson.loads, orjson.dumps
    conn.execute("BEGIN")
    rows = []
    n = 0
    with open(events, "rb") as f:
        for line_no, line in enumerate(f, 1):
            r = loads(line)
            rows.append(
                (
                    r["id"],
                    r["type"],
                    r["subject"],
                    line_no,
                    dumps(r["attrs"]).decode(),
                    None,
                    "h",
                    1,
                    line_no,
                )
            )
            if len(rows) >= 20_000:
                conn.executemany(
                    "INSERT INTO events (id, type, subject, at, attrs, amends, hash, batch, line)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                n += len(rows)
                rows.clear()
    if rows:
        conn.executemany(
            "INSERT INTO events (id, type, subject, at, attrs, amends, hash, batch, line)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        n += len(rows)
    conn.execute("COMMIT")
    return n


def test_bench_ingest_100k(benchmark, tmp_path):
    scheme = load_scheme(MINI, check=False)
    events = write_events(tmp_path / "events.jsonl", 100_000)
    counter = iter(range(10**6))

    def run():
        db = connect(tmp_path / f"bench{next(counter)}.db")
        return ingest_file(db, scheme, events, progress=False)

    summary = benchmark.pedantic(run, rounds=3, iterations=1)
    assert summary.accepted == 100_000
    assert summary.read == summary.accepted + summary.duplicates + summary.rejected


def main(n: int) -> None:
    scheme = load_scheme(MINI, check=False)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        events = write_events(tmp / "events.jsonl", n)
        print(
            f"generated {n} events ({events.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s"
        )
        t = time.perf_counter()
        raw_floor(tmp / "floor.db", events)
        floor = time.perf_counter() - t
        print(f"raw floor: {n / floor:,.0f} events/s ({floor:.2f}s)")
        for label, workers in (("ingest, 1 process", 0), ("ingest, workers", None)):
            db = connect(tmp / f"ingest-{workers}.db")
            t = time.perf_counter()
            s = ingest_file(db, scheme, events, progress=False, workers=workers)
            took = time.perf_counter() - t
            print(f"{label}: {n / took:,.0f} events/s ({took:.2f}s), {took / floor:.2f}x the floor")
        t = time.perf_counter()
        s2 = ingest_file(db, scheme, events, progress=False)
        again = time.perf_counter() - t
        print(
            f"re-ingest: {n / again:,.0f} events/s ({again:.2f}s), all duplicates: {s2.duplicates == n}"
        )
        assert s.accepted == n


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
