"""Running the demo county end to end (``gridcredit demo``).

Generates the county (:mod:`scoring.demo.county`), ingests it, and per month
drives :func:`scoring.pipeline.run_month` (score, assess, close, publish),
then builds the site with :func:`scoring.pipeline.build_site`.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlite_utils

from ..ingest import ingest_files, summary_line
from ..ledger import balances, connect
from ..loader import load_scheme
from ..model import Scheme
from ..periods import month_figures
from ..pipeline import build_site, run_month
from ..plugins import plugins_of
from ..publish import KEY_FILE, write_key
from .county import generate_county


def run_demo(
    repo: Path,
    out: Path,
    *,
    events: int = 100_000,
    residents: int = 20_000,
    months: list[str] | None = None,
    seed: int = 20240101,
    build: bool = True,
    echo: Any = print,
) -> dict[str, Any]:
    """The demo county end to end: generate, ingest, and per month score, assess,
    close and publish; then build the site. Everything lands in ``out``."""
    months = months or ["2024-01", "2024-02", "2024-03"]
    t0 = time.perf_counter()
    scheme = load_scheme(repo)  # with the repository's plugins/
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "gridcredit.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    site = out / "site"
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(repo / "site", site)
    config = (repo / "mkdocs.yml").read_text(encoding="utf-8")
    (out / "mkdocs.yml").write_text(config, encoding="utf-8")
    echo(f"gridcredit demo: {scheme.title}")
    files = generate_county(
        out / "input", scheme, seed=seed, events=events, months=months, residents=residents
    )
    echo(f"generated {files.subjects.name} and {len(files.events)} event files in {out / 'input'}")
    db = connect(db_path)
    summaries = ingest_files(db, scheme, [files.subjects], progress=False)
    for s in summaries:
        echo("  " + summary_line(s))
    private = out / "private"
    # the demo's look-up key comes from its seed: the same demo, the same site bytes
    private.mkdir(parents=True, exist_ok=True)
    seed_key = hashlib.sha256(f"gridcredit-demo-lookup-key:{seed}".encode()).hexdigest()
    write_key(private / KEY_FILE, seed_key)
    for month, path in zip(months, files.events, strict=False):
        for s in ingest_files(db, scheme, [path], progress=False):
            echo("  " + summary_line(s))
        run = run_month(db, scheme, month, site, private_dir=private)
        awards = sum(len(a.awards) for a in run.assessed)
        echo(f"{month}: {run.scored.line() if run.scored else ''}")
        if run.assessed:
            echo(
                f"  assessed {', '.join(sorted({a.period for a in run.assessed}))}: {awards} awards"
            )
        echo(
            f"  closed, hash {run.closed['hash'][:16] if run.closed else '-'};"
            f" published {len(run.paths):,} files in {run.publish_seconds:.1f}s"
        )
    last = months[-1]
    _print_summary(db, scheme, last, echo)
    built = None
    if build:
        t = time.perf_counter()
        built = build_site(out / "mkdocs.yml")
        echo(f"site built with MkDocs in {time.perf_counter() - t:.1f}s")
    echo(f"done in {time.perf_counter() - t0:.1f}s")
    if built:
        echo(f"open the site: {(built / 'index.html').resolve().as_uri()}")
        echo(f"  or serve it: python3 -m http.server -d {built} 8000  → http://127.0.0.1:8000/")
    echo(f"personal look-up codes (private, never published): {private}")
    return {"db": db_path, "site": site, "public": built, "balances": len(balances(db, scheme))}


def _print_summary(db: sqlite_utils.Database, scheme: Scheme, month: str, echo: Any) -> None:
    figs = month_figures(db, scheme, month)
    names = dict(db.execute("SELECT id, name FROM subjects").fetchall())
    pm = plugins_of(scheme)
    echo(f"\n{month} at a glance")
    for gid, g in scheme.groups.items():
        mine = [f for f in figs if f.group == gid]
        if not mine:
            continue
        top = max(mine, key=lambda f: (f.score, f.earned, [-ord(c) for c in f.subject]))
        tiers: dict[str, int] = defaultdict(int)
        for f in mine:
            tiers[f.tier] += 1
        counts = " ".join(f"{t.id}:{tiers.get(t.id, 0)}" for t in g.tiers)
        name = pm.hook.mask_name(name=names.get(top.subject, ""), kind=g.kind)
        echo(
            f"  {g.title:<8} {len(mine):>6,} accounts  top {name} {top.score} ({top.tier})  tiers {counts}"
        )
    rejected = db.execute("SELECT COUNT(*) FROM rejects").fetchone()[0]
    echo(f"  rejected records kept with file, line and reason: {rejected:,} (gridcredit rejects)")
