"""Validity that follows the entry (its size after caps and escalation; a linked entry by
its own) or runs to a calendar boundary, for rule entries, linked entries and awards."""

from __future__ import annotations

import pytest
import test_assess
from conftest import ev, put
from test_assess import G1, A, subject, with_assessments
from test_assess import entry as put_entry

from scoring.assess import run_assessment
from scoring.compile import compile_expiry
from scoring.errors import SchemeError
from scoring.evaluate import score
from scoring.ledger import balances, memory_db
from scoring.model import make_expires
from scoring.render import expires_text

BY_SIZE = {"by_size": [{"upto": 40, "after": "1 year"}, {"after": "2 years"}]}


def test_expiry_by_size_and_to_the_end_of_the_year(engine_scheme) -> None:
    s = engine_scheme(residents=[{"id": "x", "title": "x", "on": "noise", "points": -5}])
    clock = s.clock
    at = clock.parse_time("2024-03-05T10:00:00")
    by_size = compile_expiry(make_expires(BY_SIZE), clock)
    assert by_size(at, -40) == clock.parse_time("2025-03-05T10:00:00")
    assert by_size(at, -41) == clock.parse_time("2026-03-05T10:00:00")
    assert by_size(at, 60) == clock.parse_time("2026-03-05T10:00:00")  # awards by size too
    end = compile_expiry(make_expires({"until": "end of year"}), clock)
    assert end(at, 5) == clock.parse_time("2025-01-01T00:00:00")
    later = compile_expiry(make_expires({"until": "end of year", "later": 2}), clock)
    assert later(at, 5) == clock.parse_time("2027-01-01T00:00:00")
    quarter = compile_expiry(make_expires({"until": "end of quarter"}), clock)
    assert quarter(at, 5) == clock.parse_time("2024-04-01T00:00:00")


def test_the_size_is_taken_after_escalation_and_caps(engine_scheme) -> None:
    s = engine_scheme(residents=[
        {"id": "park", "title": "违停", "on": "parking",
         "escalate": {"within": "1 year", "steps": [-30, -60]}, "expires": BY_SIZE},
        {"id": "noise", "title": "噪音", "on": "noise", "points": -50,
         "limit": {"max_points": 70, "per": "year"}, "expires": BY_SIZE},
    ])  # fmt: skip
    led = memory_db()
    put(led, s, [
        ev("p1", "parking", "P1", "2024-03-01T10:00"),
        ev("p2", "parking", "P1", "2024-06-01T10:00"),
        ev("n1", "noise", "P2", "2024-03-01T10:00"),
        ev("n2", "noise", "P2", "2024-04-01T10:00"),  # cut from -50 to -20 by the cap
    ])  # fmt: skip
    score(led, s)
    t = s.clock.parse_time
    got = dict(led.execute("SELECT event, expires_at FROM entries").fetchall())
    assert got == {
        "p1": t("2025-03-01T10:00:00"),
        "p2": t("2026-06-01T10:00:00"),  # doubled to -60: two years
        "n1": t("2026-03-01T10:00:00"),
        "n2": t("2025-04-01T10:00:00"),  # -20 after the cap: one year
    }


def test_an_assessment_award_expires_at_the_end_of_the_year() -> None:
    from scoring import ledger
    from scoring.loader import load_scheme
    from scoring.plugins import build_plugins

    s = load_scheme(test_assess.MINI, check=False)
    db = ledger.memory_db()
    ledger.set_state(db, "last_scored", '[1735660800, "end-of-2024"]')  # Q1 has run its course
    subject(db, "R1", G1)
    subject(db, "R2", G1)
    put_entry(db, s, "R1", 20, "2024-01-05")
    a = A(award={"points": 5, "expires": {"until": "end of year"}})
    (run,) = run_assessment(db, with_assessments(s, a), "2024-Q1", plugins=build_plugins(None))
    (award,) = run.awards
    assert award["subject"] == "R1"
    assert award["expires_at"] == s.clock.parse_time("2025-01-01T00:00:00")
    (before,) = balances(db, s, as_of=s.clock.parse_time("2024-12-31T12:00:00"), subject="R1")
    (after,) = balances(db, s, as_of=s.clock.parse_time("2025-01-01T12:00:00"), subject="R1")
    assert (before.score, after.score) == (1025, 1020)


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ({"by_size": [{"after": "1 year"}, {"upto": 40, "after": "2 years"}]},
         "size band 1 of the validity of rule 'r' has no 'upto' but band 2 follows it"),
        ({"by_size": [{"upto": 40, "after": "1 year"}, {"upto": 20, "after": "2 years"}, {"after": "3 years"}]},
         "size band 2 of the validity of rule 'r' has upto: 20, not above the band before it (40)"),
        ({"by_size": [{"upto": 40, "after": "1 year"}]},
         "an entry of more than 40 points would never expire; remove 'upto'"),
        ({"until": "end of decade"}, "'end of decade'"),
        ({"after": "1 year", "until": "end of year"}, "expires"),
    ],
)  # fmt: skip
def test_bad_validity_is_refused_at_its_line(engine_scheme, expires, message) -> None:
    rule = {"id": "r", "title": "r", "on": "noise", "points": -5, "expires": expires}
    with pytest.raises(SchemeError) as e:
        engine_scheme(residents=[rule])
    assert message in str(e.value), str(e.value)
    assert "residents.yaml:" in str(e.value)


def test_validity_in_plain_chinese() -> None:
    assert expires_text(make_expires(BY_SIZE)) == (
        "按实际记分（封顶、加倍之后）的大小确定，自事件发生之日起：40分及以下的计入一年；"
        "40分以上的计入2年"
    )
    assert expires_text(make_expires({"until": "end of year"})) == "计入至事件发生当年年底"
    assert expires_text(make_expires({"after": "6 months"})).endswith("后不再计入")
