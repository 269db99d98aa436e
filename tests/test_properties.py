"""Ledger invariants under random event streams (hypothesis)."""

from __future__ import annotations

from collections import defaultdict

from conftest import PEOPLE, ev, put
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.evaluate import score
from scoring.ledger import balances, memory_db

RULES = [
    {"id": "vol", "title": "志愿服务", "on": "volunteer",
     "points": {"per": "hours", "value": 2, "round": "floor"},
     "limit": {"max_points": 40, "per": "month"}},
    {"id": "park", "title": "违规停车", "on": "parking",
     "escalate": {"within": "30d", "steps": [-5, -10, -20]}},
    {"id": "noise", "title": "噪音", "on": "noise", "points": -15, "wallet": True,
     "limit": {"max_points": 20, "per": "month"}},
    {"id": "sort", "title": "垃圾分类", "on": "sorting", "points": 1,
     "limit": {"max_count": 1, "per": "day"}},
    {"id": "fix", "title": "信用修复", "on": "fix",
     "repair": {"rules": ["park", "noise"], "within": "30d", "restore": "half"}},
]  # fmt: skip
CAPS = {"vol": ("month", 40, None), "noise": ("month", 20, None), "sort": ("day", None, 1)}
SUBJECTS = [p["id"] for p in PEOPLE if p["groups"] == ["residents"]]

event = st.tuples(
    st.sampled_from(["volunteer", "parking", "noise", "sorting", "redeem", "withdraw", "fix"]),
    st.sampled_from(SUBJECTS),
    st.integers(min_value=0, max_value=90 * 24 - 1),  # hour offset into 2024-03..05
    st.floats(min_value=0, max_value=12, allow_nan=False).map(lambda h: round(h, 2)),
)
streams = st.lists(event, min_size=1, max_size=60)


def to_events(stream):
    out = []
    for i, (etype, subject, hour, hours) in enumerate(stream):
        day, h = divmod(hour, 24)
        at = f"2024-03-01T{h:02d}:00:00+08:00"
        e = ev(f"e{i:03d}", etype, subject, at)
        e["at"] = _shift(at, day)
        if etype == "volunteer":
            e["attrs"] = {"hours": hours}
        if etype == "redeem":
            e["attrs"] = {"item": "oil"}
        if etype == "withdraw":  # withdraws some other event of the stream
            e["attrs"] = {"target": f"e{int(hours * 100) % len(stream):03d}"}
        out.append(e)
    return out


def _shift(at: str, days: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(at) + timedelta(days=days)).isoformat()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=streams)
def test_invariants(engine_scheme, stream):
    s = engine_scheme(residents=RULES)
    db = memory_db()
    put(db, s, to_events(stream))
    score(db, s)
    rows = db.execute(
        "SELECT subject, rule, points, wallet, at, reason FROM entries ORDER BY at, id"
    ).fetchall()
    # score = base + Σ score entries; wallet = Σ wallet entries, never negative at any point
    for b in balances(db, s, as_of=2**40):
        mine = [r for r in rows if r[0] == b.subject]
        assert b.score == 1000 + sum(r[2] for r in mine)
        assert b.wallet == sum(r[3] for r in mine)
        running = 0
        for r in mine:
            running += r[3]
            assert running >= 0
    # caps are never passed: matches in a period, less those withdrawn since, stay within the cap
    full = db.execute(
        "SELECT id, subject, rule, points, at, reason, ref FROM entries ORDER BY id"
    ).fetchall()
    by_id = {r[0]: r for r in full}
    used = defaultdict(lambda: [0, 0])
    for _, subject, rule, pts, at, reason, ref in full:
        if rule not in CAPS:
            continue
        per, max_points, max_count = CAPS[rule]
        if reason == "match":
            u = used[(subject, rule, s.clock.period(at, per))]
            u[0] += abs(pts)
            u[1] += 1
        elif reason == "reversal" and by_id[ref][5] == "match":
            u = used[(subject, rule, s.clock.period(by_id[ref][4], per))]
            u[0] -= abs(pts)
            u[1] -= 1
        else:
            continue
        assert max_points is None or u[0] <= max_points
        assert max_count is None or u[1] <= max_count


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=streams, data=st.data())
def test_ledger_is_the_same_for_any_split_and_order(engine_scheme, stream, data):
    s = engine_scheme(residents=RULES)
    events = to_events(stream)
    once = memory_db()
    put(once, s, events)
    score(once, s)

    shuffled = data.draw(st.permutations(events))
    cut = data.draw(st.integers(min_value=0, max_value=len(events)))
    split = memory_db()
    put(split, s, shuffled[:cut])
    score(split, s)  # scoring in between forces the rewind path when later files sort earlier
    put(split, s, shuffled[cut:])
    score(split, s)

    q = "SELECT subject, grp, points, wallet, rule, event, at, period, reason FROM entries ORDER BY at, event, rule, reason"
    assert once.execute(q).fetchall() == split.execute(q).fetchall()
    r = "SELECT event, outcome, reason_code FROM redemptions ORDER BY event"
    assert once.execute(r).fetchall() == split.execute(r).fetchall()
