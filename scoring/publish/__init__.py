"""Monthly site pages and open data (SPEC §9): the last pipeline stage.

The stage reads a closed month and writes

* ``site/months/<YYYY-MM>/``: the month at a glance, rankings per group,
  per community (with in-grid ranks), grid rankings, assessment results,
  the public lists, the rules in plain Chinese, the catalog, open-data page;
* ``site/data/<YYYY-MM>/``: CSV and JSON downloads and ``manifest.json``
  with the month's content hash;
* ``site/months/index.md`` (archive), ``site/index.md`` (home, when this is
  the latest month), ``site/lookup/`` (look-up page and encrypted files),
  ``site/assets/`` (CSS and JS shipped with the package).

Where things are:

==============  ===========================================================
``data``        :class:`MonthData` (the contract) and :func:`month_data`,
                which computes every figure the site shows from the ledger;
                :func:`name_masker` (each name masked once)
``pages``       the Markdown pages of a month, the home and archive pages
``opendata``    CSV/JSON downloads, the data page, the content hash
``lookup``      personal codes, the look-up key, encrypted per-person files
``charts``      inline SVG charts
``markup``      escaping (:func:`md`, :func:`h`), masking, labels, output
``writer``      :func:`write_month_site`: one month into the site folder
``build``       MkDocs navigation, look-up file linking, :func:`build_site`
==============  ===========================================================

The library entry point that reads the ledger, masks through the plugin
hook and writes the private codes is :func:`scoring.pipeline.publish_month`.

Rules of the output:

* **Deterministic**: the same input gives byte-identical files: no
  timestamps, sorted keys, stable ordering, fixed number formats.
* **Escaped**: every string that comes from input goes through :func:`md`
  (Markdown context) or :func:`h` (HTML/SVG context). A subject called
  ``<script>`` or ``*x*`` shows as that text.
* **Private**: person names are masked (:func:`mask_name`, overridable via
  the ``mask_name`` hook), organisation credit codes are masked
  (:func:`mask_code`); subject ids, phone numbers and look-up codes are never
  written.
"""

from __future__ import annotations

from . import charts, lookup
from .build import GUIDE_ORDER, build_site, is_lookup_file, link_files, site_nav
from .data import (
    HISTORY_MONTHS,
    ArchiveMonth,
    CatalogRow,
    GridInfo,
    GridRank,
    GroupInfo,
    LookupAccount,
    LookupEntry,
    LookupMonth,
    MonthData,
    PublicAssessment,
    PublicList,
    PublicListMember,
    PublicListReason,
    Publisher,
    RulePackText,
    RuleText,
    Selection,
    SubjectRank,
    TierInfo,
    TrendPoint,
    month_data,
    name_masker,
)
from .lookup import KEY_FILE, lookup_secret, write_key, write_private_codes
from .markup import (
    MONTH_RE,
    RAW_CLOSE,
    RAW_OPEN,
    csv_cell,
    h,
    mask_code,
    mask_name,
    md,
    month_label,
    period_label,
    restore_raw_html,
    stash_raw_html,
    tier_is_code,
)
from .pages import TOP_N
from .writer import ASSETS, write_assets, write_month_site

__all__ = [
    "ASSETS",
    "GUIDE_ORDER",
    "HISTORY_MONTHS",
    "KEY_FILE",
    "MONTH_RE",
    "RAW_CLOSE",
    "RAW_OPEN",
    "TOP_N",
    "ArchiveMonth",
    "CatalogRow",
    "GridInfo",
    "GridRank",
    "GroupInfo",
    "LookupAccount",
    "LookupEntry",
    "LookupMonth",
    "MonthData",
    "PublicAssessment",
    "PublicList",
    "PublicListMember",
    "PublicListReason",
    "Publisher",
    "RulePackText",
    "RuleText",
    "Selection",
    "SubjectRank",
    "TierInfo",
    "TrendPoint",
    "build_site",
    "charts",
    "csv_cell",
    "h",
    "is_lookup_file",
    "link_files",
    "lookup",
    "lookup_secret",
    "mask_code",
    "mask_name",
    "md",
    "month_data",
    "month_label",
    "name_masker",
    "period_label",
    "restore_raw_html",
    "site_nav",
    "stash_raw_html",
    "tier_is_code",
    "write_assets",
    "write_key",
    "write_month_site",
    "write_private_codes",
]
