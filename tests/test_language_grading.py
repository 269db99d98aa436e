"""Grading as an effect: a rule may grade without points, ``also`` passes a grading on,
conditions read the subject's state at the event (subject.graded, subject.tier), and
``withhold`` writes a bonus not counted while the condition holds, saying why."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ev, put
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.errors import SchemeError
from scoring.evaluate import score
from scoring.ledger import balances, memory_db
from scoring.loader import load_scheme
from scoring.render import render_rule

WEIHAI = Path(__file__).resolve().parent.parent / "examples" / "weihai"
PEOPLE = [
    {"id": "P1", "groups": ["persons"], "name": "张三", "grid": "LS01G1"},
    {"id": "P2", "groups": ["persons"], "name": "李四", "grid": "LS01G1"},
    {"id": "O1", "groups": ["organisations"], "name": "文登某公司", "grid": "LS01G1",
     "links": {"legal_representative": "P2"}},
]  # fmt: skip


def test_a_condition_reads_the_tier_at_the_event(engine_scheme) -> None:
    s = engine_scheme(residents=[
        {"id": "vol", "title": "志愿", "on": "volunteer", "points": {"per": "hours", "value": 10}},
        {"id": "star", "title": "优秀等级再奖励", "on": "sorting", "points": 5,
         "when": {"subject.tier": "A"}},
    ])  # fmt: skip
    db = memory_db()
    put(db, s, [
        ev("s1", "sorting", "P1", "2024-03-01T10:00"),  # 1000: tier B, no bonus
        ev("v1", "volunteer", "P1", "2024-03-02T10:00", hours=3),  # 1030: A
        ev("s2", "sorting", "P1", "2024-03-03T10:00"),  # A at the event: +5
    ])  # fmt: skip
    score(db, s)
    got = db.execute("SELECT event, points FROM entries ORDER BY id").fetchall()
    assert got == [("v1", 30), ("s2", 5)]


def test_grading_entries_explain_themselves() -> None:
    s = load_scheme(WEIHAI)
    db = memory_db()
    put(db, s, [
        ev("g1", "court_defaulter", "O1", "2020-04-01T10:00"),
        ev("h1", "honour", "P2", "2020-05-10T10:00", level="municipal"),
    ], subjects=PEOPLE)  # fmt: skip
    score(db, s)
    rows = db.execute(
        "SELECT subject, points, reason, grade, note FROM entries ORDER BY id"
    ).fetchall()
    assert rows == [
        ("O1", 0, "match", "D", "direct grading to D"),
        ("P2", 0, "linked", "D", "linked from O1"),
        ("P2", 0, "capped", None,
         "not counted: 直接判级的失信行为未修复期间，守信加分不计（《办法》第十七条）"),
    ]  # fmt: skip


def test_rules_in_plain_chinese() -> None:
    s = load_scheme(WEIHAI)
    rules = {r.id: r for r in s.rules}
    text = render_rule(rules["o-court-defaulter"], s)
    assert (
        "直接判级：直接判定为D级（严重失信），5年内信用等级最高为D级，不论分数高低（只判级，不扣分）"
        in text
    )
    assert "联奖联罚：同时对其法定代表人（个人账户）一并判定为D级（严重失信）" in text
    honour = render_rule(rules["p-honour"], s)
    assert (
        "暂不计分：处于直接判级（尚未修复）期间时，本项只作记录、不计分（直接判级的失信行为未修复期间"
        in honour
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"id": "r", "title": "r", "on": "noise", "points": -5,
          "also": [{"link": "legal_representative", "group": "residents", "grade": "same"}]},
         "passes a grading on to the 'legal_representative' link but does not grade itself"),
        ({"id": "r", "title": "r", "on": "noise", "grade": {"to": "C", "for": "1 year"},
          "also": [{"link": "legal_representative", "group": "residents", "grade": "Z"}]},
         "'Z'"),
        ({"id": "r", "title": "r", "on": "volunteer", "points": 5,
          "withhold": {"when": {"subject.graded": "yes"}}},
         "subject.graded"),
    ],
)  # fmt: skip
def test_bad_gradings_are_refused(engine_scheme, rule, message) -> None:
    with pytest.raises(SchemeError) as e:
        engine_scheme(residents=[rule])
    assert message in str(e.value), str(e.value)
    assert "residents.yaml:" in str(e.value)


event = st.tuples(
    st.sampled_from(
        [
            "court_defaulter",
            "debt_paid",
            "honour",
            "honour",
            "donation",
            "withdraw",
            "tax_violation",
        ]
    ),
    st.sampled_from(["P1", "P2", "O1"]),
    st.integers(min_value=0, max_value=200),  # day offset into 2020
    st.integers(min_value=0, max_value=99),
)


def to_events(stream: list[tuple]) -> list[dict]:
    from datetime import datetime, timedelta

    out = []
    for i, (etype, subject, day, n) in enumerate(stream):
        at = (datetime.fromisoformat("2020-01-01T10:00:00+08:00") + timedelta(days=day)).isoformat()
        attrs: dict = {}
        if etype == "honour":
            attrs = {"level": ["district", "municipal", "provincial"][n % 3]}
            subject = "P1" if subject == "O1" else subject
        elif etype == "donation":
            attrs = {"amount": n * 37}
            subject = "P1" if subject == "O1" else subject
        elif etype == "tax_violation":
            attrs = {"evasion": n % 2 == 0, "scale": ["general", "large", "huge"][n % 3],
                     "invoice": n % 5 == 0}  # fmt: skip
            subject = "O1"
        elif etype == "withdraw":
            attrs = {"target": f"e{n % len(stream):03d}"}
        out.append(ev(f"e{i:03d}", etype, subject, at, **attrs))
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=st.lists(event, min_size=1, max_size=30), data=st.data())
def test_weihai_ledger_is_the_same_for_any_split_and_order(stream, data) -> None:
    s = load_scheme(WEIHAI)
    events = to_events(stream)
    once = memory_db()
    put(once, s, events, subjects=PEOPLE)
    score(once, s)
    shuffled = data.draw(st.permutations(events))
    cut = data.draw(st.integers(min_value=0, max_value=len(events)))
    split = memory_db()
    put(split, s, shuffled[:cut], subjects=PEOPLE)
    score(split, s)
    put(split, s, shuffled[cut:])
    score(split, s)
    q = ("SELECT subject, grp, points, wallet, rule, event, at, period, reason, grade, grade_until,"
         " expires_at, note FROM entries ORDER BY at, event, rule, reason, subject, note")  # fmt: skip
    assert once.execute(q).fetchall() == split.execute(q).fetchall()
    for b in balances(once, s, as_of=2**40):
        assert b.wallet >= 0
