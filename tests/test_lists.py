"""Red/grey lists: reasons, publication windows, repair, reversal and objection flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scoring import ledger
from scoring.durations import parse_duration
from scoring.errors import UsageError
from scoring.lists import all_lists, list_members
from scoring.loader import load_scheme
from scoring.model import ListDef, ListReason
from scoring.periods import close_month

MINI = Path(__file__).parent / "fixtures" / "mini" / "rules"
G1 = "S01C01G01"


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(MINI, check=False)


@pytest.fixture
def db():
    return ledger.memory_db()


def day_end(scheme, d: str) -> int:
    return scheme.clock.end_of_day(d)


def subject(db, sid, groups=("merchants",), name=None):
    db.execute(
        "INSERT INTO subjects (id, kind, name, grid) VALUES (?, 'organization', ?, ?)",
        [sid, name or sid, G1],
    )
    for g in groups:
        db.execute("INSERT INTO memberships (subject, grp) VALUES (?, ?)", [sid, g])


def entry(db, scheme, sid, points, when, *, rule="mer-counterfeit", event="ev1", reason="match",
          ref=None, grp="merchants", period=None, grade=None, grade_until=None, expires_at=None) -> int:  # fmt: skip
    at = scheme.clock.parse_time(when)
    cur = db.execute(
        "INSERT INTO entries (subject, grp, account, points, wallet, rule, event, at, period, reason, ref,"
        " grade, grade_until, expires_at) VALUES (?, ?, 'score', ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sid, grp, points, rule, event, at, period or scheme.clock.month(at), reason, ref,
         grade, grade_until, expires_at],
    )  # fmt: skip
    return cur.lastrowid


def objection(db, target, status):
    db.execute(
        "INSERT INTO objections (target, event, status) VALUES (?, 'obj1', ?)"
        " ON CONFLICT(target) DO UPDATE SET status = excluded.status",
        [target, status],
    )


def reasons(members):
    return {m.subject: [(r.kind, r.text, r.objection) for r in m.reasons] for m in members}


@pytest.fixture
def counterfeit(db, scheme):
    subject(db, "M1", name="好邻居超市")
    subject(db, "M2")
    return entry(db, scheme, "M1", -50, "2024-03-05T10:00:00")


def test_rule_reason_text_and_window(counterfeit, db, scheme):
    (m,) = list_members(db, scheme, "grey", day_end(scheme, "2024-03-31"))
    assert (m.subject, m.group, m.name, m.score, m.tier) == (
        "M1",
        "merchants",
        "好邻居超市",
        950,
        "B",
    )
    (r,) = m.reasons
    assert r.text == "2024-03-05 销售假冒伪劣商品（扣50分），公示至2027-03-05"
    assert r.heading == "三年内有销售假冒伪劣商品行为"
    assert (r.kind, r.since, r.until, r.rule, r.entry_id, r.objection) == (
        "rule", "2024-03-05", "2027-03-05", "mer-counterfeit", counterfeit, False,
    )  # fmt: skip
    # before the event: not listed
    assert list_members(db, scheme, "grey", day_end(scheme, "2024-03-04")) == []


def test_exit_on_expiry(counterfeit, db, scheme):
    at = scheme.clock.parse_time("2027-03-05T10:00:00")
    assert [m.subject for m in list_members(db, scheme, "grey", at - 1)] == ["M1"]
    assert list_members(db, scheme, "grey", at) == []  # three years on to the second


def test_exit_on_repair(counterfeit, db, scheme):
    entry(
        db, scheme, "M1", 50, "2024-06-01T09:00:00", event="fix1", reason="repair", ref=counterfeit
    )
    assert [m.subject for m in list_members(db, scheme, "grey", day_end(scheme, "2024-05-31"))] == [
        "M1"
    ]
    assert list_members(db, scheme, "grey", day_end(scheme, "2024-06-01")) == []


def test_exit_on_reversal(counterfeit, db, scheme):
    entry(
        db, scheme, "M1", 50, "2024-04-02T09:00:00", event="wd1", reason="reversal", ref=counterfeit
    )
    assert list_members(db, scheme, "grey", day_end(scheme, "2024-04-02")) == []


def test_objection_flag_on_and_off(counterfeit, db, scheme):
    as_of = day_end(scheme, "2024-04-30")
    objection(db, "ev1", "open")
    (m,) = list_members(db, scheme, "grey", as_of)
    assert m.objection and m.reasons[0].objection
    assert m.as_dict()["objection"] is True
    objection(db, "ev1", "rejected")
    (m,) = list_members(db, scheme, "grey", as_of)
    assert not m.objection and not m.reasons[0].objection


def test_tier_reasons_and_direct_grading(db, scheme):
    subject(db, "M1")
    subject(db, "M2")
    subject(db, "M3")
    subject(db, "R1", groups=("residents",))
    entry(db, scheme, "M1", 35, "2024-01-10", rule="x", event="e1")  # 1035 → AA: red
    entry(db, scheme, "M2", -200, "2024-01-10", rule="x", event="e2")  # 800 → C: grey
    until = scheme.clock.parse_time("2027-01-10")
    entry(db, scheme, "M3", 0, "2024-01-10", rule="x", event="e3", grade="C", grade_until=until)
    entry(
        db, scheme, "R1", 100, "2024-01-10", rule="x", event="e4", grp="residents"
    )  # residents: not in lists
    lists = all_lists(db, scheme, day_end(scheme, "2024-02-01"))
    assert reasons(lists["red"]) == {"M1": [("tier", "信用等级为AA级", False)]}
    assert lists["red"][0].reasons[0].heading == "信用等级达到AA级及以上"
    assert reasons(lists["grey"]) == {
        "M2": [("tier", "信用等级为C级", False)],
        "M3": [("tier", "信用等级为C级（直接判级）", False)],
    }
    assert lists["grey"][0].reasons[0].heading == "信用等级为C级、D级"
    graded = lists["grey"][1].reasons[0]
    assert (graded.since, graded.until, graded.rule, graded.objection) == (
        "2024-01-10",
        "2027-01-10",
        "x",
        False,
    )
    objection(db, "e3", "open")  # the grading is disputed: flagged
    assert reasons(all_lists(db, scheme, day_end(scheme, "2024-02-01"))["grey"])["M3"] == [
        ("tier", "信用等级为C级（直接判级）", True)
    ]


def test_severity_and_score_reasons(db, scheme):
    subject(db, "M1")
    subject(db, "M2")
    e1 = entry(db, scheme, "M1", -50, "2024-01-10T08:00:00")  # mer-counterfeit: serious
    entry(
        db, scheme, "M1", 0, "2024-02-10T08:00:00", event="ev2", reason="capped"
    )  # capped: no offence
    ld = ListDef(
        id="watch", title="关注名单", groups=["merchants"],
        reasons=[
            ListReason(severity="serious", within=parse_duration("6 months")),
            ListReason(max_score=1000),
        ],
    )  # fmt: skip
    members = list_members(db, scheme, ld, day_end(scheme, "2024-03-01"))
    assert reasons(members) == {
        "M1": [
            ("severity", "2024-01-10 销售假冒伪劣商品（扣50分），公示至2024-07-10", False),
            ("score", "信用分为950分", False),
        ],
        "M2": [("score", "信用分为1000分", False)],
    }
    assert members[0].reasons[0].heading == "6个月内有严重失信行为"
    assert members[0].reasons[0].entry_id == e1
    later = list_members(db, scheme, ld, scheme.clock.parse_time("2024-07-10T08:00:00"))
    assert reasons(later)["M1"] == [("score", "信用分为950分", False)]


def test_published_month_view_ignores_late_entries(counterfeit, db, scheme):
    close_month(db, scheme, "2024-03")
    # a late March offence by M2, posted to April after March was published
    entry(db, scheme, "M2", -50, "2024-03-20T10:00:00", event="late1", period="2024-04")
    assert [m.subject for m in list_members(db, scheme, "grey", month="2024-03")] == ["M1"]
    assert [m.subject for m in list_members(db, scheme, "grey", month="2024-04")] == ["M1", "M2"]


def test_unknown_list(db, scheme):
    with pytest.raises(UsageError, match="no list 'blue' in scheme.yaml; lists: red, grey"):
        list_members(db, scheme, "blue", 0)


def test_list_without_window_uses_entry_expiry(db, scheme):
    subject(db, "M1")
    exp = scheme.clock.parse_time("2025-01-10T08:00:00")
    entry(db, scheme, "M1", -50, "2024-01-10T08:00:00", expires_at=exp)
    s = dataclasses.replace(
        scheme, lists=[ListDef("g", "灰榜", ["merchants"], [ListReason(rules=["mer-counterfeit"])])]
    )
    (m,) = list_members(db, s, "g", day_end(s, "2024-12-31"))
    assert m.reasons[0].text == "2024-01-10 销售假冒伪劣商品（扣50分），公示至2025-01-10"
    assert m.reasons[0].heading == "有销售假冒伪劣商品行为"
    assert list_members(db, s, "g", exp) == []
