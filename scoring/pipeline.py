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

import errno
import time
from collections.abc import Callable
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
from .publish.data import MonthData
from .publish.files import (
    begin_publish,
    checkpoint,
    finish_publish,
    publish_lock,
    remove_leftovers,
    unfinished_message,
    unfinished_publish,
)

__all__ = [
    "MonthRun",
    "build_site",
    "check_publishable",
    "publish_month",
    "publish_write_error",
    "run_month",
]


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
    gather: Callable[[sqlite_utils.Database, Scheme, str], MonthData] = month_data,
) -> list[Path]:
    """Write the pages and open data of a closed month; personal codes go to ``private_dir``.

    ``gather`` makes the month's :class:`~scoring.publish.data.MonthData` (the Spark
    ledger passes one that takes its trends from Spark SQL).

    A month's pages are written once: publishing it again into the same site is
    refused unless ``force`` (the frozen figures are the same, but list reasons
    and flags would show today's state of late corrections and objections).

    Safe to kill at any point: the site's publish marker names the month from
    before its first file until every file (the look-up files and the private
    codes too) is written and on disk; while it is there, ``gridcredit build``
    refuses the site and publishing the month again completes it with the same
    bytes. Every file is written through a temporary name and a rename. One
    publish per site at a time (:func:`~scoring.publish.files.publish_lock`).
    A full disk is a :class:`GridcreditError` saying where and what to do.
    """
    site_dir = Path(site_dir)
    try:
        with publish_lock(site_dir):
            return _publish_month(db, scheme, month, site_dir, private_dir, force, gather)
    except OSError as e:
        raise publish_write_error(e, month, site_dir) from None


def check_publishable(site_dir: Path, month: str, *, force: bool = False) -> bool:
    """Whether ``month`` may be published into ``site_dir`` now.

    True if an earlier publish of ``month`` did not finish (publishing completes
    it). Refuses (:class:`GridcreditError`) a month published already (unless
    ``force``) and any month while another month's publish is unfinished.
    """
    pending = unfinished_publish(site_dir)
    if pending is not None and pending not in ("?", month):
        raise GridcreditError(unfinished_message(site_dir, pending) + f", then publish {month}")
    if pending is not None:
        return True
    manifest = site_dir / "data" / month / "manifest.json"
    if manifest.exists() and not force:
        raise GridcreditError(
            f"{month} is published already ({manifest}); a published month's pages never change."
            " To build the site run `gridcredit build`; to rewrite the month anyway use --force"
        )
    return False


def _publish_month(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    site_dir: Path,
    private_dir: Path | None,
    force: bool,
    gather: Callable[[sqlite_utils.Database, Scheme, str], MonthData] = month_data,
) -> list[Path]:
    if not is_closed(db, month):
        raise GridcreditError(
            f"{month} is not closed; `gridcredit publish {month}` closes it first"
        )
    if check_publishable(site_dir, month, force=force):
        # a killed run left temporary files; the rerun writes every file again
        remove_leftovers(site_dir, private_dir)
    begin_publish(site_dir, month)
    checkpoint("publish-started")
    pm = plugins_of(scheme)
    data = gather(db, scheme, month)
    secret = lookup_secret(db, private_dir, site_dir)
    publishers = pm.publishers
    paths = write_month_site(
        month, data, site_dir, secret=secret, mask=name_masker(pm.hook.mask_name),
        publishers=publishers, private_dir=private_dir,
    )  # fmt: skip
    if private_dir is not None:
        people = sorted({(a.subject, a.name) for a in data.lookup})
        write_private_codes(
            Path(private_dir) / f"codes-{month}.csv", secret, people, site_dir=site_dir
        )
    checkpoint("files-written")
    finish_publish(site_dir, private_dir)
    pm.hook.after_publish(month=month, site_dir=site_dir, paths=paths)
    return paths


def publish_write_error(e: OSError, month: str, site_dir: Path) -> GridcreditError:
    """A failed write (a full disk, a read-only folder) as a message that says what to do."""
    where = e.filename or site_dir
    again = (
        f"run `gridcredit publish {month}` again: it completes the month with the same files"
        " (until then `gridcredit build` refuses the site)"
    )
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return GridcreditError(
            f"publish {month}: the disk is full: cannot write {where} ({e.strerror}). Free disk"
            f" space there (or give the site and the private folder more room), then {again}"
        )
    return GridcreditError(
        f"publish {month}: cannot write {where}: {e.strerror or e}. Fix that (permissions,"
        f" a read-only or missing folder), then {again}"
    )
