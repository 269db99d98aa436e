"""The Markdown pages of a month, the home page and the archive.

:class:`MonthSite` holds one month's :class:`~scoring.publish.data.MonthData`
with the masking function and writes its pages under ``months/<YYYY-MM>/``:
the month at a glance, rankings per group, per community (with in-grid
ranks), grid rankings, assessment results, the public lists, the rules in
plain Chinese and the catalog. The open-data page and downloads are in
:mod:`scoring.publish.opendata`, the look-up page in
:mod:`scoring.publish.lookup`. Pages only format figures computed in
:mod:`scoring.publish.data`; the in-community ranks use
:func:`scoring.rank.competition_ranks` like every other rank.

Why one module of ~1,000 lines: :class:`MonthSite` is one month's page set;
its page writers share the month's data, the masking function and the page
pieces (filters, pickers, cards), and each is short. Split it by page family
(rankings, lists, rules and catalog) when one of them grows.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from ..rank import competition_ranks
from . import charts
from .data import (
    GroupInfo,
    MonthData,
    PublicList,
    PublicListMember,
    RuleText,
    Selection,
    SubjectRank,
)
from .markup import (
    _by_unit,
    _chart,
    _html_table,
    _links,
    _mean,
    _movement,
    _number,
    _Output,
    _rank_cell,
    _raw,
    _slug,
    _stats_cards,
    _table,
    h,
    mask_code,
    md,
    month_label,
    period_label,
    tier_is_code,
)

TOP_N = 100  # rows on a group ranking page; the CSV has everyone


def pinyin_key(text: str) -> tuple[str, ...]:
    """Sort key in pinyin order (how Chinese readers look names up), not code-point order."""
    from pypinyin import Style, lazy_pinyin

    return tuple(lazy_pinyin(text, style=Style.TONE3, errors="default"))


def _list_filter(communities: list[str], groups: list[str] | None, what: str = "名称") -> str:
    """The filter over a public list or table (name, community, category): plain JS on
    the rows' data attributes; without script the whole list shows. ``groups=None``:
    no category select (the grid ranking)."""
    opts = "".join(f'<option value="{h(c)}">{h(c)}</option>' for c in communities)
    if groups is None:
        gsel, gval, glisten = "", "g=''", ""
    else:
        gopts = "".join(f'<option value="{h(g)}">{h(g)}</option>' for g in groups)
        gsel = f'<select aria-label="类别"><option value="">全部类别</option>{gopts}</select>'
        gval, glisten = "g=s[1].value", "s[1].addEventListener('change',run);"
    return _raw(
        '<form class="gc-filter" onsubmit="return false" hidden>'
        f'<input type="search" aria-label="按{what}查找" placeholder="输入{what}查找">'
        f'<select aria-label="社区"><option value="">全部社区</option>{opts}</select>'
        f"{gsel}"
        "</form>\n"
        "<script>(function(){var f=document.currentScript.previousElementSibling;"
        "f.hidden=false;var q=f.querySelector('input'),s=f.querySelectorAll('select');"
        f"function run(){{var t=q.value.replace(/\\s+/g,''),c=s[0].value,{gval},n=0;"
        "var rows=document.querySelectorAll('tr[data-name]');"
        "for(var i=0;i<rows.length;i++){var r=rows[i];"
        "var ok=(!t||(r.getAttribute('data-name')||'').indexOf(t)>=0)"
        "&&(!c||r.getAttribute('data-community')===c)&&(!g||r.getAttribute('data-group')===g);"
        "r.style.display=ok?'':'none';if(ok)n++;}"
        "var none=document.getElementById('gc-list-none');if(none)none.hidden=n>0;}"
        "q.addEventListener('input',run);s[0].addEventListener('change',run);"
        f"{glisten}}})();</script>"
    )


GRID_PAGE_ROWS = 300  # rows on one grid page (~80 KB of HTML); more go on further pages

_HEADING = re.compile(r"#{1,6}\s+(.*)")
_RULE_ID_LINE = re.compile(r"规则编号[：:]\s*`?([^`]*)`?\s*")


def _rule_body(rule: RuleText) -> tuple[str, bool]:
    """A rule's plain-Chinese text as Markdown, every piece of it escaped once.

    ``rule.text`` is what ``render.render_rule`` writes: a heading with the
    title, a ``规则编号：`id``` line, then ``- 项目：内容`` items (or plain
    lines). The page shows the title as its own heading and the id in the
    rule's footer, so those two lines are dropped here; the items become a
    Markdown list and other lines paragraphs, their text escaped with
    :func:`md` (the text comes from the YAML and may hold ``*``, ``<`` or
    ``[``). Returns the Markdown and whether it has an adoption (通过) item.
    """
    items: list[str] = []
    has_adopted = False
    out: list[str] = []
    for raw in rule.text.splitlines():
        # one word for spendable points everywhere (look-up, catalog, rules): 可用积分
        line = raw.strip().replace("可兑换积分", "可用积分")
        if not line:
            continue
        head = _HEADING.fullmatch(line)
        if head and head.group(1).strip().startswith(rule.title.strip()):
            rest = head.group(1).strip()[len(rule.title.strip()) :].strip()
            if rest:  # e.g. （已停止执行）
                out += [md(rest), ""]
            continue  # the title: the page's own heading shows it
        ident = _RULE_ID_LINE.fullmatch(line)
        if ident and ident.group(1).strip() == rule.id:
            continue  # the rule id: shown in the footer
        if line.startswith(("- ", "* ")):
            text = line[2:].strip()
            has_adopted = has_adopted or text.startswith("通过：")
            label, sep, rest = text.partition("：")
            if sep and 0 < len(label) <= 8:
                items.append(f"- **{md(label)}**：{md(rest)}")
            else:
                items.append(f"- {md(text)}")
            continue
        if items:
            out += ["\n".join(items), ""]
            items = []
        out += [md(head.group(1) if head else line), ""]
    if items:
        out += ["\n".join(items), ""]
    return "\n".join(out).strip(), has_adopted


class MonthSite:
    def __init__(self, month: str, data: MonthData, out: _Output, mask: Callable[[str, str], str]):
        self.month = month
        self.d = data
        self.out = out
        self.mask = mask
        self.label = month_label(month)
        self.base = f"months/{month}"
        self.data_base = f"data/{month}"
        self.grids = {g.id: g for g in data.grids}
        self.groups = {g.id: g for g in data.groups}
        self.group_order = [g.id for g in data.groups if g.id in data.rankings]
        self.group_order += sorted(k for k in data.rankings if k not in self.groups)
        self.rows: dict[str, list[SubjectRank]] = {}
        for gid in self.group_order:
            rows = [self._fill(r) for r in data.rankings[gid]]
            rows.sort(key=lambda r: (r.rank, -r.score, self._name(r), r.grid, r.subject))
            self.rows[gid] = rows
        self.community_order: list[tuple[str, int]] = []
        self.communities: dict[str, tuple[str, str, str]] = {}
        for g in data.grids:
            self.communities[g.community] = (g.community_name, g.street, g.street_name)

    # helpers ------------------------------------------------------------
    def _fill(self, r: SubjectRank) -> SubjectRank:
        g = self.grids.get(r.grid)
        if g and (not r.community or not r.street):
            r = SubjectRank(
                **{
                    **asdict(r),
                    "community": r.community or g.community,
                    "street": r.street or g.street,
                }
            )
        return r

    def _group(self, gid: str) -> GroupInfo:
        return self.groups.get(gid) or GroupInfo(id=gid, title=gid)

    def _name(self, r: SubjectRank | PublicListMember) -> str:
        return self.mask(r.name, r.kind)

    def grid_name(self, gid: str) -> str:
        g = self.grids.get(gid)
        return g.name if g else gid

    def community_name(self, cid: str) -> str:
        c = self.communities.get(cid)
        return c[0] if c else cid

    def tier_title(self, gid: str, tier: str) -> str:
        for t in self._group(gid).tiers:
            if t.id == tier:
                return t.title
        return ""

    def name_cell(self, r: SubjectRank, org: bool, *, grid: bool = True) -> str:
        """Name, then (smaller) masked credit code and grid: one column fits a phone.
        ``grid=False`` on a grid's own page, where every row is in that grid."""
        extra = [md(mask_code(r.code))] if org and r.code else []
        if grid:
            extra.append(md(self.grid_name(r.grid)))
        if not extra:
            return md(self._name(r))
        return f'{md(self._name(r))}<br><span class="gc-sub">{" · ".join(extra)}</span>'

    def tier_text(self, gid: str, tier: str) -> str:
        """A tier as residents read it: 优秀 for a word id, AAA 诚信模范 for a grade code."""
        title = self.tier_title(gid, tier)
        if not title:
            return tier
        return title if not tier_is_code(tier) else f"{tier} {title}"

    def tier_cell(self, gid: str, r: SubjectRank) -> str:
        title = self.tier_title(gid, r.tier)
        if title and not tier_is_code(r.tier):
            text = md(title)
        else:
            text = md(r.tier) + (f'<br><span class="gc-sub">{md(title)}</span>' if title else "")
        if r.note:
            text += f'<span class="gc-flag">{md(r.note)}</span>'
        return text

    def tier_counts(self, gid: str) -> list[tuple[str, int]]:
        counts = Counter(r.tier for r in self.rows[gid])
        order = [t.id for t in self._group(gid).tiers]
        order += sorted(t for t in counts if t not in order)
        return [(t, counts.get(t, 0)) for t in order]

    def trend(self, gid: str) -> tuple[list[str], list[float | None]]:
        points = {p.month: p.mean_score for p in self.d.trends if p.group == gid}
        if self.rows[gid]:
            points.setdefault(self.month, _mean([r.score for r in self.rows[gid]]))
        months = sorted(m for m in points if m <= self.month)[-12:]
        return months, [points[m] for m in months]

    def page(self, rel: str, body: str, *, search: bool = True) -> None:
        front = "" if search else "---\nsearch:\n  exclude: true\n---\n\n"
        self.out.text(f"{self.base}/{rel}", front + body)

    # pages --------------------------------------------------------------
    def group_page(self, gid: str) -> None:
        g = self._group(gid)
        rows = self.rows[gid]
        org = g.kind == "organization"
        scores = [r.score for r in rows]
        rank_count = Counter(r.rank for r in rows)
        tiers = self.tier_counts(gid)
        months, means = self.trend(gid)
        parts = [
            f"# {md(g.title)}信用积分排名",
            "",
            f'<p class="gc-muted">{self.label}公示 · 共 {len(rows)} 个{"单位" if org else "人"}参与排名</p>',
            "",
            _stats_cards(
                [
                    ("参与排名", len(rows)),
                    ("平均分", f"{_mean(scores):.1f}"),
                    ("最高分", max(scores) if scores else "—"),
                    ("最低分", min(scores) if scores else "—"),
                ]
            ),
            "",
            (
                "名次为并列排名：同分同名次，其后名次顺延（如 1、2、2、4）。"
                "“变化”为与上月名次相比：↑ 上升，↓ 下降，— 持平，新 表示上月未参与排名。"
            ),
            "",
            f"## 前 {TOP_N} 名" if len(rows) > TOP_N else "## 排名",
            "",
        ]
        if len(rows) > TOP_N:
            parts += [
                (
                    f"下表列出前 {TOP_N} 名（含并列）。完整名单见"
                    f"[开放数据：rankings-{_slug(gid)}.csv](../../../{self.data_base}/rankings-{_slug(gid)}.csv)，"
                    "各社区全部名单见本月各社区排名页。"
                ),
                "",
            ]
        header = ["名次", "变化", "名称" if org else "姓名", "积分", "等级", "本月"]
        table_rows = []
        for r in rows:
            if r.rank > TOP_N:
                break
            table_rows.append(
                [
                    _rank_cell(r.rank, rank_count[r.rank] > 1),
                    _movement(r.rank, r.previous_rank),
                    self.name_cell(r, org),
                    f"<strong>{r.score}</strong>",
                    self.tier_cell(gid, r),
                    f"{r.earned:+d}" if r.earned else "0",
                ]
            )
        parts += [_html_table(header, table_rows) if table_rows else "本月暂无排名数据。", ""]
        parts += [
            "## 等级分布",
            "",
            _chart(
                charts.bar_chart(
                    f"{g.title}等级分布（{self.label}）",
                    [self.tier_text(gid, t) for t, _ in tiers],
                    [c for _, c in tiers],
                    unit="",
                )
            ),
            "",
            "## 积分分布",
            "",
            _chart(charts.histogram(f"{g.title}信用积分分布（{self.label}）", scores)),
            "",
            "## 平均分走势",
            "",
            _chart(
                charts.line_chart(
                    f"{g.title}平均分走势", [m[2:] for m in months], [(g.title, means)]
                )
            ),
            "",
        ]
        self.page(f"rankings/{_slug(gid)}.md", "\n".join(parts))

    def community_page(self, cid: str, members: dict[str, list[SubjectRank]]) -> None:
        """A community: its grids to pick from (a few taps to one's own grid), then one
        page per grid with the in-community and in-grid ranks of everyone there.

        One page of a whole community ran to half a megabyte and 150 phone screens;
        a grid page holds a few hundred rows (more are split into pages of
        :data:`GRID_PAGE_ROWS`)."""
        cname, _, street_name = self.communities.get(cid, (cid, "", ""))
        per_grid: dict[str, dict[str, list[tuple[SubjectRank, str, str]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        counts: list[tuple[str, int, float]] = []
        for gid in self.group_order:
            rows = members.get(gid)
            if not rows:
                continue
            # rows come highest score first (communities_pages sorts them)
            comm_rank = competition_ranks([r.score for r in rows])
            tie = Counter(comm_rank)
            by_grid: dict[str, list[int]] = defaultdict(list)
            for i, r in enumerate(rows):
                by_grid[r.grid].append(i)
            for grid, idxs in by_grid.items():
                ranks = competition_ranks([rows[i].score for i in idxs])
                c = Counter(ranks)
                for i, rk in zip(idxs, ranks):
                    per_grid[grid][gid].append(
                        (
                            rows[i],
                            _rank_cell(comm_rank[i], tie[comm_rank[i]] > 1),
                            _rank_cell(rk, c[rk] > 1),
                        )
                    )
            counts.append((gid, len(rows), _mean([r.score for r in rows])))
        grids = sorted(per_grid)  # by id: 第一网格, 第二网格 … as the county numbers them
        slug = _slug(cid)
        links = []
        for grid in grids:
            n = sum(len(v) for v in per_grid[grid].values())
            links.append((f"{md(self.grid_name(grid))}（{n}）", f"{slug}/{_slug(grid)}.md"))
        parts = [
            f"# {md(cname)}排名",
            "",
            f'<p class="gc-muted">{self.label}公示 · {md(street_name)}</p>',
            "",
            "请选择您所在的网格，查看网格内每个人的信用积分和名次（括号内为参与排名人数）：",
            "",
            _links(links) if links else "本社区本月无人参与排名。",
            "",
            "## 本社区各群体",
            "",
            _table(
                ["群体", "人数", "平均分"],
                [[md(self._group(g).title), n, f"{mean:.1f}"] for g, n, mean in counts],
            ),
            "",
            "[返回社区列表](index.md)",
            "",
        ]
        self.page(f"communities/{slug}.md", "\n".join(parts))
        for grid in grids:
            self.grid_page(cid, grid, per_grid[grid])

    def grid_page(
        self, cid: str, grid: str, members: dict[str, list[tuple[SubjectRank, str, str]]]
    ) -> None:
        cname = self.community_name(cid)
        gname = self.grid_name(grid)
        blocks: list[list[str]] = []
        rows_on_page = 0
        for gid in self.group_order:
            rows = members.get(gid)
            if not rows:
                continue
            g = self._group(gid)
            org = g.kind == "organization"
            header = ["社区名次", "名称" if org else "姓名", "网格名次", "积分", "等级"]
            for start in range(0, len(rows), GRID_PAGE_ROWS):
                chunk = rows[start : start + GRID_PAGE_ROWS]
                if blocks and rows_on_page + len(chunk) > GRID_PAGE_ROWS:
                    blocks.append([])
                    rows_on_page = 0
                if not blocks:
                    blocks.append([])
                more = (
                    f"（第 {start + 1}–{start + len(chunk)} 名）" if len(rows) > len(chunk) else ""
                )
                blocks[-1] += [
                    f"## {md(g.title)}{more}",
                    "",
                    f"共 {len(rows)} 个。",
                    "",
                    _html_table(
                        header,
                        [
                            [
                                comm,
                                self.name_cell(r, org, grid=False),
                                in_grid,
                                str(r.score),
                                self.tier_cell(gid, r),
                            ]
                            for r, comm, in_grid in chunk
                        ],
                    ),
                    "",
                ]
                rows_on_page += len(chunk)
        slug, gslug = _slug(cid), _slug(grid)
        own = ""  # this grid's own place among the county's grids
        ranked = [g for g in self.d.grid_rankings if g.grid == grid]
        if ranked:
            g0 = ranked[0]
            own = (
                f"本网格居民平均信用积分 {g0.mean_score:.1f}，"
                f"在全县 {len(self.d.grid_rankings)} 个网格中排"
                + ("并列" if sum(g.rank == g0.rank for g in self.d.grid_rankings) > 1 else "")
                + f"第 {g0.rank} 名"
                "（[网格排名](../../grids.md)）。"
            )
        names = [f"{gslug}.md"] + [f"{gslug}-{i}.md" for i in range(2, len(blocks) + 1)]
        for i, body in enumerate(blocks):
            pager = ""
            if len(blocks) > 1:
                pager = "分页：" + " ".join(
                    f"**{k + 1}**" if k == i else f"[{k + 1}]({names[k]})"
                    for k in range(len(blocks))
                )
            parts = [
                f"# {md(gname)}排名" + (f"（第 {i + 1} 页）" if i else ""),
                "",
                f'<p class="gc-muted">{self.label}公示 · {md(cname)}</p>',
                "",
                f"[返回{md(cname)}](../{slug}.md)",
                "",
            ]
            if own:
                parts += [own, ""]
            parts += [
                (
                    "“社区名次”“网格名次”为本社区、本网格内的并列排名（同分同名次）；"
                    "全县名次见各群体排名页。"
                ),
                "",
            ]
            parts += [pager, ""] if pager else []
            parts += body
            parts += [pager, ""] if pager else []
            self.page(f"communities/{slug}/{names[i]}", "\n".join(parts))

    def communities_pages(self) -> list[tuple[str, int]]:
        per: dict[str, dict[str, list[SubjectRank]]] = defaultdict(lambda: defaultdict(list))
        for gid in self.group_order:
            for r in self.rows[gid]:
                per[r.community or "-"][gid].append(r)
        for members in per.values():
            for rows in members.values():
                rows.sort(key=lambda r: (-r.score, self._name(r), r.grid, r.subject))
        order = sorted(per, key=lambda c: (self.communities.get(c, ("", "", ""))[1], c))
        for cid in order:
            self.community_page(cid, per[cid])
        self.community_order = [(cid, sum(len(v) for v in per[cid].values())) for cid in order]
        self.communities_index()
        return self.community_order

    def communities_index(self) -> None:
        """All communities by street: the way in to one's community and grid."""
        by_street: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for cid, n in self.community_order:
            by_street[self.communities.get(cid, ("", "", ""))[2]].append((cid, n))
        parts = [
            "# 社区排名",
            "",
            f'<p class="gc-muted">{self.label}公示 · 先选社区，再选网格</p>',
            "",
        ]
        for street, comms in by_street.items():
            if street:
                parts += [f"## {md(street)}", ""]
            parts += [
                _links(
                    [(f"{md(self.community_name(c))}（{n}）", f"{_slug(c)}.md") for c, n in comms]
                ),
                "",
            ]
        if not self.community_order:
            parts.append("本月无社区排名。")
        self.page("communities/index.md", "\n".join(parts))

    def grids_page(self) -> None:
        rows = sorted(self.d.grid_rankings, key=lambda r: (r.rank, -r.mean_score, r.grid))
        tie = Counter(r.rank for r in rows)
        parts = [
            "# 网格排名",
            "",
            f'<p class="gc-muted">{self.label}公示 · 按网格内居民平均信用积分排名</p>',
            "",
            "平均分为网格内全部居民信用积分的算术平均，保留一位小数；名次为并列排名。",
            "",
        ]
        if rows:
            # a 100-row table on a phone: find one's grid by name or community (as the grey list)
            names = [r.name or self.grid_name(r.grid) for r in rows]
            comms = [self.community_name(r.community) for r in rows]
            table = _html_table(
                ["名次", "变化", "网格", "社区", "平均分", "居民人数"],
                [
                    [
                        _rank_cell(r.rank, tie[r.rank] > 1),
                        _movement(r.rank, r.previous_rank),
                        md(name),
                        md(comm),
                        f"{r.mean_score:.1f}",
                        str(r.residents),
                    ]
                    for r, name, comm in zip(rows, names, comms)
                ],
            )
            for name, comm in zip(names, comms):
                tr = f'<tr data-name="{h(name)}" data-community="{h(comm)}">'
                table = table.replace("<tr><td>", tr + "<td>", 1)
            parts += [
                _list_filter(sorted(set(comms), key=pinyin_key), None, "网格名称"),
                "",
                table,
                '<p class="gc-muted" id="gc-list-none" hidden>没有符合条件的网格。</p>',
                "",
            ]
        else:
            parts += ["本月暂无网格排名。", ""]
        if rows:
            parts += [
                "## 各网格平均分",
                "",
                _chart(
                    charts.bar_chart(
                        "各网格居民平均信用积分",
                        [r.name for r in rows],
                        [r.mean_score for r in rows],
                        decimals=1,
                    )
                ),
                "",
            ]
        self.page("grids.md", "\n".join(parts))

    def assessments_page(self) -> None:
        parts = ["# 考评结果", "", f'<p class="gc-muted">{self.label}公示</p>', ""]
        if not self.d.assessments:
            parts.append("本月没有考评结果。")
        for a in sorted(self.d.assessments, key=lambda a: (a.period, a.id)):
            parts += [
                f"## {md(a.title)}",
                "",
                f'<span class="gc-badge">{md(a.badge)}</span> 考评期：{md(period_label(a.period))}',
                "",
            ]
            if a.metric:
                parts += [f"考评指标：{md(a.metric)}", ""]
            if a.selected:
                sel = _by_unit(a.selected)
                by_unit = any(s.unit for s in sel)
                if by_unit:
                    parts += ["名次为在所列范围内（如本社区内）的排名。", ""]
                rows = []
                for s in sel:
                    who = md(self._selection_name(s))
                    if s.grid:
                        who += f'<br><span class="gc-sub">{md(self.grid_name(s.grid))}</span>'
                    rows.append(
                        ([md(s.unit or "—")] if by_unit else [])
                        + [str(s.rank), who, _number(s.value)]
                    )
                header = (["排名范围"] if by_unit else []) + ["名次", "获评对象", "指标值"]
                parts += [_html_table(header, rows), ""]
            else:
                parts += ["本期无获评对象。", ""]
        self.page("assessments.md", "\n".join(parts))

    def _selection_name(self, s: Selection) -> str:
        return self.mask(s.name, s.kind) if s.kind in ("person", "organization") else s.name

    def list_page(self, lst: PublicList) -> None:
        """A public list as merchants look for themselves on it: filterable by name,
        community and category, in pinyin order, each reason with its listing window,
        the rule behind it and how to object (异议) or repair (信用修复)."""
        parts = [
            f"# {md(lst.title)}",
            "",
            f'<p class="gc-muted">{self.label}公示 · 共 {len(lst.members)} 个</p>',
            "",
        ]
        if lst.description:
            parts += [md(lst.description), ""]
        parts += [
            (
                "每个上榜对象列出上榜原因及公示期限。标注“异议审核中”的记录，当事人已提出异议，"
                "正在复核，结果以复核结论为准。"
            ),
            "",
        ]
        rule_anchors = {r.id: f"rule-{_slug(r.id)}" for p in self.d.rules for r in p.rules}
        # a deduction's repair: the scheme's repair rule in force this month that names it
        repair_of: dict[str, str] = {}
        for p in self.d.rules:
            for rt in p.rules:
                for target in rt.repairs:
                    repair_of.setdefault(target, rt.id)
        members = sorted(
            lst.members, key=lambda m: (pinyin_key(self._name(m)), self._name(m), m.subject)
        )
        deductions = any(r.rule or r.until for m in lst.members for r in m.reasons)
        if not members:
            parts.append("本月无上榜对象。")
            if lst.criteria:
                who = "、".join(md(self._group(g).title) for g in lst.groups)
                parts += [
                    "",
                    f"上榜条件（{who}，满足任一条件即上榜）："
                    if who
                    else "上榜条件（满足任一条件即上榜）：",
                    "",
                    "\n".join(f"- {md(c)}" for c in lst.criteria),
                ]
        else:
            rows = []
            communities: set[str] = set()
            groups: list[str] = []
            for m in members:
                reasons = []
                for r in m.reasons:
                    text = md(r.text)
                    if r.since and r.until:
                        window = f"{md(r.since)} 至 {md(r.until)}"
                    elif r.since:
                        window = f"自 {md(r.since)} 起"
                    elif r.until:
                        window = f"至 {md(r.until)}"
                    else:  # a tier: listed for the month, judged again next month
                        window = f"{self.label}（每月按等级重新评定）"
                    flag = '<span class="gc-flag">异议审核中</span>' if r.objection else ""
                    links = []
                    if r.rule and r.rule in rule_anchors:
                        links.append(f'<a href="../rules.html#{rule_anchors[r.rule]}">查看规则</a>')
                    links.append('<a href="#objection">提出异议</a>')
                    fix = repair_of.get(r.rule) if r.rule else None
                    if fix and fix in rule_anchors:
                        links.append(f'<a href="../rules.html#{rule_anchors[fix]}">信用修复</a>')
                    elif r.rule or r.until:
                        links.append("本事项不适用信用修复")
                    reasons.append(
                        f"{text}{flag}"
                        f'<br><span class="gc-sub">公示期限：{window}</span>'
                        f'<br><span class="gc-list-links">{" · ".join(links)}</span>'
                    )
                grid = self.grids.get(m.grid)
                cname = self.community_name(grid.community) if grid else ""
                if cname:
                    communities.add(cname)
                gtitle = self._group(m.group).title
                if gtitle not in groups:
                    groups.append(gtitle)
                where = " · ".join(
                    x for x in (cname, self.grid_name(m.grid) if m.grid else "") if x
                )
                name = md(self._name(m))
                sub = [md(mask_code(m.code))] if m.code else []
                sub += [md(where)] if where else []
                if sub:
                    name += f'<br><span class="gc-sub">{" · ".join(sub)}</span>'
                rows.append(
                    (
                        f'<tr data-name="{h(self._name(m))}" data-community="{h(cname)}" '
                        f'data-group="{h(gtitle)}">',
                        [name, md(gtitle), "<br>".join(reasons) or "—"],
                    )
                )
            parts += [_list_filter(sorted(communities, key=pinyin_key), groups), ""]
            parts.append(_html_table(["名称", "类别", "上榜原因"], [r[1] for r in rows]))
            # the filter reads the row's data (name, community, category)
            table = parts.pop()
            for tr, _cells in rows:
                table = table.replace("<tr><td>", tr + "<td>", 1)
            parts.append(table)
            parts += ['<p class="gc-muted" id="gc-list-none" hidden>没有符合条件的对象。</p>', ""]
        parts += [
            "## 如何提出异议 {#objection}",
            "",
            (
                "对上榜信息有异议的，请在公示期内向所在社区或网格员提出异议申请，"
                "写明异议事项并附相关材料。复核期间该条记录带有审核中的标注，"
                "复核结论作出后，本榜按结论更正。具体办法以本县信用积分管理规定为准。"
            ),
            "",
        ]
        if deductions:
            parts += [
                "## 如何申请信用修复 {#repair}",
                "",
                (
                    "因失信行为上榜的，公示期满后自动移出。已整改到位的，可向所在社区申请信用修复，"
                    "经核实后按规定处理。上榜原因所依据的扣分规则，可点击“查看规则”查阅。"
                    "具体办法以本县信用积分管理规定为准。"
                ),
                "",
            ]
        self.page(f"lists/{_slug(lst.id)}.md", "\n".join(parts) + "\n")

    def rules_page(self) -> None:
        """The rules in force, residents' first (the scheme's group order), with a group
        picker on top; no internal rule ids (residents read titles, not ``res-x``)."""
        parts = [
            "# 积分规则",
            "",
            f'<p class="gc-muted">{self.label}执行的规则（试行规则只测算、不计入积分，不在此列出）</p>',
            "",
        ]
        anchors: set[str] = set()
        if not self.d.rules:
            parts.append("暂无规则。")
        order = {g: i for i, g in enumerate(self.group_order)}
        order.update(
            {g.id: len(order) + i for i, g in enumerate(self.d.groups) if g.id not in order}
        )
        packs = sorted(
            enumerate(self.d.rules), key=lambda ip: (order.get(ip[1].group, len(order)), ip[0])
        )
        heads: list[tuple[str, str]] = []
        for _, pack in packs:
            anchor = f"group-{_slug(pack.group)}"
            n = 1
            while anchor in anchors:
                n += 1
                anchor = f"group-{_slug(pack.group)}-{n}"
            anchors.add(anchor)
            heads.append((anchor, pack.title))
        if len(heads) > 1:
            parts += [
                "请先选择您所属的群体：",
                "",
                _links([(md(title), f"#{a}") for a, title in heads]),
                "",
            ]
        for (_, pack), (group_anchor, _) in zip(packs, heads):
            parts += [f"## {md(pack.title)} {{#{group_anchor}}}", ""]
            meta = [f"适用群体：{md(self._group(pack.group).title)}"]
            if pack.version:
                meta.append(f"版本：{md(pack.version)}")
            if pack.adopted:
                meta.append(f"通过：{md(pack.adopted)}")
            parts += ["　".join(meta), ""]
            for rule in pack.rules:
                anchor = f"rule-{_slug(rule.id)}"
                n = 1
                while anchor in anchors:  # two versions of a rule in force this month
                    n += 1
                    anchor = f"rule-{_slug(rule.id)}-{n}"
                anchors.add(anchor)
                parts += [f"### {md(rule.title)} {{#{anchor}}}", ""]
                body, has_adopted = _rule_body(rule)
                parts += [body, ""] if body else []
                if rule.adopted and not has_adopted:
                    parts += [f'<span class="gc-muted">通过：{md(rule.adopted)}</span>', ""]
        self.page("rules.md", "\n".join(parts))

    def catalog_page(self) -> None:
        parts = [
            "# 积分兑换目录",
            "",
            f'<p class="gc-muted">{self.label}公示 · 兑换使用“可用积分”，不影响信用积分和等级</p>',
            "",
        ]
        if not self.d.catalog:
            parts.append("暂无可兑换物品。")
        else:
            header = ["物品", "所需积分", "最低等级", "适用群体", "库存", "兑换时间", "合作商户"]
            rows = [
                [
                    md(c.title),
                    str(c.cost),
                    md(c.min_tier or "不限"),
                    md("、".join(c.groups) or "全部个人"),
                    "不限" if c.stock is None else str(c.stock),
                    md(c.available or "长期"),
                    md(c.partner or "—"),
                ]
                for c in sorted(self.d.catalog, key=lambda c: (c.cost, c.id))
            ]
            # each cell names its column (data-label): on a phone a row reads as a card
            # (gridcredit.css), all seven columns kept, no sideways scrolling
            table = ["<table>", "<thead>", "<tr>" + "".join(f"<th>{c}</th>" for c in header)]
            table += ["</tr>", "</thead>", "<tbody>"]
            table += [
                "<tr>"
                + "".join(f'<td data-label="{h(k)}">{v}</td>' for k, v in zip(header, row))
                + "</tr>"
                for row in rows
            ]
            table += ["</tbody>", "</table>"]
            parts.append(_raw('<div class="gc-catalog">\n' + "\n".join(table) + "\n</div>"))
        parts += [
            "",
            "## 如何兑换 {#redeem}",
            "",
            (
                "携带本人证件到所在社区积分超市或合作商户，由网格员登记兑换。"
                "兑换扣减可用积分，信用积分和等级不变；本人的可用积分可在"
                "[个人积分查询](../../lookup/index.md)中查看。"
                "有“最低等级”“适用群体”要求的物品，须符合要求方可兑换。"
            ),
            "",
        ]
        self.page("catalog.md", "\n".join(parts))

    # open data ------------------------------------------------------------

    def index_page(
        self, communities: list[tuple[str, int]], extra: Sequence[tuple[str, str]] = ()
    ) -> None:
        """The month at a glance; ``extra`` = (title, path) of plugin pages (其他)."""
        d = self.d
        parts = [f"# {self.label}信用积分公示", "", f'<p class="gc-muted">{md(d.title)}</p>', ""]
        total = sum(len(self.rows[g]) for g in self.group_order)
        listed = {lst.title: len(lst.members) for lst in d.lists}
        parts += [
            _stats_cards(
                [("参与排名", total), ("网格", len(d.grid_rankings) or len(d.grids))]
                + [(md(k), v) for k, v in listed.items()]
            ),
            "",
        ]
        if d.late_events:
            parts += [
                (
                    f'!!! note "迟到事件"\n    本月有 {d.late_events} 条属于已公示月份的事件迟到上报，'
                    "按规定计入本月，已公示月份的数据不作更改。"
                ),
                "",
            ]
        links = [
            (f"{md(self._group(g).title)}排名", f"rankings/{_slug(g)}.md") for g in self.group_order
        ]
        links += [("网格排名", "grids.md"), ("考评结果", "assessments.md")]
        if communities:
            links.append(("社区排名", "communities/index.md"))
        links += [(md(lst.title), f"lists/{_slug(lst.id)}.md") for lst in d.lists]
        links += [("积分规则", "rules.md"), ("兑换目录", "catalog.md"), ("开放数据", "data.md")]
        parts += ["## 本月公示内容", "", _links(links), ""]
        if extra:
            parts += ["## 其他", "", _links(list(extra)), ""]
        parts += [
            "## 各群体概况",
            "",
            _table(
                ["群体", "人数", "平均分", "最高分"],
                [
                    [
                        f"[{md(self._group(g).title)}](rankings/{_slug(g)}.md)",
                        len(self.rows[g]),
                        f"{_mean([r.score for r in self.rows[g]]):.1f}",
                        max((r.score for r in self.rows[g]), default="—"),
                    ]
                    for g in self.group_order
                ],
            ),
            "",
        ]
        if self.group_order:
            first = self.group_order[0]
            g = self._group(first)
            tiers = self.tier_counts(first)
            months, means = self.trend(first)
            parts += [
                f"## {md(g.title)}等级分布",
                "",
                _chart(
                    charts.bar_chart(
                        f"{g.title}等级分布（{self.label}）",
                        [self.tier_text(first, t) for t, _ in tiers],
                        [c for _, c in tiers],
                    )
                ),
                "",
                f"## {md(g.title)}平均分走势",
                "",
                _chart(
                    charts.line_chart(
                        f"{g.title}平均分走势", [m[2:] for m in months], [(g.title, means)]
                    )
                ),
                "",
            ]
        if communities:
            parts += [
                "## 各社区排名",
                "",
                _table(
                    ["社区", "街道", "参与排名"],
                    [
                        [
                            f"[{md(self.community_name(c))}](communities/{_slug(c)}.md)",
                            md(self.communities.get(c, ("", "", c))[2]),
                            n,
                        ]
                        for c, n in communities
                    ],
                ),
                "",
            ]
        self.page("index.md", "\n".join(parts))


def archive_page(site_dir: Path, months: list[tuple[str, str]], title: str) -> str:
    rows = []
    for m, digest in months:
        page = site_dir / "months" / m / "index.md"
        link = f"[{month_label(m)}]({m}/index.md)" if page.exists() else month_label(m)
        data = f"[下载]({m}/data.md)" if (site_dir / "months" / m / "data.md").exists() else "—"
        rows.append([link, data, f'<span class="gc-hash">{md(digest)}</span>'])
    return "\n".join(
        [
            "# 往期公示",
            "",
            f'<p class="gc-muted">{md(title)}</p>',
            "",
            "每月公示后即结账，已公示月份的数据不再更改。",
            "",
            _table(["月份", "开放数据", "内容校验值"], rows),
            "",
            "## 如何核对",
            "",
            (
                "“内容校验值”与该月开放数据中 manifest.json 的 content_hash 相同。"
                "manifest.json 逐个列出该月每个开放数据文件（CSV、JSON）和生成公示页面所用源文件的 SHA-256 校验值，"
                "内容校验值由这份清单算出，清单中任何一个文件改变，内容校验值都会改变。"
            ),
            "",
            (
                "核对下载的文件：算出文件的 SHA-256（Windows 命令行：certutil -hashfile 文件名 SHA256；"
                "苹果电脑或 Linux：shasum -a 256 文件名），与 manifest.json 中该文件的值比较，"
                "再将 manifest.json 的 content_hash 与本页该月的内容校验值比较；两者都一致，"
                "说明下载的数据与公示时相同。"
            ),
            "",
        ]
    )


def home_page(site: MonthSite) -> str:
    d = site.d
    m = site.base
    links = [("本月公示", f"{m}/index.md"), ("个人查询", "lookup/index.md")]
    links += [(md(lst.title), f"{m}/lists/{_slug(lst.id)}.md") for lst in d.lists]
    links += [
        ("网格排名", f"{m}/grids.md"),
        ("积分规则", f"{m}/rules.md"),
        ("往期公示", "months/index.md"),
    ]
    parts = [
        f"# {md(d.title)}",
        "",
        (
            f"最新公示：**{site.label}**。积分每月公示一次（一月一公示），公示内容包括各群体排名、"
            "网格排名、考评结果、红灰榜、积分规则和兑换目录。"
        ),
        "",
        _links(links),
        "",
        "## 本月概况",
        "",
        _table(
            ["群体", "人数", "平均分"],
            [
                [
                    f"[{md(site._group(g).title)}]({m}/rankings/{_slug(g)}.md)",
                    len(site.rows[g]),
                    f"{_mean([r.score for r in site.rows[g]]):.1f}",
                ]
                for g in site.group_order
            ],
        ),
        "",
    ]
    if d.grid_rankings:
        top = sorted(d.grid_rankings, key=lambda r: (r.rank, r.grid))[:3]
        parts += [
            "## 网格排名前三",
            "",
            _table(
                ["名次", "网格", "平均分"],
                [[str(r.rank), md(r.name), f"{r.mean_score:.1f}"] for r in top],
            ),
            "",
        ]
    parts += [
        (
            "查询本人积分请使用[个人查询](lookup/index.md)，输入网格员发放的查询码。"
            "了解积分规则如何制定和修改，见[政策人员指南](guide/index.md)；"
            "个人信息如何保护，见[关于与隐私](about.md)。"
        ),
        "",
    ]
    return "\n".join(parts)
