"""The public search index, trimmed for residents' phones (issue #18).

MkDocs' search plugin indexes every page of every month. On a county site that
means the rules and plugin pages once per month, developer pages with English
command output, and ``\\uXXXX`` escapes for every Chinese character: 1.3 MB that
every first visit downloaded. :func:`prune_search_index` rewrites the built
index once, after the search plugin and before the offline plugin copies it
into ``search_index.js`` (the MkDocs hook calls it):

* a month page whose text is the same as the newer month's page of the same
  path (the month label aside) is indexed once, under the newest month;
* developer pages (:data:`PRIVATE_PAGES`) and code blocks (command output) are
  left out;
* community and grid pages (the latest month's, first pages only) keep their
  titles, grid names and introductions,
  not the tables of masked names (nobody finds themselves by ``张*明``; a
  county's grid tables would make the index several megabytes);
* the title of a month's page says the month (Material heads each group of
  hits with the page's entry), so hits of two months can be told apart, and a
  rule's entry says its group (``参加志愿服务 · 居民积分规则``);
* the JSON is written as UTF-8 (a Chinese character is 3 bytes, not 6).

The index is loaded only when someone opens the search (``main.html``).
Deterministic: the same built pages give the same bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .markup import month_label

# The staff guide (running the tooling, rule YAML such as `wallet: true`, English
# output, file paths): read by scheme staff in the guide's navigation, never a
# resident's search hit. The whole folder, so a page added to it stays out too.
PRIVATE_FOLDERS = ("guide/",)
PRIVATE_PAGES = (
    "guide/testing.html",
    "guide/validate.html",
    "guide/change-a-rule.html",
    "guide/deploy.html",
)
_MONTH_PAGE = re.compile(r"months/(\d{4}-\d{2})/(.+)")
_MONTH_WORDS = re.compile(r"\d{4}\u200b?年\u200b?\d{1,2}\u200b?月")
_MORE = re.compile(r"-\d+\.html$")  # a grid's second and later pages
_GRID_PAGE = re.compile(r"communities/[^/]+/[^/]+\.html")
_PRE = re.compile(r"<pre>.*?</pre>", re.S)
_TABLE = re.compile(r"<table>.*?</table>", re.S)
_SPACES = re.compile(r"\s+")


def _page(location: str) -> str:
    return location.split("#", 1)[0]


def _signature(docs: list[dict[str, Any]]) -> str:
    return "\n".join(
        _MONTH_WORDS.sub("", f"{d['location'].partition('#')[2]}|{d['title']}|{d['text']}")
        for d in docs
    )


def prune_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The index entries residents search, in the original order (see the module doc)."""
    pages: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        pages.setdefault(_page(d["location"]), []).append(d)
    # newest month first: an older page equal to a newer one is dropped
    newest: dict[str, str] = {}  # path within the month → signature of the newest kept copy
    drop: set[str] = set()
    month_pages = sorted(
        ((m.group(1), m.group(2), p) for p in pages if (m := _MONTH_PAGE.fullmatch(p))),
        reverse=True,
    )
    newest_month = month_pages[0][0] if month_pages else ""
    for month, rel, page in month_pages:
        if rel.startswith("communities/") and (month != newest_month or _MORE.search(rel)):
            drop.add(page)  # a resident looks for their grid now: latest month, first page
            continue
        sig = _signature(pages[page])
        if newest.get(rel) == sig:
            drop.add(page)
        else:
            newest[rel] = sig
    out = []
    group = ""  # the rules page: the group heading above a rule
    for d in docs:
        page = _page(d["location"])
        anchor = d["location"].partition("#")[2]
        if anchor.startswith("group-"):
            group = d["title"]
        elif not anchor.startswith("rule-"):
            group = ""
        if page in drop or page in PRIVATE_PAGES or page.startswith(PRIVATE_FOLDERS):
            continue
        m = _MONTH_PAGE.fullmatch(page)
        if m and _GRID_PAGE.fullmatch(m.group(2)) and "#" in d["location"]:
            continue  # a grid page's tables: found by the grid's name, not by masked names
        text = _PRE.sub(" ", d["text"])
        title = d["title"]
        if m:
            rel = m.group(2)
            if rel.startswith("communities/"):
                text = _TABLE.sub(" ", text)
            label = month_label(m.group(1))
            # the page's own entry heads its hits in the results: it says the month
            if "#" not in d["location"] and label not in title.replace("\u200b", ""):
                title = f"{title} · {label}"
            elif anchor.startswith("rule-") and group:
                title = f"{title} · {group}"  # 参加志愿服务 · 居民积分规则
        out.append({**d, "title": title, "text": _SPACES.sub(" ", text).strip()})
    return out


def prune_search_index(site_dir: Path) -> int:
    """Rewrite ``site_dir/search/search_index.json`` as described above; returns its size."""
    path = Path(site_dir) / "search" / "search_index.json"
    if not path.is_file():
        return 0
    data = json.loads(path.read_text("utf-8"))
    data["docs"] = prune_docs(data.get("docs", []))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text, "utf-8")
    return len(text.encode("utf-8"))
