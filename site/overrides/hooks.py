"""MkDocs hook: build the navigation from the months published in ``site/``.

Excluded from the built site (``exclude_docs``); the logic lives in
:func:`scoring.publish.site_nav` so it is tested with the publisher.
"""

from __future__ import annotations

from pathlib import Path

from scoring.publish import site_nav


def on_config(config, **kwargs):
    config["nav"] = site_nav(Path(config["docs_dir"]))
    return config
