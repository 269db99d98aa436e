"""The totals kept through the latest closed month (ledger.account_sums, migration 8).

A county runs ingest, score and close once a month on a ledger that grows: these
read the month's entries, not every entry, and give what a pass over every entry
gives.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scoring import ledger
from scoring.demo import DemoFiles, generate_county
from scoring.evaluate import score
from scoring.ingest import ingest_file
from scoring.loader import load_scheme
from scoring.model import Scheme
from scoring.periods import close_month, ledger_hash, month_end

REPO = Path(__file__).resolve().parents[1]
MONTHS = ("2024-01", "2024-02", "2024-03", "2024-04")


@pytest.fixture(scope="module")
def scheme() -> Scheme:
    return load_scheme(REPO / "rules")


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory, scheme: Scheme) -> DemoFiles:
    # late records (for the month closed before), corrections and expiring penalties
    return generate_county(
        tmp_path_factory.mktemp("county"), scheme, events=12_000, residents=1_500, months=MONTHS
    )


def _forget_totals(db) -> None:
    db.execute("DELETE FROM state WHERE key = ?", [ledger.TOTALS_MONTH])


def monthly(path: Path, scheme: Scheme, county: DemoFiles, *, kept: bool, close_last: bool):
    """Ingest, score and close month by month; without kept totals if not ``kept``."""
    db = ledger.connect(path)
    ingest_file(db, scheme, county.subjects, progress=False)
    for i, events in enumerate(county.events):
        ingest_file(db, scheme, events, progress=False)
        if not kept:
            _forget_totals(db)
        score(db, scheme)
        if close_last or i < len(county.events) - 1:
            if not kept:
                _forget_totals(db)
            close_month(db, scheme, MONTHS[i])
    return db


@pytest.fixture(scope="module")
def runs(tmp_path_factory, scheme, county):
    tmp = tmp_path_factory.mktemp("runs")
    return (
        monthly(tmp / "kept.db", scheme, county, kept=True, close_last=False),
        monthly(tmp / "pass.db", scheme, county, kept=False, close_last=False),
    )


def test_monthly_runs_give_the_same_ledger_with_kept_totals_as_without(runs):
    kept, full = runs
    assert ledger.kept_totals_month(kept) == "2024-03"
    assert ledger.kept_totals_month(full) is None
    q = "SELECT * FROM entries ORDER BY id"
    rows = kept.execute(q).fetchall()
    assert len(rows) > 5_000 and rows == full.execute(q).fetchall()
    for table in ("periods", "month_balances"):
        q = f"SELECT * FROM {table} ORDER BY 1, 2"
        assert kept.execute(q).fetchall() == full.execute(q).fetchall()
    # the demo data exercise what the totals must carry: late events posted to the
    # next month, reversals, wallets and points that expire
    counts = dict(
        kept.execute(
            "SELECT 'late', COUNT(*) FROM entries WHERE period > strftime('%Y-%m', at, 'unixepoch',"
            " '+8 hours') UNION ALL SELECT 'reversal', COUNT(*) FROM entries WHERE reason = 'reversal'"
            " UNION ALL SELECT 'expiring', COUNT(*) FROM entries WHERE expires_at IS NOT NULL"
            " UNION ALL SELECT 'wallet', COUNT(*) FROM entries WHERE wallet != 0"
        ).fetchall()
    )
    assert min(counts.values()) > 0, counts


def test_kept_totals_are_the_sums_through_the_closed_month(runs):
    kept, _ = runs
    expect = {
        (s, g): (f, w)
        for s, g, f, w in kept.execute(
            "SELECT subject, grp, SUM(CASE WHEN expires_at IS NULL THEN points ELSE 0 END),"
            " SUM(wallet) FROM entries WHERE period <= '2024-03' GROUP BY subject, grp"
        )
    }
    got = {(s, g): (f, w) for s, g, f, w in kept.execute("SELECT * FROM closed_totals")}
    assert len(got) > 1_000 and got == expect


def test_balances_from_kept_totals_equal_a_pass_over_every_entry(runs, scheme):
    kept, _ = runs
    end = month_end(scheme, "2024-03")
    # before the closed month's end the totals cannot serve (the answer is a pass's)
    times = [end - 10 * 86400, end, end + 1, end + 15 * 86400, month_end(scheme, "2024-04"), None]
    for as_of in times:
        for group in (None, "merchants"):
            fast = ledger.balances(kept, scheme, as_of=as_of, group=group)
            _forget_totals(kept)
            try:
                slow = ledger.balances(kept, scheme, as_of=as_of, group=group)
            finally:
                ledger.set_state(kept, ledger.TOTALS_MONTH, "2024-03")
            assert len(fast) > 40 and fast == slow, (as_of, group)
    assert ledger.balances(kept, scheme, as_of=end - 10 * 86400) != ledger.balances(
        kept, scheme, as_of=end
    )


def _full_scans(db, run) -> list[str]:
    """The statements ``run`` makes that read every entry (plan steps ``SCAN``)."""
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        run()
    finally:
        db.conn.set_trace_callback(None)
    scans = []
    for sql in seen:
        if not re.search(r"\bentries\b", sql) or re.match(r"\s*(INSERT|DELETE|BEGIN|COMMIT)", sql):
            continue
        steps = [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, _params(sql)).fetchall()]
        # `entries` under an alias of its own (e, o, g, r), but for the small partial
        # indexes of gradings and assessment awards
        if any(re.match(r"SCAN (entries|e|o|g|r)\b(?! USING INDEX entries_(graded|assessment_at))", s)
               for s in steps):  # fmt: skip
            scans.append(sql)
    return scans


def _params(sql: str) -> list[None] | dict[str, None]:
    names = re.findall(r":(\w+)", sql)
    return {n: None for n in names} if names else [None] * sql.count("?")


def test_a_month_is_scored_and_closed_without_a_pass_over_the_ledger(tmp_path, scheme, county):
    db = ledger.connect(tmp_path / "g.db")
    ingest_file(db, scheme, county.subjects, progress=False)
    for month, events in zip(MONTHS[:2], county.events, strict=False):
        ingest_file(db, scheme, events, progress=False)
        score(db, scheme)
        close_month(db, scheme, month)
    ingest_file(db, scheme, county.events[2], progress=False)
    assert _full_scans(db, lambda: score(db, scheme)) == []
    before = ledger_hash(db, "2024-03")
    assert _full_scans(db, lambda: close_month(db, scheme, "2024-03")) == []
    assert ledger.kept_totals_month(db) == "2024-03"
    assert db.execute("SELECT ledger_hash FROM periods WHERE month = '2024-03'").fetchone() == (
        before,
    )


def test_totals_kept_for_a_month_closed_out_of_turn_are_not_used(runs, scheme):
    """An empty month closed after a later one: the kept totals do not run through
    the latest closed month, so balances and the next close take a pass."""
    kept, _ = runs
    expect = ledger.balances(kept, scheme)
    kept.execute("SAVEPOINT out_of_turn")  # undone below
    try:
        close_month(kept, scheme, "2023-12")  # no entries; 2024-03 is closed already
        assert ledger.get_state(kept, ledger.TOTALS_MONTH) == "2023-12"
        assert ledger.kept_totals_month(kept) is None
        assert ledger.balances(kept, scheme) == expect
        close_month(kept, scheme, "2024-04")
        assert ledger.kept_totals_month(kept) == "2024-04"
        got = dict(((s, g), (f, w)) for s, g, f, w in kept.execute("SELECT * FROM closed_totals"))
        assert got == {
            (s, g): (f, w)
            for s, g, f, w in kept.execute(
                "SELECT subject, grp, SUM(CASE WHEN expires_at IS NULL THEN points ELSE 0 END),"
                " SUM(wallet) FROM entries GROUP BY subject, grp"
            )
        }
    finally:
        kept.execute("ROLLBACK TO out_of_turn")
        kept.execute("RELEASE out_of_turn")
