"""MkDocs hooks of the gridcredit site.

* ``on_config``: the navigation is built from the months published in
  ``site/`` (:func:`scoring.publish.site_nav`).
* ``on_page_markdown`` / ``on_page_content``: the large tables and charts the
  publisher writes as finished HTML (between ``<!-- gc:html -->`` markers) skip
  Markdown parsing: they are lifted out before Markdown runs and put back
  into the rendered page (:func:`scoring.publish.stash_raw_html`).
* ``on_files`` / ``on_post_build``: the per-person look-up files
  (``lookup/<xx>/<hash>.js``, one per resident) are hard-linked into the built
  site instead of copied (:func:`scoring.publish.link_files`).
* ``on_post_build`` (after the search plugin, before the offline plugin): the
  search index is trimmed for phones (:func:`scoring.publish.search.prune_search_index`).
* ``on_post_build``: without ``site_url``, the 404 page's links follow the address it
  is served at (:func:`scoring.publish.markup.relocate_404_page`), so it keeps its
  styles under a sub-path.
* ``on_env``: the ``gc_month_label`` filter (a month page's tab title says the month).

Together these keep ``mkdocs build`` of a county of 20,000 residents fast.
Excluded from the built site (``exclude_docs``); the logic lives in
:mod:`scoring.publish` so it is tested with the publisher.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files

from scoring.publish import (
    is_lookup_file,
    link_files,
    restore_raw_html,
    site_nav,
    stash_raw_html,
)
from scoring.publish.markup import MONTH_RE, month_label, relocate_404_page
from scoring.publish.search import prune_search_index

_blocks: dict[str, list[str]] = {}
_linked: list[tuple[str, str]] = []


def on_config(config, **kwargs):
    config["nav"] = site_nav(Path(config["docs_dir"]))
    _blocks.clear()
    _linked.clear()
    return config


def on_files(files, config, **kwargs):
    keep = []
    for f in files:
        if is_lookup_file(f.src_uri):
            _linked.append((f.abs_src_path, f.abs_dest_path))
        else:
            keep.append(f)
    return Files(keep)


def on_page_markdown(markdown, page, **kwargs):
    markdown, blocks = stash_raw_html(markdown)
    _blocks[page.file.src_uri] = blocks
    return markdown


def on_page_content(html, page, **kwargs):
    return restore_raw_html(html, _blocks.pop(page.file.src_uri, []))


def _month_of(src_uri: str) -> str:
    parts = str(src_uri).split("/")
    if len(parts) > 2 and parts[0] == "months" and MONTH_RE.match(parts[1]):
        return month_label(parts[1])
    return ""


def on_env(env, config, files, **kwargs):
    env.filters["gc_month_label"] = _month_of
    return env


@event_priority(
    -50
)  # the search plugin writes the index at 0, the offline plugin copies it at -100
def on_post_build(config, **kwargs):
    link_files(_linked)
    _linked.clear()
    prune_search_index(Path(config["site_dir"]))
    if not config.get("site_url"):  # with site_url MkDocs writes the 404 page's links from its path
        relocate_404_page(Path(config["site_dir"]))
