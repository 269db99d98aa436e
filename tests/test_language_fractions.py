"""Exact fractional points (``precision: 0.1`` / ``0.5`` / ``decimals: n`` in scheme.yaml):
point values are integers of the smallest unit in the ledger, ``per`` is computed exactly
and rounded to the unit, and every output shows the scheme's decimals. Numbers by hand."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import FIXTURES, ev, put

from scoring.cli import cli
from scoring.errors import SchemeError, UsageError
from scoring.evaluate import score
from scoring.ledger import balances, connect, get_state, memory_db
from scoring.loader import load_scheme
from scoring.pipeline import run_month
from scoring.precision import Precision, fmt_points, json_points, parse_precision
from scoring.rank import rankings
from scoring.render import render_scheme

FAR = 2**40


def make(tmp_path: Path, head: str, rules: list[dict[str, Any]], *, tiers: str = "") -> Path:
    """The engine fixture with ``head`` (e.g. ``precision: 0.1``) atop scheme.yaml, the
    residents' rules, and the tier bounds rewritten for fractional points."""
    root = tmp_path / "scheme"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(FIXTURES / "engine", root)
    sy = root / "rules" / "scheme.yaml"
    text = sy.read_text(encoding="utf-8")
    if tiers:  # "0.9" → B up to 1009.9 and C up to 989.9
        text = text.replace("max: 1009}", f"max: 1009{tiers}}}").replace(
            "max: 989}", f"max: 989{tiers}}}"
        )
    sy.write_text(head + "\n" + text, encoding="utf-8")
    pack = {"pack": "residents", "version": "1", "group": "residents", "rules": rules}
    (root / "rules" / "packs" / "residents.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return root


TENTHS = [
    # 0.1 point an hour, rounded down to 0.1; at most 1.5 points a month
    {"id": "vol", "title": "志愿服务", "on": "volunteer",
     "points": {"per": "hours", "value": 0.1}, "limit": {"per": "month", "max_points": 1.5}},
    {"id": "park", "title": "违规停车", "on": "parking", "points": -0.5},
    {"id": "sort", "title": "垃圾分类", "on": "sorting", "points": 0.3},
]  # fmt: skip


def entries(db: Any) -> list[tuple]:
    return db.execute("SELECT rule, event, points, note FROM entries ORDER BY id").fetchall()


# --------------------------------------------------------------------------
# the precision itself


@pytest.mark.parametrize(
    ("data", "scale", "decimals"),
    [({}, 1, 0), ({"precision": 1}, 1, 0), ({"precision": 0.1}, 10, 1),
     ({"precision": 0.5}, 2, 1), ({"precision": 0.25}, 4, 2), ({"decimals": 2}, 100, 2)],
)  # fmt: skip
def test_precision_declared(data: dict, scale: int, decimals: int) -> None:
    prec, error, _ = parse_precision(data)
    assert (prec.scale, prec.decimals, error) == (scale, decimals, "")


def test_formatting_helpers() -> None:
    tenth = Precision(10, 1)
    assert fmt_points(10025, tenth) == "1002.5"
    assert fmt_points(10000, tenth) == "1000.0"
    assert fmt_points(5, tenth, sign=True) == "+0.5"
    assert fmt_points(-5, tenth) == "-0.5"
    assert fmt_points(3, Precision(2, 1)) == "1.5"  # precision 0.5: 3 halves
    assert json_points(10025, tenth) == 1002.5
    assert fmt_points(7) == "7" and json_points(7) == 7  # whole points: as before


# --------------------------------------------------------------------------
# scoring, hand-computed


def test_per_amounts_cap_and_fixed_points_in_tenths(tmp_path) -> None:
    s = load_scheme(make(tmp_path, "precision: 0.1", TENTHS, tiers=".9"))
    assert s.groups["residents"].base_score == 10000  # 1000 points in tenths
    assert [(t.min, t.max) for t in s.groups["residents"].tiers] == [
        (10100, None), (9900, 10099), (None, 9899),
    ]  # fmt: skip
    db = memory_db()
    put(db, s, [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=7.5),  # 0.75 → 0.7
        ev("b", "volunteer", "P1", "2024-03-02T10:00", hours=9),  # 0.9, cut to 0.8 (cap 1.5)
        ev("c", "parking", "P1", "2024-03-03T10:00"),  # -0.5
        ev("d", "sorting", "P2", "2024-03-03T10:00"),  # +0.3
        ev("e", "volunteer", "P1", "2024-04-01T10:00", hours=2.9),  # a new month: 0.29 → 0.2
    ])  # fmt: skip
    score(db, s)
    assert entries(db) == [
        ("vol", "a", 7, None),
        ("vol", "b", 8, "cut from 0.9 to 0.8 by max_points 1.5 per month"),
        ("park", "c", -5, None),
        ("sort", "d", 3, None),
        ("vol", "e", 2, None),
    ]
    assert isinstance(db.execute("SELECT SUM(points) FROM entries").fetchone()[0], int)
    (p1,) = balances(db, s, as_of=FAR, subject="P1")
    assert (p1.score, p1.wallet, p1.tier) == (10000 + 7 + 8 - 5 + 2, 7 + 8 + 2, "B")
    assert get_state(db, "points_precision") == "0.1"


@pytest.mark.parametrize(("how", "units"), [("floor", 7), ("ceil", 8), ("round", 8)])
def test_per_rounds_to_the_unit_as_the_rule_says(tmp_path, how: str, units: int) -> None:
    rule = {"id": "vol", "title": "志愿服务", "on": "volunteer",
            "points": {"per": "hours", "value": 0.1, "round": how}}  # fmt: skip
    s = load_scheme(make(tmp_path, "precision: 0.1", [rule], tiers=".9"))
    db = memory_db()
    put(db, s, [ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=7.5)])  # 0.75 points
    score(db, s)
    assert entries(db) == [("vol", "a", units, None)]


def test_per_is_exact_not_float(tmp_path) -> None:
    # 0.29 × 1 hour at precision 0.01 is 29 hundredths; in floats 0.29 × 100 = 28.999…
    rule = {"id": "vol", "title": "志愿服务", "on": "volunteer",
            "points": {"per": "hours", "value": 0.29}}  # fmt: skip
    s = load_scheme(make(tmp_path, "decimals: 2", [rule], tiers=".99"))
    db = memory_db()
    put(db, s, [ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=1)])
    score(db, s)
    assert entries(db) == [("vol", "a", 29, None)]
    assert fmt_points(balances(db, s, as_of=FAR, subject="P1")[0].score, s.precision) == "1000.29"


HALVES = [
    {"id": "sort", "title": "垃圾分类", "on": "sorting", "points": 0.5},
    {"id": "park", "title": "违规停车", "on": "parking", "points": -0.5},
    {"id": "noise", "title": "噪音扰民", "on": "noise", "points": -19.5},
]  # fmt: skip


def test_tier_boundary_at_a_half(tmp_path) -> None:
    # precision 0.5: B is 990–1009.5, A from 1010, C up to 989.5
    s = load_scheme(make(tmp_path, "precision: 0.5", HALVES, tiers=".5"))
    g = s.groups["residents"]
    assert [(t.min, t.max) for t in g.tiers] == [(2020, None), (1980, 2019), (None, 1979)]
    db = memory_db()
    put(db, s, [ev("n", "noise", "P2", "2024-03-01T10:00")]  # 1000 - 19.5 = 980.5: C
        + [ev(f"s{i}", "sorting", "P1", f"2024-03-0{i + 1}T10:00") for i in range(5)]
    )  # fmt: skip
    score(db, s)
    by = {b.subject: b for b in balances(db, s, as_of=FAR, group="residents")}
    assert (by["P1"].score, by["P1"].tier) == (2 * 1002.5, "B")  # 1002.5
    assert (by["P2"].score, by["P2"].tier) == (2 * 980.5, "C")
    assert g.tier_of(2019) == "B" and g.tier_of(2020) == "A"  # 1009.5 | 1010
    assert g.tier_of(1980) == "B" and g.tier_of(1979) == "C"  # 990 | 989.5


def test_a_ranking_tie_on_halves(tmp_path) -> None:
    s = load_scheme(make(tmp_path, "precision: 0.5", HALVES, tiers=".5"))
    db = memory_db()
    put(db, s, [
        ev("a", "sorting", "P1", "2024-03-01T10:00"),  # P1 1000.5
        ev("b", "sorting", "P2", "2024-03-01T11:00"),  # P2 1000.5
        ev("c", "sorting", "P2", "2024-03-01T12:00"),  # P2 1001
        ev("d", "parking", "P2", "2024-03-02T12:00"),  # P2 1000.5: ties P1; P3 stays 1000
    ])  # fmt: skip
    score(db, s)
    (table,) = rankings(db, s, "2024-03", group="residents")
    assert [(r.subject, r.score, r.rank) for r in table.rows] == [
        ("P1", 2001, 1), ("P2", 2001, 1), ("P3", 2000, 3),
    ]  # fmt: skip


# --------------------------------------------------------------------------
# what people read


def run(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def scored_ledger(tmp_path: Path) -> tuple[Path, Path]:
    root = make(tmp_path, "precision: 0.1", TENTHS, tiers=".9")
    s = load_scheme(root)
    db_path = tmp_path / "ledger.db"
    db = connect(db_path)
    put(db, s, [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=25),  # 2.5, cut to 1.5
        ev("c", "parking", "P1", "2024-03-03T10:00"),  # -0.5
        ev("d", "sorting", "P2", "2024-03-03T10:00"),  # +0.3
    ])  # fmt: skip
    score(db, s)
    db.conn.close()
    return root, db_path


def test_balances_json_table_and_explain_show_decimals(tmp_path) -> None:
    root, db = scored_ledger(tmp_path)
    out = run("--scheme", root, "--db", db, "balances", "--format", "json", "--group", "residents")
    assert out.exit_code == 0, out.output
    rows = {r["subject"]: r for r in json.loads(out.stdout)}
    assert (rows["P1"]["score"], rows["P1"]["wallet"]) == (1001.0, 1.5)
    assert (rows["P2"]["score"], rows["P3"]["score"]) == (1000.3, 1000.0)
    assert '"score": 1000.3' in out.stdout and '"score": 1001.0' in out.stdout  # numbers
    table = run("--scheme", root, "--db", db, "balances", "--group", "residents").stdout
    assert " 1001.0     1.5 B" in table
    explained = run("--scheme", root, "--db", db, "explain", "P1").stdout
    assert "score 1001.0, wallet 1.5" in explained
    assert "  +1.5   +1.5 1001.5" in explained and "cut from 2.5 to 1.5" in explained
    assert "  -0.5     +0 1001.0" in explained
    data = json.loads(run("--scheme", root, "--db", db, "explain", "P1", "--format", "json").stdout)
    assert [(x["points"], x["running_score"]) for x in data] == [(1.5, 1001.5), (-0.5, 1001.0)]


def test_rules_text_shows_decimals(tmp_path) -> None:
    s = load_scheme(make(tmp_path, "precision: 0.1", TENTHS, tiers=".9"))
    text = render_scheme(s)
    assert "基础分1000分" in text and "990–1009.9分" in text and "989.9分及以下" in text
    assert "每次加0.3分" in text and "每次扣0.5分" in text and "每月最多1.5分" in text
    assert "不足0.1分的部分不计" in text


def test_site_and_open_data_show_decimals(tmp_path) -> None:
    root, db_path = scored_ledger(tmp_path)
    s = load_scheme(root)
    db = connect(db_path)
    site = tmp_path / "site"
    run_month(db, s, "2024-03", site, private_dir=tmp_path / "private")
    csv = (site / "data" / "2024-03" / "rankings-residents.csv").read_text(encoding="utf-8-sig")
    lines = csv.splitlines()
    assert lines[1].endswith(",1001.0,B 良,1.0")  # P1: +1.5 - 0.5 in March
    assert lines[2].endswith(",1000.3,B 良,0.3") and lines[3].endswith(",1000.0,B 良,0.0")
    page = (site / "months" / "2024-03" / "rankings" / "residents.md").read_text(encoding="utf-8")
    assert "<strong>1001.0</strong>" in page and "<strong>1000.3</strong>" in page
    assert "<td>+0.3</td>" in page
    catalog = json.loads((site / "data" / "2024-03" / "catalog.json").read_text(encoding="utf-8"))
    assert {c["id"]: c["cost"] for c in catalog}["rice"] == 10.0
    summary = json.loads((site / "data" / "2024-03" / "summary.json").read_text(encoding="utf-8"))
    (res,) = [g for g in summary["groups"] if g["id"] == "residents"]
    assert res["mean_score"] == 1000.4  # (1001 + 1000.3 + 1000) / 3


# --------------------------------------------------------------------------
# refusals and validate


def test_a_precision_change_on_a_ledger_with_entries_is_refused(tmp_path) -> None:
    root, db_path = scored_ledger(tmp_path)
    sy = root / "rules" / "scheme.yaml"
    text = sy.read_text(encoding="utf-8").replace("precision: 0.1", "decimals: 2")
    sy.write_text(text.replace(".9}", ".99}"), encoding="utf-8")
    s = load_scheme(root)
    db = connect(db_path)
    before = db.execute("SELECT COUNT(*) FROM entries").fetchone()
    with pytest.raises(UsageError, match=r"precision 0\.1 but scheme.yaml now says 0\.01"):
        score(db, s)
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == before


def test_whole_points_ledger_refuses_a_later_precision(tmp_path, engine_scheme) -> None:
    whole = engine_scheme(residents=[{"id": "sort", "title": "垃圾分类", "on": "sorting",
                                      "points": 1}])  # fmt: skip
    db = memory_db()
    put(db, whole, [ev("d", "sorting", "P2", "2024-03-03T10:00")])
    score(db, whole)
    assert get_state(db, "points_precision") is None  # whole points write nothing new
    s = load_scheme(make(tmp_path / "x", "precision: 0.5", HALVES, tiers=".5"))
    with pytest.raises(UsageError, match=r"ledger holds points in precision 1 "):
        score(db, s)


def problems(tmp_path: Path, head: str, rules: list[dict], tiers: str = ".9") -> str:
    with pytest.raises(SchemeError) as e:
        load_scheme(make(tmp_path, head, rules, tiers=tiers))
    return str(e.value)


def test_validate_too_many_decimals(tmp_path) -> None:
    rules = [
        {"id": "sort", "title": "垃圾分类", "on": "sorting", "points": 0.25},
        {"id": "park", "title": "违规停车", "on": "parking", "points": -1,
         "limit": {"per": "month", "max_points": 1.55}},
    ]  # fmt: skip
    text = problems(tmp_path, "precision: 0.1", rules)
    assert re.search(
        r"packs/residents\.yaml:\d+:11: points 0\.25 has more decimals than the scheme allows", text
    )
    assert "(precision 0.1); write a multiple of 0.1, or make the scheme's precision finer" in text
    assert "max_points 1.55 has more decimals" in text


def test_validate_halves_and_whole_points(tmp_path) -> None:
    rules = [{"id": "sort", "title": "垃圾分类", "on": "sorting", "points": 0.3}]
    assert "points 0.3 has more decimals than the scheme allows (precision 0.5)" in problems(
        tmp_path, "precision: 0.5", rules, tiers=".5"
    )
    text = problems(tmp_path, "", [{**rules[0], "points": 0.5}], tiers="")
    assert "points 0.5 has more decimals than the scheme allows (whole points); write a whole" in (
        text
    )
    assert "declare e.g. precision: 0.5 in scheme.yaml" in text
    # the tier bounds are point values too
    assert "tier bound 1009.9 has more decimals" in problems(tmp_path, "precision: 0.5", [])


def test_tier_messages_speak_points(tmp_path) -> None:
    # at precision 0.1, B up to 1009 leaves 1009.1–1009.9 to no tier
    text = problems(tmp_path, "precision: 0.1", TENTHS, tiers="")
    assert (
        "tier 'B' ends at 1009 but 'A' starts at 1010: scores 1009.1 to 1009.9 belong to no tier"
        " in tier set 'std'; set 'A' min to 1009.1 or 'B' max to 1009.9"
    ) in text


@pytest.mark.parametrize(
    ("head", "message"),
    [("precision: 0.3", "precision must be 1 or one over a whole number"),
     ("precision: 0.1\ndecimals: 1", "write either precision or decimals, not both"),
     ("decimals: 7", "decimals must be a whole number from 0 to 4")],
)  # fmt: skip
def test_validate_the_precision(tmp_path, head: str, message: str) -> None:
    text = problems(tmp_path, head, TENTHS)
    assert "scheme.yaml:" in text and message in text


def test_assessment_bounds_and_awards_in_tenths(tmp_path) -> None:
    from scoring.assess import run_assessment

    root = make(tmp_path, "precision: 0.1", TENTHS, tiers=".9")
    star = {"id": "star", "title": "志愿之星", "period": "month", "scope": "subject",
            "group": "residents", "metric": {"sum": "points"}, "select": {"min": 0.3},
            "award": {"points": 0.5}, "badge": "之星"}  # fmt: skip
    (root / "rules" / "assessments.yaml").write_text(
        yaml.safe_dump({"assessments": [star]}, allow_unicode=True), encoding="utf-8"
    )
    s = load_scheme(root)
    assert (s.assessments[0].select, s.assessments[0].award) == ({"min": 3}, {"points": 5})
    db = memory_db()
    put(db, s, [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=2.9),  # +0.2: below 0.3
        ev("d", "sorting", "P2", "2024-03-03T10:00"),  # +0.3: selected
        ev("z", "sorting", "P3", "2024-04-03T10:00"),  # ends March for the assessment
    ])  # fmt: skip
    score(db, s)
    (run_,) = run_assessment(db, s, "2024-03")
    assert [(x.scope_id, x.value) for x in run_.selected] == [("P2", 3)]
    assert db.execute(
        "SELECT subject, points FROM entries WHERE reason = 'assessment'"
    ).fetchall() == [("P2", 5)]


SCENARIOS = """\
defaults: {groups: [residents], grid: G1}
scenarios:
  - name: 志愿服务按0.1分计，每月最多1.5分
    subjects: [P1]
    events:
      - {type: volunteer, at: 2024-03-01T10:00, hours: 7.5}
      - {type: volunteer, at: 2024-03-02T10:00, hours: 9}
      - {type: parking, at: 2024-03-03T10:00}
    expect:
      entries:
        - {subject: P1, rule: vol, points: 0.7}
        - {subject: P1, rule: vol, points: 0.8}
        - {subject: P1, rule: park, points: -0.5}
      balances:
        - {subject: P1, score: 1001.0, wallet: 1.5, tier: B}
  - name: 垃圾分类每次0.3分
    table:
      rule: sort
      columns: [points, score]
      rows:
        - [0.3, 1000.3]
"""


def test_scenarios_are_written_in_points(tmp_path) -> None:
    root = make(tmp_path, "precision: 0.1", TENTHS, tiers=".9")
    path = tmp_path / "fractions.yaml"
    path.write_text(SCENARIOS, encoding="utf-8")
    ok = run("--scheme", root, "test", path)
    assert ok.exit_code == 0, ok.output
    path.write_text(SCENARIOS.replace("points: 0.8}", "points: 0.9}"), encoding="utf-8")
    bad = run("--scheme", root, "test", path)
    assert bad.exit_code == 1 and "points +0.9" in bad.output, bad.output
    assert "+0.8" in bad.output  # the entries found, in points


def test_by_size_and_level_messages_speak_points(tmp_path) -> None:
    rules = [
        {"id": "park", "title": "违规停车", "on": "parking", "points": -0.5,
         "expires": {"by_size": [{"upto": 4.5, "after": "1 year"}, {"upto": 2.5, "after": "2 years"}]}},
    ]  # fmt: skip
    text = problems(tmp_path, "precision: 0.5", rules, tiers=".5")
    assert "size band 2 of the validity of rule 'park' has upto: 2.5, not above the band" in text
    assert "before it (4.5)" in text and "stops at 2.5, so an entry of more than 2.5 points" in text


def test_brackets_and_their_max_in_tenths(tmp_path) -> None:
    rule = {"id": "brk", "title": "累计服务", "on": "volunteer",
            "points": {"total": "hours", "period": "year", "max": 1.5, "brackets": [
                {"upto": 10, "every": 1, "points": 0.1}, {"every": 2, "points": 0.1}]}}  # fmt: skip
    s = load_scheme(make(tmp_path, "precision: 0.1", [rule], tiers=".9"))
    db = memory_db()
    put(db, s, [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=7.5),  # 7.5 h: 0.7
        ev("b", "volunteer", "P1", "2024-03-02T10:00", hours=5),  # 12.5 h: 1.0 + 0.1 → +0.4
        ev("c", "volunteer", "P1", "2024-03-03T10:00", hours=20),  # 32.5 h: 2.1, max 1.5 → +0.4
    ])  # fmt: skip
    score(db, s)
    assert [(e, p) for _, e, p, _ in entries(db)] == [("a", 7), ("b", 4), ("c", 4)]
    assert "每年最多加1.5分" in render_scheme(s)


def test_diff_refuses_two_precisions(tmp_path) -> None:
    from scoring.diff import diff_schemes

    base = load_scheme(make(tmp_path / "a", "", [{**TENTHS[2], "points": 1}]))
    new = load_scheme(make(tmp_path / "b", "precision: 0.1", TENTHS, tiers=".9"))
    db = memory_db()
    put(db, new, [ev("d", "sorting", "P2", "2024-03-03T10:00")])
    with pytest.raises(UsageError, match=r"different precisions \(1 and 0\.1\)"):
        diff_schemes(base, new, db)


# --------------------------------------------------------------------------
# every other output that prints points (found in review: they showed units, ×10)


def test_diff_shows_points_in_text_markdown_and_json(tmp_path) -> None:
    from scoring.diff import diff_schemes, format_diff

    base = load_scheme(make(tmp_path / "a", "precision: 0.1", TENTHS, tiers=".9"))
    changed = [TENTHS[0], {**TENTHS[1], "points": -1.5}, TENTHS[2]]  # parking -0.5 → -1.5
    new = load_scheme(make(tmp_path / "b", "precision: 0.1", changed, tiers=".9"))
    db = memory_db()
    put(db, new, [
        ev("c", "parking", "P1", "2024-03-03T10:00"),
        ev("d", "sorting", "P2", "2024-03-03T10:00"),
    ])  # fmt: skip
    report = diff_schemes(base, new, db, period="2024-03")
    text = format_diff(report, "text")
    assert "points 0.0 / -1.0" in text, text
    assert "  P1: score 999.5 → 998.5 (-1.0)" in text
    md = format_diff(report, "markdown")
    assert "| P1 | residents | 999.5 | 998.5 | -1.0 | B | 3 |" in md, md
    data = json.loads(format_diff(report, "json"))
    (change,) = data["changes"]
    assert (change["base_score"], change["new_score"], change["delta"]) == (999.5, 998.5, -1.0)
    assert (change["base_earned"], change["new_earned"]) == (-0.5, -1.5)
    assert data["groups"][0]["points_down"] == -1.0
    assert data["groups"][0]["top_movers"][0]["new_score"] == 998.5


def test_diff_of_whole_points_prints_as_before(tmp_path) -> None:
    from scoring.diff import diff_schemes, format_diff

    rules = [{**TENTHS[2], "points": 1}]
    base = load_scheme(make(tmp_path / "a", "", rules))
    new = load_scheme(make(tmp_path / "b", "", [{**rules[0], "points": 3}]))
    db = memory_db()
    put(db, new, [ev("d", "sorting", "P2", "2024-03-03T10:00")])
    report = diff_schemes(base, new, db, period="2024-03")
    assert "  P2: score 1001 → 1003 (+2)" in format_diff(report, "text")
    assert '"new_score": 1003,' in format_diff(report, "json")


def fractional_catalog(root: Path) -> None:
    (root / "rules" / "catalog.yaml").write_text(
        "items:\n  - {id: soap, title: 肥皂, cost: 0.5, partner: M1}\n", encoding="utf-8"
    )


def test_redemptions_report_shows_points(tmp_path) -> None:
    root = make(tmp_path, "precision: 0.1", TENTHS, tiers=".9")
    fractional_catalog(root)
    s = load_scheme(root)
    db_path = tmp_path / "ledger.db"
    db = connect(db_path)
    put(db, s, [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=12),  # +1.2
        ev("r1", "redeem", "P1", "2024-03-02T10:00", item="soap"),  # -0.5
        ev("r2", "redeem", "P1", "2024-03-02T11:00", item="soap", quantity=3),  # 1.5 > 0.7
    ])  # fmt: skip
    score(db, s)
    db.conn.close()
    out = run("--scheme", root, "--db", db_path, "redemptions")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == "2 requests: 1 granted (0.5 points), 1 rejected", out.stdout
    assert "  rejected insufficient_points: 1" in lines
    assert any("item=soap" in x and "points=0.5," in x for x in lines), out.stdout
    data = json.loads(
        run("--scheme", root, "--db", db_path, "redemptions", "--format", "json").stdout
    )
    assert data["points"] == 0.5 and "precision" not in data
    assert [r["points"] for r in data["by_item"]] == [0.5]
    assert [r["points"] for r in data["by_subject"]] == [0.5]
    assert [r["points"] for r in data["by_partner"]] == [0.5]


def test_coverage_lists_steps_and_table_values_in_points(tmp_path) -> None:
    rules = [
        {"id": "park", "title": "违规停车", "on": "parking",
         "escalate": {"within": "1 year", "steps": [-0.5, -1.5]}},
        {"id": "sort", "title": "垃圾分类", "on": "sorting",
         "points": {"by": "kind", "table": {"a": 0.3, "b": 1}}},
    ]  # fmt: skip
    root = make(tmp_path, "precision: 0.1", rules, tiers=".9")
    events = root / "rules" / "events.yaml"
    text = events.read_text(encoding="utf-8")
    old = "sorting: {title: 垃圾分类, attrs: {}}"
    assert old in text
    events.write_text(
        text.replace(old, "sorting: {title: 垃圾分类, attrs: {kind: {type: string}}}"),
        encoding="utf-8",
    )
    path = tmp_path / "none.yaml"
    path.write_text(
        "name: 无关\ndefaults: {groups: [residents]}\nsubjects: [P1]\nevents: []\n"
        "expect:\n  balances:\n    - {subject: P1, score: 1000.0}\n",
        encoding="utf-8",
    )
    out = run("--scheme", root, "test", path)
    assert out.exit_code == 0, out.output
    assert "escalation park step 1 (-0.5) (违规停车)" in out.stdout, out.stdout
    assert "escalation park step 2 (-1.5) (违规停车)" in out.stdout
    assert "table value sort kind = a (+0.3) (垃圾分类)" in out.stdout
    assert "table value sort kind = b (+1.0) (垃圾分类)" in out.stdout


def test_list_reasons_speak_points(tmp_path) -> None:
    from scoring.lists import list_members

    grey = (
        "lists:\n  - id: grey\n    title: 灰榜\n    groups: [residents]\n    reasons:\n"
        "      - {max_score: 999.5}\n      - {rules: [park], within: 12 months}\n"
    )
    s = load_scheme(make(tmp_path, "precision: 0.1\n" + grey, TENTHS, tiers=".9"))
    db = memory_db()
    put(db, s, [ev("c", "parking", "P1", "2024-03-03T10:00")])  # 999.5
    score(db, s)
    (m,) = list_members(db, s, "grey", as_of=s.clock.end_of_day("2024-03-31"))
    texts = [(r.heading, r.text) for r in m.reasons]
    assert ("信用分不高于999.5分", "信用分为999.5分") in texts, texts
    assert ("12个月内有违规停车行为", "2024-03-03 违规停车（扣0.5分），公示至2025-03-03") in texts
    assert m.as_dict(s.precision)["score"] == 999.5  # gridcredit lists --format json
    from scoring.publish.data import _criterion

    assert _criterion(s, s.lists[0].reasons[0]) == "信用分不高于999.5分"  # the site's list page


def test_assess_json_shows_points(tmp_path) -> None:
    root = make(tmp_path, "precision: 0.1", TENTHS, tiers=".9")
    star = {"id": "star", "title": "志愿之星", "period": "month", "scope": "subject",
            "group": "residents", "metric": {"sum": "points"}, "select": {"min": 0.3},
            "award": {"points": 0.5}, "badge": "之星"}  # fmt: skip
    (root / "rules" / "assessments.yaml").write_text(
        yaml.safe_dump({"assessments": [star]}, allow_unicode=True), encoding="utf-8"
    )
    s = load_scheme(root)
    db_path = tmp_path / "ledger.db"
    db = connect(db_path)
    put(db, s, [
        ev("d", "sorting", "P2", "2024-03-03T10:00"),  # +0.3: selected
        ev("z", "sorting", "P3", "2024-04-03T10:00"),
    ])  # fmt: skip
    score(db, s)
    db.conn.close()
    out = run("--scheme", root, "--db", db_path, "assess", "2024-03", "--format", "json")
    assert out.exit_code == 0, out.output
    (data,) = json.loads(out.stdout)
    assert [(r["scope_id"], r["value"]) for r in data["selected"]] == [("P2", 0.3)]
    assert [(a["subject"], a["points"], a["wallet"]) for a in data["awards"]] == [("P2", 0.5, 0.5)]


def test_scenario_failures_speak_points(tmp_path) -> None:
    root = make(tmp_path, "precision: 0.1", TENTHS, tiers=".9")
    path = tmp_path / "fractions.yaml"
    path.write_text(
        SCENARIOS.replace("score: 1001.0, wallet: 1.5", "score: 1001.5, wallet: 1.5").replace(
            "[0.3, 1000.3]", "[0.4, 1000.3]"
        ),
        encoding="utf-8",
    )
    out = run("--scheme", root, "test", path).stdout
    assert "score 1001.5, got 1001.0" in out, out
    assert "gave +1.5 in 2024-03 (cap 1.5 points/month" in out, out
    assert "gave -0.5 (wallet 0.0) in 2024-03" in out
    assert "expected points 0.4, got 0.3 from rule sort" in out
