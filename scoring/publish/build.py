"""The MkDocs side of the site: navigation, look-up file linking and the build.

:func:`site_nav`, :func:`is_lookup_file` and :func:`link_files` are called from
the MkDocs hook ``site/overrides/hooks.py``; :func:`build_site` runs a strict
``mkdocs build`` with a fixed build date.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .files import unfinished_message, unfinished_publish
from .markup import MONTH_RE, _slug, month_label


def is_lookup_file(src_uri: str) -> bool:
    """A per-person look-up data file (``lookup/<2 hex>/<32 hex>.js``)."""
    return re.fullmatch(r"lookup/([0-9a-f]{2})/\1[0-9a-f]{30}\.js", src_uri) is not None


def link_files(pairs: Iterable[tuple[str | Path, str | Path]]) -> int:
    """Hard-link each ``(source, destination)``; copy where linking fails.

    The MkDocs hook puts the tens of thousands of look-up files into the
    built site this way instead of copying them. Safe because the publisher
    replaces a changed look-up file (new inode) rather than rewriting it.
    Returns the number of files placed.
    """
    import os
    import shutil

    made: set[Path] = set()
    n = 0
    for src, dest in pairs:
        dest = Path(dest)
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        try:
            os.link(src, dest)
        except FileExistsError:
            dest.unlink()
            os.link(src, dest)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(src, dest)
        n += 1
    return n


# --------------------------------------------------------------------------
# Navigation (called from the MkDocs hook site/overrides/hooks.py)
# --------------------------------------------------------------------------


# The policy staff guide in reading order; other guide pages follow by name.
GUIDE_ORDER = ("index.md", "rules.md", "validate.md", "testing.md", "change-a-rule.md")


def _page_order(summary: Path) -> dict[str, list[str]]:
    """Page file stems in the scheme's order (groups and lists as in scheme.yaml),
    from the month's ``summary.json``; empty lists when it is missing."""
    order: dict[str, list[str]] = {"rankings": [], "lists": [], "communities": []}
    try:
        data = json.loads(summary.read_text("utf-8"))
        order["rankings"] = [_slug(str(g["id"])) for g in data.get("groups", [])]
        order["lists"] = [_slug(str(x["id"])) for x in data.get("lists", [])]
        order["communities"] = [_slug(str(x["id"])) for x in data.get("communities", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return order


def _ordered(pages: Iterable[Path], stems: list[str]) -> list[Path]:
    """``pages`` in the order of ``stems``; pages not named there follow by name."""
    rank = {s: i for i, s in enumerate(stems)}
    return sorted(pages, key=lambda p: (rank.get(p.stem, len(rank)), p.name))


def site_nav(docs_dir: Path) -> list[Any]:
    """The site navigation: home, latest month, archive, look-up, guide, about.

    Built from what exists in ``docs_dir`` so a fresh site (no month
    published yet) and a site with years of months both build in strict mode.
    Older months stay reachable from the archive page.
    """
    docs = Path(docs_dir)
    nav: list[Any] = []

    def have(rel: str) -> bool:
        return (docs / rel).is_file()

    if have("index.md"):
        nav.append({"首页": "index.md"})
    months = (
        sorted(
            (p.name for p in (docs / "months").glob("*") if p.is_dir() and MONTH_RE.match(p.name)),
            reverse=True,
        )
        if (docs / "months").is_dir()
        else []
    )
    months = [m for m in months if have(f"months/{m}/index.md")]
    if months:
        m = months[0]
        base = f"months/{m}"
        section: list[Any] = [{"本月概览": f"{base}/index.md"}]
        page_order = _page_order(docs / "data" / m / "summary.json")
        ranks = _ordered((docs / base / "rankings").glob("*.md"), page_order["rankings"])
        if ranks:
            section.append({"群体排名": [f"{base}/rankings/{p.name}" for p in ranks]})
        for rel, title in (("grids.md", "网格排名"), ("assessments.md", "考评结果")):
            if have(f"{base}/{rel}"):
                section.append({title: f"{base}/{rel}"})
        lists = _ordered((docs / base / "lists").glob("*.md"), page_order["lists"])
        if lists:
            section.append({"红灰榜": [f"{base}/lists/{p.name}" for p in lists]})
        comms = _ordered((docs / base / "communities").glob("*.md"), page_order["communities"])
        if have(f"{base}/communities/index.md"):  # one way in; the grid pages hang below it
            section.append({"社区排名": f"{base}/communities/index.md"})
        elif comms:
            section.append({"社区排名": [f"{base}/communities/{p.name}" for p in comms]})
        for rel, title in (
            ("rules.md", "积分规则"),
            ("catalog.md", "兑换目录"),
            ("data.md", "开放数据"),
        ):
            if have(f"{base}/{rel}"):
                section.append({title: f"{base}/{rel}"})
        known = {"index.md", "grids.md", "assessments.md", "rules.md", "catalog.md", "data.md"}
        others = sorted(
            p.relative_to(docs).as_posix()
            for p in (docs / base).rglob("*.md")
            if p.relative_to(docs / base).parts[0] not in ("rankings", "lists", "communities")
            and p.relative_to(docs / base).as_posix() not in known
        )
        if others:
            section.append({"其他": others})
        nav.append({f"{month_label(m)}公示": section})
    if have("months/index.md"):
        nav.append({"往期公示": "months/index.md"})
    if have("lookup/index.md"):
        nav.append({"个人查询": "lookup/index.md"})
    guide = sorted((docs / "guide").glob("*.md")) if (docs / "guide").is_dir() else []
    if guide:
        names = [p.name for p in guide]
        order = [n for n in GUIDE_ORDER if n in names]
        pages = [f"guide/{n}" for n in order + sorted(set(names) - set(order))]
        nav.append({"政策人员指南": pages})
    if have("about.md"):
        nav.append({"关于与隐私": "about.md"})
    return nav


def build_site(config: Path) -> Path:
    """``mkdocs build`` (strict, per mkdocs.yml) with a fixed build date, so the same
    pages give byte-identical files. Returns the output folder."""
    import logging
    import os

    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    from ..errors import GridcreditError

    if not config.is_file():
        raise GridcreditError(f"{config}: no MkDocs configuration here; run in a scheme repository")
    os.environ["SOURCE_DATE_EPOCH"] = os.environ.get("SOURCE_DATE_EPOCH", "1704067200")
    logging.getLogger("mkdocs").setLevel(logging.WARNING)
    try:  # material's search segments Chinese with jieba; silence its dictionary-loading chatter
        import jieba

        jieba.setLogLevel(logging.WARNING)
    except ImportError:  # pragma: no cover
        pass
    try:
        cfg = load_config(str(config))
        docs = Path(cfg["docs_dir"])
        pending = unfinished_publish(docs)
        if pending is not None:
            # e.g. the month's pages without its look-up files or codes: never deploy that
            raise GridcreditError(f"{config}: not built: " + unfinished_message(docs, pending))
        build(cfg)
    except MkDocsException as e:
        raise GridcreditError(f"{config}: site build failed: {e}") from None
    except SystemExit as e:  # mkdocs aborts strict builds this way
        raise GridcreditError(f"{config}: site build failed in strict mode ({e})") from None
    return Path(cfg["site_dir"])
