"""The month's open data: CSV and JSON downloads, the data page and the content hash.

Files go to ``data/<YYYY-MM>/``; ``manifest.json`` lists the SHA-256 of
every file of the month (downloads and page sources) and the content hash
made from that list, which the archive page shows. CSV cells pass
:func:`~scoring.publish.markup.csv_cell` so no spreadsheet runs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from .markup import _by_unit, _mean, _slug, _table, mask_code, md, period_label

if TYPE_CHECKING:
    from .pages import MonthSite


def open_data(site: MonthSite) -> list[tuple[str, str]]:
    """Write the month's downloads; returns (file name, title) for the data page."""
    files: list[tuple[str, str]] = []
    for gid in site.group_order:
        g = site._group(gid)
        org = g.kind == "organization"
        name = f"rankings-{_slug(gid)}.csv"
        # the credit-code column only where there are codes (organisations): no empty columns
        code = ["统一社会信用代码（已脱敏）"] if org else []
        site.out.csv(
            f"{site.data_base}/{name}",
            [
                "名次",
                "上月名次",
                "名称" if org else "姓名（已脱敏）",
                *code,
                "网格编号",
                "网格",
                "社区",
                "街道",
                "信用积分",
                "等级",
                "本月获得积分",
            ],
            (
                [
                    r.rank,
                    r.previous_rank,
                    site._name(r),
                    *([mask_code(r.code)] if org else []),
                    r.grid,
                    site.grid_name(r.grid),
                    site.community_name(r.community),
                    site.communities.get(r.community, ("", "", ""))[2],
                    r.score,
                    site.tier_text(gid, r.tier),
                    r.earned,
                ]
                for r in site.rows[gid]
            ),
        )
        files.append((name, f"{md(g.title)}排名（全部）"))
    site.out.csv(
        f"{site.data_base}/grids.csv",
        ["名次", "上月名次", "网格编号", "网格", "社区", "居民平均信用积分", "居民人数"],
        (
            [
                r.rank,
                r.previous_rank,
                r.grid,
                r.name,
                site.community_name(r.community),
                f"{r.mean_score:.1f}",
                r.residents,
            ]
            for r in sorted(site.d.grid_rankings, key=lambda r: (r.rank, r.grid))
        ),
    )
    files.append(("grids.csv", "网格排名"))
    summary = {
        "scheme": site.d.title,
        "month": site.month,
        "late_events": site.d.late_events,
        "groups": [
            {
                "id": gid,
                "title": site._group(gid).title,
                "kind": site._group(gid).kind,
                "subjects": len(site.rows[gid]),
                "mean_score": round(_mean([r.score for r in site.rows[gid]]), 1),
                "tiers": [
                    {"tier": site.tier_text(gid, t), "count": n} for t, n in site.tier_counts(gid)
                ],
            }
            for gid in site.group_order
        ],
        # page order of the navigation (site_nav) and the month's index
        "lists": [
            {"id": lst.id, "title": lst.title, "members": len(lst.members)} for lst in site.d.lists
        ],
        "communities": [
            {"id": c, "title": site.community_name(c), "subjects": n}
            for c, n in site.community_order
        ],
    }
    site.out.json(f"{site.data_base}/summary.json", summary)
    files.append(("summary.json", "本月概况（人数、平均分、等级分布）"))
    site.out.json(
        f"{site.data_base}/lists.json",
        [
            {
                "id": lst.id,
                "title": lst.title,
                "members": [
                    {
                        "name": site._name(m),
                        "code": mask_code(m.code),
                        "group": site._group(m.group).title,
                        "reasons": [asdict(r) for r in m.reasons],
                    }
                    for m in sorted(lst.members, key=lambda m: (m.group, site._name(m), m.subject))
                ],
            }
            for lst in site.d.lists
        ],
    )
    files.append(("lists.json", "红灰榜及上榜原因"))
    site.out.json(
        f"{site.data_base}/assessments.json",
        [
            {
                "id": a.id,
                "title": a.title,
                "badge": a.badge,
                "period": a.period,
                "period_title": period_label(a.period),
                "selected": [
                    {
                        "name": site._selection_name(s),
                        "scope": s.scope if s.kind not in ("person", "organization") else "",
                        "grid": site.grid_name(s.grid) if s.grid else "",
                        "rank_within": s.unit,
                        "value": round(s.value, 3),
                        "rank": s.rank,
                    }
                    for s in _by_unit(a.selected)
                ],
            }
            for a in sorted(site.d.assessments, key=lambda a: (a.period, a.id))
        ],
    )
    files.append(("assessments.json", "考评结果"))
    site.out.json(f"{site.data_base}/rules.json", [asdict(p) for p in site.d.rules])
    files.append(("rules.json", "积分规则"))
    site.out.json(f"{site.data_base}/catalog.json", [asdict(c) for c in site.d.catalog])
    files.append(("catalog.json", "兑换目录"))
    return files


def data_page(site: MonthSite, files: list[tuple[str, str]]) -> None:
    """The open-data page: every download with what it holds, and the manifest."""
    parts = [
        "# 开放数据",
        "",
        f'<p class="gc-muted">{site.label} · CSV 为 UTF-8 编码，可用 WPS、Excel 直接打开</p>',
        "",
        (
            "开放数据不含身份证号、手机号、主体编号和个人查询码；个人姓名已脱敏，"
            "单位统一社会信用代码仅显示前6位和后4位。"
        ),
        "",
        (
            "为防止表格软件把名称当作公式执行，CSV 中以 =、+、-、@ 开头的文字前加了一个单引号 '"
            "（如 '=某某商店），阅读时忽略该单引号即可；数字（包括负数）不受影响。"
        ),
        "",
        _table(
            ["文件", "内容"],
            [[f"[{n}](../../{site.data_base}/{n})", t] for n, t in files]
            + [
                [
                    f"[manifest.json](../../{site.data_base}/manifest.json)",
                    "各文件 SHA-256 校验值及本月内容校验值",
                ]
            ],
        ),
        "",
    ]
    site.page("data.md", "\n".join(parts))


def content_hash(files: dict[Path, bytes], roots: Sequence[Path]) -> tuple[str, dict[str, str]]:
    listing: dict[str, str] = {}
    for path, data in files.items():
        for root in roots:
            if root in path.parents:
                listing[path.relative_to(root.parent.parent).as_posix()] = hashlib.sha256(
                    data
                ).hexdigest()
    text = "".join(f"{k}\0{v}\n" for k, v in sorted(listing.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), listing
