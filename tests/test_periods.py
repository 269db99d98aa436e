"""Month close, posting calendar and late events (hand-computed ledgers)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import ledger
from scoring.errors import GridcreditError, PeriodClosedError, UsageError
from scoring.loader import load_scheme
from scoring.periods import (
    PostingCalendar,
    close_month,
    compute_month_figures,
    first_open_month,
    late_entries,
    ledger_hash,
    month_figures,
    month_record,
    record_late,
)

MINI = Path(__file__).parent / "fixtures" / "mini" / "rules"


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(MINI, check=False)


@pytest.fixture
def db():
    return ledger.memory_db()


def t(scheme, text: str) -> int:
    return scheme.clock.parse_time(text)


def subject(db, sid, groups=("residents",), grid="S01C01G01", name="张三"):
    db.execute(
        "INSERT INTO subjects (id, kind, name, grid) VALUES (?, 'person', ?, ?)", [sid, name, grid]
    )
    for g in groups:
        db.execute("INSERT INTO memberships (subject, grp) VALUES (?, ?)", [sid, g])


def entry(db, scheme, sid, points, when, *, grp="residents", period=None, rule="r1", event=None):
    at = t(scheme, when)
    wallet = max(0, points)
    db.execute(
        "INSERT INTO entries (subject, grp, account, points, wallet, rule, event, at, period, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'match')",
        [sid, grp, "score+wallet" if wallet else "score", points, wallet, rule,
         event or f"e-{sid}-{when}", at, period or scheme.clock.month(at)],
    )  # fmt: skip


def event(db, scheme, eid, when):
    db.execute(
        "INSERT INTO events (id, type, subject, at, attrs) VALUES (?, 'x', 'R1', ?, '{}')",
        [eid, t(scheme, when)],
    )


@pytest.fixture
def feb_march(db, scheme):
    subject(db, "R1")
    subject(db, "R2", grid="S01C01G02")
    entry(db, scheme, "R1", 10, "2024-02-10T09:00:00")
    entry(db, scheme, "R1", 5, "2024-03-31T23:59:59")
    entry(db, scheme, "R2", -20, "2024-03-01T00:00:00")
    event(db, scheme, "ev1", "2024-02-10T09:00:00")
    event(db, scheme, "ev2", "2024-03-01T00:00:00")
    ledger.set_state(db, "scored_seq", 2)  # as the scorer leaves it
    return db


def test_close_month_freezes_figures_hash_and_seq(feb_march, scheme):
    db = feb_march
    close_month(db, scheme, "2024-02")
    rec = close_month(db, scheme, "2024-03")
    rows = [
        dict(r)
        for r in db.query("SELECT * FROM month_balances WHERE month = '2024-03' ORDER BY subject")
    ]
    assert rows == [
        {
            "month": "2024-03",
            "subject": "R1",
            "grp": "residents",
            "score": 1015,
            "wallet": 15,
            "tier": "A",
            "earned": 5,
        },
        {
            "month": "2024-03",
            "subject": "R2",
            "grp": "residents",
            "score": 980,
            "wallet": 0,
            "tier": "A",
            "earned": -20,
        },
    ]
    feb = {
        r["subject"]: (r["score"], r["earned"])
        for r in db.query("SELECT * FROM month_balances WHERE month = '2024-02'")
    }
    assert feb == {"R1": (1010, 10), "R2": (1000, 0)}
    expected = hashlib.sha256()
    for row in db.execute(
        "SELECT id, subject, grp, account, points, wallet, rule, pack_hash, event, at, period, reason,"
        " ref, expires_at, grade, grade_until, note FROM entries WHERE period = '2024-03' ORDER BY id"
    ):
        expected.update(
            json.dumps(list(row), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        )
    assert rec == {
        "month": "2024-03",
        "closed": True,
        "hash": expected.hexdigest(),
        "late_events": 0,
        "closed_at_seq": 2,
    }
    assert ledger_hash(db, "2024-03") == expected.hexdigest()


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
        ),
        min_size=1,
        max_size=17,
    )
)
def test_an_entry_line_is_the_json_the_month_hash_always_read(row):
    """The month hash is published: its lines are byte for byte what ``json.dumps``
    wrote before orjson did most of them (control characters, non-ASCII text,
    U+2028, floats)."""
    from scoring.periods import entry_line

    expected = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()
    assert entry_line(tuple(row)) == expected


def test_reclosing_is_refused(feb_march, scheme):
    close_month(feb_march, scheme, "2024-02")
    with pytest.raises(PeriodClosedError) as e:
        close_month(feb_march, scheme, "2024-02")
    assert str(e.value) == (
        "2024-02 was closed (published) already; its figures never change."
        " Publish the next month instead (2024-03)"
    )


def test_earlier_open_month_with_entries_blocks_close(feb_march, scheme):
    with pytest.raises(PeriodClosedError) as e:
        close_month(feb_march, scheme, "2024-03")
    assert str(e.value) == (
        "cannot close 2024-03: the earlier month 2024-02 has entries and is still open. Publish 2024-02 first"
    )
    assert not month_record(feb_march, "2024-03")["closed"]
    assert feb_march.execute("SELECT COUNT(*) FROM month_balances").fetchone()[0] == 0


def test_months_without_entries_may_be_skipped(db, scheme):
    subject(db, "R1")
    entry(db, scheme, "R1", 3, "2024-04-02T08:00:00")
    assert close_month(db, scheme, "2024-04")["closed"]  # Jan-Mar had no entries


def test_months_close_in_turn_after_the_latest_closed(feb_march, scheme):
    """Found in review: closing 2024-12 after 2024-03 left April to November open
    behind it, so April's events became late and posted to 2025-01."""
    ledger.set_state(feb_march, "last_scored", f'[{t(scheme, "2024-06-01")}, "x"]')
    close_month(feb_march, scheme, "2024-02")
    close_month(feb_march, scheme, "2024-03")
    with pytest.raises(PeriodClosedError) as e:
        close_month(feb_march, scheme, "2024-05")
    assert str(e.value) == (
        "cannot close 2024-05: 2024-04 is still open (the latest closed month is 2024-03)."
        " Months close in turn: publish 2024-04 first"
    )
    assert close_month(feb_march, scheme, "2024-04")["closed"]  # empty, in turn: fine


def test_a_month_no_event_has_reached_cannot_close(db, scheme):
    """Found in review: `close 2099-12` on a new ledger closed it, and every later
    event became late."""
    with pytest.raises(PeriodClosedError, match="cannot close 2099-12: it has no entries"):
        close_month(db, scheme, "2099-12")
    subject(db, "R1")
    entry(db, scheme, "R1", 3, "2024-04-02T08:00:00")
    ledger.set_state(db, "last_scored", f'[{t(scheme, "2024-04-02T08:00:00")}, "e"]')
    assert close_month(db, scheme, "2024-04")["closed"]
    with pytest.raises(PeriodClosedError, match="cannot close 2024-05: it has no entries"):
        close_month(db, scheme, "2024-05")


def test_bad_month_key(db, scheme):
    with pytest.raises(UsageError, match="'2024-Q1' is not a month: write it as YYYY-MM"):
        close_month(db, scheme, "2024-Q1")


def test_month_record_of_unknown_month(db):
    assert month_record(db, "2030-01") == {
        "month": "2030-01", "closed": False, "hash": None, "late_events": 0, "closed_at_seq": None,
    }  # fmt: skip


def test_posting_calendar_sends_late_events_to_first_open_month(feb_march, scheme):
    db = feb_march
    close_month(db, scheme, "2024-02")
    close_month(db, scheme, "2024-03")
    cal = PostingCalendar(db, scheme)
    assert cal.posting_month(t(scheme, "2024-02-20T12:00:00")) == "2024-04"
    assert cal.late(t(scheme, "2024-02-20T12:00:00"))
    assert cal.posting_month(t(scheme, "2024-03-31T23:59:59")) == "2024-04"
    assert cal.posting_month(t(scheme, "2024-04-01T00:00:00")) == "2024-04"
    assert not cal.late(t(scheme, "2024-04-01T00:00:00"))
    # local time decides: 2024-01-31T16:30Z is 2024-02-01 00:30 in Shanghai
    assert cal.posting_month(scheme.clock.parse_time("2024-01-31T16:30:00Z")) == "2024-04"
    # January was never closed, but it lies before a closed month: it is history too
    assert cal.posting_month(scheme.clock.parse_time("2024-01-31T15:30:00Z")) == "2024-04"
    assert cal.late(scheme.clock.parse_time("2024-01-31T15:30:00Z"))
    assert first_open_month(db, scheme, t(scheme, "2024-03-05T00:00:00")) == "2024-04"


def test_closed_month_figures_never_change(feb_march, scheme):
    db = feb_march
    close_month(db, scheme, "2024-02")
    close_month(db, scheme, "2024-03")
    before = month_figures(db, scheme, "2024-03")
    # a late March event arrives after publication and posts to April
    entry(db, scheme, "R2", -30, "2024-03-20T10:00:00", period="2024-04")
    record_late(db, "2024-04", 1)
    assert month_figures(db, scheme, "2024-03") == before
    assert [f.score for f in compute_month_figures(db, scheme, "2024-03")] == [
        1015,
        950,
    ]  # what it would be
    april = {f.subject: (f.score, f.earned) for f in month_figures(db, scheme, "2024-04")}
    assert april == {"R1": (1015, 0), "R2": (950, -30)}
    assert [e["points"] for e in late_entries(db, scheme, "2024-04")] == [-30]
    assert month_record(db, "2024-04")["late_events"] == 1


def test_record_late_counts_and_refuses_closed_months(feb_march, scheme):
    db = feb_march
    record_late(db, "2024-04", 2)
    record_late(db, "2024-04", 3)
    assert month_record(db, "2024-04")["late_events"] == 5
    close_month(db, scheme, "2024-02")
    with pytest.raises(PeriodClosedError, match="2024-02 was closed"):
        record_late(db, "2024-02", 1)


def test_close_keeps_late_count(feb_march, scheme):
    db = feb_march
    close_month(db, scheme, "2024-02")
    record_late(db, "2024-03", 4)
    assert close_month(db, scheme, "2024-03")["late_events"] == 4


def test_unscored_events_block_close(feb_march, scheme):
    event(feb_march, scheme, "ev3", "2024-02-11T09:00:00")
    with pytest.raises(GridcreditError) as e:
        close_month(feb_march, scheme, "2024-02")
    assert str(e.value) == (
        "cannot close 2024-02: 1 ingested events are not scored yet. Run 'gridcredit score' first"
    )
    assert not month_record(feb_march, "2024-02")["closed"]
