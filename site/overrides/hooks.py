"""MkDocs hooks of the gridcredit site.

* ``on_config``: the navigation is built from the months published in
  ``site/`` (:func:`scoring.publish.site_nav`).
* ``on_page_markdown`` / ``on_page_content``: the large tables and charts the
  publisher writes as finished HTML (between ``<!-- gc:html -->`` markers) skip
  Markdown parsing: they are lifted out before Markdown runs and put back
  into the rendered page (:func:`scoring.publish.stash_raw_html`). This keeps
  ``mkdocs build`` of a county with tens of thousands of rows fast.

Excluded from the built site (``exclude_docs``); the logic lives in
:mod:`scoring.publish` so it is tested with the publisher.
"""

from __future__ import annotations

from pathlib import Path

from scoring.publish import restore_raw_html, site_nav, stash_raw_html

_blocks: dict[str, list[str]] = {}


def on_config(config, **kwargs):
    config["nav"] = site_nav(Path(config["docs_dir"]))
    _blocks.clear()
    return config


def on_page_markdown(markdown, page, **kwargs):
    markdown, blocks = stash_raw_html(markdown)
    _blocks[page.file.src_uri] = blocks
    return markdown


def on_page_content(html, page, **kwargs):
    return restore_raw_html(html, _blocks.pop(page.file.src_uri, []))
