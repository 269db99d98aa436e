"""紫悦城商街电子大屏：按商户信用积分分配每日广告展示时长（本地插件）。

Seed 004 (桓台县): 紫悦城社区依托永乐巷商街，将街区内电子大屏幕的广告
播放时长与商户信用积分挂钩. This local plugin of the reference scheme turns
that into a page and an open-data file for every published month.

The rule (seed-faithful: the play time is tied to the credit *points*, not
just to the tier):

* Only accounts of the group ``merchants`` (:data:`GROUP`) take part.
* A merchant qualifies when its tier at the month's close is A or better
  (``AAA``, ``AA``, ``A``; the tier includes any 直接判级 hold-down).
* A qualifying merchant's weight is ``score - floor + 1``, where ``floor`` is
  the lowest score of tier A in the group's tier set (960 in the reference
  scheme). A merchant at 960 weighs 1, one at 1050 weighs 91.
* The daily screen time (:data:`DAILY_MINUTES`, 10 hours) is split in
  proportion to the weights and rounded to whole minutes with the
  largest-remainder method, so the minutes add up exactly to the total.
  Leftover minutes go to the largest remainders; equal remainders go to the
  higher weight, then to the smaller subject id (a fixed, documented order).

Configuration is the constants below: the plugin file lives in the scheme
repository's ``plugins/`` folder, so editing them is the local setting (no
extra YAML file to validate). The publisher writes

* ``site/months/<YYYY-MM>/screen-time.md`` (商户大屏展示时长分配),
* ``site/data/<YYYY-MM>/screen-time.csv`` (UTF-8 with BOM for spreadsheets),

byte-identical for the same month data, and nothing when the scheme has no
merchants group.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from scoring import Plugins, hookimpl
from scoring.errors import InputError
from scoring.publish import MonthData, SubjectRank, csv_cell, md, month_label

# --- configuration ---------------------------------------------------------

GROUP = "merchants"  # the group whose accounts share the screen
SCREEN = "紫悦城社区永乐巷商街电子大屏"  # shown on the page
DAILY_MINUTES = 600  # 10 hours of advertising a day
ELIGIBLE_TIERS = ("AAA", "AA", "A")  # used when the month data has no tier set
FLOOR_TIER = "A"  # the lowest qualifying tier; its min score is the floor
DEFAULT_FLOOR = 960  # floor when the tier set does not give tier A a min

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

K = TypeVar("K", bound=Hashable)


# --- the allocation --------------------------------------------------------


def allocate(
    merchants: Iterable[tuple[K, int, str]],
    total_minutes: int = DAILY_MINUTES,
    *,
    eligible: Sequence[str] = ELIGIBLE_TIERS,
    floor: int = DEFAULT_FLOOR,
) -> dict[K, int]:
    """Split ``total_minutes`` among ``(id, score, tier)`` merchants.

    Merchants whose tier is not in ``eligible`` get 0. The others share the
    total in proportion to ``max(score - floor + 1, 1)``, rounded by the
    largest-remainder method (sum is exactly ``total_minutes`` when anyone
    qualifies). Ties for a leftover minute: larger remainder, then larger
    weight, then smaller id (compared as text). Every id is in the result.
    """
    if total_minutes < 0:
        raise ValueError(f"total_minutes must be >= 0, got {total_minutes}")
    out: dict[K, int] = {}
    weights: dict[K, int] = {}
    for mid, score, tier in merchants:
        if mid in out:
            raise ValueError(f"merchant {mid!r} appears twice")
        out[mid] = 0
        if tier in eligible:
            weights[mid] = max(int(score) - floor + 1, 1)
    total_weight = sum(weights.values())
    if not total_weight:
        return out
    remainders: list[tuple[int, int, str, K]] = []
    for mid, w in weights.items():
        q, r = divmod(total_minutes * w, total_weight)
        out[mid] = q
        remainders.append((-r, -w, str(mid), mid))
    leftover = total_minutes - sum(out.values())
    for _, _, _, mid in sorted(remainders, key=lambda t: t[:3])[:leftover]:
        out[mid] += 1
    return out


# --- the publisher ---------------------------------------------------------


def _tier_setup(data: MonthData) -> tuple[tuple[str, ...], int, dict[str, str]] | None:
    """Eligible tiers, floor and tier titles of the merchants group (None: no such group)."""
    group = next((g for g in data.groups if g.id == GROUP), None)
    if group is None and GROUP not in data.rankings:
        return None
    tiers = list(group.tiers) if group else []
    titles = {t.id: t.title for t in tiers}
    ids = [t.id for t in tiers]
    if FLOOR_TIER not in ids:
        return ELIGIBLE_TIERS, DEFAULT_FLOOR, titles
    cut = ids.index(FLOOR_TIER)
    floor_min = tiers[cut].min
    return tuple(ids[: cut + 1]), DEFAULT_FLOOR if floor_min is None else floor_min, titles


def _share(minutes: int, total: int) -> str:
    return f"{minutes * 100 / total:.1f}%" if total else "0.0%"


class ScreenTimePublisher:
    """Writes the month's screen-time page and CSV."""

    name = "screen-time"

    def __init__(self, plugins: Plugins):
        self.plugins = plugins  # the scheme's plugins: names are masked by the mask_name hook

    def write(self, month: str, data: MonthData, site_dir: Path) -> list[Path]:
        if not _MONTH.match(month):
            raise InputError(f"screen-time: month {month!r} is not of the form YYYY-MM")
        setup = _tier_setup(data)
        if setup is None:
            return []
        eligible, floor, titles = setup
        rows: list[SubjectRank] = list(data.rankings.get(GROUP, []))
        minutes = allocate(
            ((r.subject, r.score, r.tier) for r in rows),
            DAILY_MINUTES, eligible=eligible, floor=floor,
        )  # fmt: skip
        shown = sorted(
            (r for r in rows if r.tier in eligible),
            key=lambda r: (-minutes[r.subject], -r.score, r.name, r.subject),
        )
        others = len(rows) - len(shown)

        def name(r: SubjectRank) -> str:
            # whitespace collapsed first, as on every other page
            return self.plugins.mask_name(" ".join(str(r.name).split()), r.kind)

        def tier(r: SubjectRank) -> str:
            t = titles.get(r.tier)
            return f"{r.tier}（{t}）" if t else r.tier

        # page
        hours, mins = divmod(DAILY_MINUTES, 60)
        total_text = f"{hours} 小时" + (f" {mins} 分钟" if mins else "")
        lines = [
            f"# {month_label(month)}商户大屏展示时长分配",
            "",
            (
                f"{md(SCREEN)}每天播放广告共 {total_text}（{DAILY_MINUTES} 分钟），"
                "按商户信用积分分配，引导商户规范经营、履行责任。"
            ),
            "",
            "## 分配办法",
            "",
            (
                f"- 信用等级为 {'、'.join(eligible)} 级（{FLOOR_TIER} 级及以上）的商户参加分配；"
                f"{FLOOR_TIER} 级以下的商户本月不安排展示。"
            ),
            f"- 每户权重 = 月末信用积分 − {floor} + 1，按权重比例分配每日时长。",
            (
                "- 分钟数取整采用最大余数法：先按比例取整，剩余分钟依次给余数最大的商户"
                "（余数相同时给权重高的商户），合计正好等于每日总时长。"
            ),
            "",
            "## 分配结果",
            "",
        ]
        if shown:
            lines += [
                "| 商户 | 信用等级 | 信用积分 | 每日展示（分钟） | 占比 |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {md(name(r))} | {md(tier(r))} | {r.score} | {minutes[r.subject]}"
                f" | {_share(minutes[r.subject], DAILY_MINUTES)} |"
                for r in shown
            ]
        else:
            lines.append("本月没有信用等级达到要求的商户，大屏不安排商户广告。")
        lines += [
            "",
            (
                f"参加分配 {len(shown)} 户，未达等级 {others} 户。"
                f"数据下载：[screen-time.csv](../../data/{month}/screen-time.csv)"
            ),
        ]
        page = "\n".join(lines) + "\n"

        # open data
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        # Chinese headers like all open data
        w.writerow(["月份", "名称", "等级", "信用积分", "每日展示分钟数", "占比"])
        for r in shown:
            w.writerow([csv_cell(v) for v in (month, name(r), r.tier, r.score, minutes[r.subject],
                        _share(minutes[r.subject], DAILY_MINUTES))])  # fmt: skip

        site_dir = Path(site_dir)
        files = {
            site_dir / "months" / month / "screen-time.md": page.encode("utf-8"),
            site_dir / "data" / month / "screen-time.csv": b"\xef\xbb\xbf"
            + buf.getvalue().encode("utf-8"),
        }
        root = site_dir.resolve()
        written = []
        for path, content in files.items():
            if root not in path.resolve().parents:
                raise InputError(f"screen-time: {path} is outside the site folder {root}")
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_bytes() != content:
                path.write_bytes(content)
            written.append(path)
        return written


@hookimpl
def register_publishers(plugins: Plugins) -> list[ScreenTimePublisher]:
    return [ScreenTimePublisher(plugins)]
