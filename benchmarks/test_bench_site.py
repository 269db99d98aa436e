"""Publish speed: pytest-benchmark cases for ``write_month_site`` on a generated month.

    .venv/bin/pytest benchmarks/test_bench_site.py --benchmark-enable

About 2,000 persons (plus 100 merchants) in 12 communities, each with a few
ledger entries. ``warm`` publishes with the look-up key cache filled (a later
month: pages, open data and 2,000 encrypted look-up files); ``keys`` is the
PBKDF2 key derivation of the first publish alone, at the real iteration
count. The full demo county is measured by ``bench_site.py``.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from scoring.publish import (
    GridInfo,
    GridRank,
    GroupInfo,
    LookupAccount,
    LookupEntry,
    MonthData,
    SubjectRank,
    TierInfo,
    write_month_site,
)
from scoring.publish.lookup import ITERATIONS, LookupKeys
from scoring.rank import competition_ranks

SECRET = b"benchmark-secret"


def ranks_of(scores: list) -> list[int]:
    """Competition ranks ("1224") of scores in any order, highest first, from rank.py's."""
    order = sorted(scores, reverse=True)
    first: dict = {}
    for s, r in zip(order, competition_ranks(order), strict=True):
        first.setdefault(s, r)
    return [first[s] for s in scores]


TIERS = [
    TierInfo("AAA", "诚信模范", 1050, None),
    TierInfo("AA", "诚信先进", 1030, 1049),
    TierInfo("A", "诚信", 960, 1029),
    TierInfo("B", "基本诚信", 850, 959),
    TierInfo("C", "诚信警示", None, 849),
]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚"
RULES = ["参加志愿服务", "垃圾分类检查合格", "调解邻里纠纷", "占用消防通道", "文明养犬"]


def _tier(score: int) -> str:
    return next(t.id for t in TIERS if t.min is None or score >= t.min)


def generate_month(persons: int = 2_000, month: str = "2024-03", seed: int = 1) -> MonthData:
    """A month of a small county: ``persons`` residents and 100 merchants."""
    rnd = random.Random(seed)
    grids = [
        GridInfo(
            f"S{s:02d}C{c:02d}G{g:02d}",
            f"第{s}街道第{c}社区第{g}网格",
            f"S{s:02d}C{c:02d}",
            f"第{s}街道第{c}社区",
            f"S{s:02d}",
            f"第{s}街道",
        )
        for s in range(1, 4)
        for c in range(1, 5)
        for g in range(1, 6)
    ]

    def rows(group: str, n: int, kind: str) -> list[SubjectRank]:
        scores = [
            rnd.choice((1000, 990, 1010, 1040, 960, 900)) + rnd.randint(-5, 5) for _ in range(n)
        ]
        ranks = ranks_of(scores)
        out = []
        for i, (score, rank) in enumerate(zip(scores, ranks)):
            name = rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(2))
            out.append(
                SubjectRank(
                    subject=f"{group[:1].upper()}{i:06d}",
                    name=name if kind == "person" else name + "商店",
                    grid=grids[i % len(grids)].id,
                    score=score,
                    tier=_tier(score),
                    rank=rank,
                    previous_rank=rank + rnd.randint(-3, 3) if i % 10 else None,
                    earned=rnd.randint(-10, 20),
                    wallet=rnd.randint(0, 80),
                    kind=kind,
                    code=f"9137032{i:011d}" if kind != "person" else None,
                )
            )
        return out

    residents = rows("residents", persons, "person")
    merchants = rows("merchants", 100, "organization")
    lookup = [
        LookupAccount(
            subject=r.subject,
            group="residents",
            score=r.score,
            wallet=r.wallet,
            tier=r.tier,
            name=r.name,
            entries=[
                LookupEntry(f"{month}-{d:02d}", rnd.choice(RULES), rnd.choice((2, 4, -5)))
                for d in sorted(rnd.sample(range(1, 29), rnd.randint(1, 5)))
            ],
        )
        for r in residents
    ]
    means: dict[str, list[int]] = {}
    for r in residents:
        means.setdefault(r.grid, []).append(r.score)
    grid_means = {g: sum(v) / len(v) for g, v in means.items()}
    grid_ranks = ranks_of(list(grid_means.values()))
    by_id = {g.id: g for g in grids}
    return MonthData(
        title="基准测试县网格化治理信用积分",
        month=month,
        groups=[
            GroupInfo("residents", "居民", "person", TIERS),
            GroupInfo("merchants", "市场主体", "organization", TIERS),
        ],
        grids=grids,
        rankings={"residents": residents, "merchants": merchants},
        grid_rankings=[
            GridRank(g, by_id[g].name, by_id[g].community, m, len(means[g]), rk)
            for (g, m), rk in zip(grid_means.items(), grid_ranks)
        ],
        lookup=lookup,
    )


def test_bench_publish_warm(benchmark, tmp_path):
    data = generate_month()
    private = tmp_path / "private"
    write_month_site("2024-03", data, tmp_path / "first", secret=SECRET, private_dir=private)
    counter = iter(range(10**6))

    def run() -> list[Path]:
        site = tmp_path / f"site{next(counter)}"
        paths = write_month_site("2024-03", data, site, secret=SECRET, private_dir=private)
        shutil.rmtree(site)  # the next round writes every file again
        return paths

    paths = benchmark.pedantic(run, rounds=3, iterations=1)
    assert sum(1 for p in paths if p.parent.name == "lookup" and p.suffix == ".js") == 2_000
    assert any(p.name == "manifest.json" for p in paths)


def test_bench_key_derivation(benchmark):
    subjects = [f"R{i:06d}" for i in range(200)]

    def run() -> int:
        return len(LookupKeys(SECRET, subjects, iterations=ITERATIONS).result())

    assert benchmark.pedantic(run, rounds=3, iterations=1) == 200
