"""Findable on a phone (issue #18), on the small demo county: a resident reaches their
grid in a few taps and finds community and grid pages by name; a merchant finds
themselves on the public lists (pinyin order, filters), sees the listing window and
the links to the rule, to objecting and to repair; search hits say the month.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from sitekit import Server, Visit, demo_site, launch_browser, search

from scoring.publish.pages import pinyin_key

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served():
    server = Server(demo_site())
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


@pytest.fixture
def visit(browser, served):
    v = Visit(browser, served.base)
    yield v
    v.close()


def test_a_resident_reaches_their_grid_in_three_taps(visit):
    page = visit.go("/index.html")
    page.locator("article a", has_text="本月公示").first.click()
    page.locator("article .gc-links a", has_text="社区排名").first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/communities/index.html")
    community = page.locator("article .gc-links a").first
    name = community.inner_text().split("（")[0]
    community.click()
    page.wait_for_load_state("networkidle")
    assert name in page.locator("article h1").inner_text()
    grid = page.locator("article .gc-links a").first
    gname = grid.inner_text().split("（")[0]
    grid.click()
    page.wait_for_load_state("networkidle")
    assert page.locator("article h1").inner_text().startswith(gname)
    assert page.locator("article table tbody tr").count() > 5
    assert "网格名次" in page.locator("article table").first.inner_text()
    assert visit.errors == []


def test_grid_and_community_pages_are_found_by_name(visit):
    page = visit.go("/months/2024-03/communities/index.html")
    community = page.locator("article .gc-links a").first.inner_text().split("（")[0]
    page = visit.go("/index.html")
    results = search(page, community)
    assert results.count() > 0
    hrefs = [a.get_attribute("href") or "" for a in page.locator(".md-search-result__link").all()]
    assert any(re.search(r"communities/[^/]+\.html", h) for h in hrefs), hrefs
    first = results.first.inner_text().replace("\u200b", "")
    assert re.search(r"2024年[23]月", first), first  # the hit says the month


def test_developer_pages_and_test_output_stay_out_of_search(visit):
    page = visit.go("/index.html")
    results = search(page, "ledger", tries=8)  # from `no ledger database` in guide/testing
    hrefs = [a.get_attribute("href") or "" for a in page.locator(".md-search-result__link").all()]
    assert not any(re.search(r"guide/(testing|validate|change-a-rule)", h) for h in hrefs), hrefs
    assert results.count() == 0


def test_search_hits_hide_the_missing_terms_line(visit):
    # Material strikes through the words a hit lacks ("缺少: ~~…~~"): noise on a phone
    page = visit.go("/index.html")
    results = search(page, "积分 兑换 qzxv")
    assert results.count() > 0
    terms = page.locator(".md-search-result__terms")
    assert terms.count() > 0  # the theme still writes the line …
    assert not any(t.is_visible() for t in terms.all())  # … and the site's CSS hides it


def test_grey_list_in_pinyin_order_with_filters_and_links(visit):
    page = visit.go("/months/2024-03/lists/grey.html")
    rows = page.locator("article tr[data-name]")
    n = rows.count()
    assert n > 5
    names = [rows.nth(i).get_attribute("data-name") for i in range(n)]
    assert names == sorted(names, key=lambda x: (pinyin_key(x), x))
    assert names != sorted(names)  # pinyin order is not code-point order here
    text = page.locator("article").inner_text()
    assert "公示期限：" in text and "提出异议" in text and "信用修复" in text
    # filter by name
    box = page.locator("form.gc-filter input")
    box.fill(names[-1])
    visible = [rows.nth(i).is_visible() for i in range(n)]
    assert sum(visible) >= 1 and visible[-1] and sum(visible) < n
    box.fill("")
    # filter by community
    community = page.locator("form.gc-filter select").first
    options = community.locator("option").all_inner_texts()
    assert len(options) > 2
    community.select_option(label=options[1])
    shown = [rows.nth(i) for i in range(n) if rows.nth(i).is_visible()]
    assert shown and all(r.get_attribute("data-community") == options[1] for r in shown)
    assert len(shown) < n
    community.select_option(value="")
    assert all(rows.nth(i).is_visible() for i in range(n))
    # the rule behind a deduction: the link lands on that rule
    link = page.locator("article a", has_text="查看规则").first
    anchor = link.get_attribute("href").split("#")[1]
    link.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/rules.html#" + anchor)
    assert page.locator(f"[id='{anchor}']").count() == 1
    visit.shot("grey-list-demo", full_page=False)
    assert visit.errors == []


def test_grid_ranking_filters_by_name_and_community_and_grid_pages_say_their_rank(visit):
    page = visit.go("/months/2024-03/grids.html")
    rows = page.locator("article tr[data-name]")
    n = rows.count()
    assert n > 5 and page.locator("article table tbody tr").count() == n
    community = page.locator("form.gc-filter select").first
    options = community.locator("option").all_inner_texts()
    assert len(options) > 2 and page.locator("form.gc-filter select").count() == 1
    community.select_option(label=options[1])
    shown = [rows.nth(i) for i in range(n) if rows.nth(i).is_visible()]
    assert shown and len(shown) < n
    assert all(r.get_attribute("data-community") == options[1] for r in shown)
    community.select_option(value="")
    name = rows.nth(n - 1).get_attribute("data-name")
    page.locator("form.gc-filter input").fill(name)
    visible = [rows.nth(i).is_visible() for i in range(n)]
    assert visible[-1] and sum(visible) < n
    # the grid's own page says its place among the grids
    last = rows.nth(n - 1).locator("td").first.inner_text().strip()
    page = visit.go("/months/2024-03/communities/index.html")
    page.locator("article .gc-links a").first.click()
    page.wait_for_load_state("networkidle")
    page.locator("article .gc-links a").first.click()
    page.wait_for_load_state("networkidle")
    text = page.locator("article").inner_text()
    assert re.search(rf"在全县 {n} 个网格中排(并列)?第 \d+ 名", text), text[:400]
    assert last  # the ranking's last row has a rank cell
    page.locator("article a", has_text="网格排名").first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/months/2024-03/grids.html")
    assert visit.errors == []


def test_catalog_says_how_to_redeem_and_fits_a_phone(visit):
    page = visit.go("/months/2024-03/catalog.html")
    text = page.locator("article").inner_text()
    assert (
        "如何兑换" in text and "携带本人证件到所在社区积分超市或合作商户，由网格员登记兑换" in text
    )
    cells = page.locator("article .gc-catalog td")
    assert cells.count() >= 7
    width = page.evaluate("document.documentElement.clientWidth")
    # every cell, the partner column too, on the screen without scrolling sideways
    for i in range(cells.count()):
        box = cells.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (i, box)
    label = cells.nth(6).evaluate("td => getComputedStyle(td, '::before').content")
    assert "合作商户" in label
    assert not page.locator("article .gc-catalog thead").is_visible()
    link = page.locator("article a", has_text="个人积分查询")
    assert link.get_attribute("href").endswith("lookup/index.html")
    visit.shot("catalog-phone")
    assert visit.errors == []


def test_red_list_labels_the_listing_window(visit):
    page = visit.go("/months/2024-03/lists/red.html")
    text = page.locator("article").inner_text()
    assert page.locator("article tr[data-name]").count() > 0
    assert "公示期限：2024年3月" in text


def test_404_page_keeps_its_styles_and_links_under_a_sub_path(browser):
    # https://host/xinyong/…: the site in a sub-folder, without site_url; the server
    # answers any missing address with the 404 page (nginx: error_page 404 /xinyong/404.html)
    root = Path(tempfile.mkdtemp(prefix="gc-prefix-"))
    try:
        (root / "xinyong").symlink_to(demo_site(), target_is_directory=True)
        shutil.copy(demo_site() / "404.html", root / "404.html")
        server = Server(root)
        try:
            for missing in ("/xinyong/months/2099-01/nope.html", "/xinyong/guide/nope.html"):
                v = Visit(browser, server.base)
                page = v.go(missing)
                assert "页面不存在" in page.locator("article h1").inner_text()
                # the sheets in use come from the site's folder (Chromium's preload scanner
                # may also try the address's folder before the <base> exists: harmless)
                sheets = page.evaluate("[...document.styleSheets].map(s => s.href).filter(Boolean)")
                assert f"{server.base}/xinyong/assets/gridcredit.css" in sheets, sheets
                assert all(h.startswith(f"{server.base}/xinyong/assets/") for h in sheets), sheets
                assert not any(re.match(r"http://[^/]+/assets/", u) for u in v.requests)
                assert page.locator("form.md-search__form").count() == 1
                # the theme's own stylesheet applied: the header is laid out, not bare links
                assert page.locator("header.md-header").evaluate(
                    "e => getComputedStyle(e).position"
                ) in ("sticky", "fixed")
                home = page.locator("article a", has_text="返回首页")
                assert home.evaluate("a => a.href") == f"{server.base}/xinyong/index.html"
                home.click()
                page.wait_for_load_state("networkidle")
                assert page.url == f"{server.base}/xinyong/index.html"
                # one 404 in the console: the missing page itself, no asset fetched from its folder
                assert [e for e in v.errors if "status of 404" not in e] == []
                assert sum("status of 404" in e for e in v.errors) <= 1, v.errors
                folder = missing.rsplit("/", 1)[0] + "/"
                assert not any(
                    u.startswith(server.base + folder) and not u.endswith(missing)
                    for u in v.requests
                    if folder != "/xinyong/"
                ), v.requests
                v.close()
        finally:
            server.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_404_page_has_no_root_absolute_address():
    html = (demo_site() / "404.html").read_text("utf-8")
    assert not re.search(r'(href|src)="/(?!/)', html)
