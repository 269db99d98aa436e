"""Site speed: publishing the demo county's latest month and building it with MkDocs.

    .venv/bin/python benchmarks/bench_site.py                    # makes the demo county (~1 min)
    .venv/bin/python benchmarks/bench_site.py --reuse demo       # copies an existing demo folder
    .venv/bin/python benchmarks/bench_site.py --strict           # exit 1 when the target is missed

Target (the site issue): publishing and building the demo county (20,000
residents) takes under a minute on this machine. The script times, as a user
runs them (``gridcredit`` child processes, start-up included):

* ``publish, cold``: ``gridcredit publish <latest month>`` with no look-up key
  cache, i.e. the first publish of a scheme: one PBKDF2 key derivation per
  person, every page and look-up file written;
* ``publish, warm``: the same with the key cache of the earlier run (a later
  month): every page and look-up file written again, no key derivation
  (the month's folders and ``lookup/`` are removed before each publish);
* ``build``: ``gridcredit build`` (``mkdocs build --strict``) of all months.

and, in this process, two floors with the same counts:

* ``floor, files``: writing as many small files as the look-up folder holds,
  of the same total size, into a fresh folder;
* ``floor, keys``: the PBKDF2 derivations alone on every core.

Ratios against the floors show how much of a figure is the unavoidable work.
The work folder (``--work``, default a fresh temporary folder) is left alone
afterwards only with ``--keep``; the repository's ``demo/`` is never written.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 60.0
GRIDCREDIT = [sys.executable, "-m", "scoring.cli"]


def _run(args: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
    return took


def _gridcredit(work: Path, *args: str) -> float:
    return _run(
        [*GRIDCREDIT, "--scheme", str(ROOT), "--db", str(work / "gridcredit.db"), *args], work
    )


def prepare(work: Path, reuse: Path | None, residents: int) -> None:
    """A published demo county in ``work``: database, site/ with every month, mkdocs.yml."""
    if reuse is not None:
        for name in ("gridcredit.db", "mkdocs.yml"):
            shutil.copy(reuse / name, work / name)
        shutil.copytree(reuse / "site", work / "site", symlinks=True)
        return
    print(f"making the demo county ({residents:,} residents) in {work} ...", flush=True)
    took = _gridcredit(
        work, "demo", "--out", str(work), "--residents", str(residents), "--no-build"
    )
    print(f"  done in {took:.1f}s")


def latest_month(work: Path) -> str:
    months = sorted(p.name for p in (work / "site" / "data").glob("20*-*") if p.is_dir())
    if not months:
        sys.exit(f"{work / 'site'}: no published month; run without --reuse")
    return months[-1]


def clear_month(work: Path, month: str) -> int:
    """Remove what publishing ``month`` writes, so the next publish writes it all again."""
    site = work / "site"
    n = len(list((site / "lookup").glob("*.js")))
    for sub in (site / "lookup", site / "months" / month, site / "data" / month):
        shutil.rmtree(sub, ignore_errors=True)  # publish writes lookup/index.md again
    return n


def floor_files(n: int, size: int) -> float:
    """Seconds to write ``n`` files of ``size`` bytes each into a fresh folder."""
    payload = b"x" * size
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "lookup"
        folder.mkdir()
        t = time.perf_counter()
        for i in range(n):
            (folder / f"{i:032x}.js").write_bytes(payload)
        return time.perf_counter() - t


def floor_keys(n: int, iterations: int) -> float:
    """Seconds for ``n`` PBKDF2-HMAC-SHA256 derivations on every core."""

    def one(i: int) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", f"CODE{i:012d}".encode(), b"salt" * 8, iterations, 32)

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(one, range(n), chunksize=64))
    return time.perf_counter() - t


def main() -> int:
    from scoring.publish.lookup import ITERATIONS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--reuse", type=Path, help="copy this demo folder (e.g. demo) instead of making one"
    )
    ap.add_argument("--work", type=Path, help="work folder (default: a fresh temporary folder)")
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--strict", action="store_true", help=f"exit 1 above {TARGET:.0f}s")
    args = ap.parse_args()

    work = (args.work or Path(tempfile.mkdtemp(prefix="gridcredit-bench-site-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.reuse and (work / "site").exists():
        sys.exit(f"{work} already holds a site; pick an empty --work folder")
    try:
        if not (work / "gridcredit.db").exists():
            prepare(work, args.reuse.resolve() if args.reuse else None, args.residents)
        month = latest_month(work)
        cache = work / "private" / "lookup-keys.json"

        cache.unlink(missing_ok=True)
        n = clear_month(work, month)
        cold = _gridcredit(work, "publish", month, "--site", str(work / "site"))
        files = sorted((work / "site" / "lookup").glob("*.js"))
        total = sum(p.stat().st_size for p in files)
        clear_month(work, month)
        warm = _gridcredit(work, "publish", month, "--site", str(work / "site"))
        build = _gridcredit(work, "build", "--config", str(work / "mkdocs.yml"))

        people = len(files)
        f_files = floor_files(people, max(1, total // max(1, people)))
        f_keys = floor_keys(people, ITERATIONS)
        first = cold + build
        rows = [
            ("look-up files", f"{people:,} ({total / 1e6:.1f} MB; {n:,} before)", ""),
            ("PBKDF2 iterations", f"{ITERATIONS:,}", ""),
            ("floor, files", f"{f_files:6.1f}s", ""),
            ("floor, keys", f"{f_keys:6.1f}s", f"on {os.cpu_count()} cores"),
            (
                "publish, cold",
                f"{cold:6.1f}s",
                f"{cold / (f_files + f_keys):.2f}x files+keys floor",
            ),
            ("publish, warm", f"{warm:6.1f}s", f"{warm / f_files:.2f}x files floor (key cache)"),
            ("build (MkDocs)", f"{build:6.1f}s", f"{build / f_files:.2f}x files floor"),
            (
                "first publish + build",
                f"{first:6.1f}s",
                f"target < {TARGET:.0f}s: {'met' if first < TARGET else 'MISSED'}",
            ),
        ]
        print(f"site benchmark, month {month}, work folder {work}")
        for label, value, note in rows:
            print(f"  {label:<22} {value:<28} {note}")
        return 1 if args.strict and first >= TARGET else 0
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
