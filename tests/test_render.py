"""Rules rendered in plain Chinese: exact wording for each rule feature."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from scoring.loader import build_scheme, read_scheme
from scoring.model import Rule, Scheme, make_points
from scoring.render import render_condition, render_rule, render_scheme, rule_kind

HERE = Path(__file__).parent
MINI = HERE / "fixtures" / "mini"


@pytest.fixture(scope="module")
def scheme() -> Scheme:
    return build_scheme(read_scheme(MINI))


def rule(scheme: Scheme, rule_id: str, version: int = 0) -> Rule:
    return scheme.rule_versions(rule_id)[version]


def bullets(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("- ")]


def test_per_points_with_condition_and_cap(scheme: Scheme) -> None:
    text = render_rule(rule(scheme, "res-volunteer"), scheme)
    assert text.splitlines()[0] == "#### 参加志愿服务"
    assert "规则编号：`res-volunteer`" in text
    assert bullets(text) == [
        "适用情形：志愿服务",
        "条件：服务时长不少于0.5小时",
        "计分：按服务时长计分，每小时加2分，不足1分的部分不计（向下取整）",
        "上限：每月最多40分",
        "可兑换积分：加分同时计入可兑换积分",
        "施行日期：自2024年1月1日起施行",
        "通过：经测试街道居民代表会议于2024年1月10日通过，文号：测政字〔2024〕1号",
    ]


def test_table_points_and_count_cap(scheme: Scheme) -> None:
    items = bullets(render_rule(rule(scheme, "res-council"), scheme))
    assert "计分：按参会身份计分：“参会”加2分；“发言”加3分；“组织者”加5分" in items
    assert "上限：每月最多计2次" in items


def test_escalation_and_expiry(scheme: Scheme) -> None:
    items = bullets(render_rule(rule(scheme, "res-illegal-parking"), scheme))
    assert "计分：一年内第1次扣5分、第2次扣10分、第3次及以上扣20分" in items
    assert "有效期：自事件发生之日起12个月后不再计入" in items
    assert "情节：轻微" in items
    assert not any(i.startswith("可兑换积分") for i in items)


def test_versions_show_their_dates_and_adoption(scheme: Scheme) -> None:
    old = bullets(render_rule(rule(scheme, "res-garbage-sorting", 0), scheme))
    new = bullets(render_rule(rule(scheme, "res-garbage-sorting", 1), scheme))
    assert "施行日期：2024年1月1日至2024年6月30日" in old
    assert "计分：每次加1分" in old
    assert "施行日期：自2024年7月1日起施行" in new
    assert "计分：每次加2分" in new
    assert "通过：经测试街道居民代表会议于2024年6月18日通过，文号：测政字〔2024〕9号" in new


def test_trial_rule_is_marked(scheme: Scheme) -> None:
    text = render_rule(rule(scheme, "res-pet"), scheme)
    assert text.splitlines()[0] == "#### 不文明养犬（试行）"
    assert "- 试行条款：试行期间只测算、不计入积分余额，也不公示" in text


def test_direct_grading_and_linked_scoring(scheme: Scheme) -> None:
    items = bullets(render_rule(rule(scheme, "mer-counterfeit"), scheme))
    assert "直接判级：直接判定为C级（诚信警示），3年内信用等级最高为C级，不论分数高低" in items
    assert "联奖联罚：同时对其法定代表人（居民账户）扣20分" in items
    assert "有效期：自事件发生之日起3年后不再计入" in items
    assert "计分：每次扣50分" in items


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"attrs.hours": {"gte": 0.5}}, "服务时长不少于0.5小时"),
        ({"attrs.hours": {"between": [1, 4]}}, "服务时长在1小时至4小时之间"),
        ({"attrs.hours": {"lt": 2}}, "服务时长少于2小时"),
        ({"attrs.activity": {"exists": True}}, "填写了活动名称"),
        ({"attrs.activity": {"contains": "敬老"}}, "活动名称包含“敬老”"),
        ({"attrs.activity": {"matches": "^敬老"}}, "活动名称符合格式 `^敬老`"),
        ({"subject.tags": {"contains": "低保户"}}, "带有“低保户”标签"),
        ({"subject.grid": "S01C01G01"}, "所在网格为“东社区第一网格”"),
        ({"subject.community": {"in": ["S01C01", "S01C02"]}}, "所在社区为“东社区”或“西社区”"),
        ({"subject.group": {"ne": "merchants"}}, "所属群体不为“市场主体”"),
        (
            {"any": [{"attrs.hours": {"gt": 8}}, {"attrs.activity": "助老"}]},
            "（服务时长超过8小时；或活动名称为“助老”）",
        ),
        ({"not": {"attrs.activity": "培训"}}, "不符合（活动名称为“培训”）"),
        (
            {"attrs.hours": {"gte": 1}, "attrs.activity": {"not_in": ["培训", "会议"]}},
            "服务时长不少于1小时，且活动名称不为“培训”或“会议”",
        ),
    ],
)
def test_conditions_in_chinese(scheme: Scheme, when: dict, expected: str) -> None:
    assert render_condition(when, rule(scheme, "res-volunteer"), scheme) == expected


def test_fractional_per_value_reads_naturally(scheme: Scheme) -> None:
    r = dataclasses.replace(
        rule(scheme, "res-volunteer"),
        points=make_points({"per": "hours", "value": 0.5, "round": "ceil"}),
    )
    assert "计分：按服务时长计分，每2小时加1分，不足1分按1分计（向上取整）" in bullets(
        render_rule(r, scheme)
    )


def test_rule_kinds(scheme: Scheme) -> None:
    assert rule_kind(rule(scheme, "res-volunteer")) == "award"
    assert rule_kind(rule(scheme, "res-illegal-parking")) == "penalty"
    assert rule_kind(dataclasses.replace(rule(scheme, "res-pet"), points=make_points(0))) == "other"


def test_scheme_is_grouped_by_group_with_pack_title_and_version(scheme: Scheme) -> None:
    text = render_scheme(scheme)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[:4] == [
        "# 测试街道信用积分",
        "## 居民",
        "### 居民信用积分细则（2024.1版）",
        "#### 加分项目",
    ]
    assert headings.index("## 市场主体") > headings.index("##### 不文明养犬（试行）")
    assert "### 市场主体信用积分细则（2024.1版）" in headings
    assert "| AA | 诚信先进 | 1030–1049分 |" in text
    assert "| D | 失信 | 599分及以下 |" in text
    assert "- 三年内有销售假冒伪劣商品行为" in text
    assert "- 信用等级为C级或D级" in text


def test_no_raw_html_even_from_hostile_titles(scheme: Scheme) -> None:
    r = dataclasses.replace(
        rule(scheme, "res-volunteer"), title="<script>alert(1)</script>", note="<b>粗体</b>"
    )
    text = render_rule(r, scheme)
    assert not re.search(r"<[A-Za-z/!]", text)
    assert "＜script＞" in text
    assert not re.search(r"<[A-Za-z/!]", render_scheme(scheme))


def test_reference_scheme_renders() -> None:
    ref = build_scheme(read_scheme(HERE.parent))
    text = render_scheme(ref)
    for r in ref.rules:
        assert r.title in text
    assert "None" not in text


def test_no_built_in_operator_is_special_cased_by_name() -> None:
    """render and validate ask the operator (``Operator.render``, ``value_shape``,
    ``aliases`` ...) from the scheme's registry: no built-in operator's name appears
    in them as a string, so a plugin operator is treated exactly as a built-in is."""
    import ast

    from scoring.builtin.operators import BUILTIN_OPERATORS

    names = {op.name for op in BUILTIN_OPERATORS}
    package = HERE.parent / "scoring"
    files = [package / "render.py", *sorted((package / "validate").glob("*.py"))]
    found = [
        f"{path.relative_to(package)}:{node.lineno}: {node.value!r}"
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert found == []
