"""The monthly site: pages, open data, privacy, escaping, determinism.

``month_data()`` builds a small county by hand (no ledger needed) with the
awkward cases in it: ties, new entrants, hostile names, organisations with
credit codes, objections on the grey list. ``test_site_browser.py`` reuses it.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.errors import InputError
from scoring.publish import (
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
    RulePackText,
    RuleText,
    Selection,
    SubjectRank,
    TierInfo,
    TrendPoint,
    charts,
    lookup,
    mask_code,
    mask_name,
    md,
    site_nav,
    write_month_site,
)
from scoring.rank import competition_ranks

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"test-secret-do-not-use"


def ranks_of(scores: list) -> list[int]:
    """Competition ranks ("1224") of scores in any order, highest first, from rank.py's."""
    order = sorted(scores, reverse=True)
    first: dict = {}
    for s, r in zip(order, competition_ranks(order), strict=True):
        first.setdefault(s, r)
    return [first[s] for s in scores]


HOSTILE = "<script>alert(1)</script>"
STARRY = "*x*"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"

TIERS = [
    TierInfo("AAA", "诚信模范", 1050, None),
    TierInfo("AA", "诚信先进", 1030, 1049),
    TierInfo("A", "诚信", 960, 1029),
    TierInfo("B", "基本诚信", 850, 959),
    TierInfo("C", "诚信警示", 600, 849),
    TierInfo("D", "失信", None, 599),
]
GRIDS = [
    GridInfo("S01C01G01", "世纪社区第一网格", "S01C01", "世纪社区", "S01", "索镇街道"),
    GridInfo("S01C01G02", "世纪社区第二网格", "S01C01", "世纪社区", "S01", "索镇街道"),
    GridInfo("S01C02G01", "宝发社区第一网格", "S01C02", "宝发社区", "S01", "索镇街道"),
    GridInfo("S01C02G02", "宝发社区第二网格", "S01C02", "宝发社区", "S01", "索镇街道"),
    GridInfo("S02C01G01", "金鼎社区第一网格", "S02C01", "金鼎社区", "S02", "少海街道"),
    GridInfo("S02C01G02", "金鼎社区第二网格", "S02C01", "金鼎社区", "S02", "少海街道"),
]


def tier_of(score: int) -> str:
    for t in TIERS:
        if (t.min is None or score >= t.min) and (t.max is None or score <= t.max):
            return t.id
    return "D"


def subjects(n: int = 40) -> list[dict]:
    """Source records, with the identifiers that must never be published."""
    rnd = random.Random(7)
    people = []
    for i in range(n):
        name = rnd.choice(SURNAMES) + "".join(
            rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2, 2)))
        )
        people.append(
            {
                "id": f"SUBJ-R-{i:04d}",
                "name": name,
                "phone": f"138{i:04d}{7000 + i:04d}",
                "grid": GRIDS[i % len(GRIDS)].id,
                "score": rnd.choice([1060, 1040, 1040, 1000, 990, 980, 975, 940, 900, 820, 700])
                + rnd.randint(0, 3),
            }
        )
    # fixed top three, a tie at rank 2, and hostile names
    people[0].update(name="欧阳小明", score=1200)
    people[1].update(name=HOSTILE, score=1150)
    people[2].update(name=STARRY, score=1150)
    people[3].update(name="张三", score=1149)
    return people


MERCHANTS = [
    {
        "id": "SUBJ-M-0001",
        "name": "桓台县鲜果超市",
        "code": "91370321MA3C8QWE7X",
        "grid": "S01C01G01",
        "score": 1055,
    },
    {
        "id": "SUBJ-M-0002",
        "name": "索镇老王烧烤 & <b>店</b>",
        "code": "92370321MA3D1ABC2Y",
        "grid": "S01C02G01",
        "score": 820,
    },
    {
        "id": "SUBJ-M-0003",
        "name": "金鼎便利店",
        "code": "92370321MA3E9XYZ5K",
        "grid": "S02C01G01",
        "score": 990,
    },
]


def month_data(month: str = "2024-03") -> MonthData:
    people = subjects()
    res_scores = [p["score"] for p in people]
    ranks = ranks_of(res_scores)
    rows = []
    for i, (p, rk) in enumerate(zip(people, ranks)):
        rows.append(
            SubjectRank(
                subject=p["id"],
                name=p["name"],
                grid=p["grid"],
                score=p["score"],
                tier=tier_of(p["score"]),
                rank=rk,
                previous_rank=None if i % 9 == 5 else max(1, rk + (i % 5) - 2),
                earned=(i * 7) % 23 - 5,
                wallet=(i * 11) % 60,
                kind="person",
                note="直接判级" if i == 10 else "",
            )
        )
    m_ranks = ranks_of([m["score"] for m in MERCHANTS])
    mrows = [
        SubjectRank(
            subject=m["id"],
            name=m["name"],
            grid=m["grid"],
            score=m["score"],
            tier=tier_of(m["score"]),
            rank=rk,
            previous_rank=rk,
            kind="organization",
            code=m["code"],
        )
        for m, rk in zip(MERCHANTS, m_ranks)
    ]
    grid_means = []
    for g in GRIDS:
        scores = [p["score"] for p in people if p["grid"] == g.id]
        grid_means.append((g, sum(scores) / len(scores), len(scores)))
    g_ranks = ranks_of([round(m, 1) for _, m, _ in grid_means])
    grid_rankings = [
        GridRank(
            grid=g.id,
            name=g.name,
            community=g.community,
            mean_score=mean,
            residents=n,
            rank=rk,
            previous_rank=(rk + 1 if rk % 2 else None),
        )
        for (g, mean, n), rk in zip(grid_means, g_ranks)
    ]
    lookup_accounts = [
        LookupAccount(
            subject=p["id"],
            group="residents",
            score=p["score"],
            wallet=(i * 11) % 60,
            tier=tier_of(p["score"]),
            name=p["name"],
            entries=[
                LookupEntry("2024-02-11", "违规停放车辆", -5, 0, "异议审核中", "2024-02"),
                LookupEntry("2024-03-02", "参加志愿服务", 4, 4, "", "2024-03"),
                LookupEntry(
                    "2024-03-15",
                    "垃圾分类不规范",
                    -2,
                    0,
                    flag="异议审核中" if i == 3 else "",
                    month="2024-03",
                ),
                LookupEntry("2024-03-20", HOSTILE, 1, 1, "", "2024-03"),
            ],
            history=[LookupMonth("2024-02", p["score"] - 3, tier_of(p["score"] - 3), 0)],
            grid=p["grid"],
        )
        for i, p in enumerate(people)
    ]
    return MonthData(
        title="桓台县城市社区网格化治理信用积分",
        month=month,
        groups=[
            GroupInfo("residents", "居民", "person", TIERS),
            GroupInfo("merchants", "市场主体", "organization", TIERS),
        ],
        grids=list(GRIDS),
        rankings={"residents": rows, "merchants": mrows},
        grid_rankings=grid_rankings,
        assessments=[
            PublicAssessment(
                "red-flag-grid",
                "红旗网格",
                "红旗网格",
                "2024-Q1",
                [
                    Selection("S01C01G01", "世纪社区第一网格", 1012.5, 1, unit="世纪社区"),
                    Selection("S01C02G02", "宝发社区第二网格", 1001.0, 1, unit="宝发社区"),
                ],
                metric="网格居民平均信用积分",
            ),
            PublicAssessment(
                "excellent-grid-worker",
                "优秀网格员",
                "优秀网格员",
                "2024-Q1",
                [
                    Selection(
                        people[5]["id"],
                        people[5]["name"],
                        135.0,
                        1,
                        kind="person",
                        grid="S02C01G02",
                    )
                ],
            ),
            PublicAssessment("pioneer-property", "先锋物业", "先锋物业", "2024-Q1", []),
        ],
        lists=[
            PublicList(
                "red",
                "红榜",
                [
                    PublicListMember(
                        MERCHANTS[0]["id"],
                        MERCHANTS[0]["name"],
                        "merchants",
                        [PublicListReason("信用等级AAA 诚信模范")],
                        code=MERCHANTS[0]["code"],
                    )
                ],
            ),
            PublicList(
                "grey",
                "灰榜",
                [
                    PublicListMember(
                        MERCHANTS[1]["id"],
                        MERCHANTS[1]["name"],
                        "merchants",
                        [
                            PublicListReason(
                                "销售假冒伪劣商品", "2024-02-10", "2025-02-10", objection=True
                            ),
                            PublicListReason("消费投诉（一般）", "2024-03-05", "2024-06-05"),
                        ],
                        code=MERCHANTS[1]["code"],
                    ),
                    PublicListMember(
                        people[1]["id"],
                        people[1]["name"],
                        "residents",
                        [PublicListReason("信用等级C 诚信警示", "2024-03-31")],
                        kind="person",
                    ),
                ],
            ),
        ],
        rules=[
            RulePackText(
                "居民信用积分细则",
                "residents",
                [
                    RuleText(
                        "res-volunteer",
                        "参加志愿服务",
                        # as render.render_rule writes it: heading, id line, items
                        "#### 参加志愿服务\n\n规则编号：`res-volunteer`\n\n"
                        "- 适用情形：志愿服务\n- 计分：每小时加2分，*不足*1小时不计\n"
                        "- 上限：每月最多40分\n"
                        "- 通过：经索镇街道居民代表会议于2024-01-10通过，文号：索政字〔2024〕3号\n",
                        "索镇街道居民代表会议 2024-01-10（索政字〔2024〕3号）",
                    ),
                    RuleText("res-x", STARRY, HOSTILE),
                ],
                adopted="索镇街道居民代表会议 2024-01-10",
                version="2024.1",
            )
        ],
        catalog=[
            CatalogRow(
                "rice-5kg",
                "东北大米5公斤",
                50,
                "B",
                ["居民", "党员"],
                200,
                "2024-01-01 至 2024-12-31",
                "金鼎便利店",
            ),
            CatalogRow("haircut", "理发一次", 20),
        ],
        trends=[
            TrendPoint("2024-01", "residents", 985.0, 38),
            TrendPoint("2024-02", "residents", 990.5, 39),
            TrendPoint("2024-02", "merchants", 950.0, 3),
        ],
        lookup=lookup_accounts,
        archive=[ArchiveMonth("2024-02", "ab" * 32)],
        late_events=2,
    )


def secrets_of_fixture() -> list[str]:
    """Everything that must not appear anywhere in the output."""
    found: list[str] = []
    for p in subjects():
        code = lookup.person_code(SECRET, p["id"])
        found += [p["id"], p["phone"], code, code.replace("-", "")]
    for m in MERCHANTS:
        code = lookup.person_code(SECRET, m["id"])
        found += [m["id"], m["code"], code, code.replace("-", "")]
    found.append(SECRET.decode())
    return found


def copy_site_skeleton(dest: Path) -> Path:
    """mkdocs.yml and the hand-written pages, as in the repository."""
    shutil.copy(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(
        ROOT / "site", dest / "site", ignore=shutil.ignore_patterns("months", "data", "__pycache__")
    )
    return dest


def build_site(root: Path) -> Path:
    """``mkdocs build --strict`` of ``root/mkdocs.yml`` into ``root/public``."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(root / "mkdocs.yml"),
            "-d",
            str(root / "public"),
        ],
        capture_output=True,
        check=False,
        text=True,
        cwd=root,
    )
    assert proc.returncode == 0, f"mkdocs build failed:\n{proc.stdout}\n{proc.stderr}"
    return root / "public"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = copy_site_skeleton(tmp_path_factory.mktemp("site"))
    write_month_site(
        "2024-02", month_data("2024-02"), root / "site", secret=SECRET, iterations=1000
    )
    write_month_site(
        "2024-03", month_data("2024-03"), root / "site", secret=SECRET, iterations=1000
    )
    build_site(root)
    return root


# --- masking and escaping ----------------------------------------------------------


def test_mask_name_keeps_first_and_last_character():
    assert mask_name("张晓明", "person") == "张*明"
    assert mask_name("欧阳小明", "person") == "欧**明"
    assert mask_name("张三", "person") == "张*"
    assert mask_name("张", "person") == "*"
    assert mask_name("桓台县鲜果超市", "organization") == "桓台县鲜果超市"


def test_mask_code_shows_first_six_and_last_four():
    assert mask_code("91370321MA3C8QWE7X") == "913703********QWE7X"[:6] + "********" + "WE7X"
    assert mask_code(None) == ""


def test_md_escapes_markdown_and_html():
    assert "<" not in md(HOSTILE) and "*" not in md(STARRY)
    assert md("a|b") == "a&#124;b"


def test_ranks_of():
    assert ranks_of([10, 20, 20, 5]) == [3, 1, 1, 4]


def test_publish_rejects_wrong_month():
    with pytest.raises(InputError, match="YYYY-MM"):
        write_month_site("2024-3", month_data(), Path("unused"), secret=SECRET)
    with pytest.raises(InputError, match="data is for 2024-03"):
        write_month_site("2024-04", month_data(), Path("unused"), secret=SECRET)


# --- pages ---------------------------------------------------------------------


def test_ranking_page_shows_ties_movement_and_masked_names(built):
    page = (built / "site/months/2024-03/rankings/residents.md").read_text("utf-8")
    lines = [ln for ln in page.splitlines() if ln.startswith("<tr>")]
    assert lines[0].startswith("<tr><th>名次</th><th>变化</th><th>姓名</th>")
    assert md("欧**明") in lines[1] and lines[1].startswith("<tr><td>1</td>")
    assert lines[2].startswith('<tr><td>2<span class="gc-tie">并列</span>')
    assert lines[3].startswith('<tr><td>2<span class="gc-tie">并列</span>')
    assert lines[4].startswith("<tr><td>4</td>")
    assert md(mask_name(HOSTILE, "person")) in page and md(mask_name(STARRY, "person")) in page
    assert md("张*") in page and "张三" not in page
    assert 'class="gc-new"' in page and ("↑" in page and "↓" in page)
    assert "直接判级" in page


def test_grey_list_shows_reasons_windows_and_objection(built):
    page = (built / "site/months/2024-03/lists/grey.md").read_text("utf-8")
    assert "2024&#45;02&#45;10 至 2025&#45;02&#45;10" in page
    assert page.count("异议审核中") == 2  # the explanation and one flag
    assert md("923703********") in page  # masked code, not the full code
    assert "<b>" not in page


def test_community_pages_rank_within_community_and_grid(built):
    # issue #18: a community page picks the grid (searchable by name); each grid page
    # lists its people with in-community and in-grid ranks
    comm = built / "site/months/2024-03/communities"
    page = (comm / "S01C01.md").read_text("utf-8")
    assert "search:" not in page and "世纪社区第二网格" in page
    assert "宝发社区第一网格" not in page
    grids = sorted(p.name for p in (comm / "S01C01").glob("*.md"))
    assert grids and all(f"S01C01/{g}" in page for g in grids)
    text = "".join((comm / "S01C01" / g).read_text("utf-8") for g in grids)
    assert "社区名次" in text and "网格名次" in text and "宝发社区第一网格" not in text
    index = (comm / "index.md").read_text("utf-8")
    assert "S01C01.md" in index


def test_open_data_has_no_identifiers_and_a_manifest(built):
    data = built / "site/data/2024-03"
    names = sorted(p.name for p in data.iterdir())
    assert names == [
        "assessments.json",
        "catalog.json",
        "grids.csv",
        "lists.json",
        "manifest.json",
        "rankings-merchants.csv",
        "rankings-residents.csv",
        "rules.json",
        "summary.json",
    ]
    manifest = json.loads((data / "manifest.json").read_text("utf-8"))
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["content_hash"])
    assert "months/2024-03/index.md" in manifest["files"]
    csv_text = (data / "rankings-residents.csv").read_text("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("名次,上月名次,姓名（已脱敏）")
    assert len(csv_text.splitlines()) == 41
    archive = (built / "site/months/index.md").read_text("utf-8")
    assert manifest["content_hash"] in archive and "2024-02/index.md" in archive


def test_nav_lists_latest_month_and_guide(built):
    nav = site_nav(built / "site")
    titles = [next(iter(item)) for item in nav]
    assert titles[:3] == ["首页", "2024年3月公示", "往期公示"]
    assert "政策人员指南" in titles and "个人查询" in titles


def test_lookup_file_decrypts_with_the_code_only(built):
    people = subjects()
    code = lookup.person_code(SECRET, people[0]["id"])
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", code)
    salt = lookup.lookup_salt(SECRET)
    file_id, enc, mac = lookup.derive_keys(code.lower().replace("-", " "), salt, 1000)
    text = (built / "site/lookup" / file_id[:2] / f"{file_id}.js").read_text("ascii")
    payload = re.fullmatch(
        r'gridcreditLookup\("[0-9a-f]{32}","([A-Za-z0-9+/=]+)"\);\n', text
    ).group(1)
    record = json.loads(lookup.decrypt(enc, mac, payload))
    assert record["name"] == "欧**明" and record["accounts"][0]["score"] == 1200
    _, enc2, mac2 = lookup.derive_keys(lookup.person_code(SECRET, people[1]["id"]), salt, 1000)
    with pytest.raises(ValueError):
        lookup.decrypt(enc2, mac2, payload)
    assert len(list((built / "site/lookup").glob("*/*.js"))) == len(people)
    assert list((built / "site/lookup").glob("*.js")) == []  # spread over sub-folders


def test_lookup_key_cache_gives_the_same_files(tmp_path):
    data = month_data()
    plain = write_month_site("2024-03", data, tmp_path / "a", secret=SECRET, iterations=1000)
    private = tmp_path / "private"
    for _ in range(2):  # first run fills the cache, second reads it
        write_month_site(
            "2024-03", data, tmp_path / "b", secret=SECRET, iterations=1000, private_dir=private
        )
    assert (private / "lookup-keys.json").is_file()
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in plain}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in _all_files(tmp_path / "b")}
    assert a == b
    with pytest.raises(InputError, match="outside the site"):
        write_month_site(
            "2024-03", data, tmp_path / "c", secret=SECRET, private_dir=tmp_path / "c/p"
        )


def test_private_codes_stay_outside_the_site(tmp_path):
    path = lookup.private_codes_path(tmp_path / "gridcredit.db", "2024-03")
    assert path == tmp_path.resolve() / "private" / "codes-2024-03.csv"
    lookup.write_private_codes(path, SECRET, [("SUBJ-R-0001", "王伟")], site_dir=tmp_path / "site")
    assert lookup.person_code(SECRET, "SUBJ-R-0001") in path.read_text("utf-8-sig")
    with pytest.raises(ValueError, match="inside the site"):
        lookup.write_private_codes(tmp_path / "site/x.csv", SECRET, [], site_dir=tmp_path / "site")


# --- privacy, escaping, determinism over everything written ---------------------------


def _all_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def test_no_identifier_appears_anywhere(built):
    needles = secrets_of_fixture()
    files = _all_files(built / "site", built / "public")
    assert len(files) > 50
    for path in files:
        data = path.read_bytes()
        text = data.decode("utf-8", "replace")
        for needle in needles:
            assert needle not in text, f"{needle!r} leaked into {path.relative_to(built)}"
            assert needle not in path.name


def test_hostile_names_never_become_markup(built):
    for path in _all_files(built / "public"):
        if path.suffix in (".html", ".md"):
            text = path.read_text("utf-8")
            assert "<script>alert" not in text, path
            assert "<b>店" not in text, path
            assert "<em>x</em>" not in text, path
    page = (built / "public/months/2024-03/rankings/residents.html").read_text("utf-8")
    assert "&lt;**************&gt;" in page or "&#60;" in page


def test_publish_is_deterministic(tmp_path, built):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        write_month_site("2024-02", month_data("2024-02"), root, secret=SECRET, iterations=1000)
        write_month_site("2024-03", month_data("2024-03"), root, secret=SECRET, iterations=1000)
    # and publishing the same month again changes nothing
    write_month_site("2024-03", month_data("2024-03"), b, secret=SECRET, iterations=1000)
    files_a = {p.relative_to(a): p.read_bytes() for p in _all_files(a)}
    files_b = {p.relative_to(b): p.read_bytes() for p in _all_files(b)}
    assert files_a == files_b
    generated = {
        p.relative_to(built / "site"): p.read_bytes()
        for p in _all_files(built / "site")
        if p.relative_to(built / "site").parts[0] in ("months", "data", "lookup")
    }
    assert {
        k: v for k, v in files_a.items() if k.parts[0] in ("months", "data", "lookup")
    } == generated


def test_charts_are_escaped_and_scalable():
    svg = charts.bar_chart(HOSTILE, [HOSTILE, "世纪社区第一网格"], [3, 5])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'viewBox="0 0 360 ' in svg and 'width="100%"' in svg
    assert charts.histogram("分布", [1000, 1000, 1010, 990]).count("<rect") >= 2
    line = charts.line_chart("走势", ["24-01", "24-02", "24-03"], [("居民", [985.0, None, 990.0])])
    assert "<polyline" not in line  # a gap between two single points draws no line
    assert "暂无数据" in charts.bar_chart("空", [], [])


# --- plugin pages, fast tables, reproducible builds ----------------------------------


class FakePublisher:
    """A plugin publisher as ``register_publishers`` gives one: a page and a CSV."""

    name = "fake"

    def __init__(self, text: str = "甲"):
        self.text = text

    def write(self, month: str, data: MonthData, site_dir: Path) -> list[Path]:
        page = site_dir / "months" / month / "fake-plugin.md"
        csv_file = site_dir / "data" / month / "fake-plugin.csv"
        page.parent.mkdir(parents=True, exist_ok=True)
        csv_file.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"# 插件页面 [测试]\n\n内容{self.text}\n", encoding="utf-8")
        csv_file.write_text("列\n" + self.text + "\n", encoding="utf-8")
        return [page, csv_file]


class RoguePublisher:
    name = "rogue"

    def __init__(self, rel: str):
        self.rel = rel

    def write(self, month: str, data: MonthData, site_dir: Path) -> list[Path]:
        path = (site_dir / self.rel.format(month=month)).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# x\n", encoding="utf-8")
        return [path]


def _publish_with(site: Path, publishers) -> dict:
    write_month_site(
        "2024-03", month_data(), site, secret=SECRET, iterations=1000, publishers=publishers
    )
    return json.loads((site / "data/2024-03/manifest.json").read_text("utf-8"))


def test_plugin_pages_are_hashed_linked_and_kept(tmp_path):
    site = tmp_path / "site"
    plain = _publish_with(tmp_path / "plain", [])
    first = _publish_with(site, [FakePublisher("甲")])
    assert "months/2024-03/fake-plugin.md" in first["files"]
    assert "data/2024-03/fake-plugin.csv" in first["files"]
    assert first["content_hash"] != plain["content_hash"]
    index = (site / "months/2024-03/index.md").read_text("utf-8")
    assert "## 其他" in index and "[插件页面 &#91;测试&#93;](fake-plugin.md)" in index
    assert "## 其他" not in (tmp_path / "plain/months/2024-03/index.md").read_text("utf-8")
    data_page = (site / "months/2024-03/data.md").read_text("utf-8")
    assert "(../../data/2024-03/fake-plugin.csv)" in data_page
    # the hash follows the plugin's content, and publishing again keeps the files
    second = _publish_with(site, [FakePublisher("乙")])
    assert second["content_hash"] != first["content_hash"]
    assert (site / "months/2024-03/fake-plugin.md").read_text("utf-8").endswith("内容乙\n")
    assert _publish_with(site, [FakePublisher("乙")]) == second
    # without the plugin its stale files go, and the hash is the plain one again
    assert _publish_with(site, [])["content_hash"] == plain["content_hash"]
    assert not (site / "months/2024-03/fake-plugin.md").exists()
    # the navigation lists plugin pages under 其他
    _publish_with(site, [FakePublisher()])
    section = next(v for item in site_nav(site) for k, v in item.items() if k.endswith("公示"))
    assert {"其他": ["months/2024-03/fake-plugin.md"]} in section


def test_plugin_publishers_must_stay_in_their_lane(tmp_path):
    with pytest.raises(InputError, match="outside the site folder"):
        _publish_with(tmp_path / "site", [RoguePublisher("../elsewhere.md")])
    with pytest.raises(InputError, match="gridcredit writes itself"):
        _publish_with(tmp_path / "site", [RoguePublisher("months/{month}/rules.md")])
    with pytest.raises(InputError, match="gridcredit writes itself"):
        _publish_with(tmp_path / "site", [RoguePublisher("months/{month}/index.md")])


def test_guide_links_change_a_rule_page():
    guide = (ROOT / "site/guide/index.md").read_text("utf-8")
    assert "(change-a-rule.md)" in guide
    nav = site_nav(ROOT / "site")
    pages = next(v for item in nav for k, v in item.items() if k == "政策人员指南")
    assert pages[0] == "guide/index.md" and "guide/change-a-rule.md" in pages


def test_raw_html_blocks_skip_markdown_and_render_the_same():
    import markdown

    from scoring.publish import restore_raw_html, stash_raw_html
    from scoring.publish.markup import _html_table

    table = _html_table(["名次", "姓名"], [["1", md("*x*")], ["2", md(HOSTILE)]])
    text = f"# 标题\n\n前文 *强调*\n\n{table}\n\n后文\n"
    exts = ["tables", "md_in_html", "attr_list"]
    plain = markdown.markdown(text, extensions=exts)
    stashed, blocks = stash_raw_html(text)
    assert len(blocks) == 1 and "<table>" not in stashed
    fast = restore_raw_html(markdown.markdown(stashed, extensions=exts), blocks)
    norm = lambda s: re.sub(r"\s+", "", re.sub(r"<!--.*?-->", "", s))  # noqa: E731
    assert norm(fast) == norm(plain)
    assert "<td>" + md("*x*") + "</td>" in fast and "<em>强调</em>" in fast
    assert "<script>" not in fast and "gcrawhtml" not in fast


def _build_in_child(root: Path, seed: str) -> Path:
    """``pipeline.build_site`` in a fresh interpreter (own hash seed, own clock)."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["PYTHONHASHSEED"] = seed
    code = "import sys; from pathlib import Path; from scoring.pipeline import build_site; build_site(Path(sys.argv[1]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(root / "mkdocs.yml")],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return root / "public"


def test_site_build_is_byte_identical(tmp_path):
    root = copy_site_skeleton(tmp_path)
    for month in ("2024-02", "2024-03"):
        write_month_site(
            month,
            month_data(month),
            root / "site",
            secret=SECRET,
            iterations=1000,
            publishers=[FakePublisher()],
        )
    first = _build_in_child(root, "1").rename(tmp_path / "public-1")
    second = _build_in_child(root, "2")
    files_1 = {p.relative_to(first): p.read_bytes() for p in _all_files(first)}
    files_2 = {p.relative_to(second): p.read_bytes() for p in _all_files(second)}
    assert sorted(files_1) == sorted(files_2)
    changed = [str(k) for k in files_1 if files_1[k] != files_2[k]]
    assert changed == [], f"differ between two builds: {changed}"
    for must in ("sitemap.xml", "sitemap.xml.gz", "search/search_index.json", "404.html"):
        assert Path(must) in files_1
    # the build date is the fixed SOURCE_DATE_EPOCH of pipeline.build_site, not today
    gz = files_1[Path("sitemap.xml.gz")]
    assert int.from_bytes(gz[4:8], "little") == 1704067200
    # the fast paths: look-up files hard-linked, tables and charts kept, plugin page built
    lookups = sorted(p for p in files_1 if p.parts[0] == "lookup" and p.suffix == ".js")
    assert len(lookups) == len(subjects())
    assert (second / lookups[0]).stat().st_nlink >= 2
    assert files_1[lookups[0]] == (root / "site" / lookups[0]).read_bytes()
    ranking = files_1[Path("months/2024-03/rankings/residents.html")].decode("utf-8")
    assert ranking.count("<tr>") > 40 and 'class="gc-chart"' in ranking
    assert "gcrawhtml" not in ranking and "gc:html" not in ranking
    index = files_1[Path("months/2024-03/index.html")].decode("utf-8")
    assert 'href="fake-plugin.html"' in index
    assert Path("months/2024-03/fake-plugin.html") in files_1


def test_republishing_never_changes_a_built_site(tmp_path):
    people = {"SUBJ-R-0001": {"name": "王*", "accounts": []}}
    site, built_copy = tmp_path / "site", tmp_path / "public/lookup"
    (path,) = lookup.write_lookup_files(site, people, secret=SECRET, iterations=1000)
    from scoring.publish import link_files

    assert link_files([(path, built_copy / path.name)]) == 1
    before = (built_copy / path.name).read_bytes()
    people["SUBJ-R-0001"]["name"] = "李*"
    (again,) = lookup.write_lookup_files(site, people, secret=SECRET, iterations=1000)
    assert again == path and path.read_bytes() != before
    assert (built_copy / path.name).read_bytes() == before  # the link was broken, not written


def test_repository_site_assets_are_the_packaged_ones():
    """site/assets/ is what `publish` copies from the package: the two never drift apart."""
    from scoring.publish import ASSETS

    root = Path(__file__).resolve().parent.parent
    for name in ASSETS:
        packaged = root / "scoring" / "assets" / name
        assert (root / "site" / "assets" / name).read_bytes() == packaged.read_bytes(), name


def test_hostile_titles_descriptions_and_markers_stay_text(tmp_path):
    """Found in review: titles reach <title> through striptags; placeholders could be forged."""
    from dataclasses import replace

    evil = "</title><script>alert(1)</script><title>"
    data = month_data("2024-03")
    data = replace(
        data,
        groups=[replace(g, title=f"{g.title}{evil}") for g in data.groups],
        lists=[
            replace(
                lst, title=f"{lst.title}{evil}", description="gc:rawhtml:0: gcrawhtml0z \u202eevil"
            )
            for lst in data.lists
        ],
    )
    root = copy_site_skeleton(tmp_path)
    write_month_site("2024-03", data, root / "site", secret=SECRET, iterations=1000)
    public = build_site(root)
    for path in _all_files(public):
        if path.suffix == ".html":
            text = path.read_text("utf-8")
            assert "<script>alert" not in text, path
            assert "\u202e" not in text, path
            for title in re.findall(r"<title>(.*?)</title>", text, re.S):
                assert "<" not in title and ">" not in title, (path, title)
    grey = next(public.glob("months/2024-03/lists/*.html")).read_text("utf-8")
    assert grey.count("<table>") == 1  # the forged marker did not duplicate the table


# --- found reading the demo county as a resident on a phone -------------------------


def test_lookup_form_never_submits_the_code(built):
    """With script off (or too old to run) the code must not land in a URL or a server log."""
    page = (built / "site/lookup/index.md").read_text("utf-8")
    form = page[page.index("<form") : page.index("</form>")]
    assert "name=" not in form  # nothing named: even a submitted form carries no code
    assert "<fieldset disabled>" in form  # lookup.js enables it; without it nothing submits
    assert "<noscript>" in page and "JavaScript" in page[page.index("<noscript>") :]
    html = (built / "public/lookup/index.html").read_text("utf-8")
    assert 'name="code"' not in html and "<fieldset disabled>" in html
    js = (ROOT / "scoring/assets/lookup.js").read_text("utf-8")
    code = "\n".join(ln for ln in js.splitlines() if not ln.lstrip().startswith(("/*", "*")))
    for modern in (
        r"\basync\b",
        r"\bawait\b",
        "=>",
        "`",
        r"\blet\s",
        r"\bconst\s",
        "replaceChildren",
    ):
        assert not re.search(modern, code), f"lookup.js uses {modern}; older WebViews lack it"
    assert "fieldset.disabled = false" in js


def test_full_width_codes_are_normalised():
    code = lookup.person_code(SECRET, "SUBJ-R-0001")
    full = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else "－" for c in code)
    assert lookup.normalize_code(full) == code.replace("-", "")
    assert lookup.normalize_code(" " + code.lower().replace("-", "—") + "\u3000") == (
        code.replace("-", "")
    )
    js = (ROOT / "scoring/assets/lookup.js").read_text("utf-8")
    assert 'normalize("NFKC")' in js


FORMULA = '=HYPERLINK("http://x.example/","点此领奖")'


class FormulaPublisher:
    name = "formula"

    def write(self, month: str, data: MonthData, site_dir: Path) -> list[Path]:
        path = site_dir / "data" / month / "formula-plugin.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            f'\ufeffname,score\n"{FORMULA.replace(chr(34), 2 * chr(34))}",-3\n@x,5\n'.encode()
        )
        return [path]


def test_csv_cells_never_become_formulas(tmp_path):
    import csv
    from dataclasses import replace

    data = month_data()
    evil = replace(data.rankings["merchants"][0], name=FORMULA, earned=-7, score=-2, code="+86 123")
    data = replace(
        data, rankings={**data.rankings, "merchants": [evil, *data.rankings["merchants"][1:]]}
    )
    write_month_site(
        "2024-03",
        data,
        tmp_path,
        secret=SECRET,
        iterations=1000,
        publishers=[FormulaPublisher()],
    )
    for path in (tmp_path / "data/2024-03").glob("*.csv"):
        for row in csv.reader(path.read_text("utf-8-sig").splitlines()):
            for cell in row:
                if cell[:1] in ("=", "+", "@", "\t", "\r") or (
                    cell[:1] == "-" and not re.fullmatch(r"-\d+(\.\d+)?", cell)
                ):
                    pytest.fail(f"{path.name}: formula-like cell {cell!r}")
    rows = list(
        csv.reader((tmp_path / "data/2024-03/rankings-merchants.csv").open(encoding="utf-8-sig"))
    )
    row = next(r for r in rows if FORMULA in r[2])
    assert row[2] == "'" + FORMULA
    assert row[8] == "-2" and row[10] == "-7"  # numbers stay numbers
    plugin = (tmp_path / "data/2024-03/formula-plugin.csv").read_text("utf-8-sig")
    assert plugin.splitlines()[1:] == [f'"\'{FORMULA.replace(chr(34), 2 * chr(34))}",-3', "'@x,5"]
    manifest = json.loads((tmp_path / "data/2024-03/manifest.json").read_text("utf-8"))
    import hashlib

    assert (
        manifest["files"]["data/2024-03/formula-plugin.csv"]
        == hashlib.sha256((tmp_path / "data/2024-03/formula-plugin.csv").read_bytes()).hexdigest()
    )
    assert "单引号" in (tmp_path / "months/2024-03/data.md").read_text("utf-8")


def test_rules_page_renders_rule_text_once_as_markdown(built):
    page = (built / "site/months/2024-03/rules.md").read_text("utf-8")
    section = page[page.index("{#rule-res-volunteer}") : page.index("{#rule-res-x}")]
    assert "&#35;" not in section and "&#96;" not in section  # no escaped '####' or '`'
    assert "\n- **适用情形**：志愿服务\n" in section
    assert "&#42;不足&#42;" in section  # input text is escaped once, never emphasis
    assert section.count("通过") == 2  # the item's label and its text: not again in the footer
    html = (built / "public/months/2024-03/rules.html").read_text("utf-8")
    body = html[html.index('id="rule-res-volunteer"') : html.index('id="rule-res-x"')]
    assert "<li><strong>计分</strong>：每小时加2分，&#42;不足&#42;1小时不计</li>" in body
    assert body.count("参加志愿服务") == 1 and "规则编号：" not in body
    assert "&amp;#" not in html  # nothing escaped twice
    # a hostile title from the YAML stays text
    assert md(STARRY) in page and md(HOSTILE) in page


def test_archive_shows_the_checkable_hash_and_it_never_changes(tmp_path):
    from dataclasses import replace

    site = tmp_path / "site"
    write_month_site("2024-02", month_data("2024-02"), site, secret=SECRET, iterations=1000)
    feb = json.loads((site / "data/2024-02/manifest.json").read_text("utf-8"))["content_hash"]
    assert feb in (site / "months/index.md").read_text("utf-8")
    # the driver once passed the ledger's closing hash here: the page must not show it
    later = replace(month_data("2024-03"), archive=[ArchiveMonth("2024-02", "ab" * 32)])
    write_month_site("2024-03", later, site, secret=SECRET, iterations=1000)
    archive = (site / "months/index.md").read_text("utf-8")
    mar = json.loads((site / "data/2024-03/manifest.json").read_text("utf-8"))["content_hash"]
    assert feb in archive and mar in archive and "ab" * 32 not in archive
    assert "content_hash" in archive and "certutil" in archive


WORD_TIERS = [TierInfo("excellent", "优秀", 90), TierInfo("qualified", "合格", 60, 89)]


def test_open_data_shows_tier_titles_not_ids(tmp_path):
    import csv
    from dataclasses import replace

    data = month_data()
    workers = [
        SubjectRank(f"SUBJ-G-{i}", f"网格员{i}", GRIDS[i].id, s, t, i + 1)
        for i, (s, t) in enumerate([(95, "excellent"), (70, "qualified")])
    ]
    data = replace(
        data,
        groups=[*data.groups, GroupInfo("grid_workers", "网格员", "person", WORD_TIERS)],
        rankings={**data.rankings, "grid_workers": workers},
    )
    write_month_site("2024-03", data, tmp_path, secret=SECRET, iterations=1000)
    rows = list(
        csv.DictReader(
            (tmp_path / "data/2024-03/rankings-grid_workers.csv").open(encoding="utf-8-sig")
        )
    )
    assert [r["等级"] for r in rows] == ["优秀", "合格"]
    rows = list(
        csv.DictReader(
            (tmp_path / "data/2024-03/rankings-residents.csv").open(encoding="utf-8-sig")
        )
    )
    assert rows[0]["等级"] == "AAA 诚信模范"  # a grade code keeps its code, as on the page
    summary = json.loads((tmp_path / "data/2024-03/summary.json").read_text("utf-8"))
    tiers = next(g["tiers"] for g in summary["groups"] if g["id"] == "grid_workers")
    assert tiers == [{"tier": "优秀", "count": 1}, {"tier": "合格", "count": 1}]
    for name in ("rankings-grid_workers.csv", "summary.json"):
        text = (tmp_path / "data/2024-03" / name).read_text("utf-8-sig")
        assert '"excellent"' not in text and ",excellent," not in text and "qualified" not in text
    page = (tmp_path / "months/2024-03/rankings/grid_workers.md").read_text("utf-8")
    assert "excellent" not in page and "优秀：1" in page  # the tier chart too
    lists = json.loads((tmp_path / "data/2024-03/lists.json").read_text("utf-8"))
    assert {m["group"] for lst in lists for m in lst["members"]} == {"市场主体", "居民"}


def test_navigation_follows_the_scheme_order(built):
    section = next(v for item in site_nav(built / "site") for k, v in item.items() if "公示" in k)
    pages = {k: v for item in section for k, v in item.items()}
    assert pages["群体排名"] == [
        "months/2024-03/rankings/residents.md",
        "months/2024-03/rankings/merchants.md",
    ]  # as in scheme.yaml, not by file name
    assert pages["红灰榜"] == ["months/2024-03/lists/red.md", "months/2024-03/lists/grey.md"]


def test_lookup_file_carries_the_persons_history(built):
    person = subjects()[0]
    code = lookup.person_code(SECRET, person["id"])
    file_id, enc, mac = lookup.derive_keys(code, lookup.lookup_salt(SECRET), 1000)
    text = (built / "site/lookup" / file_id[:2] / f"{file_id}.js").read_text("ascii")
    payload = re.search(r',"([^"]+)"\);', text).group(1)
    acc = json.loads(lookup.decrypt(enc, mac, payload))["accounts"][0]
    assert [m["month"] for m in acc["months"]] == ["2024-03", "2024-02"]
    assert acc["months"][1] == {
        "month": "2024-02",
        "label": "2024年2月",
        "score": 1197,
        "tier": "AAA 诚信模范",
    }
    assert [e["month"] for e in acc["entries"]] == ["2024-03"] * 3 + ["2024-02"]
    assert acc["entries"][-1] == {
        "date": "2024-02-11",
        "rule": "违规停放车辆",
        "points": -5,
        "flag": "异议审核中",
        "month": "2024-02",
    }
    page = (built / "site/lookup/index.md").read_text("utf-8")
    assert "历月" in page


def test_assessments_page_reads_as_words(built):
    page = (built / "site/months/2024-03/assessments.md").read_text("utf-8")
    assert "2024年第一季度" in page and "2024&#45;Q1" not in page and "2024-Q1" not in page
    assert "<th>排名范围</th>" in page and "<td>世纪社区</td><td>1</td>" in page
    assert "<td>1001</td>" in page and "<td>1012.5</td>" in page  # 1001, not 1001.0
    assert "<td>135</td>" in page and "135.0" not in page
    worker = page[page.index("优秀网格员") :]
    assert "金鼎社区第二网格" in worker.split("</tr>")[1]  # the grid tells two 李* apart
    data = json.loads((built / "site/data/2024-03/assessments.json").read_text("utf-8"))
    red = next(a for a in data if a["id"] == "red-flag-grid")
    assert red["period_title"] == "2024年第一季度"
    assert [s["rank_within"] for s in red["selected"]] == ["世纪社区", "宝发社区"]


def test_demo_pipeline_publishes_history_and_checkable_hashes(tmp_path):
    """The driver end to end on a tiny county: what month_data gathers reaches the site."""
    import csv

    from scoring.demo import run_demo

    result = run_demo(ROOT, tmp_path, events=1500, residents=300, build=False, echo=lambda *a: None)
    site = result["site"]
    archive = (site / "months/index.md").read_text("utf-8")
    for m in ("2024-01", "2024-02", "2024-03"):
        manifest = json.loads((site / f"data/{m}/manifest.json").read_text("utf-8"))
        assert manifest["content_hash"] in archive
    import sqlite3

    db = sqlite3.connect(result["db"])
    subject, months = db.execute(
        "SELECT subject, COUNT(DISTINCT period) c FROM entries WHERE grp = 'residents'"
        " GROUP BY subject ORDER BY c DESC, subject LIMIT 1"
    ).fetchone()
    assert months >= 2
    secret = bytes.fromhex((tmp_path / "private/lookup.key").read_text().strip())
    codes = {
        r["subject"]: r["code"]
        for r in csv.DictReader((tmp_path / "private/codes-2024-03.csv").open(encoding="utf-8-sig"))
    }
    file_id, enc, mac = lookup.derive_keys(codes[subject], lookup.lookup_salt(secret))
    text = (site / "lookup" / file_id[:2] / f"{file_id}.js").read_text("ascii")
    record = json.loads(lookup.decrypt(enc, mac, re.search(r',"([^"]+)"\);', text).group(1)))
    acc = next(a for a in record["accounts"] if a["group"] == "居民")
    assert len({e["month"] for e in acc["entries"]}) == months
    assert [m["month"] for m in acc["months"]][:2] == ["2024-03", "2024-02"]
    rules = (site / "months/2024-03/rules.md").read_text("utf-8")
    assert "&#35;" not in rules and "试行条款" not in rules


def test_lookup_rows_say_what_a_reversal_repair_or_linked_entry_is():
    from scoring.publish.lookup import _lookup_entry

    def row(**kw):
        return _lookup_entry(LookupEntry("2024-03-02", "噪音扰民经核实", month="2024-03", **kw))

    reversal = row(points=3, kind="reversal")["rule"]
    assert reversal.startswith("撤销：噪音扰民经核实（") and "退回原扣分" in reversal
    assert "收回原加分" in row(points=-4, kind="reversal")["rule"]
    assert row(points=1, kind="repair")["rule"].startswith("信用修复：噪音扰民经核实")
    linked = row(points=-20, wallet=-2, kind="linked", link="legal_representative")["rule"]
    assert linked == "因关联主体（所经营商户）连带：噪音扰民经核实"
    assert row(points=-5, kind="linked", link="x")["rule"] == "因关联主体连带：噪音扰民经核实"
    assert row(points=-5)["rule"] == "噪音扰民经核实" and "flag" not in row(points=-5)


def test_rules_page_says_a_rule_adopted_later_applies_back():
    # mer-credit-repair: adopted 2024-04-02, in force (its pack's) from 2024-01-01; the
    # ledger scores it from January, so the January page lists it and says so
    from scoring.loader import load_scheme
    from scoring.publish.data import _rules

    scheme = load_scheme(ROOT / "rules")
    rules = {r.id: r for p in _rules(scheme, "2024-01") for r in p.rules}
    text = rules["mer-credit-repair"].text
    assert "- 追溯适用：本条于2024年4月2日通过，2024年1月1日起发生的事项同样按本条计分" in text
    assert "追溯" not in rules["res-credit-repair"].text  # adopted before it took effect
    # the version taking effect in July stays off the January page, with its own dates
    jan = [r.text for p in _rules(scheme, "2024-01") for r in p.rules]
    july = [r.text for p in _rules(scheme, "2024-07") for r in p.rules]
    assert any("自2024年7月1日起施行" in t for t in july)
    assert not any("2024年7月1日" in t for t in jan)


def test_grey_list_links_the_repair_rule_only_where_one_applies(tmp_path):
    from dataclasses import replace

    data = month_data("2024-03")
    rules = [
        RulePackText(
            "市场主体信用积分细则",
            "merchants",
            [
                RuleText("mer-counterfeit", "销售假冒伪劣商品", "#### 销售假冒伪劣商品"),
                RuleText("mer-complaint", "消费投诉经查属实", "#### 消费投诉经查属实"),
                RuleText(
                    "mer-fix", "信用修复：完成公益服务", "#### 信用修复", "", ("mer-complaint",)
                ),
            ],
        )
    ]
    grey = next(lst for lst in data.lists if lst.id == "grey")
    m = grey.members[0]
    reasons = [
        replace(m.reasons[0], rule="mer-counterfeit", objection=False),
        replace(m.reasons[1], rule="mer-complaint"),
    ]
    lists = [
        replace(grey, members=[replace(m, reasons=reasons)]),
        PublicList(
            "red",
            "红榜",
            [],
            criteria=["信用等级为AAA或AA"],
            groups=["merchants"],
        ),
    ]
    data = replace(data, rules=rules, lists=lists)
    write_month_site("2024-03", data, tmp_path, secret=SECRET, iterations=1000)
    page = (tmp_path / "months/2024-03/lists/grey.md").read_text("utf-8")
    counterfeit, complaint = page.split("销售假冒伪劣商品", 1)[1].split("消费投诉", 1)
    assert "本事项不适用信用修复" in counterfeit and "信用修复</a>" not in counterfeit
    assert '<a href="../rules.html#rule-mer-fix">信用修复</a>' in complaint
    assert "不适用" not in complaint
    red = (tmp_path / "months/2024-03/lists/red.md").read_text("utf-8")
    assert "本月无上榜对象。" in red
    assert "上榜条件（市场主体，满足任一条件即上榜）：" in red and "- 信用等级为AAA或AA" in red
