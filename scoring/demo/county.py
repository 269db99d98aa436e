"""The synthetic county: realistic subjects and event streams for demos and benchmarks.

``generate_county`` writes ``subjects.jsonl`` and one events file per month
(``events-2024-01.jsonl`` ...) for the scheme's jurisdictions, groups, event
types and rule packs. Everything comes from one ``random.Random(seed)``: the
same arguments always give byte-identical files.

What the files hold, and why:

* **Populations** per group as a county of ~20,000 residents has them
  (``residents`` scales the resident-based groups; staff scale with grids).
  Party members are residents too (one subject, two groups). Organisations
  carry 18-character unified social credit codes with a correct GB 32100
  check character, except a handful deliberately broken ones (ingest warns).
* **Events** go only to groups whose rule packs react to the type, at per-type
  rates (garbage-sorting checks and volunteer hours often, blood donation
  rarely); parking and complaints have repeat offenders so escalation fires;
  property companies get their quarterly surveys; residents who earned enough
  redeem catalog items; a few withdrawals, objections and amendments target
  earlier events. Attributes are drawn within the ranges ``events.yaml``
  declares.
* **Dirty input**, as real exports have: ~0.2 % bad records (malformed JSON,
  unknown type, out-of-range attribute, missing field), ~0.3 % repeated lines
  and ~0.2 % late records (an event of month M in the file of month M+1).

Generation streams day by day (memory is bounded by one day's lines plus the
subject tables) and runs at several hundred thousand events per second.

Why one module of ~1,400 lines: it is one seeded generator. Every draw comes
from the same ``random.Random`` in a fixed order, so the word lists, the
population and the event streams are read together when changing any of
them (moving a draw changes every file the demo makes, and the demo's month
hashes with them); more than half of it is data (word lists, rates).
"""

from __future__ import annotations

import itertools
import math
import random
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import orjson

from ..errors import UsageError
from ..model import AttrSpec, EventType, FixedPoints, PerPoints, Scheme, TablePoints

DEFAULT_SEED = 20240101
DEFAULT_MONTHS = ("2024-01", "2024-02", "2024-03")

# Shares of dirty records among all lines written.
BAD_SHARE = 0.002
DUPLICATE_SHARE = 0.003
LATE_SHARE = 0.002

# System event types: the engine understands them; no rule pack reacts to them.
SYSTEM_TYPES = ("redeem", "withdraw", "objection", "survey")

# ---------------------------------------------------------------------------
# Rates: events per subject per month, by event type and group. A type a
# group's rules react to but this table does not name gets FALLBACK_RATE.
# ---------------------------------------------------------------------------

FALLBACK_RATE = 0.05
RATES: dict[str, dict[str, float]] = {
    "garbage_sorting_check": {"residents": 2.2},
    "volunteer_service": {
        "residents": 0.45,
        "party_members": 0.9,
        "cadres": 0.6,
        "co_building_units": 1.5,
    },
    "council_meeting": {"residents": 0.06, "cadres": 0.5, "community_workers": 0.8},
    "neighborhood_festival": {"residents": 0.05},
    "blood_donation": {"residents": 0.0015},
    "dispute_mediation": {"residents": 0.008, "party_members": 0.03, "community_workers": 2.5},
    "hazard_report": {"residents": 0.02, "grid_workers": 3.0},
    "illegal_parking": {"residents": 0.025},
    "noise_nuisance": {"residents": 0.01},
    "fire_lane_blocked": {"residents": 0.002},
    "pet_violation": {"residents": 0.008},
    "commendation": {"party_members": 0.004, "community_workers": 0.02},
    "credit_repair_service": {"residents": 0.002, "merchants": 0.008},
    "party_report": {"party_members": 0.9},
    "micro_wish": {"party_members": 0.06, "co_building_units": 0.4},
    "party_day": {"party_members": 0.95},
    "household_visit": {"community_workers": 8.0, "grid_workers": 12.0, "cadres": 3.0},
    "resident_request": {"community_workers": 10.0, "cadres": 1.5},
    "incident_report": {"grid_workers": 14.0},
    "incident_closed": {"grid_workers": 12.0},
    "incident_missed": {"grid_workers": 0.06, "community_workers": 0.03, "cadres": 0.03},
    "grid_presence": {"cadres": 4.3},
    "consumer_complaint": {"merchants": 0.03},
    "counterfeit_goods": {"merchants": 0.0015},
    "price_label_check": {"merchants": 0.5},
    "safety_inspection": {"merchants": 0.35, "property_companies": 0.5},
    "public_good": {"merchants": 0.15},
    "joint_activity": {"co_building_units": 1.0, "property_companies": 0.6},
    "joint_meeting": {"co_building_units": 0.9},
    "resource_sharing": {"co_building_units": 0.4},
    "property_complaint": {"property_companies": 0.5},
    "hazard_unrectified": {"property_companies": 0.05},
    "recognition": {"merchants": 0.003, "co_building_units": 0.02, "property_companies": 0.03},
}

# Relative activity per local hour 0..23 (records are made in office hours).
# fmt: off
HOUR_WEIGHTS = [0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 1.0, 2.5, 6, 8, 8, 7, 4, 5, 7, 8, 8, 7, 4, 4, 3, 2, 1, 0.5]
# fmt: on

# Special streams, as events per resident per month (redeem) or as a share of
# all good events (corrections).
REDEEM_RATE = 0.04
WITHDRAW_SHARE = 0.0004
OBJECTION_SHARE = 0.0008
AMEND_SHARE = 0.0003

# Share of a type's events that go to its repeat offenders (a small pool).
REPEAT_OFFENDERS: dict[str, float] = {
    "illegal_parking": 0.6,
    "noise_nuisance": 0.4,
    "consumer_complaint": 0.5,
    "safety_inspection": 0.0,
    "hazard_unrectified": 0.5,
    "credit_repair_service": 0.8,
}


def _words(text: str) -> list[str]:
    """A list written as words separated by spaces (keeps the data tables compact)."""
    return text.split()


# Realistic attribute values: (type, attr) → ("choice", values, weights) |
# ("pick", values) | ("int", lo, hi) | ("bool", p_true) | ("text", strings).
# Values outside what events.yaml allows are dropped at compile time.
_ACTIVITIES = _words(
    """
社区环境整治 文明交通劝导 关爱空巢老人 垃圾分类宣传 义务理发 防诈骗宣传 爱心义诊 清理小广告 疫苗接种引导 图书整理 四点半课堂 河道巡护 植树护绿
助老助残 文明城市创建
"""
)
_LOCATIONS = _words(
    "小区东门 小区北门 幼儿园门口 菜市场路口 消防通道 盲道 主干道路边 楼栋单元门口 地下车库入口 学校周边"
)
ATTR_VALUES: dict[tuple[str, str], tuple[Any, ...]] = {
    ("volunteer_service", "hours"): ("pick", [0.5, 1, 1, 1.5, 2, 2, 2, 3, 3, 4, 4, 6, 8]),
    ("volunteer_service", "activity"): ("text", _ACTIVITIES),
    ("volunteer_service", "organizer"): (
        "text",
        ["社区党委", "新时代文明实践站", "社区居委会", "共青团桓台县委", "红十字会"],
    ),
    ("garbage_sorting_check", "result"): ("choice", ["pass", "fail"], [92, 8]),
    ("council_meeting", "role"): ("choice", ["attendee", "speaker", "organizer"], [80, 15, 5]),
    ("council_meeting", "topic"): (
        "text",
        ["老旧小区改造", "停车位规划", "加装电梯", "物业费调整", "楼道杂物清理"],
    ),
    ("neighborhood_festival", "role"): (
        "choice",
        ["participant", "performer", "organizer"],
        [85, 10, 5],
    ),
    ("blood_donation", "volume_ml"): ("choice", [200, 300, 400], [30, 30, 40]),
    ("blood_donation", "kind"): ("choice", ["whole_blood", "platelets"], [90, 10]),
    ("dispute_mediation", "outcome"): (
        "choice",
        ["resolved", "partially_resolved", "unresolved"],
        [70, 20, 10],
    ),
    ("dispute_mediation", "parties"): ("choice", [2, 3, 4, 6], [70, 18, 8, 4]),
    ("hazard_report", "verified"): ("bool", 0.85),
    ("hazard_report", "level"): ("choice", ["minor", "general", "major"], [70, 25, 5]),
    ("illegal_parking", "location"): ("text", _LOCATIONS),
    ("illegal_parking", "vehicle"): ("choice", ["car", "e_bike", "other"], [55, 40, 5]),
    ("noise_nuisance", "verified"): ("bool", 0.7),
    ("noise_nuisance", "time_of_day"): ("choice", ["day", "night"], [40, 60]),
    ("fire_lane_blocked", "location"): ("text", _LOCATIONS),
    ("fire_lane_blocked", "hours"): ("pick", [0.5, 1, 2, 3, 6, 12, 24]),
    ("pet_violation", "kind"): (
        "choice",
        ["no_leash", "fouling", "barking", "unregistered"],
        [45, 30, 15, 10],
    ),
    ("commendation", "level"): (
        "choice",
        ["community", "street", "county", "city", "province", "national"],
        [40, 30, 18, 8, 3, 1],
    ),
    ("commendation", "honour"): ("text", ["优秀共产党员", "最美志愿者", "文明家庭", "好人好事"]),
    ("credit_repair_service", "hours"): ("pick", [2, 4, 4, 8, 8, 8, 12, 16, 24]),
    ("party_report", "status"): ("choice", ["reported", "not_reported"], [93, 7]),
    ("party_report", "tasks"): ("int", 1, 5),
    ("micro_wish", "value_yuan"): ("pick", [50, 80, 100, 150, 200, 300, 500]),
    ("micro_wish", "wish"): ("text", ["一套学习用品", "一台电风扇", "一件羽绒服", "一次体检"]),
    ("party_day", "attendance"): ("choice", ["present", "excused", "absent"], [88, 9, 3]),
    ("household_visit", "households"): ("int", 1, 12),
    ("resident_request", "outcome"): ("choice", ["on_time", "overdue"], [92, 8]),
    ("resident_request", "days_overdue"): ("int", 0, 10),
    ("resident_request", "channel"): (
        "choice",
        ["hotline", "grid", "visit", "online"],
        [40, 30, 15, 15],
    ),
    ("incident_report", "verified"): ("bool", 0.9),
    ("incident_report", "level"): ("choice", ["minor", "general", "major"], [80, 18, 2]),
    ("incident_closed", "on_time"): ("bool", 0.93),
    ("incident_closed", "level"): ("choice", ["minor", "general", "major"], [80, 18, 2]),
    ("incident_missed", "level"): ("choice", ["minor", "general", "major"], [75, 22, 3]),
    ("grid_presence", "days"): ("choice", [0, 1, 2, 3, 4, 5], [3, 7, 30, 30, 20, 10]),
    ("consumer_complaint", "upheld"): ("bool", 0.6),
    ("consumer_complaint", "severity"): ("choice", ["minor", "general", "serious"], [70, 25, 5]),
    ("counterfeit_goods", "amount_yuan"): ("pick", [800, 1500, 3200, 5600, 12000, 26000]),
    ("price_label_check", "result"): ("choice", ["pass", "fail"], [90, 10]),
    ("safety_inspection", "result"): ("choice", ["pass", "rectified", "fail"], [80, 14, 6]),
    ("safety_inspection", "level"): ("choice", ["minor", "general", "major"], [75, 22, 3]),
    ("public_good", "hours"): ("pick", [1, 2, 2, 3, 4, 6, 8]),
    ("public_good", "activity"): ("text", _ACTIVITIES),
    ("joint_activity", "participants"): ("int", 8, 120),
    ("joint_activity", "activity"): (
        "text",
        ["党建联建主题活动", "社区共建志愿服务", "文明创建联合行动", "联合义诊"],
    ),
    ("joint_meeting", "attendance"): ("choice", ["present", "excused", "absent"], [85, 10, 5]),
    ("resource_sharing", "kind"): (
        "choice",
        ["venue", "parking", "canteen", "other"],
        [50, 25, 15, 10],
    ),
    ("property_complaint", "upheld"): ("bool", 0.55),
    ("property_complaint", "severity"): ("choice", ["minor", "general", "serious"], [65, 28, 7]),
    ("hazard_unrectified", "level"): ("choice", ["minor", "general", "major"], [65, 30, 5]),
    ("hazard_unrectified", "days_overdue"): ("int", 1, 60),
    ("recognition", "level"): (
        "choice",
        ["street", "county", "city", "province", "national"],
        [50, 30, 14, 5, 1],
    ),
    ("recognition", "honour"): (
        "text",
        ["先锋物业", "诚信经营示范店", "文明单位", "共建先进单位", "消费放心单位"],
    ),
}

# A plausible-looking typo of a real type, for "unknown type" bad records.
_TYPO_TYPES = ["garbage_sort_check", "volunteer", "illegal_parkng", "blood_donate", "parking"]

# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

_SURNAMES = (
    "王张李刘陈杨赵孙马高徐朱周吴胡郭何林宋韩郑唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢"
    "蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史"
)
# Rough frequency: the first few surnames are far more common (Shandong).
_SURNAME_WEIGHTS = [max(1.0, 30.0 / (1 + i * 0.6)) for i in range(len(_SURNAMES))]
_SURNAME_CUM = list(accumulate(_SURNAME_WEIGHTS))
_MALE_GIVEN = _words(
    """
伟 强 磊 军 勇 杰 涛 明 超 刚 平 辉 鹏 华 飞 建国 建华 志强 国强 海涛 文博 子涵 浩然 宇轩 俊杰 振华 家豪 立新 庆军 永胜 德福 春雷 洪亮 志刚 金龙
宝山 长江
"""
)
_FEMALE_GIVEN = _words(
    """
秀英 敏 静 丽 艳 娟 霞 芳 燕 玲 桂英 秀兰 丹 婷 雪 慧 红梅 玉兰 淑珍 丽娟 晓燕 海燕 美玲 欣怡 梓涵 诗涵 雨桐 秀珍 凤英 春兰 翠花 晓丽 亚楠 佳琪
文静 桂芳
"""
)
_GIVEN_CHARS_M = "伟强磊军勇杰涛明超刚平辉鹏华飞建国志海文博宇俊振家立庆永德春洪金宝长晨浩"
_GIVEN_CHARS_F = "秀英敏静丽艳娟霞芳燕玲兰丹婷雪慧红梅玉淑珍晓美欣梓诗雨桐凤春翠佳琪亚楠"

_SHOP_WORDS = _words(
    """
鑫源 福满多 宏达 惠民 金辉 鑫隆 家家乐 顺发 利民 万家福 好又多 聚鑫 永盛 德顺 旺角 兴隆 佳美 恒源 百姓 康乐 老王家 张记 李家 金满园 乐购 天天 如意 祥瑞
福源 众诚
"""
)
_SHOP_KINDS = [
    ("超市", "商超"),
    ("便利店", "商超"),
    ("饭店", "餐饮"),
    ("水果店", "食品"),
    ("五金店", "零售"),
    ("大药房", "药品"),
    ("理发店", "生活服务"),
    ("服装店", "零售"),
    ("烧烤店", "餐饮"),
    ("烟酒店", "零售"),
    ("粮油店", "食品"),
    ("家电商行", "零售"),
    ("手机店", "零售"),
    ("面馆", "餐饮"),
    ("包子铺", "餐饮"),
    ("汽修厂", "汽车服务"),
    ("干洗店", "生活服务"),
    ("母婴店", "零售"),
    ("蛋糕店", "食品"),
    ("洗车行", "汽车服务"),
]
_UNITS = _words(
    """
桓台县人民医院 国家税务总局桓台县税务局 国网桓台县供电公司 桓台县市场监督管理局 桓台县公安局城区派出所 桓台第一中学 桓台县实验学校 中国银行桓台支行 中国工商银行桓台支行
中国农业银行桓台支行 中国建设银行桓台支行 桓台农村商业银行 中国邮政集团桓台分公司 中国移动桓台分公司 中国联通桓台分公司 中国电信桓台分公司 桓台县住房和城乡建设局
桓台县自然资源局 桓台县教育和体育局 桓台县卫生健康局 桓台县民政局 桓台县人力资源和社会保障局 桓台县综合行政执法局 桓台县应急管理局 桓台县司法局 桓台县财政局
桓台县文化和旅游局 桓台县交通运输局 桓台县水利局 桓台县农业农村局 桓台县退役军人事务局 桓台县消防救援大队 桓台县妇幼保健院 桓台县中医院 桓台县图书馆 桓台县融媒体中心
桓台县城市管理服务中心 桓台县疾病预防控制中心 桓台县红十字会 桓台县总工会 共青团桓台县委员会 桓台县妇女联合会 桓台县科学技术协会
"""
)
_PROPERTY_BRANDS = _words(
    """
万家 鑫城 恒信 金地 华远 瑞祥 安居 泰和 宏泰 嘉和 龙泉 德润 锦绣 东岳 紫悦 凯瑞 福泰 华宇 鸿运 顺达 永安 祥和 美佳 盛世 海润 金鼎 天润
博远 鲁中 齐盛
"""
)
_RESIDENT_TAGS = [  # (tag, share of residents)
    ("志愿者", 0.15),
    ("低保户", 0.03),
    ("楼栋长", 0.02),
    ("退役军人", 0.03),
    ("独居老人", 0.02),
    ("残疾人", 0.01),
    ("新市民", 0.05),
]

# ---------------------------------------------------------------------------
# Unified social credit code (GB 32100-2015)
# ---------------------------------------------------------------------------

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
HUANTAI_DIVISION = "370321"  # 山东省淄博市桓台县


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a credit code."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def uscc_valid(code: str) -> bool:
    """Whether an 18-character code is well formed and its check character matches."""
    if len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def _org_code(body8: str) -> str:
    """GB 11714 organisation code: 8 characters plus their check character."""
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    c9 = 11 - total % 11
    return body8 + ("X" if c9 == 10 else "0" if c9 == 11 else str(c9))


def _make_uscc(rng: random.Random, kind: str) -> str:
    """A credit code for a registration kind: 91 enterprise, 92 individual, 11/12/51."""
    if kind in ("91", "92"):
        body = "MA" + "".join(rng.choice(USCC_CHARS) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = kind + HUANTAI_DIVISION + _org_code(body)
    return first17 + uscc_check_char(first17)


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass
class DemoStats:
    """What the generator wrote; tests and benchmarks check the files against it."""

    lines: int = 0  # every line written to the events files
    events: int = 0  # good event records (each once; duplicates not counted)
    bad: Counter[str] = field(default_factory=Counter)  # kind → count
    duplicates: int = 0  # lines that repeat an earlier line byte for byte
    late: int = 0  # good events written to the next month's file
    by_type: Counter[str] = field(default_factory=Counter)  # good events per type
    populations: dict[str, int] = field(default_factory=dict)  # group → subjects
    subjects: int = 0
    bad_codes: list[str] = field(default_factory=list)  # subject ids with a wrong check char
    per_file: dict[str, int] = field(default_factory=dict)  # file name → lines

    @property
    def bad_total(self) -> int:
        return sum(self.bad.values())


@dataclass
class DemoFiles:
    subjects: Path
    events: list[Path]
    stats: DemoStats


# ---------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------


@dataclass
class _Population:
    members: dict[str, list[str]]  # group → subject ids
    resident_ids: list[str]
    records: list[dict[str, Any]]  # subject records, in file order
    bad_codes: list[str]


def _as_scheme(scheme: Scheme | str | Path) -> Scheme:
    if isinstance(scheme, Scheme):
        return scheme
    from ..loader import load_scheme

    return load_scheme(scheme)


def _person_name(rng: random.Random) -> str:
    rnd = rng.random
    surname = _SURNAMES[bisect_right(_SURNAME_CUM, rnd() * _SURNAME_CUM[-1])]
    female = rnd() < 0.5
    r = rnd()
    if r < 0.55:
        names = _FEMALE_GIVEN if female else _MALE_GIVEN
        given = names[int(rnd() * len(names))]
    else:
        chars = _GIVEN_CHARS_F if female else _GIVEN_CHARS_M
        given = chars[int(rnd() * len(chars))]
        if r < 0.85:
            given += chars[int(rnd() * len(chars))]
    return surname + given


def _scaled(base: int, factor: float, minimum: int = 1) -> int:
    return max(minimum, round(base * factor))


def _build_population(scheme: Scheme, rng: random.Random, residents: int) -> _Population:
    if residents < 1:
        raise UsageError("demo: --residents must be at least 1")
    grids = sorted(scheme.grids)
    if not grids:
        raise UsageError("demo: the scheme has no grids; add a jurisdictions file to scheme.yaml")
    by_community: dict[str, list[str]] = {}
    for gid in grids:
        by_community.setdefault(scheme.grids[gid].community, []).append(gid)
    street_names = {g.street: g.street_name for g in scheme.grids.values()}
    factor = residents / 20_000
    width = max(6, len(str(residents)))

    records: list[dict[str, Any]] = []
    members: dict[str, list[str]] = {g: [] for g in scheme.groups}

    def add(rec: dict[str, Any]) -> None:
        records.append(rec)
        for g in rec["groups"]:
            if g in members:
                members[g].append(rec["id"])

    # Residents, spread unevenly over grids; some households share a head.
    grid_weights = [rng.uniform(0.5, 1.5) for _ in grids]
    cum = list(_accumulate(grid_weights))
    resident_ids: list[str] = []
    by_grid: dict[str, list[str]] = {}
    for i in range(residents):
        rid = f"R{i + 1:0{width}d}"
        grid = grids[_bisect(cum, rng.random() * cum[-1])]
        groups = ["residents"]
        if "party_members" in scheme.groups and rng.random() < 0.08:
            groups.append("party_members")
        tags = [t for t, share in _RESIDENT_TAGS if rng.random() < share]
        links: dict[str, str] = {}
        heads = by_grid.setdefault(grid, [])  # household heads of the grid so far
        if heads and rng.random() < 0.45:
            links["household_head"] = heads[-1 - int(rng.random() * min(len(heads), 8))]
        rec: dict[str, Any] = {
            "id": rid,
            "groups": groups,
            "name": _person_name(rng),
            "grid": grid,
            "tags": tags,
        }
        if links:
            rec["links"] = links
        add(rec)
        resident_ids.append(rid)
        if not links:
            heads.append(rid)

    def staff(
        prefix: str, group: str, count_per: list[tuple[str, int]], party: float, tag: str
    ) -> None:
        n = 0
        for grid, count in count_per:
            for _ in range(count):
                n += 1
                groups = [group]
                if "party_members" in scheme.groups and rng.random() < party:
                    groups.append("party_members")
                add(
                    {
                        "id": f"{prefix}{n:04d}",
                        "groups": groups,
                        "name": _person_name(rng),
                        "grid": grid,
                        "tags": [tag],
                    }
                )

    if "community_workers" in scheme.groups:
        staff(
            "CW",
            "community_workers",
            [(gs[0], 3) for _, gs in sorted(by_community.items())],
            0.6,
            "社区工作者",
        )
    if "grid_workers" in scheme.groups:
        staff(
            "GW", "grid_workers", [(g, 1 + (rng.random() < 0.5)) for g in grids], 0.4, "专职网格员"
        )
    if "cadres" in scheme.groups:
        staff("CD", "cadres", [(g, 1) for g in grids[::2]], 1.0, "下沉干部")

    bad_codes: list[str] = []

    def org(
        prefix: str, group: str, n: int, names: Iterator[tuple[str, str, list[str]]], n_bad: int
    ) -> None:
        bad_at = set(rng.sample(range(2, n), min(n_bad, max(0, n - 2)))) if n > 2 else set()
        for i in range(n):
            name, kind, tags = next(names)
            oid = f"{prefix}{i + 1:0{max(3 if prefix != 'M' else 4, len(str(n)))}d}"
            grid = grids[_bisect(cum, rng.random() * cum[-1])]
            code = _make_uscc(rng, kind)
            if i in bad_at:
                wrong = USCC_CHARS[(USCC_CHARS.index(code[17]) + 1 + rng.randrange(30)) % 31]
                code = code[:17] + wrong
                bad_codes.append(oid)
            rec: dict[str, Any] = {
                "id": oid,
                "groups": [group],
                "name": name,
                "grid": grid,
                "tags": tags,
                "code": code,
            }
            locals_ = by_grid.get(grid) or resident_ids
            rec["links"] = {"legal_representative": locals_[int(rng.random() * len(locals_))]}
            add(rec)

    def shop_names() -> Iterator[tuple[str, str, list[str]]]:
        seen: set[str] = set()
        while True:
            grid = scheme.grids[grids[int(rng.random() * len(grids))]]
            place = street_names[grid.street][:2]
            kind, tag = _SHOP_KINDS[int(rng.random() * len(_SHOP_KINDS))]
            name = place + _SHOP_WORDS[int(rng.random() * len(_SHOP_WORDS))] + kind
            k = 2
            base = name
            while name in seen:
                name = f"{base}（{_cn_number(k)}店）"
                k += 1
            seen.add(name)
            yield name, "92" if rng.random() < 0.7 else "91", [tag]

    def unit_names() -> Iterator[tuple[str, str, list[str]]]:
        for round_ in itertools.count():
            for name in _UNITS:
                kind = (
                    "11"
                    if name.endswith(("局", "大队", "派出所"))
                    else "51"
                    if name.endswith(("会", "委员会"))
                    else "91"
                    if name.endswith(("行", "公司"))
                    else "12"
                )
                yield (
                    name if round_ == 0 else f"{name}第{_cn_number(round_ + 1)}党支部",
                    kind,
                    ["共建单位"],
                )

    def property_names() -> Iterator[tuple[str, str, list[str]]]:
        for round_ in itertools.count():
            for template in ("淄博{}物业服务有限公司", "桓台县{}物业管理有限公司"):
                for brand in _PROPERTY_BRANDS:
                    suffix = "" if round_ == 0 else f"第{_cn_number(round_ + 1)}分公司"
                    yield template.format(brand) + suffix, "91", ["物业服务"]

    if "merchants" in scheme.groups:
        n = _scaled(600, factor, 2)
        org("M", "merchants", n, shop_names(), max(1, round(n * 0.005)))
    if "co_building_units" in scheme.groups:
        org("U", "co_building_units", _scaled(40, factor), unit_names(), 0)
    if "property_companies" in scheme.groups:
        n = _scaled(60, factor)
        org("P", "property_companies", n, property_names(), max(0, round(n * 0.02)))

    # Groups this generator does not know: a few generic people so their rules see events.
    for g, grp in scheme.groups.items():
        if not members[g]:
            for i in range(_scaled(20, factor)):
                rec = {
                    "id": f"X{g[:3].upper()}{i + 1:04d}",
                    "groups": [g],
                    "name": _person_name(rng) if grp.kind == "person" else f"桓台县{g}单位{i + 1}",
                    "grid": grids[int(rng.random() * len(grids))],
                    "tags": [],
                }
                add(rec)

    return _Population(members, resident_ids, records, bad_codes)


def _cn_number(n: int) -> str:
    digits = "零一二三四五六七八九十"
    return digits[n] if n <= 10 else str(n)


def _accumulate(xs: list[float]) -> Iterator[float]:
    total = 0.0
    for x in xs:
        total += x
        yield total


def _bisect(cum: list[float], x: float) -> int:
    return min(bisect_right(cum, x), len(cum) - 1)


def write_subjects(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "wb") as f:
        f.write(b"".join(orjson.dumps(r) + b"\n" for r in records))


# ---------------------------------------------------------------------------
# Attribute generators
# ---------------------------------------------------------------------------

AttrMaker = Callable[[], dict[str, Any]]


def _attr_gen(rng: random.Random, etype: str, spec: AttrSpec) -> Callable[[], Any]:
    rnd = rng.random
    lo = spec.min
    hi = spec.max

    def ok(v: Any) -> bool:
        if spec.values is not None and v not in spec.values:
            return False
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if spec.type == "integer" and not isinstance(v, int):
                return False
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                return False
        return True

    want = ATTR_VALUES.get((etype, spec.name))
    if want is not None:
        form = want[0]
        if form == "choice" and spec.type in ("string", "integer", "number"):
            pairs = [(v, w) for v, w in zip(want[1], want[2], strict=True) if ok(v)]
            if pairs:
                vals = [v for v, _ in pairs]
                cum = list(_accumulate([float(w) for _, w in pairs]))
                total = cum[-1]
                return lambda: vals[_bisect(cum, rnd() * total)]
        elif form == "pick" and spec.type in ("integer", "number"):
            vals = [v for v in want[1] if ok(v) and (spec.type == "number" or isinstance(v, int))]
            if vals:
                n = len(vals)
                return lambda: vals[int(rnd() * n)]
        elif form == "int" and spec.type in ("integer", "number"):
            a = int(max(want[1], lo if lo is not None else want[1]))
            b = int(min(want[2], hi if hi is not None else want[2]))
            if a <= b:
                span = b - a + 1
                return lambda: a + int(rnd() * span)
        elif form == "bool" and spec.type == "boolean":
            p = want[1]
            return lambda: rnd() < p
        elif form == "text" and spec.type == "string" and spec.values is None:
            vals = list(want[1])
            n = len(vals)
            return lambda: vals[int(rnd() * n)]
    return _generic_gen(rng, spec)


def _generic_gen(rng: random.Random, spec: AttrSpec) -> Callable[[], Any]:
    rnd = rng.random
    if spec.values:
        vals = list(spec.values)
        # The first value is the usual one.
        weights = [8.0] + [1.0] * (len(vals) - 1)
        cum = list(_accumulate(weights))
        total = cum[-1]
        return lambda: vals[_bisect(cum, rnd() * total)]
    if spec.type == "boolean":
        return lambda: rnd() < 0.85
    if spec.type in ("integer", "number"):
        a = spec.min if spec.min is not None else 0
        b = spec.max if spec.max is not None else a + 10
        b = min(b, a + 10)
        if spec.type == "integer":
            ia, ib = math.ceil(a), math.floor(b)
            span = max(1, ib - ia + 1)
            return lambda: ia + int(rnd() * span)
        return lambda: round(a + rnd() * (b - a), 1)
    if spec.type == "date":
        return lambda: "2024-01-01"  # replaced by the event's date in the caller
    if spec.name in ("case_ref",):
        return lambda: f"桓市监罚〔2024〕{int(rnd() * 900) + 100}号"
    if spec.name in ("location",):
        return lambda: _LOCATIONS[int(rnd() * len(_LOCATIONS))]
    if spec.name in ("inspector",):
        inspectors = [_person_name(rng) for _ in range(200)]
        return lambda: inspectors[int(rnd() * 200)]
    if spec.name in ("week",):
        return lambda: f"2024-W{int(rnd() * 13) + 1:02d}"
    if spec.name in ("activity",):
        return lambda: _ACTIVITIES[int(rnd() * len(_ACTIVITIES))]
    return lambda: "见附件"


ATTR_POOL = 1024  # distinct attribute sets drawn per event type


def _attr_maker(rng: random.Random, et: EventType) -> tuple[AttrMaker, bool]:
    """A function returning a valid attrs dict for the type; and whether it has a date attr.

    The dicts come from a pool drawn once per type (the hot path then costs
    one random number); callers must copy a dict before changing it.
    """
    rnd = rng.random
    parts = [(name, _attr_gen(rng, et.id, spec), spec.required) for name, spec in et.attrs.items()]
    has_date = any(s.type == "date" for s in et.attrs.values())
    pool: list[dict[str, Any]] = []
    for _ in range(ATTR_POOL):
        a: dict[str, Any] = {}
        for name, gen, required in parts:
            if required or rnd() < 0.5:
                a[name] = gen()
        pool.append(a)
    n = len(pool)
    return (lambda: pool[int(rnd() * n)]), has_date


def _out_of_range(et: EventType) -> list[tuple[str, Any]]:
    """(attr, value) pairs that break the type's declared ranges or allowed values."""
    out: list[tuple[str, Any]] = []
    for name, s in et.attrs.items():
        if s.type in ("integer", "number"):
            if s.max is not None:
                out.append((name, int(s.max) + 10 if s.type == "integer" else s.max + 10.5))
            if s.min is not None:
                out.append((name, int(s.min) - 5 if s.type == "integer" else s.min - 5.5))
        elif s.type == "string" and s.values:
            out.append((name, "not_a_value"))
    return out


# ---------------------------------------------------------------------------
# Event streams
# ---------------------------------------------------------------------------


@dataclass
class _Stream:
    type: str
    group: str
    weight: float  # expected events per month
    members: list[str]
    make: AttrMaker
    has_date: bool
    pool: list[int]  # indices into members of repeat offenders
    pool_share: float
    points: int  # rough points per event, for redemption realism (residents only)
    kind: str = "normal"  # normal | redeem | withdraw | objection | amend


def _rough_points(rules: list[Any]) -> int:
    """A rough per-event points figure from the rules (conditions and caps ignored)."""
    for r in rules:
        p = r.points
        if r.escalate:
            steps = r.escalate.steps or (0,)
            return int(steps[0])
        if isinstance(p, FixedPoints) and p.n:
            return p.n
        if isinstance(p, PerPoints):
            return max(1, int(2 * float(p.value)))
        if isinstance(p, TablePoints):
            vals = [v for v in p.table.values() if isinstance(v, int)]
            if vals:
                return round(sum(vals) / len(vals))
    return 0


class _Generator:
    """Streams event lines day by day for a population and a scheme."""

    def __init__(
        self,
        scheme: Scheme,
        pop: _Population,
        rng: random.Random,
        months: tuple[str, ...],
        n_lines: int,
        *,
        dirty: bool = True,
    ):
        self.scheme = scheme
        self.pop = pop
        self.rng = rng
        self.months = months
        self.n_lines = n_lines
        self.dirty = dirty
        self.stats = DemoStats()
        self.tz = ZoneInfo(scheme.timezone or "Asia/Shanghai")
        self._time_tables: dict[str, list[str]] = {}
        self.days = self._days()
        self.streams = self._streams()
        self.fixed = self._fixed_events()
        if n_lines and not any(s.kind == "normal" for s in self.streams):
            raise UsageError(
                "demo: no rule pack reacts to a declared event type, so there is nothing to"
                " generate; add rules with `on:` naming types from events.yaml"
            )
        ers = {t: et for t, et in scheme.event_types.items() if t not in SYSTEM_TYPES}
        used = {s.type for s in self.streams if s.kind == "normal"}
        self.bad_ranges = [(t, a, v) for t in sorted(used) for a, v in _out_of_range(ers[t])]
        self.width = max(7, len(str(n_lines)))
        nres = len(pop.resident_ids)
        self.wallet = array("i", bytes(4 * nres))
        self.score = array("i", bytes(4 * nres))
        self.resident_index = {rid: i for i, rid in enumerate(pop.resident_ids)}

    # -- calendar -----------------------------------------------------------

    def _days(self) -> list[tuple[str, date, float]]:
        days: list[tuple[str, date, float]] = []
        for m in self.months:
            try:
                first = date.fromisoformat(m + "-01")
            except ValueError:
                raise UsageError(f"demo: month {m!r} is not YYYY-MM (e.g. 2024-01)") from None
            d = first
            while d.month == first.month:
                days.append((m, d, 0.75 if d.weekday() >= 5 else 1.0))
                d += timedelta(days=1)
        return days

    def _time_table(self, d: date) -> tuple[str, list[str]]:
        """The day's date prefix and the local time-of-day strings for every second."""
        off = datetime(d.year, d.month, d.day, 12, tzinfo=self.tz).utcoffset() or timedelta()
        minutes = int(off.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        suffix = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        table = self._time_tables.get(suffix)
        if table is None:
            table = self._time_tables[suffix] = [
                f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in range(86400)
            ]
        return d.isoformat(), table

    # -- streams ------------------------------------------------------------

    def _streams(self) -> list[_Stream]:
        scheme, rng, pop = self.scheme, self.rng, self.pop
        rules_by: dict[tuple[str, str], list[Any]] = {}
        for pack in scheme.packs:
            for r in pack.rules:
                if r.status == "retired":
                    continue
                for t in r.on:
                    rules_by.setdefault((t, pack.group), []).append(r)
        makers: dict[str, tuple[AttrMaker, bool]] = {}
        offenders: dict[str, list[int]] = {}
        streams: list[_Stream] = []
        for (t, g), rules in sorted(rules_by.items()):
            et = scheme.event_types.get(t)
            members = pop.members.get(g) or []
            if et is None or not members or t in SYSTEM_TYPES:
                continue
            if t not in makers:
                makers[t] = _attr_maker(rng, et)
            rate = RATES.get(t, {}).get(g, FALLBACK_RATE)
            share = REPEAT_OFFENDERS.get(t, 0.0)
            pool: list[int] = []
            if share:  # one pool of offenders per group: the same people park badly and repair
                if g not in offenders:
                    k = max(1, len(members) // 100)
                    offenders[g] = sorted(rng.sample(range(len(members)), k))
                pool = offenders[g]
            make, has_date = makers[t]
            streams.append(
                _Stream(
                    t,
                    g,
                    rate * len(members),
                    members,
                    make,
                    has_date,
                    pool,
                    share,
                    _rough_points(rules),
                )
            )
        natural = sum(s.weight for s in streams) or 1.0
        types = scheme.event_types
        nothing: AttrMaker = dict
        if "redeem" in types and self.pop.resident_ids and scheme.catalog:
            streams.append(
                _Stream(
                    "redeem",
                    "residents",
                    REDEEM_RATE * len(pop.resident_ids),
                    pop.resident_ids,
                    nothing,
                    False,
                    [],
                    0.0,
                    0,
                    "redeem",
                )
            )
        for t, share in (
            ("withdraw", WITHDRAW_SHARE),
            ("objection", OBJECTION_SHARE),
            ("amend", AMEND_SHARE),
        ):
            if t == "amend" or t in types:
                streams.append(_Stream(t, "", share * natural, [], nothing, False, [], 0.0, 0, t))
        return streams

    def _fixed_events(self) -> dict[int, list[tuple[str, str, dict[str, Any]]]]:
        """Quarterly surveys of property companies, on days near each quarter's end."""
        fixed: dict[int, list[tuple[str, str, dict[str, Any]]]] = {}
        et = self.scheme.event_types.get("survey")
        companies = self.pop.members.get("property_companies") or []
        if et is None or not companies or "respondent" not in et.attrs:
            return fixed
        allowed = et.attrs["respondent"].values or ["residents", "community", "owners_committee"]
        last_month: dict[str, str] = {}
        for m in self.months:
            y, mm = int(m[:4]), int(m[5:7])
            last_month[f"{y}-Q{(mm - 1) // 3 + 1}"] = m
        rng = self.rng
        for _, m in sorted(last_month.items()):
            idx = [i for i, (mon, _, _) in enumerate(self.days) if mon == m][-10:]
            for sid in companies:
                quality = rng.gauss(86, 6)
                for respondent in allowed:
                    score = round(min(100.0, max(40.0, rng.gauss(quality, 4))), 1)
                    attrs: dict[str, Any] = {"respondent": respondent, "score": score}
                    if "respondents" in et.attrs:
                        attrs["respondents"] = {
                            "residents": 30 + int(rng.random() * 90),
                            "community": 5 + int(rng.random() * 6),
                        }.get(respondent, 3 + int(rng.random() * 5))
                    fixed.setdefault(idx[int(rng.random() * len(idx))], []).append(
                        ("survey", sid, attrs)
                    )
        return fixed

    # -- the stream of lines ------------------------------------------------

    def lines_by_day(self) -> Iterator[tuple[str, bytearray, int]]:
        """(month, newline-terminated lines, line count) per day, in time order.

        Late lines ride at the start of the next month. Lines go straight into
        a bytearray: holding thousands of small bytes objects per day is
        several times slower (allocator churn) than appending them.
        """
        rng = self.rng
        rnd = rng.random
        dumps = orjson.dumps
        stats = self.stats
        by_type = stats.by_type
        streams = self.streams
        stream_idx = range(len(streams))
        common = max((s for s in streams if s.kind == "normal"), key=lambda s: s.weight)
        cum_streams = list(_accumulate([s.weight for s in streams]))
        hours = range(24)
        hour_cum = list(_accumulate(HOUR_WEIGHTS))
        wallet, score = self.wallet, self.score
        p_bad = BAD_SHARE if self.dirty else 0.0
        p_dup = p_bad + (DUPLICATE_SHARE if self.dirty else 0.0)
        p_late = LATE_SHARE if self.dirty else 0.0
        width = self.width
        penalties: list[tuple[str, str, int]] = []  # (event id, subject, stream index)
        open_objections: list[tuple[str, str]] = []
        last: bytes | None = None  # the line (with its newline) a repeated record copies
        # The hot path's view of each ordinary stream (None: take the full path).
        fast_streams = [
            (
                st.type,
                st.members,
                len(st.members),
                st.pool,
                len(st.pool),
                st.pool_share,
                st.make,
                st.group == "residents" and st.points != 0,
                st.points,
            )
            if st.kind == "normal" and not st.has_date
            else None
            for st in streams
        ]
        counts = [0] * len(streams)
        declared = {t: set(et.attrs) for t, et in self.scheme.event_types.items()}
        late_buffer = bytearray()
        n_late = 0
        nl = b"\n"
        with_nl = orjson.OPT_APPEND_NEWLINE
        fmt = f"E%0{width}d"
        fixed_total = sum(len(v) for v in self.fixed.values())
        budget = max(0, self.n_lines - fixed_total)
        fixed = self.fixed if self.n_lines >= fixed_total else {}
        if not fixed:
            budget = self.n_lines
        total_w = sum(w for _, _, w in self.days)
        seq = 0
        done = 0
        acc = 0.0
        months = self.months
        catalog = self._redeem_items()
        res_group = self.scheme.groups.get("residents")
        multi = {rid for rid in self.pop.members.get("party_members", [])}
        for di, (month, d, w) in enumerate(self.days):
            acc += w
            n_day = round(acc / total_w * budget) - done
            done += n_day
            day_prefix, table = self._time_table(d)
            day_start = datetime(d.year, d.month, d.day, tzinfo=self.tz).timestamp()
            secs = [
                h * 3600 + int(rnd() * 3600)
                for h in rng.choices(hours, cum_weights=hour_cum, k=n_day)
            ]
            secs.sort()
            picks = rng.choices(stream_idx, cum_weights=cum_streams, k=n_day)
            out = bytearray()
            n_out = 0
            if late_buffer and month != self.days[di - 1][0]:
                out += late_buffer
                n_out += n_late
                late_buffer = bytearray()
                n_late = 0
            day_fixed = fixed.get(di, [])
            is_last_month = month == months[-1]
            # Draws at or above this are clean; below it: bad, repeated or late.
            clean_from = p_dup if is_last_month else p_dup + p_late
            items = [it for it in catalog if it[4] <= day_start < it[5]]
            for i in range(n_day + len(day_fixed)):
                if i >= n_day:
                    t, sid, attrs = day_fixed[i - n_day]
                    seq += 1
                    out += dumps(
                        {
                            "id": fmt % seq,
                            "type": t,
                            "subject": sid,
                            "at": day_prefix + table[int(rnd() * 36000) + 28800],
                            "attrs": attrs,
                        }
                    )
                    out += nl
                    n_out += 1
                    by_type[t] += 1
                    stats.events += 1
                    continue
                r = rnd()
                pi = picks[i]
                fast = fast_streams[pi]
                if r >= clean_from and fast is not None:
                    # The hot path (over 99 % of lines): an ordinary, clean event.
                    etype, members, nmem, pool, npool, pshare, make, track, pts = fast
                    if npool and rnd() < pshare:
                        j = pool[int(rnd() * npool)]
                    else:
                        j = int(rnd() * nmem)
                    seq += 1
                    eid = fmt % seq
                    last = dumps(
                        {
                            "id": eid,
                            "type": etype,
                            "subject": members[j],
                            "at": day_prefix + table[secs[i]],
                            "attrs": make(),
                        },
                        option=with_nl,
                    )
                    out += last
                    n_out += 1
                    counts[pi] += 1
                    if track:
                        if pts > 0:
                            wallet[j] += pts
                        score[j] += pts
                    if pts < 0:
                        if len(penalties) < 4096:
                            penalties.append((eid, members[j], pi))
                        else:
                            penalties[int(rnd() * 4096)] = (eid, members[j], pi)
                    continue
                at = day_prefix + table[secs[i]]
                if p_bad <= r < p_dup and last is not None:
                    out += last
                    n_out += 1
                    stats.duplicates += 1
                    continue
                st = streams[pi]
                seq += 1
                eid = fmt % seq
                if r < p_bad:
                    if st.kind != "normal":
                        st = common
                    attrs = st.make()
                    rec: dict[str, Any] = {
                        "id": eid,
                        "type": st.type,
                        "subject": st.members[int(rnd() * len(st.members))],
                        "at": at,
                        "attrs": attrs,
                    }
                    out += self._bad(rec, rnd)
                    out += nl
                    n_out += 1
                    continue
                late = p_dup <= r < p_dup + p_late and not is_last_month
                kind = st.kind
                if kind == "normal":
                    if st.pool and rnd() < st.pool_share:
                        j = st.pool[int(rnd() * len(st.pool))]
                    else:
                        j = int(rnd() * len(st.members))
                    sid = st.members[j]
                    attrs = st.make()
                    if st.has_date:
                        attrs = dict(attrs)
                        for name, spec in self.scheme.event_types[st.type].attrs.items():
                            if spec.type == "date" and name in attrs:
                                attrs[name] = day_prefix
                    rec = {"id": eid, "type": st.type, "subject": sid, "at": at, "attrs": attrs}
                    if st.group == "residents" and st.points:
                        if st.points > 0:
                            wallet[j] += st.points
                        score[j] += st.points
                    if st.points < 0 and not late:
                        if len(penalties) < 4096:
                            penalties.append((eid, sid, picks[i]))
                        else:
                            penalties[int(rnd() * 4096)] = (eid, sid, picks[i])
                elif (
                    kind == "redeem"
                    and (redeem := self._redeem(eid, at, items, res_group, multi)) is not None
                ):
                    rec = redeem
                elif kind == "withdraw" and penalties:
                    k = int(rnd() * len(penalties))
                    target, sid, _ = penalties[k]
                    penalties[k] = penalties[-1]
                    penalties.pop()
                    rec = {
                        "id": eid,
                        "type": "withdraw",
                        "subject": sid,
                        "at": at,
                        "attrs": {"target": target, "reason": "录入错误，经核实撤销"},
                    }
                elif kind == "objection" and (penalties or open_objections):
                    if open_objections and (rnd() < 0.5 or not penalties):
                        k = int(rnd() * len(open_objections))
                        target, sid = open_objections[k]
                        open_objections[k] = open_objections[-1]
                        open_objections.pop()
                        status = "upheld" if rnd() < 0.4 else "rejected"
                        rec = {
                            "id": eid,
                            "type": "objection",
                            "subject": sid,
                            "at": at,
                            "attrs": {"target": target, "status": status},
                        }
                    else:
                        k = int(rnd() * len(penalties))
                        target, sid, _ = penalties[k]
                        penalties[k] = penalties[-1]
                        penalties.pop()
                        open_objections.append((target, sid))
                        rec = {
                            "id": eid,
                            "type": "objection",
                            "subject": sid,
                            "at": at,
                            "attrs": {
                                "target": target,
                                "status": "open",
                                "reason": "对处理结果有异议，申请复核",
                            },
                        }
                elif kind == "amend" and penalties:
                    k = int(rnd() * len(penalties))
                    target, sid, si = penalties[k]
                    penalties[k] = penalties[-1]
                    penalties.pop()
                    src = streams[si]
                    rec = {
                        "id": eid,
                        "type": src.type,
                        "subject": sid,
                        "at": at,
                        "attrs": src.make(),
                        "amends": target,
                    }
                    kind = "normal"
                else:
                    # Nothing to correct or redeem yet: the most common event instead.
                    st = common
                    j = int(rnd() * len(st.members))
                    rec = {
                        "id": eid,
                        "type": st.type,
                        "subject": st.members[j],
                        "at": at,
                        "attrs": st.make(),
                    }
                if kind != "normal":  # system events: only the attributes the scheme declares
                    rec["attrs"] = {
                        k: v for k, v in rec["attrs"].items() if k in declared[rec["type"]]
                    }
                line = dumps(rec, option=with_nl)
                by_type[rec["type"]] += 1
                stats.events += 1
                if late:
                    late_buffer += line
                    n_late += 1
                    stats.late += 1
                    continue
                out += line
                n_out += 1
                last = line
            yield month, out, n_out
        for pi, c in enumerate(counts):
            if c:
                by_type[streams[pi].type] += c
                stats.events += c
        if late_buffer:  # cannot happen (the last month keeps its late draws); never drop lines
            yield months[-1], late_buffer, n_late

    def _bad(self, rec: dict[str, Any], rnd: Callable[[], float]) -> bytes:
        stats = self.stats
        r = rnd()
        if r < 0.25:
            stats.bad["malformed"] += 1
            line = orjson.dumps(rec)
            return line[: max(10, int(len(line) * (0.3 + 0.5 * rnd())))]
        if r < 0.5:
            stats.bad["unknown_type"] += 1
            rec["type"] = _TYPO_TYPES[int(rnd() * len(_TYPO_TYPES))]
            return orjson.dumps(rec)
        if r < 0.75 and self.bad_ranges:
            stats.bad["out_of_range"] += 1
            t, a, v = self.bad_ranges[int(rnd() * len(self.bad_ranges))]
            et = self.scheme.event_types[t]
            members = next(s.members for s in self.streams if s.type == t and s.kind == "normal")
            rec["type"] = t
            rec["subject"] = members[int(rnd() * len(members))]
            rec["attrs"] = {n: g for n, g in self._valid_attrs(et).items()}
            rec["attrs"][a] = v
            rec.pop("amends", None)
            return orjson.dumps(rec)
        stats.bad["missing_field"] += 1
        del rec["subject" if rnd() < 0.6 else "at"]
        return orjson.dumps(rec)

    def _valid_attrs(self, et: EventType) -> dict[str, Any]:
        for s in self.streams:
            if s.type == et.id and s.kind == "normal":
                return s.make()
        return {}

    def _redeem_items(self) -> list[tuple[str, int, int, str | None, float, float]]:
        """(id, cost, tier rank needed, ..., from, until) of items residents may redeem."""
        out = []
        res = self.scheme.groups.get("residents")
        for it in self.scheme.catalog.values():
            if it.groups is not None and "residents" not in it.groups:
                continue
            rank = res.tier_rank(it.min_tier) if (res and it.min_tier) else 99
            out.append(
                (
                    it.id,
                    it.cost,
                    rank,
                    it.min_tier,
                    float(it.available_from if it.available_from is not None else -1e18),
                    float(it.available_until if it.available_until is not None else 1e18),
                )
            )
        return out

    def _redeem(
        self, eid: str, at: str, items: list[Any], res_group: Any, multi: set[str]
    ) -> dict[str, Any] | None:
        """A redemption by a resident who (roughly) earned enough, or None if none found.

        The wallet figures are estimates (caps are ignored), so the engine
        still rejects some requests, as it does in real life; a few requests
        are made regardless of the estimate.
        """
        if not items:
            return None
        rnd = self.rng.random
        ids = self.pop.resident_ids
        wallet, score = self.wallet, self.score
        base = res_group.base_score if res_group else 1000
        choice: tuple[int, Any] | None = None
        for _ in range(12):
            j = int(rnd() * len(ids))
            w = wallet[j] * 0.8  # slack for caps the estimate ignores
            tier_rank = res_group.tier_rank(res_group.tier_of(base + score[j])) if res_group else 0
            fits = [it for it in items if it[1] <= w and tier_rank <= it[2]]
            if fits:
                choice = (j, fits[int(rnd() * len(fits))])
                break
        if choice is None:
            if rnd() >= 0.005:
                return None
            choice = (int(rnd() * len(ids)), min(items, key=lambda x: x[1]))
        j, it = choice
        wallet[j] = max(0, wallet[j] - it[1])
        attrs: dict[str, Any] = {"item": it[0]}
        if rnd() < 0.1:
            attrs["quantity"] = 1
        if ids[j] in multi:
            attrs["group"] = "residents"
        return {"id": eid, "type": "redeem", "subject": ids[j], "at": at, "attrs": attrs}


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def generate_county(
    out_dir: str | Path,
    scheme: Scheme | str | Path,
    *,
    seed: int = DEFAULT_SEED,
    events: int = 100_000,
    months: tuple[str, ...] | list[str] = DEFAULT_MONTHS,
    residents: int = 20_000,
    dirty: bool = True,
) -> DemoFiles:
    """Write ``subjects.jsonl`` and ``events-<month>.jsonl`` per month into ``out_dir``.

    ``events`` is the number of lines written over all events files (good
    events, dirty records and repeats together). Same arguments, same bytes.
    """
    if events < 0:
        raise UsageError("demo: --events must be zero or more")
    if not months:
        raise UsageError("demo: give at least one month")
    sch = _as_scheme(scheme)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pop = _build_population(sch, rng, residents)
    subjects_path = out / "subjects.jsonl"
    write_subjects(subjects_path, pop.records)
    gen = _Generator(sch, pop, rng, tuple(months), events, dirty=dirty)
    paths = [out / f"events-{m}.jsonl" for m in gen.months]
    files: dict[str, BinaryIO] = {}
    try:
        for m, p in zip(gen.months, paths, strict=True):
            files[m] = open(p, "wb")  # noqa: SIM115 (closed below)
        for month, chunk, count in gen.lines_by_day():
            files[month].write(chunk)
            name = f"events-{month}.jsonl"
            gen.stats.per_file[name] = gen.stats.per_file.get(name, 0) + count
            gen.stats.lines += count
    finally:
        for f in files.values():
            f.close()
    _finish_stats(gen.stats, sch, pop)
    return DemoFiles(subjects=subjects_path, events=paths, stats=gen.stats)


def generate_events_file(
    path: str | Path,
    scheme: Scheme | str | Path,
    *,
    n: int,
    seed: int = DEFAULT_SEED,
    months: tuple[str, ...] | list[str] = DEFAULT_MONTHS,
    residents: int = 20_000,
    subjects: str | Path | None = None,
    dirty: bool = True,
) -> DemoStats:
    """Write ``n`` event lines of the synthetic county into one file (for benchmarks).

    ``subjects``: also write the matching subjects file there, so the events
    can be ingested.
    """
    sch = _as_scheme(scheme)
    rng = random.Random(seed)
    pop = _build_population(sch, rng, residents)
    if subjects is not None:
        write_subjects(Path(subjects), pop.records)
    gen = _Generator(sch, pop, rng, tuple(months), n, dirty=dirty)
    with open(path, "wb") as f:
        for _, chunk, count in gen.lines_by_day():
            f.write(chunk)
            gen.stats.lines += count
    gen.stats.per_file[Path(path).name] = gen.stats.lines
    _finish_stats(gen.stats, sch, pop)
    return gen.stats


def _finish_stats(stats: DemoStats, scheme: Scheme, pop: _Population) -> None:
    stats.populations = {g: len(m) for g, m in pop.members.items()}
    stats.subjects = len(pop.records)
    stats.bad_codes = list(pop.bad_codes)
