"""Assessments: metrics, ranking units, each selection kind, awards, idempotence, plugins."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from scoring import hookspecs, ledger
from scoring.assess import (
    Metric,
    assessment_results,
    metric_registry,
    periods_ending_in,
    run_assessment,
)
from scoring.errors import SchemeError, UsageError
from scoring.loader import load_scheme
from scoring.model import Assessment
from scoring.periods import close_month
from scoring.plugins import build_plugins

MINI = Path(__file__).parent / "fixtures" / "mini" / "rules"
G1, G2, G3, G4 = "S01C01G01", "S01C01G02", "S01C02G01", "S01C02G02"  # G1, G2 东社区; G3, G4 西社区


@pytest.fixture(scope="module")
def base_scheme():
    return load_scheme(MINI, check=False)


def with_assessments(scheme, *assessments):
    return dataclasses.replace(scheme, assessments=list(assessments))


@pytest.fixture
def pm():
    """The built-in plugins only, so these tests do not depend on other plugins."""
    return build_plugins(None)


@pytest.fixture
def db():
    """A ledger whose events were scored through 2024 (entries are put by hand here):
    the periods assessed have run their course (see test_an_unfinished_period_...)."""
    db = ledger.memory_db()
    ledger.set_state(db, "last_scored", '[1735660800, "end-of-2024"]')  # 2025-01-01 00:00 +08
    return db


def subject(db, sid, grid, groups=("residents",)):
    db.execute(
        "INSERT INTO subjects (id, kind, name, grid) VALUES (?, 'person', ?, ?)",
        [sid, sid + "名", grid],
    )
    for g in groups:
        db.execute("INSERT INTO memberships (subject, grp) VALUES (?, ?)", [sid, g])


def entry(db, scheme, sid, points, when, grp="residents", reason="match"):
    at = scheme.clock.parse_time(when)
    db.execute(
        "INSERT INTO entries (subject, grp, account, points, wallet, rule, event, at, period, reason)"
        " VALUES (?, ?, 'score', ?, 0, 'r', 'e', ?, ?, ?)",
        [sid, grp, points, at, scheme.clock.month(at), reason],
    )


def survey(db, scheme, eid, sid, respondent, score, when="2024-02-10T10:00:00"):
    db.execute(
        "INSERT INTO events (id, type, subject, at, attrs) VALUES (?, 'survey', ?, ?, ?)",
        [
            eid,
            sid,
            scheme.clock.parse_time(when),
            json.dumps({"respondent": respondent, "score": score}),
        ],
    )


def A(**kw) -> Assessment:
    base = {
        "id": "a", "title": "评选", "period": "quarter", "scope": "subject", "group": "residents",
        "metric": {"mean": "score"}, "select": {"top": 1}, "badge": "称号",
    }  # fmt: skip
    base.update(kw)
    return Assessment(**base)


def values(run):
    return [(r.scope_id, r.value, r.rank, r.selected) for r in run.results]


@pytest.fixture
def five(db, base_scheme):
    """Residents with Q1-end scores R1 1040, R2 1030, R3 1030, R4 1010, R5 990."""
    for i, pts in enumerate([40, 30, 30, 10, -10], start=1):
        subject(db, f"R{i}", G1 if i <= 3 else G3)
        entry(db, base_scheme, f"R{i}", pts, "2024-02-01")
    return db


@pytest.mark.parametrize(
    "select, chosen",
    [
        ({"top": 1}, ["R1"]),
        ({"top": 2}, ["R1", "R2", "R3"]),  # R2 and R3 tie at the cut-off: both in
        ({"top_percent": 20}, ["R1"]),  # ceil(20% × 5) = 1
        ({"top_percent": 30}, ["R1", "R2", "R3"]),  # ceil(1.5) = 2, tie at 2
        ({"bottom": 1}, ["R5"]),
        ({"bottom": 2}, ["R4", "R5"]),
        ({"bottom": 3}, ["R2", "R3", "R4", "R5"]),  # tie at the cut-off
        ({"min": 1030}, ["R1", "R2", "R3"]),
        ({"min": 1041}, []),
    ],
)
def test_selection_kinds(five, base_scheme, pm, select, chosen):
    scheme = with_assessments(base_scheme, A(select=select))
    (run,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    assert [r.scope_id for r in run.selected] == chosen
    assert [(r.scope_id, r.rank) for r in run.results] == [
        ("R1", 1), ("R2", 2), ("R3", 2), ("R4", 4), ("R5", 5),
    ]  # fmt: skip
    assert all(r.badge == ("称号" if r.selected else "") for r in run.results)


def test_rank_within_community(five, base_scheme, pm):
    scheme = with_assessments(base_scheme, A(rank_within="community", select={"top": 1}))
    (run,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    assert [(r.unit, r.scope_id, r.rank) for r in run.selected] == [
        ("S01C01", "R1", 1),
        ("S01C02", "R4", 1),
    ]


def test_grid_scope_mean_score_awards_the_grid(db, base_scheme, pm):
    s = base_scheme
    # 东社区: G1 mean (1020 + 1000) / 2 = 1010, G2 1015 → G2 wins; 西社区: only G3 (980)
    subject(db, "R1", G1)
    subject(db, "R2", G1)
    subject(db, "R3", G2)
    subject(db, "R4", G3)
    subject(db, "M1", G2, groups=("merchants",))
    entry(db, s, "R1", 20, "2024-01-05")
    entry(db, s, "R3", 15, "2024-03-31T23:59:59")
    entry(db, s, "R3", 100, "2024-04-01T00:00:00")  # after the quarter: not counted
    entry(db, s, "R4", -20, "2024-02-05")
    a = A(
        id="red-flag-grid",
        scope="grid",
        rank_within="community",
        award={"points": 20},
        badge="红旗网格",
    )
    (run,) = run_assessment(db, with_assessments(s, a), "2024-Q1", plugins=pm)
    assert values(run) == [(G2, 1015.0, 1, True), (G1, 1010.0, 2, False), (G3, 980.0, 1, True)]
    assert [r.scope_name for r in run.results] == [
        "东社区第二网格",
        "东社区第一网格",
        "西社区第一网格",
    ]
    awards = [
        dict(r) for r in db.query("SELECT * FROM entries WHERE reason = 'assessment' ORDER BY id")
    ]
    q1_end = s.clock.parse_time("2024-04-01T00:00:00") - 1
    assert [(e["subject"], e["grp"], e["points"], e["wallet"], e["account"], e["event"], e["at"], e["period"], e["rule"])
            for e in awards] == [
        ("R3", "residents", 20, 20, "score+wallet", f"assess:red-flag-grid:2024-Q1:{G2}", q1_end, "2024-03", "red-flag-grid"),
        ("R4", "residents", 20, 20, "score+wallet", f"assess:red-flag-grid:2024-Q1:{G3}", q1_end, "2024-03", "red-flag-grid"),
    ]  # fmt: skip
    stored = [dict(r) for r in db.query("SELECT * FROM assessment_results ORDER BY scope_id")]
    assert [(r["scope_id"], r["value"], r["rank"], r["selected"], r["badge"]) for r in stored] == [
        (G1, 1010.0, 2, 0, ""),
        (G2, 1015.0, 1, 1, "红旗网格"),
        (G3, 980.0, 1, 1, "红旗网格"),
    ]


def test_weighted_survey_composite_with_min(db, base_scheme, pm):
    s = base_scheme
    for m in ("M1", "M2", "M3"):
        subject(db, m, G1, groups=("merchants",))
    survey(db, s, "s1", "M1", "residents", 90)
    survey(db, s, "s2", "M1", "residents", 100)  # residents mean 95
    survey(db, s, "s3", "M1", "community", 80)  # 0.6 × 95 + 0.4 × 80 = 89
    survey(db, s, "s4", "M2", "residents", 95)
    survey(db, s, "s5", "M2", "community", 90)  # 0.6 × 95 + 0.4 × 90 = 93
    survey(db, s, "s6", "M2", "community", 0, when="2024-04-02T10:00:00")  # next quarter
    survey(db, s, "s7", "M3", "residents", 100)  # no community survey: no value
    survey(db, s, "s8", "M1", "community", 10)  # withdrawn below: not counted
    db.execute(
        "INSERT INTO events (id, type, subject, at, attrs) VALUES ('w1', 'withdraw', 'M1', 0, ?)",
        [json.dumps({"target": "s8"})],
    )
    a = A(
        id="good-merchant", group="merchants", select={"min": 90}, award={"points": 10}, badge="满意商户",
        metric={"weighted": [{"weight": 60, "survey": {"respondent": "residents"}},
                             {"weight": 40, "survey": {"respondent": "community"}}]},
    )  # fmt: skip
    (run,) = run_assessment(db, with_assessments(s, a), "2024-Q1", plugins=pm)
    assert values(run) == [("M2", 93.0, 1, True), ("M1", 89.0, 2, False), ("M3", None, None, False)]
    awards = [(r["subject"], r["grp"], r["points"], r["wallet"]) for r in db.query(
        "SELECT * FROM entries WHERE reason = 'assessment'")]  # fmt: skip
    assert awards == [("M2", "merchants", 10, 10)]
    bal = {b.subject: (b.score, b.wallet) for b in ledger.balances(db, s, group="merchants")}
    assert bal["M2"] == (1010, 10)


def test_rerun_changes_nothing(five, base_scheme, pm):
    scheme = with_assessments(base_scheme, A(select={"top": 2}, award={"points": 5}))
    (first,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    assert first.new and len(first.awards) == 3
    before = [tuple(r) for r in five.execute("SELECT * FROM entries ORDER BY id").fetchall()]
    results = [
        tuple(r)
        for r in five.execute("SELECT * FROM assessment_results ORDER BY scope_id").fetchall()
    ]
    (again,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    assert not again.new
    assert [
        tuple(r) for r in five.execute("SELECT * FROM entries ORDER BY id").fetchall()
    ] == before
    assert [
        tuple(r)
        for r in five.execute("SELECT * FROM assessment_results ORDER BY scope_id").fetchall()
    ] == results
    assert values(again) == values(first)
    assert [e["subject"] for e in again.awards] == ["R1", "R2", "R3"]


def test_awards_post_to_first_open_month_after_close(five, base_scheme, pm):
    for m in ("2024-02", "2024-03"):  # March, without entries, may close: events came later
        close_month(five, base_scheme, m)
    scheme = with_assessments(base_scheme, A(award={"points": 5}))
    (run,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    assert [(e["subject"], e["period"]) for e in run.awards] == [("R1", "2024-04")]


def test_points_metric_sum_excludes_assessment_awards(db, base_scheme, pm):
    s = base_scheme
    subject(db, "W1", G1)
    subject(db, "W2", G1)
    entry(db, s, "W1", 12, "2024-01-10")
    entry(db, s, "W1", -2, "2024-03-10")
    entry(db, s, "W1", 50, "2023-12-31")  # before the quarter
    entry(db, s, "W2", 8, "2024-02-10")
    entry(db, s, "W2", 30, "2024-03-31T23:59:59", reason="assessment")  # an earlier award
    (run,) = run_assessment(
        db, with_assessments(s, A(metric={"sum": "points"})), "2024-Q1", plugins=pm
    )
    assert values(run) == [("W1", 10.0, 1, True), ("W2", 8.0, 2, False)]


def test_median_and_count_over_grids(db, base_scheme, pm):
    s = base_scheme
    for sid, grid, pts in [
        ("R1", G1, 10),
        ("R2", G1, 0),
        ("R3", G1, 40),
        ("R4", G2, 5),
        ("R5", G2, 0),
    ]:
        subject(db, sid, grid)
        if pts:
            entry(db, s, sid, pts, "2024-02-01")
    median = A(id="med", scope="grid", metric={"median": "score"}, select={"top": 1})
    count = A(id="cnt", scope="grid", metric={"count": "points"}, select={"top": 1})
    med, cnt = run_assessment(db, with_assessments(s, median, count), "2024-Q1", plugins=pm)
    assert values(med) == [(G1, 1010.0, 1, True), (G2, 1002.5, 2, False)]
    assert values(cnt) == [(G1, 2.0, 1, True), (G2, 1.0, 2, False)]  # accounts that earned points


def test_community_scope(db, base_scheme, pm):
    s = base_scheme
    subject(db, "R1", G1)
    subject(db, "R2", G2)
    subject(db, "R3", G3)
    entry(db, s, "R1", 30, "2024-02-01")
    entry(db, s, "R3", 20, "2024-02-01")
    a = A(scope="community", metric={"mean": "score"}, award={"points": 3})
    (run,) = run_assessment(db, with_assessments(s, a), "2024-Q1", plugins=pm)
    assert values(run) == [("S01C02", 1020.0, 1, True), ("S01C01", 1015.0, 2, False)]
    assert [e["subject"] for e in run.awards] == ["R3"]


def test_plugin_metric(five, base_scheme, pm):
    class Plugin:
        @hookspecs.hookimpl
        def register_metrics(self):
            def spread(ctx, what):
                vals = ctx.values(what)
                return {
                    sc: float(max(vals[s] for s in m) - min(vals[s] for s in m))
                    for sc, m in ctx.scopes.items()
                }

            return [Metric("spread", spread)]

    pm = build_plugins(None, extra=[Plugin()])
    a = A(scope="grid", metric={"spread": "score"}, select={"min": 0})
    (run,) = run_assessment(five, with_assessments(base_scheme, a), "2024-Q1", plugins=pm)
    assert values(run) == [(G3, 20.0, 1, True), (G1, 10.0, 2, True)]


def test_builtin_metrics_are_registered():
    m = build_plugins(None)
    assert sorted(metric_registry(m)) == ["count", "mean", "median", "sum", "survey", "weighted"]


def test_unknown_metric_is_a_scheme_error(five, base_scheme, pm):
    a = A(metric={"maximum": "score"}, src=("rules/assessments.yaml", 4, 5))
    with pytest.raises(SchemeError) as e:
        run_assessment(five, with_assessments(base_scheme, a), "2024-Q1", plugins=pm)
    assert str(e.value).startswith(
        "rules/assessments.yaml:4:5: assessment a: unknown metric 'maximum'; use one of"
    )
    assert five.execute("SELECT COUNT(*) FROM assessment_results").fetchone()[0] == 0


def test_period_kinds(five, base_scheme, pm):
    scheme = with_assessments(
        base_scheme, A(id="q"), A(id="m", period="month"), A(id="y", period="year")
    )
    assert [r.assessment for r in run_assessment(five, scheme, "2024-Q1", plugins=pm)] == ["q"]
    assert [r.assessment for r in run_assessment(five, scheme, "2024-02", plugins=pm)] == ["m"]
    assert [r.assessment for r in run_assessment(five, scheme, "2024", plugins=pm)] == ["y"]
    with pytest.raises(UsageError, match="'2024-W09' is a week; assessments run for a month"):
        run_assessment(five, scheme, "2024-W09", plugins=pm)
    with pytest.raises(UsageError, match="cannot read period 'Q1-2024'"):
        run_assessment(five, scheme, "Q1-2024", plugins=pm)
    assert periods_ending_in("2024-12") == ["2024-12", "2024-Q4", "2024"]
    assert periods_ending_in("2024-02") == ["2024-02"]


def test_stored_results_read_back(five, base_scheme, pm):
    scheme = with_assessments(base_scheme, A(select={"top": 1}, award={"points": 5}))
    (run,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    (stored,) = assessment_results(five, scheme, "2024-Q1")
    assert (stored.assessment, stored.title, stored.new) == ("a", "评选", False)
    assert values(stored) == values(run)
    assert [r.scope_name for r in stored.selected] == ["R1名"]
    assert [e["points"] for e in stored.awards] == [5]


def test_awards_at_the_same_period_end_do_not_feed_each_other(tmp_path):
    """Found in review: a grid's quarter mean must not include the same quarter's awards,
    whichever assessment runs first."""
    import shutil

    import yaml

    from scoring.evaluate import score
    from scoring.ingest import ingest_records
    from scoring.ledger import memory_db
    from scoring.loader import load_scheme

    star = {"id": "star", "title": "之星", "period": "quarter", "scope": "subject",
            "group": "residents", "metric": {"mean": "score"}, "select": {"top": 1},
            "award": {"points": 30}, "badge": "之星"}  # fmt: skip
    grid = {"id": "flag", "title": "红旗网格", "period": "quarter", "scope": "grid",
            "group": "residents", "metric": {"mean": "score"}, "select": {"top": 1},
            "badge": "红旗网格"}  # fmt: skip
    selected = []
    for order in ([star, grid], [grid, star]):
        root = tmp_path / f"s{len(selected)}"
        shutil.copytree(Path(__file__).parent / "fixtures" / "mini", root)
        (root / "rules" / "assessments.yaml").write_text(
            yaml.safe_dump({"assessments": order}, allow_unicode=True), encoding="utf-8"
        )
        scheme = load_scheme(root)
        db = memory_db()
        people = [("P1", "S01C01G01"), ("P2", "S01C01G02"), ("P3", "S01C01G02")]
        ingest_records(db, scheme, [{"id": p, "groups": ["residents"], "name": "张三", "grid": g}
                                    for p, g in people], kind="subjects")  # fmt: skip
        ingest_records(db, scheme, [
            {"id": "e1", "type": "volunteer_service", "subject": "P1", "at": "2024-03-10T10:00", "attrs": {"hours": 6}},
            {"id": "e2", "type": "volunteer_service", "subject": "P2", "at": "2024-03-10T10:00", "attrs": {"hours": 10}},
        ], kind="events")  # fmt: skip
        score(db, scheme)
        runs = {r.assessment: r for r in run_assessment(db, scheme, "2024-Q1")}
        selected.append([(x.scope_id, x.value) for x in runs["flag"].selected])
    # G01: P1 1012; G02: (P2 1020 + P3 1000) / 2 = 1010, not (1050 + 1000) / 2 with P2's award
    assert selected == [[("S01C01G01", 1012.0)], [("S01C01G01", 1012.0)]]


def test_an_unfinished_period_is_not_assessed(base_scheme, pm):
    """Found in review: `assess 2024-Q2` with only April's events named every grid
    worker (all tied at 0) and, once stored, could not change."""
    db = ledger.memory_db()
    subject(db, "R1", G1)
    entry(db, base_scheme, "R1", 5, "2024-04-10")
    at = base_scheme.clock.parse_time("2024-04-10")
    ledger.set_state(db, "last_scored", f'[{at}, "e1"]')
    scheme = with_assessments(base_scheme, A(period="quarter"))
    with pytest.raises(UsageError, match="2024-Q2 has not run its course: it ends with 2024-06"):
        run_assessment(db, scheme, "2024-Q2", plugins=pm)
    assert db.execute("SELECT COUNT(*) FROM assessment_results").fetchone() == (0,)
    ledger.set_state(db, "last_scored", f'[{base_scheme.clock.parse_time("2024-06-02")}, "e9"]')
    assert run_assessment(db, scheme, "2024-Q2", plugins=pm)  # June is reached: it runs


def test_a_period_kind_without_assessments_is_not_refused_as_unfinished(base_scheme, pm):
    db = ledger.memory_db()
    subject(db, "R1", G1)
    entry(db, base_scheme, "R1", 5, "2024-04-10")
    scheme = with_assessments(base_scheme, A(period="month"))
    assert run_assessment(db, scheme, "2024-Q2", plugins=pm) == []  # nothing to assess: no refusal


# --- select by bands, award posting date (issue 17, feature 8) -------------------------

STARS = {"bands": [
    {"min": 1040, "points": 15, "badge": "五星级"},
    {"min": 1030, "points": 10, "badge": "四星级"},
    {"min": 1010, "points": 2, "badge": "三星级"},
]}  # fmt: skip


def test_select_by_bands_awards_each_band_its_points(five, base_scheme, pm):
    # R1 1040 → five stars +15; R2, R3 1030 → four stars +10; R4 1010 → three +2; R5 990: none
    scheme = with_assessments(base_scheme, A(select=STARS, award={"points": 1}))
    (run,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    assert [(r.scope_id, r.selected, r.badge) for r in run.results] == [
        ("R1", True, "五星级"), ("R2", True, "四星级"), ("R3", True, "四星级"),
        ("R4", True, "三星级"), ("R5", False, ""),
    ]  # fmt: skip
    got = five.execute(
        "SELECT subject, points, note FROM entries WHERE reason = 'assessment' ORDER BY subject"
    ).fetchall()
    assert got == [
        ("R1", 15, "2024-Q1 五星级"), ("R2", 10, "2024-Q1 四星级"),
        ("R3", 10, "2024-Q1 四星级"), ("R4", 2, "2024-Q1 三星级"),
    ]  # fmt: skip


def test_a_band_without_points_takes_the_awards_points(five, base_scheme, pm):
    select = {"bands": [{"min": 1040, "points": 15}, {"min": 1030}]}
    scheme = with_assessments(base_scheme, A(select=select, award={"points": 3}, badge="星级户"))
    (run,) = run_assessment(five, scheme, "2024-Q1", plugins=pm)
    assert [(r.scope_id, r.badge) for r in run.selected] == [
        ("R1", "星级户"), ("R2", "星级户"), ("R3", "星级户"),
    ]  # fmt: skip
    got = five.execute(
        "SELECT subject, points FROM entries WHERE reason = 'assessment' ORDER BY subject"
    ).fetchall()
    assert got == [("R1", 15), ("R2", 3), ("R3", 3)]


def test_an_award_posted_on_the_first_day_of_the_next_period(five, base_scheme, pm):
    award = {"points": 5, "at": "next_period", "expires": {"until": "end of year"}}
    scheme = with_assessments(base_scheme, A(award=award))
    run_assessment(five, scheme, "2024-Q1", plugins=pm)
    clock = base_scheme.clock
    ((at, period, expires_at),) = five.execute(
        "SELECT at, period, expires_at FROM entries WHERE reason = 'assessment'"
    ).fetchall()
    assert clock.local(at).isoformat() == "2024-04-01T00:00:00+08:00"
    assert period == "2024-04"
    assert clock.local(expires_at).isoformat() == "2025-01-01T00:00:00+08:00"
    # the default stays the period's last second
    db2 = ledger.memory_db()
    ledger.set_state(db2, "last_scored", '[1735660800, "end-of-2024"]')
    for i, pts in enumerate([40], start=1):
        subject(db2, f"R{i}", G1)
        entry(db2, base_scheme, f"R{i}", pts, "2024-02-01")
    run_assessment(
        db2, with_assessments(base_scheme, A(award={"points": 5})), "2024-Q1", plugins=pm
    )
    ((at, period),) = db2.execute(
        "SELECT at, period FROM entries WHERE reason = 'assessment'"
    ).fetchall()
    assert clock.local(at).isoformat() == "2024-03-31T23:59:59+08:00" and period == "2024-03"


@pytest.mark.parametrize(
    ("assessment", "message"),
    [
        ("select: {bands: [{min: 80, points: 2}, {min: 90, points: 5}]}\n    award: {points: 1}",
         "band 2 of assessment 'stars' has min: 90, not below the band before it (80); write the"
         " bands from the highest down"),
        ("select: {bands: [{min: 90, points: 5}, {min: 80}]}\n    award: {group: residents}",
         "the award of assessment 'stars' has no points and band 2 of its select has no points"),
        ("select: {top: 1}\n    award: {at: next_month, points: 1}", "next_month"),
    ],
)  # fmt: skip
def test_bad_bands_are_refused_at_their_line(tmp_path, assessment, message):
    import shutil

    from scoring.validate import validate_scheme

    root = tmp_path / "rules"
    shutil.copytree(MINI, root)
    (root / "assessments.yaml").write_text(
        "assessments:\n  - id: stars\n    title: 星级评定\n    period: year\n    scope: subject\n"
        f"    group: residents\n    metric: {{mean: score}}\n    {assessment}\n",
        encoding="utf-8",
    )
    problems = [p for p in validate_scheme(root) if p.severity == "error"]
    assert any(message in p.message and p.file.endswith("assessments.yaml") and p.line >= 8
               for p in problems), [str(p) for p in problems]  # fmt: skip
