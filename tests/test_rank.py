"""Rankings: competition ranks, tie display order, movement, grids, redemptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring import ledger
from scoring.loader import load_scheme
from scoring.periods import close_month
from scoring.rank import (
    competition_ranks,
    grid_rankings,
    month_rankings,
    rankings,
    redemption_report,
)

MINI = Path(__file__).parent / "fixtures" / "mini" / "rules"
G1, G2, G3, G4 = "S01C01G01", "S01C01G02", "S01C02G01", "S01C02G02"  # G1, G2 东社区; G3, G4 西社区


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(MINI, check=False)


@pytest.fixture
def db():
    return ledger.memory_db()


def subject(db, sid, grid, groups=("residents",), name=None, kind="person"):
    db.execute(
        "INSERT INTO subjects (id, kind, name, grid) VALUES (?, ?, ?, ?)",
        [sid, kind, name or sid, grid],
    )
    for g in groups:
        db.execute("INSERT INTO memberships (subject, grp) VALUES (?, ?)", [sid, g])


def entry(db, scheme, sid, points, when, grp="residents"):
    at = scheme.clock.parse_time(when)
    db.execute(
        "INSERT INTO entries (subject, grp, account, points, wallet, rule, event, at, period, reason)"
        " VALUES (?, ?, 'score', ?, 0, 'r', 'e', ?, ?, 'match')",
        [sid, grp, points, at, scheme.clock.month(at)],
    )


@pytest.fixture
def town(db, scheme):
    # March: R1 1030; R2 1020 (earned 20 in March); R3 1020 (earned 40 in March); R4 1000
    subject(db, "R1", G1)
    subject(db, "R2", G1)
    subject(db, "R3", G2)
    subject(db, "R4", G3)
    entry(db, scheme, "R1", 30, "2024-02-15")
    entry(db, scheme, "R2", 20, "2024-03-02")
    entry(db, scheme, "R3", -20, "2024-02-01")
    entry(db, scheme, "R3", 40, "2024-03-03")
    return db


def test_competition_ranks():
    assert competition_ranks([30, 20, 20, 10]) == [1, 2, 2, 4]
    assert competition_ranks([5, 5, 5]) == [1, 1, 1]
    assert competition_ranks([]) == []


def test_ties_share_a_rank_and_display_in_stated_order(town, scheme):
    (table,) = rankings(town, scheme, "2024-03", group="residents")
    assert (table.within, table.scope_id, table.previous_month) == ("scheme", "mini", None)
    # R3 before R2: same score, R3 earned more in March
    assert [(r.subject, r.score, r.earned, r.rank) for r in table.rows] == [
        ("R1", 1030, 0, 1),
        ("R3", 1020, 40, 2),
        ("R2", 1020, 20, 2),
        ("R4", 1000, 0, 4),
    ]
    r3 = table.rows[1]
    assert (r3.grid, r3.community, r3.street, r3.tier, r3.name) == (G2, "S01C01", "S01", "A", "R3")
    assert all(r.previous_rank is None and r.movement is None for r in table.rows)


def test_ranking_by_points_earned(town, scheme):
    (table,) = rankings(town, scheme, "2024-03", group="residents", by="earned")
    # R1 and R4 tie at 0 earned; R1 shows first (higher score)
    assert [(r.subject, r.rank) for r in table.rows] == [("R3", 1), ("R2", 2), ("R1", 3), ("R4", 3)]


def test_rankings_per_community_and_grid(town, scheme):
    comm = rankings(town, scheme, "2024-03", group="residents", within="community")
    assert [(t.scope_id, t.scope_name, [(r.subject, r.rank) for r in t.rows]) for t in comm] == [
        ("S01C01", "东社区", [("R1", 1), ("R3", 2), ("R2", 2)]),
        ("S01C02", "西社区", [("R4", 1)]),
    ]
    grids = rankings(town, scheme, "2024-03", group="residents", within="grid")
    assert [(t.scope_id, [r.subject for r in t.rows]) for t in grids] == [
        (G1, ["R1", "R2"]),
        (G2, ["R3"]),
        (G3, ["R4"]),
    ]


def test_movement_since_last_published_month(town, scheme):
    db = town
    close_month(db, scheme, "2024-02")  # Feb: R1 1030 (1), R2 1000 (2), R4 1000 (2), R3 980 (4)
    subject(db, "R5", G4)  # joins in March: new
    entry(db, scheme, "R5", 50, "2024-03-10")
    (table,) = rankings(db, scheme, "2024-03", group="residents")
    assert table.previous_month == "2024-02"
    assert [(r.subject, r.rank, r.previous_rank, r.movement) for r in table.rows] == [
        ("R5", 1, None, None),
        ("R1", 2, 1, -1),
        ("R3", 3, 4, 1),
        ("R2", 3, 2, -1),
        ("R4", 5, 2, -3),
    ]
    # an unpublished April compares with the last published month, March being open
    (april,) = rankings(db, scheme, "2024-04", group="residents")
    assert april.previous_month == "2024-02"


def test_closed_month_rankings_use_frozen_figures(town, scheme):
    db = town
    close_month(db, scheme, "2024-02")
    close_month(db, scheme, "2024-03")
    # a late March event for R4, posted to April
    at = scheme.clock.parse_time("2024-03-20")
    db.execute(
        "INSERT INTO entries (subject, grp, account, points, wallet, rule, event, at, period, reason)"
        " VALUES ('R4', 'residents', 'score', 100, 0, 'r', 'late', ?, '2024-04', 'match')",
        [at],
    )
    (march,) = rankings(db, scheme, "2024-03", group="residents")
    assert [(r.subject, r.score) for r in march.rows][-1] == ("R4", 1000)
    (april,) = rankings(db, scheme, "2024-04", group="residents")
    top = april.rows[0]
    assert (top.subject, top.score, top.earned, top.rank, top.previous_rank, top.movement) == (
        "R4", 1100, 100, 1, 4, 3,
    )  # fmt: skip


def test_month_rankings_cover_groups_values_and_scopes(town, scheme):
    tables = month_rankings(town, scheme, "2024-03")
    kinds = {(t.group, t.by, t.within) for t in tables}
    assert ("residents", "score", "community") in kinds and ("residents", "earned", "grid") in kinds
    assert not any(t.group == "merchants" for t in tables)  # no merchant accounts: no tables


def test_grid_rankings_by_mean_resident_score(town, scheme):
    db = town
    subject(db, "M1", G4, groups=("merchants",), kind="organization")  # not a resident
    (table,) = grid_rankings(db, scheme, "2024-03")
    # G1 (1030 + 1020) / 2 = 1025; G2 1020; G3 1000; G4 no residents
    assert [(r.grid, r.residents, r.mean_score, r.rank) for r in table.rows] == [
        (G1, 2, 1025.0, 1),
        (G2, 1, 1020.0, 2),
        (G3, 1, 1000.0, 3),
        (G4, 0, None, None),
    ]
    per_comm = grid_rankings(db, scheme, "2024-03", within="community")
    assert [(t.scope_id, [(r.grid, r.rank) for r in t.rows]) for t in per_comm] == [
        ("S01C01", [(G1, 1), (G2, 2)]),
        ("S01C02", [(G3, 1), (G4, None)]),
    ]


def test_grid_ties_and_movement(town, scheme):
    db = town
    close_month(db, scheme, "2024-02")  # Feb means: G1 1015, G2 980, G3 1000
    entry(db, scheme, "R4", 25, "2024-03-20")  # G3 now 1025, ties G1
    (table,) = grid_rankings(db, scheme, "2024-03")
    assert [(r.grid, r.mean_score, r.rank, r.previous_rank, r.movement) for r in table.rows] == [
        (G1, 1025.0, 1, 1, 0),
        (G3, 1025.0, 1, 2, 1),
        (G2, 1020.0, 3, 3, 0),
        (G4, None, None, None, None),
    ]


def test_grid_means_round_once_to_the_decimal_shown_and_tie_as_shown(db, scheme):
    """Found in review: means were rounded to 2 decimals, then shown with 1
    (1007.446 → 1007.45 → 1007.5), and grids that showed the same mean ranked
    apart. Now: one rounding, half up, to the 1 decimal the site shows."""
    people = {G1: [1007, 1008, 1007], G2: [1007, 1008, 1007, 1008], G3: [1005, 1006]}
    # G1 3022/3 = 1007.333 → 1007.3; G2 4030/4 = 1007.5; G3 2011/2 = 1005.5
    n = 0
    for grid, scores in people.items():
        for score in scores:
            n += 1
            subject(db, f"R{n}", grid)
            entry(db, scheme, f"R{n}", score - 1000, "2024-03-02")
    subject(db, "R98", G4)
    entry(db, scheme, "R98", 7, "2024-03-02")
    subject(db, "R99", G4)
    entry(db, scheme, "R99", 8, "2024-03-02")  # 2015/2 = 1007.5, ties G2 as shown
    (table,) = grid_rankings(db, scheme, "2024-03")
    assert [(r.grid, r.mean_score, r.rank) for r in table.rows] == [
        (G2, 1007.5, 1),
        (G4, 1007.5, 1),
        (G1, 1007.3, 3),
        (G3, 1005.5, 4),
    ]


def test_a_mean_is_rounded_once_half_up():
    from scoring.rank import _tenths

    assert [_tenths(101752, 101), _tenths(1007252, 1000), _tenths(15, 10), _tenths(-15, 10)] == [
        1007.4,  # 1007.4455: was 1007.5 after rounding to 1007.45 first
        1007.3,
        1.5,
        -1.5,
    ]


def test_redemption_report(db, scheme):
    subject(db, "R1", G1, name="张三")
    subject(db, "R2", G1, name="李四")
    subject(db, "M1", G1, groups=("merchants",), name="好邻居超市", kind="organization")
    rows = [
        ("x1", "R1", "rice-5kg", 1, 50, "granted", None, "2024-03", "M1"),
        ("x2", "R1", "rice-5kg", 2, 100, "rejected", "insufficient_points", "2024-03", "M1"),
        ("x3", "R2", "haircut", 2, 30, "granted", None, "2024-03", None),
        ("x4", "R2", "nope", 1, 0, "rejected", "unknown_item", "2024-03", None),
        ("x5", "R2", "haircut", 1, 15, "granted", None, "2024-04", None),
    ]
    for ev, s, item, q, cost, outcome, code, period, partner in rows:
        db.execute(
            "INSERT INTO redemptions (event, subject, grp, item, quantity, cost, outcome, reason_code, at, period, partner)"
            " VALUES (?, ?, 'residents', ?, ?, ?, ?, ?, 0, ?, ?)",
            [ev, s, item, q, cost, outcome, code, period, partner],
        )
    rep = redemption_report(db, scheme, "2024-03")
    assert (rep.requests, rep.granted, rep.refused, rep.points) == (4, 2, 2, 80)
    assert rep.refused_by_reason == {"insufficient_points": 1, "unknown_item": 1}
    items = {
        i["item"]: (i["title"], i["granted"], i["quantity"], i["points"], i["refused"])
        for i in rep.by_item
    }
    assert items == {
        "haircut": ("理发服务券", 1, 2, 30, 0),
        "nope": ("", 0, 0, 0, 1),
        "rice-5kg": ("东北大米5公斤", 1, 1, 50, 1),
    }
    assert [(s["subject"], s["name"], s["points"], s["refused"]) for s in rep.by_subject] == [
        ("R1", "张三", 50, 1),
        ("R2", "李四", 30, 1),
    ]
    assert [(p["partner"], p["name"], p["granted"], p["requests"]) for p in rep.by_partner] == [
        ("M1", "好邻居超市", 1, 2)
    ]
    assert redemption_report(db, scheme).requests == 5
