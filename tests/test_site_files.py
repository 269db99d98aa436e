"""The site's files (issue #18): open data with Chinese headers and no empty columns,
a sitemap when ``site_url`` is set, look-up files spread over sub-folders."""

from __future__ import annotations

import csv
import re

from sitekit import demo_county, demo_site
from test_publish import SECRET, build_site, copy_site_skeleton, month_data

from scoring.publish import write_month_site


def test_open_data_has_chinese_headers_and_no_empty_columns():
    data = demo_county() / "site" / "data" / "2024-03"
    files = sorted(data.glob("*.csv"))
    assert len(files) >= 5 and any(p.name == "screen-time.csv" for p in files)
    for path in files:
        rows = list(csv.reader(path.open(encoding="utf-8-sig")))
        header, body = rows[0], rows[1:]
        english = [c for c in header if re.search(r"[A-Za-z]{2}", c)]
        assert english == [], f"{path.name}: English headers {english}"
        if body:
            empty = [c for i, c in enumerate(header) if all(not r[i] for r in body)]
            assert empty == [], f"{path.name}: always-empty columns {empty}"


def test_sitemap_lists_the_pages_when_site_url_is_set(tmp_path):
    root = copy_site_skeleton(tmp_path)
    cfg = root / "mkdocs.yml"
    text = cfg.read_text("utf-8")
    cfg.write_text(
        text.replace(
            "# site_url: https://example.gov.cn/xinyong/", "site_url: https://x.gov.cn/xy/"
        ),
        "utf-8",
    )
    write_month_site("2024-03", month_data("2024-03"), root / "site", secret=SECRET)
    public = build_site(root)
    sitemap = (public / "sitemap.xml").read_text("utf-8")
    locs = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    assert "https://x.gov.cn/xy/months/2024-03/index.html" in locs
    assert any(re.search(r"/communities/S01C01/[^/]+\.html$", u) for u in locs)
    assert not any("/lookup/" in u and u.endswith(".js") for u in locs)
    # the 404 page links home under the site's path
    assert 'href="/xy/index.html">返回首页' in (public / "404.html").read_text("utf-8")


def test_lookup_files_are_spread_over_sub_folders():
    lookup = demo_site() / "lookup"
    assert list(lookup.glob("*.js")) == []
    subs = [p for p in lookup.iterdir() if p.is_dir()]
    assert subs and all(re.fullmatch(r"[0-9a-f]{2}", p.name) for p in subs)
    files = list(lookup.glob("*/*.js"))
    assert all(p.name.startswith(p.parent.name) for p in files)
    assert len(files) > 4_000 and max(len(list(p.iterdir())) for p in subs) < len(files) / 50
