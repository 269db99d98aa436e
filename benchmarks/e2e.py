"""End-to-end benchmark: the synthetic county through ``gridcredit ingest`` and ``score``.

For each size N (events lines), this script

1. generates the demo county (``scoring.demo.generate_county``: subjects and
   one events file per month, with the usual dirty records) in a work folder;
2. runs, as a user does, ``gridcredit ingest`` on all files and then
   ``gridcredit score``, each as a subprocess on a fresh database, timing
   wall-clock seconds and reading each child's peak memory (``os.wait4``);
3. runs the floor (``benchmarks/floor.py``) on the same files;
4. prints events/s end to end (ingest + score), for ingest and score alone,
   the floor's events/s, the ratio to the floor and the peak memory.

Targets (issue "Engine"): ≥ 200,000 events/s end to end at 1M events,
≥ half the floor, ≤ 1 GB peak. The script exits 0 whatever the figures
(``--strict``: exit 1 when a target is missed).

    .venv/bin/python benchmarks/e2e.py                    # 1,000,000 events
    .venv/bin/python benchmarks/e2e.py --events 100000
    .venv/bin/python benchmarks/e2e.py --sizes 100000,1000000,10000000   # linearity
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scoring.demo import generate_county  # noqa: E402  (after the path set-up)

TARGET_RATE = 200_000
TARGET_FLOOR_RATIO = 0.5
TARGET_PEAK_MB = 1024

# Fallback when the CLI commands are not there: the same library calls, in a child.
IN_PROCESS = {
    "ingest": (
        "import sys; from pathlib import Path;"
        "from scoring.loader import load_scheme; from scoring.ledger import connect;"
        "from scoring.ingest import ingest_files;"
        "s = load_scheme(sys.argv[1]); db = connect(Path(sys.argv[2]));"
        "ingest_files(db, s, [Path(p) for p in sys.argv[3:]], progress=False)"
    ),
    "score": (
        "import sys; from pathlib import Path;"
        "from scoring.loader import load_scheme; from scoring.ledger import connect;"
        "from scoring.evaluate import score;"
        "s = load_scheme(sys.argv[1]); db = connect(Path(sys.argv[2])); score(db, s)"
    ),
}


@dataclass
class Step:
    seconds: float
    peak_mb: float
    output: str = ""


@dataclass
class Result:
    events: int
    generate_s: float
    size_mb: float
    steps: dict[str, Step] = field(default_factory=dict)

    def rate(self, *names: str) -> float:
        s = sum(self.steps[n].seconds for n in names)
        return self.events / s if s else 0.0


# The commands run as on a user's machine, where Python caches compiled modules: a
# sandbox's PYTHONDONTWRITEBYTECODE=1 would make each of them compile gridcredit's
# modules afresh (~0.07 s a command here).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(cmd: list[str], cwd: Path) -> Step:
    """Run a child, return its wall time and peak RSS; fail loudly if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=CHILD_ENV
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    text = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        sys.stderr.write(text)
        raise SystemExit(f"e2e: {' '.join(cmd[:4])} ... exited {proc.returncode}")
    return Step(seconds, usage.ru_maxrss / 1024, text)  # ru_maxrss is in KiB on Linux


def _gridcredit() -> list[str]:
    exe = Path(sys.executable).parent / "gridcredit"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("gridcredit")
    if found:
        return [found]
    raise SystemExit("e2e: the gridcredit command is not installed; run `pip install -e .` first")


def run_size(n: int, args: argparse.Namespace, work: Path) -> Result:
    folder = work / f"county-{n}"
    if folder.exists():
        shutil.rmtree(folder)
    start = time.perf_counter()
    files = generate_county(folder, args.scheme, events=n, seed=args.seed, residents=args.residents)
    generate_s = time.perf_counter() - start
    inputs = [files.subjects, *files.events]
    size_mb = sum(p.stat().st_size for p in inputs) / 1e6
    result = Result(n, generate_s, size_mb)
    db = folder / "gridcredit.db"
    if args.in_process:
        py = [sys.executable, "-c"]
        result.steps["ingest"] = _run(
            [*py, IN_PROCESS["ingest"], str(args.scheme), str(db), *map(str, inputs)], REPO
        )
        result.steps["score"] = _run([*py, IN_PROCESS["score"], str(args.scheme), str(db)], REPO)
    else:
        gc = [*_gridcredit(), "--scheme", str(args.scheme), "--db", str(db)]
        result.steps["ingest"] = _run([*gc, "ingest", "--quiet", *map(str, inputs)], REPO)
        result.steps["score"] = _run([*gc, "score"], REPO)
    floor = _run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "floor.py"),
            "--json",
            "--db",
            str(folder / "floor.db"),
            *map(str, files.events),
        ],
        REPO,
    )
    result.steps["floor"] = Step(
        json.loads(floor.output.strip().splitlines()[-1])["seconds"], floor.peak_mb
    )
    if not args.keep:
        shutil.rmtree(folder)
    return result


def report(r: Result) -> list[str]:
    e2e = r.rate("ingest", "score")
    floor = r.rate("floor")
    peak = max(r.steps["ingest"].peak_mb, r.steps["score"].peak_mb)
    ratio = e2e / floor if floor else 0.0

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    return [
        f"events                 {r.events:>12,}   ({r.size_mb:,.0f} MB of input)",
        f"generate               {r.events / r.generate_s:>12,.0f} events/s   "
        + f"({r.generate_s:.1f}s)",
        f"ingest                 {r.rate('ingest'):>12,.0f} events/s   "
        + f"({r.steps['ingest'].seconds:.1f}s, peak {r.steps['ingest'].peak_mb:,.0f} MB)",
        f"score                  {r.rate('score'):>12,.0f} events/s   "
        + f"({r.steps['score'].seconds:.1f}s, peak {r.steps['score'].peak_mb:,.0f} MB)",
        f"end to end             {e2e:>12,.0f} events/s   "
        + f"target ≥ {TARGET_RATE:,}: {mark(e2e >= TARGET_RATE)}",
        f"floor                  {floor:>12,.0f} events/s   ({r.steps['floor'].seconds:.1f}s)",
        f"ratio to floor         {ratio:>12.2f}            "
        + f"target ≥ {TARGET_FLOOR_RATIO}: {mark(ratio >= TARGET_FLOOR_RATIO)}",
        f"peak memory            {peak:>12,.0f} MB         "
        + f"target ≤ {TARGET_PEAK_MB:,}: {mark(peak <= TARGET_PEAK_MB)}",
    ]


def missed(r: Result) -> bool:
    e2e, floor = r.rate("ingest", "score"), r.rate("floor")
    peak = max(r.steps["ingest"].peak_mb, r.steps["score"].peak_mb)
    return (
        e2e < TARGET_RATE or (floor and e2e / floor < TARGET_FLOOR_RATIO) or peak > TARGET_PEAK_MB
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="End-to-end benchmark of gridcredit ingest + score.")
    ap.add_argument("--events", type=int, default=1_000_000, help="events lines [1,000,000]")
    ap.add_argument(
        "--sizes",
        help="comma-separated sizes for the linearity check, e.g. "
        "100000,1000000,10000000 (overrides --events)",
    )
    ap.add_argument("--residents", type=int, default=20_000, help="county size [20,000]")
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--scheme", type=Path, default=REPO, help="scheme repository [this repo]")
    ap.add_argument("--work", type=Path, help="work folder [a temporary folder]")
    ap.add_argument("--keep", action="store_true", help="keep the generated files and databases")
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="call scoring.ingest/scoring.evaluate in a child instead of the CLI",
    )
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    try:
        sizes = (
            [int(s.replace("_", "")) for s in args.sizes.split(",")]
            if args.sizes
            else [args.events]
        )
    except ValueError:
        ap.error("--sizes takes numbers separated by commas, e.g. 100000,1000000")
    if any(n <= 0 for n in sizes):
        ap.error("sizes must be positive")
    work = args.work or Path(tempfile.mkdtemp(prefix="gridcredit-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    mode = "library calls in a child (--in-process)" if args.in_process else "gridcredit CLI"
    print(f"gridcredit end-to-end benchmark: {mode}; {os.cpu_count()} CPUs; work folder {work}")
    # compiled once beforehand, as an installed package is, so no timed command does it
    # (where the folder is read-only each command compiles again: no harm but time)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "scoring")],
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    results = []
    try:
        for n in sizes:
            r = run_size(n, args, work)
            results.append(r)
            print()
            print("\n".join(report(r)))
            sys.stdout.flush()
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if len(results) > 1:
        base = results[0]
        print("\nlinearity (end-to-end seconds per million events; flat is linear):")
        for r in results:
            per_m = (r.steps["ingest"].seconds + r.steps["score"].seconds) / r.events * 1e6
            rel = r.rate("ingest", "score") / base.rate("ingest", "score")
            print(f"  {r.events:>12,}: {per_m:8.2f} s/M events   rate × {rel:.2f} of the smallest")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\npeak memory of any child process: {children:,.0f} MB")
    return 1 if args.strict and any(missed(r) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
