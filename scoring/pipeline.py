"""The driver: one month's run through every stage, in order.

The stages, and where each lives::

    load      scoring.loader      rules/ → a Scheme
    validate  scoring.validate    the scheme checked before anything runs
    ingest    scoring.ingest      input files → the ledger's events and subjects
    evaluate  scoring.evaluate    events → entries (points, caps, reversals)
    ledger    scoring.ledger      the SQLite store every stage reads and writes
    periods   scoring.assess      assessments of the periods ending this month
              scoring.periods     closing a month freezes its figures
              scoring.rank        rankings from the frozen figures
    publish   scoring.publish     month_data (every number on the site) → pages

:func:`run_month` runs evaluate → assess → close → publish for one month;
:func:`publish_month` is the library entry point of the publish stage;
:func:`build_site` runs MkDocs over the written pages. The demo county
(``gridcredit demo``) drives these same functions: :mod:`scoring.demo`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from .assess import periods_ending_in, run_assessment
from .errors import GridcreditError
from .evaluate import ScoreSummary, score
from .model import Scheme
from .periods import close_month, is_closed
from .plugins import plugins_of
from .publish import (
    build_site,
    lookup_secret,
    month_data,
    name_masker,
    write_month_site,
    write_private_codes,
)

__all__ = ["MonthRun", "build_site", "publish_month", "run_month"]


@dataclass
class MonthRun:
    month: str
    scored: ScoreSummary | None = None
    assessed: list[Any] = field(default_factory=list)
    closed: dict[str, Any] | None = None
    paths: list[Path] = field(default_factory=list)
    publish_seconds: float = 0.0


def run_month(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    site_dir: Path,
    *,
    private_dir: Path | None = None,
) -> MonthRun:
    """Score, assess, close and publish one month."""
    run = MonthRun(month)
    run.scored = score(db, scheme)
    for period in periods_ending_in(month):
        run.assessed.extend(run_assessment(db, scheme, period))
    if not is_closed(db, month):
        run.closed = close_month(db, scheme, month)
    t = time.perf_counter()
    run.paths = publish_month(db, scheme, month, site_dir, private_dir=private_dir)
    run.publish_seconds = time.perf_counter() - t
    return run


def publish_month(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    site_dir: Path,
    *,
    private_dir: Path | None = None,
    force: bool = False,
) -> list[Path]:
    """Write the pages and open data of a closed month; personal codes go to ``private_dir``.

    A month's pages are written once: publishing it again into the same site is
    refused unless ``force`` (the frozen figures are the same, but list reasons
    and flags would show today's state of late corrections and objections).
    """
    if not is_closed(db, month):
        raise GridcreditError(
            f"{month} is not closed; `gridcredit publish {month}` closes it first"
        )
    manifest = Path(site_dir) / "data" / month / "manifest.json"
    if manifest.exists() and not force:
        raise GridcreditError(
            f"{month} is published already ({manifest}); a published month's pages never change."
            " To build the site run `gridcredit build`; to rewrite the month anyway use --force"
        )
    pm = plugins_of(scheme)
    data = month_data(db, scheme, month)
    secret = lookup_secret(db, private_dir, Path(site_dir))
    publishers = pm.publishers
    paths = write_month_site(
        month, data, Path(site_dir), secret=secret, mask=name_masker(pm.hook.mask_name),
        publishers=publishers, private_dir=private_dir,
    )  # fmt: skip
    if private_dir is not None:
        people = sorted({(a.subject, a.name) for a in data.lookup})
        write_private_codes(
            Path(private_dir) / f"codes-{month}.csv", secret, people, site_dir=Path(site_dir)
        )
    pm.hook.after_publish(month=month, site_dir=Path(site_dir), paths=paths)
    return paths
