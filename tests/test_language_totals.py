"""Running totals (``points: {total: ...}``): cumulative levels and marginal brackets over a
subject's total of an attribute in a period; corrections score the later events again."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from conftest import ev, put
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring.compile import compile_total
from scoring.errors import SchemeError
from scoring.evaluate import score
from scoring.ledger import balances, memory_db
from scoring.model import make_points

LEVELS = [{"reach": 10, "points": 2}, {"reach": 20, "points": 5}, {"reach": 50, "points": 10}]
BRACKETS = [
    {"upto": 10, "every": 2, "points": 1},
    {"upto": 30, "every": 4, "points": 1},
    {"every": 5, "points": 1},
]
RULES = [
    {"id": "each", "title": "累计服务逐档", "on": "volunteer",
     "points": {"total": "hours", "period": "year", "levels": LEVELS}},
    {"id": "high", "title": "累计服务最高档", "on": "volunteer",
     "points": {"total": "hours", "period": "month", "levels": LEVELS, "count": "highest"}},
    {"id": "brk", "title": "分段", "on": "volunteer",
     "points": {"total": "hours", "period": "ever", "brackets": BRACKETS, "max": 12}},
]  # fmt: skip


def total_of(rule: dict) -> object:
    return compile_total(make_points(rule["points"]))  # type: ignore[arg-type]


def test_points_of_a_total_levels_and_brackets() -> None:
    each, high, brk = (total_of(r) for r in RULES)
    assert [each.points_of(Decimal(x)) for x in (0, 9.5, 10, 49, 50, 300)] == [0, 0, 2, 7, 17, 17]
    assert [high.points_of(Decimal(x)) for x in (0, 10, 20, 50)] == [0, 2, 5, 10]
    # 10 in the first bracket: 5; 10..30 by 4: 5; above 30 by 5: 40 → 8, then max 12
    assert brk.points_of(Decimal(9)) == 4
    assert brk.points_of(Decimal(30)) == 10
    assert brk.points_of(Decimal(39)) == 11
    assert brk.points_of(Decimal(1000)) == 12


def test_levels_crossed_by_one_event_and_a_correction(engine_scheme) -> None:
    s = engine_scheme(residents=RULES[:2])
    db = memory_db()
    put(db, s, [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=8),
        ev("b", "volunteer", "P1", "2024-03-02T10:00", hours=13.5),
        ev("c", "volunteer", "P1", "2024-03-03T10:00", hours=30),
        ev("w", "withdraw", "P1", "2024-03-04T10:00", target="a"),
    ])  # fmt: skip
    score(db, s)
    rows = db.execute(
        "SELECT rule, event, points, reason, note FROM entries WHERE rule = 'each' ORDER BY id"
    ).fetchall()
    assert rows == [
        ("each", "a", 0, "match", "total hours 0 → 8 (2024)"),
        ("each", "b", 5 + 2, "match", "total hours 8 → 21.5 (2024)"),  # crosses 10 and 20
        ("each", "c", 10, "match", "total hours 21.5 → 51.5 (2024)"),
        ("each", "w", 0, "reversal", "reverses entry 1 of event a"),
        ("each", "w", -7, "reversal", "reverses entry 3 of event b"),
        ("each", "w", 2, "match", "total hours 0 → 13.5 (2024); recomputed for event b"),
        ("each", "w", -10, "reversal", "reverses entry 5 of event c"),
        ("each", "w", 5, "match", "total hours 13.5 → 43.5 (2024); recomputed for event c"),
    ]
    high = db.execute("SELECT SUM(points) FROM entries WHERE rule = 'high'").fetchone()[0]
    assert high == 5  # 43.5 hours in March: the 20-hour level only
    (b,) = balances(db, s, as_of=2**40, subject="P1")
    assert b.score == 1000 + 7 + 5


def test_a_withdrawal_in_a_later_run_reads_the_totals_back(engine_scheme) -> None:
    s = engine_scheme(residents=RULES)
    events = [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=8),
        ev("b", "volunteer", "P1", "2024-03-02T10:00", hours=13.5),
        ev("c", "volunteer", "P1", "2024-04-03T10:00", hours=30),
        ev("w", "withdraw", "P1", "2024-04-04T10:00", target="b"),
        ev("d", "volunteer", "P1", "2024-05-03T10:00", hours=4),
    ]
    once, split = memory_db(), memory_db()
    put(once, s, events)
    score(once, s)
    put(split, s, events[:3])
    score(split, s)
    put(split, s, events[3:4])
    score(split, s)
    put(split, s, events[4:])
    score(split, s)
    q = "SELECT subject, grp, points, wallet, rule, event, at, period, reason, note FROM entries ORDER BY id"
    assert once.execute(q).fetchall() == split.execute(q).fetchall()


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ({"total": "hours", "levels": [{"reach": 20, "points": 5}, {"reach": 10, "points": 2}]},
         "level 2 of rule 'r' has reach: 10, not above the level before it (20); write the"
         " levels from the lowest up"),
        ({"total": "hours", "brackets": [{"every": 1, "points": 1}, {"upto": 5, "every": 1, "points": 1}]},
         "bracket 1 of rule 'r' has no upper bound ('upto') but bracket 2 follows it; only the"
         " last bracket may be open"),
        ({"total": "hours", "levels": [{"reach": 1, "points": 5}, {"reach": 2, "points": -2}]},
         "the levels of rule 'r' mix awards and deductions"),
        ({"total": "severity", "levels": [{"reach": 1, "points": 5}]},
         "keeps a running total of 'severity', which is text, not a number"),
        ({"total": "hours", "levels": [{"reach": 1, "points": 5}], "period": "week"},
         "'week'"),
    ],
)  # fmt: skip
def test_bad_totals_are_refused_at_their_line(engine_scheme, points, message) -> None:
    rule = {
        "id": "r",
        "title": "累计",
        "on": ["volunteer", "complaint"] if points["total"] == "severity" else "volunteer",
        "points": points,
    }  # noqa: E501
    if points["total"] == "severity":
        rule["on"] = "complaint"
    with pytest.raises(SchemeError) as e:
        engine_scheme(residents=[rule])
    text = str(e.value)
    assert message in text, text
    assert "residents.yaml:" in text


def test_a_total_with_a_limit_is_refused(engine_scheme) -> None:
    rule = {**RULES[0], "limit": {"max_points": 10, "per": "year"}}
    with pytest.raises(SchemeError) as e:
        engine_scheme(residents=[rule])
    assert "write the cap as 'max' inside 'points'" in str(e.value)


# --- properties: the totals' points are f(total), whatever the order and split ---------

event = st.tuples(
    st.sampled_from(["volunteer", "volunteer", "volunteer", "withdraw", "amend"]),
    st.sampled_from(["P1", "P2"]),
    st.integers(min_value=0, max_value=80 * 24 - 1),  # hour offset into 2024-03..05
    st.sampled_from([0, 0.5, 1, 2.5, 4, 7.25, 10, 19, 33]),
)
streams = st.lists(event, min_size=1, max_size=40)


def to_events(stream: list[tuple]) -> list[dict]:
    from datetime import datetime, timedelta

    out = []
    for i, (etype, subject, hour, hours) in enumerate(stream):
        at = (
            datetime.fromisoformat("2024-03-01T00:00:00+08:00") + timedelta(hours=hour)
        ).isoformat()
        target = f"e{int(hours * 100) % len(stream):03d}"
        if etype == "withdraw":
            e = ev(f"e{i:03d}", "withdraw", subject, at, target=target)
        else:
            e = ev(f"e{i:03d}", "volunteer", subject, at, hours=hours)
            if etype == "amend" and target != e["id"]:
                e["amends"] = target
        out.append(e)
    return out


def expected_totals(s, db) -> dict[tuple, int]:
    """Σ points each (subject, rule, period) must hold: f(the hours of the events that stand)."""
    rules = {r["id"]: (r, total_of(r)) for r in RULES}
    hours: dict[tuple, Decimal] = defaultdict(Decimal)
    undone = set()
    evs = db.execute(
        "SELECT id, type, subject, at, attrs, amends FROM events ORDER BY at, id"
    ).fetchall()
    import orjson

    when = {eid: (at, eid) for eid, _, _, at, _, _ in evs}
    for eid, etype, _subject, at, attrs, _amends in evs:
        a = orjson.loads(attrs)
        # a withdrawal undoes an event scored before it (one sorting after it stands)
        if etype == "withdraw" and when.get(a.get("target"), (2**62, "")) < (at, eid):
            undone.add(a["target"])
    # an amendment replaces its target (whichever sorts first, the later version stands)
    for eid, _etype, _subject, _at, _attrs, amends in evs:
        if amends and amends != eid:
            undone.add(amends)
    out: dict[tuple, int] = {}
    for eid, etype, subject, at, attrs, _amends in evs:
        if etype != "volunteer" or eid in undone:
            continue
        h = Decimal(str(orjson.loads(attrs)["hours"]))
        for rid, (r, _) in rules.items():
            per = r["points"]["period"]
            pk = "ever" if per == "ever" else s.clock.period(at, per)
            hours[(subject, rid, pk)] += h
    for (subject, rid, pk), h in hours.items():
        out[(subject, rid, pk)] = rules[rid][1].points_of(h)
    return out


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stream=streams,
    keys=st.lists(st.integers(min_value=0, max_value=2**16), min_size=40, max_size=40),
    cut=st.integers(min_value=0, max_value=40),
)
# found after the merge: a withdrawal (e002) ingested before the event it names (e000),
# which an amendment (e001, sorting before both) had replaced; split so that e000 came in
# the second run, the withdrawal reversed nothing (it named no event yet) and was never
# scored again. Not the totals' doing: plain rules did the same (see the test below).
@example(
    stream=[("volunteer", "P1", 1, 0), ("amend", "P1", 0, 0), ("withdraw", "P1", 0, 0)],
    keys=[2, 0, 1] + [0] * 37,
    cut=2,
)
def test_totals_are_the_same_for_any_split_and_order(engine_scheme, stream, keys, cut) -> None:
    s = engine_scheme(residents=RULES)
    events = to_events(stream)
    once = memory_db()
    put(once, s, events)
    score(once, s)
    # the order the files come in: by the drawn keys (a permutation hypothesis can shrink)
    shuffled = [events[i] for i in sorted(range(len(events)), key=lambda i: (keys[i], i))]
    cut = min(cut, len(events))
    split = memory_db()
    put(split, s, shuffled[:cut])
    score(split, s)
    put(split, s, shuffled[cut:])
    score(split, s)
    q = ("SELECT subject, grp, points, wallet, rule, event, at, period, reason, note FROM entries"
         " ORDER BY at, event, rule, reason, note")  # fmt: skip
    assert once.execute(q).fetchall() == split.execute(q).fetchall()


def test_a_correction_before_the_event_it_names_is_scored_again_when_that_event_comes(
    engine_scheme,
) -> None:
    s = engine_scheme(residents=[{"id": "plain", "title": "志愿", "on": "volunteer", "points": 3}])
    events = [
        ev("e0", "volunteer", "P1", "2024-03-01T01:00", hours=1),
        {**ev("e1", "volunteer", "P1", "2024-03-01T00:00", hours=1), "amends": "e0"},
        ev("w", "withdraw", "P1", "2024-03-01T00:00", target="e0"),
    ]
    once, split = memory_db(), memory_db()
    put(once, s, events)
    score(once, s)
    put(split, s, events[1:])
    score(split, s)  # e0 is not in the ledger yet: the withdrawal names no event, and waits
    assert split.execute("SELECT record_id FROM rejects WHERE batch = 0").fetchall() == [
        ("e1",),
        ("w",),
    ]
    put(split, s, events[:1])
    summary = score(split, s)
    assert summary.waited == 2
    q = "SELECT subject, points, rule, event, reason, note FROM entries ORDER BY at, event, reason"
    expected = [
        ("P1", 3, "plain", "e1", "match", None),
        ("P1", -3, "plain", "w", "reversal", "reverses entry 1 of event e1"),
    ]
    assert once.execute(q).fetchall() == expected
    assert split.execute(q).fetchall() == expected
    assert split.execute("SELECT record_id FROM rejects WHERE batch = 0").fetchall() == []


def held_totals(db) -> dict[tuple, int]:
    """Σ points the ledger holds per (subject, rule, total's period), from the entries' notes."""
    notes = {i: n for i, n in db.execute("SELECT id, note FROM entries")}
    out: dict[tuple, int] = defaultdict(int)
    for subject, rule, pts, reason, ref, note in db.execute(
        "SELECT subject, rule, points, reason, ref, note FROM entries ORDER BY id"
    ):
        text = notes[ref] if reason == "reversal" else note
        pk = text.split("(", 1)[1].split(")", 1)[0]
        out[(subject, rule, pk)] += pts
    return {k: v for k, v in out.items() if v}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=streams)
def test_each_total_holds_what_its_standing_amounts_are_worth(engine_scheme, stream) -> None:
    s = engine_scheme(residents=RULES)
    events = [e for e in to_events(stream) if "amends" not in e]
    db = memory_db()
    put(db, s, events)
    score(db, s)
    expected = {k: v for k, v in expected_totals(s, db).items() if v}
    assert held_totals(db) == expected
    for b in balances(db, s, as_of=2**40):
        total = db.execute(
            "SELECT COALESCE(SUM(points), 0), COALESCE(SUM(wallet), 0) FROM entries WHERE subject = ?",
            [b.subject],
        ).fetchone()
        assert (b.score, b.wallet) == (1000 + total[0], total[1])
        assert b.wallet >= 0


# --- the CLI: explain shows the total before and after; rules shows the brackets ----------

WEIHAI = __import__("pathlib").Path(__file__).resolve().parent.parent / "examples" / "weihai"


def test_explain_shows_the_total_before_and_after(tmp_path) -> None:
    from click.testing import CliRunner

    from scoring.cli import cli

    def run(*args: object) -> object:
        return CliRunner().invoke(cli, ["--scheme", str(WEIHAI), "--db", str(tmp_path / "l.db"),
                                        *map(str, args)])  # fmt: skip

    (tmp_path / "s.jsonl").write_text(
        '{"id": "P1", "groups": ["persons"], "name": "张三", "grid": "LS01G1"}\n', encoding="utf-8"
    )
    (tmp_path / "a.jsonl").write_text(
        '{"id": "d1", "type": "donation", "subject": "P1", "at": "2020-02-01T10:00:00", "attrs": {"amount": 800}}\n'
        '{"id": "d2", "type": "donation", "subject": "P1", "at": "2020-03-01T10:00:00", "attrs": {"amount": 600}}\n',
        encoding="utf-8",
    )  # fmt: skip
    (tmp_path / "b.jsonl").write_text(
        '{"id": "w1", "type": "withdraw", "subject": "P1", "at": "2020-05-01T10:00:00", "attrs": {"target": "d1"}}\n',
        encoding="utf-8",
    )  # fmt: skip
    for step in (["ingest", "-q", tmp_path / "s.jsonl", tmp_path / "a.jsonl"], ["score"],
                 ["ingest", "-q", tmp_path / "b.jsonl"], ["score"]):  # fmt: skip
        result = run(*step)
        assert result.exit_code == 0, result.output
    result = run("explain", "P1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "P1 · 个人 (persons) as of 2020-05-01: score 1006.0, wallet 6.0, tier A"
    assert (
        "  2020-02-01   +8.0   +8.0 1008.0  慈善捐款（年度内累加） (p-donation)  [total amount 0 → 800 (2020)]"
        in lines
    )  # noqa: E501
    assert (
        "  2020-03-01   +3.0   +3.0 1011.0  慈善捐款（年度内累加） (p-donation)  [total amount 800 → 1400 (2020)]"
        in lines
    )  # noqa: E501
    assert any(
        "+6.0" in ln and "[total amount 0 → 600 (2020); recomputed for event d2]" in ln
        for ln in lines
    )
    rules = run("rules")
    assert (
        "按本年度累计捐款金额计分，分段计算：100元以内部分每10元加0.1分；100元至1000元部分每100元加1分；"
        "1000元至5000元部分每400元加1分" in rules.stdout
    )  # noqa: E501
    assert "每年最多加40分" in rules.stdout


def test_diff_sees_a_changed_bracket(engine_scheme) -> None:
    from scoring.diff import _rule_changes

    base = engine_scheme(residents=[RULES[2]])
    changed = {**RULES[2], "points": {**RULES[2]["points"], "max": 20}}
    new = engine_scheme(residents=[changed])
    assert [c.rule for c in _rule_changes(base, new)] == ["brk"]
    assert _rule_changes(base, engine_scheme(residents=[RULES[2]])) == []
