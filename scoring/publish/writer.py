"""Writing one month into the site folder: the order of the pages, plugin
publishers, the manifest, the archive, the home and look-up pages.

:func:`write_month_site` is the lower-level writer: it takes a finished
:class:`~scoring.publish.data.MonthData`. The library entry point that reads
the ledger is :func:`scoring.pipeline.publish_month`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from ..errors import InputError
from .data import MonthData, Publisher
from .files import write_atomic
from .lookup import ITERATIONS, LookupKeys, lookup_page, lookup_records, write_lookup_files
from .markup import MONTH_RE, _neutralise_csv, _Output, mask_name, md
from .opendata import content_hash, data_page, open_data
from .pages import MonthSite, archive_page, home_page

ASSETS = ("gridcredit.css", "lookup.js", "iframe-worker-shim.js")


def _archive_months(
    site_dir: Path, data: MonthData, current: tuple[str, str]
) -> list[tuple[str, str]]:
    """Every month of the archive with the content hash its ``manifest.json`` holds.

    The manifest on disk wins over ``data.archive``: the archive shows what a
    resident can check against the published manifest, and a month's value
    never changes when a later month is published.
    """
    months = {a.month: a.content_hash for a in data.archive}
    data_root = site_dir / "data"
    if data_root.is_dir():
        for manifest in sorted(data_root.glob("*/manifest.json")):
            m = manifest.parent.name
            if MONTH_RE.match(m):
                try:
                    months[m] = json.loads(manifest.read_text("utf-8"))["content_hash"]
                except (ValueError, KeyError, TypeError):
                    continue
    months[current[0]] = current[1]
    return sorted(months.items(), reverse=True)


def _run_publishers(
    publishers: Sequence[Publisher],
    month: str,
    data: MonthData,
    site_dir: Path,
    out: _Output,
    month_roots: Sequence[Path],
) -> list[Path]:
    """Run the plugin publishers; returns the paths they wrote (absolute, sorted).

    Files inside the month's folders are taken into ``out`` so the month's
    clean-up keeps them and the manifest hashes them. A publisher that writes
    outside the site folder is an error.
    """
    root = site_dir.resolve()
    site_dir.mkdir(parents=True, exist_ok=True)
    extra: set[Path] = set()
    for pub in publishers:
        for path in pub.write(month, data, site_dir) or []:
            resolved = Path(path).resolve()
            if root not in resolved.parents:
                raise InputError(
                    f"publisher {getattr(pub, 'name', pub)!r} wrote {path} outside the site "
                    f"folder {root}; write under site_dir (e.g. months/{month}/<name>.md)"
                )
            if not resolved.is_file():
                raise InputError(
                    f"publisher {getattr(pub, 'name', pub)!r} returned {path}, which it did not write"
                )
            local = site_dir / resolved.relative_to(root)
            if local in out.files or (local.parent in month_roots and local.name in _RESERVED):
                raise InputError(
                    f"publisher {getattr(pub, 'name', pub)!r} wrote {path}, a page gridcredit "
                    "writes itself; give the plugin's page its own file name"
                )
            extra.add(local)
            content = local.read_bytes()
            if local.suffix.lower() == ".csv":  # open data: no formulas, whoever wrote it
                safe = _neutralise_csv(content)
                if safe != content:
                    write_atomic(local, safe)
                    content = safe
            if any(r in local.parents for r in month_roots):
                out.files[local] = content
    return sorted(extra)


_RESERVED = frozenset({"index.md", "data.md", "manifest.json"})


def _flush(out: _Output, clean: Sequence[Path]) -> list[Path]:
    """Write ``out``'s files (changed bytes only, each through a temporary name and
    a rename) and remove stale files and empty folders under ``clean``.

    What :meth:`_Output.flush` does, but a kill or a full disk never leaves a
    truncated page: a rerun of the publish finds the old page or the new one.
    """
    made: set[Path] = set()
    for path, data in sorted(out.files.items()):
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        try:
            same = path.read_bytes() == data
        except FileNotFoundError:
            same = False
        if not same:
            write_atomic(path, data, point="month-file")
    for folder in clean:
        if folder.is_dir():
            for old in sorted(folder.rglob("*"), reverse=True):
                if old.is_file() and old not in out.files:
                    old.unlink()
                elif old.is_dir() and not any(old.iterdir()):
                    old.rmdir()
    return sorted(out.files)


def _page_title(content: bytes, fallback: str) -> str:
    """The first ``# `` heading of a Markdown page (already Markdown), else ``fallback`` escaped."""
    for line in content.decode("utf-8", "replace").splitlines():
        if line.startswith("# "):
            return line[2:].strip().replace("[", "&#91;").replace("]", "&#93;")
    return md(fallback)


def write_assets(site_dir: Path) -> list[Path]:
    """Copy the package's CSS and JS into ``site_dir/assets``."""
    target = site_dir / "assets"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ASSETS:
        data = resources.files("scoring").joinpath("assets", name).read_bytes()
        path = target / name
        if not path.exists() or path.read_bytes() != data:
            write_atomic(path, data)
        written.append(path)
    return written


def write_month_site(
    month: str,
    data: MonthData,
    site_dir: Path,
    *,
    secret: bytes,
    mask: Callable[[str, str], str] | None = None,
    iterations: int = ITERATIONS,
    publishers: Sequence[Publisher] = (),
    private_dir: Path | None = None,
) -> list[Path]:
    """Write the site pages and open data of ``month`` into ``site_dir``.

    Returns every path written (sorted). ``mask`` replaces :func:`mask_name`
    (pass the ``mask_name`` hook caller); ``publishers`` come from the
    ``register_publishers`` hook and run after the built-in pages but before
    the month's index, data page and ``manifest.json``: their pages under
    ``months/<month>/`` are linked from the index (其他) and the navigation,
    their files under ``data/<month>/`` from the data page, and both count in
    the month's content hash.
    ``private_dir`` (e.g. ``<db dir>/private``, never inside the site) holds
    a cache of look-up keys so later months skip the slow key derivation.
    """
    if not MONTH_RE.match(month):
        raise InputError(f"publish: month {month!r} is not of the form YYYY-MM (e.g. 2024-03)")
    if data.month != month:
        raise InputError(f"publish: the data is for {data.month}, not for {month}")
    if not secret:
        raise InputError("publish: the look-up secret is empty; set one for the scheme")
    site_dir = Path(site_dir)
    mask_fn = mask or mask_name
    out = _Output(site_dir)
    site = MonthSite(
        month, data, out, lambda name, kind: mask_fn(name, kind) or mask_name(name, kind)
    )

    latest = all(m <= month for m, _ in _archive_months(site_dir, data, (month, "")))
    keys = None
    if latest:
        cache = Path(private_dir) / "lookup-keys.json" if private_dir else None
        if cache and site_dir.resolve() in cache.resolve().parents:
            raise InputError(f"publish: private_dir {private_dir} must be outside the site folder")
        # the slow key derivation runs in threads while the pages are written
        keys = LookupKeys(
            secret, {a.subject for a in data.lookup}, iterations=iterations, cache=cache
        )
    try:
        return _publish(site, site_dir, secret, iterations, publishers, latest, keys)
    finally:
        if keys is not None:
            keys.close()


def _publish(
    site: MonthSite,
    site_dir: Path,
    secret: bytes,
    iterations: int,
    publishers: Sequence[Publisher],
    latest: bool,
    keys: LookupKeys | None,
) -> list[Path]:
    month, data, out = site.month, site.d, site.out
    for gid in site.group_order:
        site.group_page(gid)
    communities = site.communities_pages()
    site.grids_page()
    site.assessments_page()
    for lst in data.lists:
        site.list_page(lst)
    site.rules_page()
    site.catalog_page()
    files = open_data(site)

    month_dir, data_dir = site_dir / "months" / month, site_dir / "data" / month
    # Plugin publishers run before the index, data page and manifest are made,
    # so their pages are linked (其他) and their files are in the content hash.
    extra = _run_publishers(publishers, month, data, site_dir, out, (month_dir, data_dir))
    extra_pages = [
        (_page_title(out.files[path], path.stem), path.relative_to(month_dir).as_posix())
        for path in extra
        if path.suffix == ".md" and month_dir in path.parents
    ]
    titles = {Path(rel).stem: title for title, rel in extra_pages}
    extra_data = [
        (path.relative_to(data_dir).as_posix(), titles.get(path.stem, "其他数据"))
        for path in extra
        if data_dir in path.parents
    ]
    data_page(site, files + extra_data)
    site.index_page(communities, extra_pages)

    digest, listing = content_hash(out.files, [month_dir, data_dir])
    out.json(
        f"data/{month}/manifest.json", {"month": month, "content_hash": digest, "files": listing}
    )

    months = _archive_months(site_dir, data, (month, digest))
    if latest:
        out.text("index.md", home_page(site))
        out.text("lookup/index.md", lookup_page(secret, iterations, month))

    written = _flush(out, [month_dir, data_dir])
    written += [p for p in extra if p not in out.files]
    # The archive links only to pages that exist, so write it after the month.
    archive = site_dir / "months" / "index.md"
    write_atomic(archive, archive_page(site_dir, months, data.title).encode("utf-8"))
    written.append(archive)
    written += write_assets(site_dir)
    if latest:
        written += write_lookup_files(
            site_dir / "lookup", lookup_records(site), secret=secret, keys=keys
        )
    return sorted(set(written))
