"""Rules in plain Simplified Chinese (Markdown), for the site and ``gridcredit rules``.

Every rule can be read by a resident: what earns, what costs, how many
points, caps, repeat offences, how long an entry counts, when the rule is in
force and who adopted it. Conditions are worded with the attribute titles
from ``events.yaml`` (``服务时长不少于0.5小时``).

Output is Markdown text only, never HTML; escaping input text for the page is
the publisher's job.
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from datetime import date
from fractions import Fraction
from typing import Any

from .conditions import SHORTHAND, Operator, Wording, default_wording
from .durations import Duration, parse_duration
from .model import FixedPoints, Group, PerPoints, Rule, Scheme, TablePoints, TotalPoints
from .precision import WHOLE, Precision, plain_points

# the precision of the scheme being rendered (render_rule / render_scheme set it): every
# point value in the model is in its units (scoring.precision)
_PREC: ContextVar[Precision] = ContextVar("render_precision", default=WHOLE)

__all__ = ["render_condition", "render_rule", "render_scheme", "rule_kind"]

PERIOD_WORDS = {"day": "每天", "week": "每周", "month": "每月", "quarter": "每季度", "year": "每年"}
ROUND_WORDS = {"floor": "不足1分的部分不计（向下取整）", "ceil": "不足1分按1分计（向上取整）",
               "round": "四舍五入取整"}  # fmt: skip
TOTAL_PERIOD_WORDS = {"ever": "累计", "year": "本年度累计", "quarter": "本季度累计",
                      "month": "本月累计"}  # fmt: skip
SEVERITY_WORDS = {"minor": "轻微", "general": "一般", "serious": "严重"}
LINK_WORDS = {"legal_representative": "法定代表人", "household_head": "户主",
              "guardian": "监护人", "owner": "经营者", "manager": "负责人"}  # fmt: skip
# Common codes used as attribute values, shown in Chinese when events.yaml gives no title.
VALUE_WORDS = {
    "pass": "合格", "fail": "不合格", "rectified": "已整改",
    "minor": "轻微", "general": "一般", "serious": "严重", "major": "重大",
    "attendee": "参会", "speaker": "发言", "organizer": "组织者",
    "participant": "参与", "performer": "表演",
    "resolved": "调解成功", "partially_resolved": "部分调解成功", "unresolved": "未调解成功",
    "present": "出席", "excused": "请假", "absent": "缺席",
    "on_time": "按时办结", "overdue": "超期办结",
    "reported": "已报到", "not_reported": "未报到",
    "community": "社区级", "street": "街道级", "county": "县级", "city": "市级",
    "province": "省级", "national": "国家级",
    "open": "审查中", "upheld": "成立", "rejected": "不成立",
    "residents": "居民", "owners_committee": "业主委员会",
    "day": "白天", "night": "夜间",
}  # fmt: skip
FIELD_WORDS = {
    "type": "事件类型", "subject": "主体编号", "subject.id": "主体编号",
    "subject.group": "所属群体", "subject.grid": "所在网格", "subject.community": "所在社区",
    "subject.street": "所在街道", "subject.tags": "标签",
    "subject.graded": "处于直接判级期间", "subject.tier": "事件发生时的信用等级",
    "subject.listed": "事件发生时所在的名单",
}  # fmt: skip


# --------------------------------------------------------------------------
# small words


def _no_html(text: str) -> str:
    """No template here writes '<' or '>': any that remain come from rule text, and are
    shown as full-width brackets so no input can become a tag in the page."""
    return text.replace("<", "＜").replace(">", "＞")


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _p(n: Any) -> str:
    """A point value of the model (units) as points: ``5``, ``0.5``."""
    prec = _PREC.get()
    if prec.scale == 1 or not isinstance(n, int):
        return _num(n)
    return plain_points(n, prec)  # in rule text as a clerk writes it: 1000分, 0.5分


def _pts(n: float, *, signed: bool = True) -> str:
    """加5分 / 扣5分 / 不计分."""
    if n == 0:
        return "不计分"
    if not signed:
        return f"{_p(abs(n))}分"
    return f"加{_p(n)}分" if n > 0 else f"扣{_p(abs(n))}分"


def _duration(d: Any) -> str:
    if d is None:
        return ""
    if not isinstance(d, Duration):
        try:
            d = parse_duration(d)
        except ValueError:
            return str(d)
    if d.unit == "days" and d.n in (365, 366):
        return "一年"
    if d.unit == "years" and d.n == 1:
        return "一年"
    return d.chinese()


def chinese_date(text: Any) -> str:
    """``2020-01-01`` → ``2020年1月1日`` (a date as a resident writes it); other text as is."""
    try:
        d = date.fromisoformat(str(text))
    except ValueError:
        return str(text)
    return f"{d.year}年{d.month}月{d.day}日"


def _or(words: list[str], joiner: str = "或") -> str:
    if len(words) <= 1:
        return "".join(words)
    return "、".join(words[:-1]) + joiner + words[-1]


def rule_kind(rule: Rule) -> str:
    """``award``, ``penalty`` or ``other`` (repair, zero points)."""
    values = rule.point_values()
    if values and all(v < 0 for v in values):
        return "penalty"
    if values and all(v >= 0 for v in values) and any(v > 0 for v in values):
        return "award"
    return "other"


# --------------------------------------------------------------------------
# conditions


class _Context:
    def __init__(self, rule: Rule, scheme: Scheme):
        self.rule = rule
        self.scheme = scheme

    def attr(self, name: str) -> Any:
        for t in self.rule.on:
            et = self.scheme.event_types.get(t)
            if et and name in et.attrs:
                return et.attrs[name]
        return None

    def field_title(self, field: str) -> str:
        if field.startswith("attrs."):
            spec = self.attr(field[6:])
            return (spec.title if spec and spec.title else field[6:]) or field[6:]
        return FIELD_WORDS.get(field, field)

    def unit(self, field: str) -> str:
        if field.startswith("attrs."):
            spec = self.attr(field[6:])
            return spec.unit if spec and spec.unit else ""
        return ""

    def value(self, field: str, v: Any) -> str:
        if isinstance(v, bool):
            return "是" if v else "否"
        if field == "type":
            et = self.scheme.event_types.get(str(v))
            return et.title if et else str(v)
        if field == "subject.listed":
            ld = next((x for x in self.scheme.lists if x.id == v), None)
            return ld.title if ld else str(v)
        if field == "subject.group":
            g = self.scheme.groups.get(str(v))
            return g.title if g else str(v)
        if field == "subject.grid":
            grid = self.scheme.grids.get(str(v))
            return grid.name if grid else str(v)
        if field == "subject.community":
            for grid in self.scheme.grids.values():
                if grid.community == v:
                    return grid.community_name
        if field == "subject.street":
            for grid in self.scheme.grids.values():
                if grid.street == v:
                    return grid.street_name
        if field.startswith("attrs."):  # the value's name from events.yaml (values: {code: 名称})
            spec = self.attr(field[6:])
            if spec is not None and spec.labels and str(v) in spec.labels:
                return spec.labels[str(v)]
        if isinstance(v, str):
            return VALUE_WORDS.get(v, v)
        return _num(v)


def render_condition(cond: Any, rule: Rule, scheme: Scheme) -> str:
    """A ``when`` condition in Chinese, e.g. ``服务时长不少于0.5小时``."""
    return _cond(cond, _Context(rule, scheme))


def _cond(cond: Any, ctx: _Context) -> str:
    if not isinstance(cond, dict):
        return ""
    parts: list[str] = []
    for key, value in cond.items():
        if key == "all":
            subs = [_cond(c, ctx) for c in value or []]
            parts.append("，且".join(s for s in subs if s))
        elif key == "any":
            subs = [_cond(c, ctx) for c in value or []]
            parts.append("（" + "；或".join(s for s in subs if s) + "）" if len(subs) > 1
                         else "".join(subs))  # fmt: skip
        elif key == "not":
            parts.append(f"不符合（{_cond(value, ctx)}）")
        else:
            tests = value if isinstance(value, dict) else {SHORTHAND: value}
            for op, arg in tests.items():
                parts.append(_test(str(key), str(op), arg, ctx))
    return "，且".join(p for p in parts if p)


def _test(field: str, op: str, arg: Any, ctx: _Context) -> str:
    # the operator words itself (``Operator.render``), whether built-in or a plugin's
    from .plugins import plugins_of

    w = Wording(field, ctx.field_title(field), ctx.unit(field), lambda v: ctx.value(field, v))
    operator = plugins_of(ctx.scheme).operators.get(op)
    if isinstance(operator, Operator):
        return operator.word(w, arg)
    return default_wording(op, str(getattr(operator, "description", "") or ""), w, arg)


# --------------------------------------------------------------------------
# one rule


def _points_text(rule: Rule, ctx: _Context) -> str:
    p = rule.points
    if rule.escalate and rule.escalate.factor:
        times = {2: "加倍", 3: "按三倍"}.get(rule.escalate.factor, f"按{rule.escalate.factor}倍")
        kind = "同类行为再次发生" if rule.family else "再次发生"
        base = _points_text(dataclasses.replace(rule, escalate=None), ctx)
        return f"{base}；{_duration(rule.escalate.within)}内{kind}的{times}计分"
    if rule.escalate:
        steps = list(rule.escalate.steps)
        window = _duration(rule.escalate.within)
        if len(steps) == 1:
            return f"{window}内每次{_pts(steps[0])}"
        parts = [f"第{i + 1}次{_pts(s)}" for i, s in enumerate(steps[:-1])]
        parts.append(f"第{len(steps)}次及以上{_pts(steps[-1])}")
        return f"{window}内" + "、".join(parts)
    if p is None:
        return ""
    if isinstance(p, FixedPoints):
        return "每次" + _pts(p.n) if p.n else "不加分也不扣分"
    if isinstance(p, PerPoints):
        attr = p.per
        spec = ctx.attr(attr)
        unit = (spec.unit if spec and spec.unit else "") or "单位"
        title = (spec.title if spec and spec.title else attr) or attr
        frac = Fraction(str(p.value)).limit_denominator(1000)
        amount, per = abs(frac.numerator), frac.denominator
        verb = "加" if frac > 0 else "扣"
        each = f"每{unit}" if per == 1 else f"每{per}{unit}"
        rnd = ROUND_WORDS.get(p.round, "")
        if _PREC.get().scale != 1:  # rounded to the scheme's smallest unit, not to 1 point
            rnd = rnd.replace("1分", f"{_PREC.get().text}分")
        return f"按{title}计分，{each}{verb}{amount}分，{rnd}"
    if isinstance(p, TotalPoints):
        return _total_text(p, ctx)
    if isinstance(p, TablePoints):
        attr = p.by
        spec = ctx.attr(attr)
        title = (spec.title if spec and spec.title else attr) or attr
        rows = [f"“{ctx.value('attrs.' + attr, k)}”{_pts(v)}"
                for k, v in p.table.items()]  # fmt: skip
        text = f"按{title}计分：" + "；".join(rows)
        if p.default is not None:
            text += f"；其他情形{_pts(p.default)}"
        return text
    return ""


def _total_text(p: TotalPoints, ctx: _Context) -> str:
    """按本年度累计服务时长计分：累计达到10小时加2分、20小时再加5分……"""
    spec = ctx.attr(p.total)
    unit = (spec.unit if spec and spec.unit else "") or ""
    title = (spec.title if spec and spec.title else p.total) or p.total
    head = f"按{TOTAL_PERIOD_WORDS.get(p.period, '累计')}{title}计分"
    if p.levels:
        if p.count == "highest":
            steps = [f"{_num(r)}{unit}{_pts(v)}" for r, v in p.levels]
            text = f"{head}，只计达到的最高一档：累计达到" + "、".join(steps)
            text += "（升档时补足两档之差）"
        else:
            steps = [f"{_num(r)}{unit}{_pts(v)}" for r, v in p.levels]
            text = f"{head}，每达到一档加计该档分值：累计达到" + "、".join(steps)
    else:
        parts, lower = [], 0
        for upto, every, v in p.brackets:
            if upto is None:
                where = f"{_num(lower)}{unit}以上部分" if lower else ""
            elif lower:
                where = f"{_num(lower)}{unit}至{_num(upto)}{unit}部分"
            else:
                where = f"{_num(upto)}{unit}以内部分"
            parts.append(f"{where}每{_num(every)}{unit}{_pts(v)}")
            lower = upto if upto is not None else lower
        text = f"{head}，分段计算：" + "；".join(parts)
        text += "（不足一个计分单位的部分不计）"
    if p.max is not None:
        period = {"ever": "累计", "year": "每年", "quarter": "每季度", "month": "每月"}[p.period]
        sign = max(p.values(), key=abs, default=1)
        text += f"；{period}最多{'扣' if sign < 0 else '加'}{_p(p.max)}分"
    return (
        text + "。每次事件计入它使累计得分增加的部分；撤销或更正后，其后的事件按新的累计数重新计分"
    )


BOUNDARY_WORDS = {"year": ("当年年底", "年年底"), "quarter": ("当季季末", "个季度季末"),
                  "month": ("当月月底", "个月月底")}  # fmt: skip


def expires_text(e: Any) -> str:
    """自事件发生之日起一年后不再计入 / 计入至事件发生当年年底 / 按实际记分分档……"""
    if e.by_size:
        parts, lower = [], None
        for upto, band in e.by_size:
            size = (
                f"{_p(upto)}分及以下"
                if upto is not None
                else f"{_p(lower)}分以上"
                if lower
                else "其他"
            )
            how = f"计入{_duration(band.after)}" if band.after is not None else _band_text(band)
            parts.append(f"{size}的{how}")
            lower = upto
        return "按实际记分（封顶、加倍之后）的大小确定，自事件发生之日起：" + "；".join(parts)
    return _band_text(e) + "后不再计入" if e.after is not None else _band_text(e)


def _band_text(e: Any) -> str:
    if e.after is not None:
        return f"自事件发生之日起{_duration(e.after)}"
    if e.until:
        this, nth = BOUNDARY_WORDS[e.until]
        return f"计入至事件发生{this}" if not e.later else f"计入至事件发生后第{e.later}{nth}"
    return "长期有效"


def _limit_text(rule: Rule, kind: str) -> str:
    lim = rule.limit
    if lim is None:
        return ""
    period = PERIOD_WORDS.get(str(lim.per), "")
    parts = []
    if lim.max_points is not None:
        verb = "扣" if kind == "penalty" else ""
        parts.append(f"最多{verb}{_p(lim.max_points)}分")
    if lim.max_count is not None:
        parts.append(f"最多计{lim.max_count}次")
    return period + "、".join(parts) if parts else ""


def _tier_title(group: Group | None, tier: str) -> str:
    if group:
        for t in group.tiers:
            if t.id == tier:
                return f"{tier}级（{t.title}）"
    return f"{tier}级"


def _adopted_text(adopted: Any) -> str:
    if adopted is None or not (adopted.by or adopted.on):
        return ""
    text = "经" + (adopted.by or "")
    if adopted.on:
        text += f"于{chinese_date(adopted.on)}"
    text += "通过"
    if adopted.ref:
        text += f"，文号：{adopted.ref}"
    return text


def _effective_text(rule: Rule) -> str:
    start, end = rule.effective_text
    if start and end:
        return f"{chinese_date(start)}至{chinese_date(end)}"
    if start:
        return f"自{chinese_date(start)}起施行"
    if end:
        return f"至{chinese_date(end)}止"
    return ""


def render_rule(rule: Rule, scheme: Scheme, *, heading: str = "####") -> str:
    """One rule version as a Markdown section in plain Chinese."""
    token = _PREC.set(scheme.precision)
    try:
        return _render_rule(rule, scheme, heading)
    finally:
        _PREC.reset(token)


def _render_rule(rule: Rule, scheme: Scheme, heading: str) -> str:
    ctx = _Context(rule, scheme)
    kind = rule_kind(rule)
    group = scheme.groups.get(rule.group)
    marks = ""
    if rule.status == "trial":
        marks = "（试行）"
    elif rule.status == "retired":
        marks = "（已停止执行）"
    lines = [f"{heading} {rule.title}{marks}", "", f"规则编号：`{rule.id}`", ""]
    items: list[str] = []

    events = [scheme.event_types[t].title if t in scheme.event_types else t for t in rule.on]
    items.append(f"适用情形：{_or(events)}")
    if len(rule.groups) > 1:
        names = [scheme.groups[g].title if g in scheme.groups else g for g in rule.groups]
        items.append(f"适用群体：{'、'.join(names)}（各自账户分别计分）")
    if rule.when:
        cond = _cond(rule.when, ctx)
        if cond:
            items.append(f"条件：{cond}")
    pts = _points_text(rule, ctx)
    zero = isinstance(rule.points, FixedPoints) and rule.points.n == 0
    if pts and not (rule.repair and zero and not rule.escalate):
        items.append(f"计分：{pts}")
    lim = _limit_text(rule, kind)
    if lim:
        items.append(f"上限：{lim}")
    fam = scheme.families.get(rule.family) if rule.family else None
    if fam is not None:
        parts = [f"属“{fam.title or fam.id}”类，同类各项合并计算再犯次数"]
        if fam.exclusive == "highest":
            parts.append("一次行为符合本类多项的，只按分值最高的一项计分")
        if fam.limit is not None:
            parts.append(
                "本类各项合计" + _limit_text(dataclasses.replace(rule, limit=fam.limit), kind)
            )
        items.append("同类项目：" + "；".join(parts))
    if rule.wallet is True and kind == "penalty":
        items.append("可兑换积分：扣分同时扣减可兑换积分")
    elif rule.wallet is False and kind == "award":
        items.append("可兑换积分：加分只计入信用分，不计入可兑换积分")
    elif kind == "award":
        items.append("可兑换积分：加分同时计入可兑换积分")
    if rule.expires:
        items.append(f"有效期：{expires_text(rule.expires)}")
    if rule.grade:
        to = rule.grade.to
        dur = _duration(rule.grade.for_)
        only = "（只判级，不扣分）" if rule.points is None and not rule.escalate else ""
        items.append(
            f"直接判级：直接判定为{_tier_title(group, to)}，{dur}内信用等级最高为{to}级，"
            f"不论分数高低{only}"
        )
    for link in rule.also:
        who = (scheme.links or LINK_WORDS).get(link.link, link.link)
        lg = scheme.groups.get(link.group)
        gname = lg.title if lg else link.group
        lp = link.points
        amount = "同样计分" if lp == "same" else _pts(int(lp))
        if rule.points is None and not rule.escalate and lp == "same":
            amount = ""  # a grading only: nothing to score
        if link.grade and rule.grade:
            to = rule.grade.to if link.grade == "same" else link.grade
            amount += ("，并" if amount else "一并") + f"判定为{_tier_title(lg, to)}"
        items.append(f"联奖联罚：同时对其{who}（{gname}账户）{amount}")
    if rule.withhold:
        cond = _cond(rule.withhold.when, ctx)
        why = f"（{rule.withhold.note}）" if rule.withhold.note else ""
        items.append(f"暂不计分：{cond}时，本项只作记录、不计分{why}")
    if rule.repair:
        titles = scheme.rule_titles()
        targets = [f"“{titles.get(r, r)}”" for r in rule.repair.rules]
        how = "恢复一半" if rule.repair.restore == "half" else "予以撤销"
        within = _duration(rule.repair.within)
        # a rule that only grades took no points: what is undone is its grading
        what = "扣分"
        versions = [v for r in rule.repair.rules for v in scheme.rule_versions(r)]
        if versions and all(v.points is None and not v.escalate for v in versions):
            what, how = "直接判级", "予以撤销"
        items.append(f"信用修复：{within}内最近一次{_or(targets)}的{what}{how}")
    if rule.severity:
        items.append(f"情节：{SEVERITY_WORDS.get(rule.severity, rule.severity)}")
    eff = _effective_text(rule)
    if eff:
        items.append(f"施行日期：{eff}")
    adopted = _adopted_text(rule.adopted)
    if adopted:
        items.append(f"通过：{adopted}")
    if rule.status == "trial":
        items.append("试行条款：试行期间只测算、不计入积分余额，也不公示")
    if rule.note:
        items.append(f"说明：{rule.note}")
    lines += [f"- {i}" for i in items]
    return _no_html("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# the whole scheme


def _tier_range(t: Any) -> str:
    if t.min is not None and t.max is not None:
        return f"{_p(t.min)}–{_p(t.max)}分"
    if t.min is not None:
        return f"{_p(t.min)}分及以上"
    if t.max is not None:
        return f"{_p(t.max)}分及以下"
    return "所有分数"


def _list_reason(reason: Any, scheme: Scheme) -> str:
    if reason.text:
        return reason.text
    if reason.tiers:
        return "信用等级为" + _or([f"{t}级" for t in reason.tiers])
    if reason.min_score is not None:
        return f"信用分不低于{_p(reason.min_score)}分"
    if reason.max_score is not None:
        return f"信用分不高于{_p(reason.max_score)}分"
    within = f"{_duration(reason.within)}内" if reason.within else ""
    if reason.rules:
        titles = scheme.rule_titles()
        return f"{within}有" + _or([f"“{titles.get(r, r)}”" for r in reason.rules]) + "记录"
    if reason.severity:
        return f"{within}有{SEVERITY_WORDS.get(reason.severity, reason.severity)}失信行为"
    return ""


def render_scheme(scheme: Scheme) -> str:
    """The whole rule book as Markdown: tiers, lists, then each group's packs."""
    token = _PREC.set(scheme.precision)
    try:
        return _render_scheme(scheme)
    finally:
        _PREC.reset(token)


def _render_scheme(scheme: Scheme) -> str:
    out = [f"# {scheme.title}", ""]
    out += ["本页由规则文件自动生成，与实际计分使用的规则完全一致。", ""]
    for gid, g in scheme.groups.items():
        # a rule written for several groups (groups: [...]) is shown under each of them
        packs = [p for p in scheme.packs if p.group == gid or any(r.group == gid for r in p.rules)]
        kind = "个人" if g.kind == "person" else "单位"
        out += [f"## {g.title}", ""]
        out += [f"参评对象：{kind}。基础分{_p(g.base_score)}分。", ""]
        if g.tiers:
            out += ["| 信用等级 | 名称 | 分数区间 |", "|---|---|---|"]
            out += [f"| {t.id} | {t.title} | {_tier_range(t)} |" for t in g.tiers]
            out.append("")
        for pack in packs:
            out += [f"### {pack.title}（{pack.version}版）", ""]
            adopted = _adopted_text(pack.adopted)
            if adopted:
                out += [f"{adopted}。", ""]
            sections = [
                ("award", "加分项目"),
                ("penalty", "扣分项目"),
                ("other", "信用修复及其他"),
            ]
            for kind_id, title in sections:
                rules = [r for r in pack.rules if r.group == gid and rule_kind(r) == kind_id]
                if not rules:
                    continue
                out += [f"#### {title}", ""]
                for r in rules:
                    out.append(render_rule(r, scheme, heading="#####"))
    if scheme.lists:
        out += ["## 信用积分红灰榜", ""]
        for ld in scheme.lists:
            groups = [scheme.groups[g].title if g in scheme.groups else g for g in ld.groups]
            out += [f"### {ld.title}", ""]
            if groups:
                out += [f"适用：{_or(groups, '、')}。满足下列任一条件即上榜：", ""]
            out += [f"- {_list_reason(r, scheme)}" for r in ld.reasons]
            out.append("")
    return _no_html("\n".join(out).rstrip() + "\n")
