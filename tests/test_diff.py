"""What-if diff between two rule sets: exactly the subjects whose numbers change, hand-computed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring import ledger
from scoring.diff import diff_schemes, format_diff, resolve_base, rules_from_git
from scoring.errors import UsageError
from scoring.ingest import ingest_records
from scoring.loader import load_scheme

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "tests" / "fixtures" / "mini"

SUBJECTS = [
    {"id": "R1", "groups": ["residents"], "name": "张三", "grid": "S01C01G01"},
    {"id": "R2", "groups": ["residents"], "name": "李四", "grid": "S01C01G01"},
    {"id": "R3", "groups": ["residents"], "name": "王五", "grid": "S01C01G02"},
    {"id": "M1", "groups": ["merchants"], "name": "鑫源超市", "grid": "S01C01G01",
     "links": {"legal_representative": "R3"}},
    {"id": "M2", "groups": ["merchants"], "name": "永乐便民店", "grid": "S01C02G01"},
]  # fmt: skip


def ev(eid: str, etype: str, subject: str, at: str, **attrs: object) -> dict:
    return {"id": eid, "type": etype, "subject": subject, "at": at, "attrs": attrs}


EVENTS = [
    ev("e1", "volunteer_service", "R1", "2024-03-02T09:00:00", hours=20),  # 40
    ev("e2", "volunteer_service", "R1", "2024-03-09T09:00:00", hours=6),  # 12: capped / 10
    ev("e3", "volunteer_service", "R2", "2024-03-02T09:00:00", hours=22),  # 44: 40 / 44
    ev("e4", "volunteer_service", "R3", "2024-03-02T09:00:00", hours=3),  # 6 either way
    ev("e5", "pet_violation", "R3", "2024-03-05T09:00:00", kind="no_leash"),  # trial: -3
    ev("e6", "counterfeit_goods", "M1", "2024-03-06T09:00:00"),  # M1 -50 graded C, R3 -20
    ev("e7", "volunteer_service", "R1", "2024-04-02T09:00:00", hours=1),  # after March
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


@pytest.fixture
def schemes(tmp_path: Path) -> tuple[Path, Path]:
    """The mini scheme, and a copy whose volunteering cap is 50 a month instead of 40."""
    base = tmp_path / "base"
    new = tmp_path / "new"
    shutil.copytree(MINI, base)
    shutil.copytree(MINI, new)
    pack = new / "rules" / "packs" / "residents.yaml"
    text = pack.read_text(encoding="utf-8")
    assert "limit: {max_points: 40, per: month}" in text
    pack.write_text(
        text.replace("max_points: 40, per: month", "max_points: 50, per: month"), encoding="utf-8"
    )
    return base / "rules", new / "rules"


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    return [
        write_jsonl(tmp_path / "subjects.jsonl", SUBJECTS),
        write_jsonl(tmp_path / "events.jsonl", EVENTS),
    ]


def test_diff_reports_exactly_the_changed_subjects(
    schemes: tuple[Path, Path], inputs: list[Path]
) -> None:
    report = diff_schemes(*schemes, inputs, period="2024-03")
    assert report.events == 6  # e7 is after the period
    assert report.as_of == "2024-03-31"
    changed = {(c.subject, c.group): c for c in report.changes}
    assert set(changed) == {("R1", "residents"), ("R2", "residents")}
    r1, r2 = changed[("R1", "residents")], changed[("R2", "residents")]
    # R1: 20h = 40 (cap reached), 6h capped → 1040; cap 50: 40 + 10 (12 cut to 10) → 1050
    assert (r1.base_score, r1.new_score, r1.delta) == (1040, 1050, 10)
    assert (r1.base_tier, r1.new_tier) == ("AA", "AAA")
    assert (r1.base_rank, r1.new_rank) == (1, 1)
    # R2: 22h = 44, cut to 40 → 1040; under cap 50 all 44 → 1044, now behind R1
    assert (r2.base_score, r2.new_score, r2.base_tier, r2.new_tier) == (1040, 1044, "AA", "AA")
    assert (r2.base_rank, r2.new_rank) == (1, 2)
    assert (r2.base_earned, r2.new_earned) == (40, 44)
    groups = {g.group: g for g in report.groups}
    res = groups["residents"]
    assert (res.accounts, res.changed, res.points_up, res.points_down) == (3, 2, 14, 0)
    assert (res.tier_changes, res.rank_changes) == (1, 1)
    assert [m.subject for m in res.top_movers] == ["R1", "R2"]
    assert (groups["merchants"].accounts, groups["merchants"].changed) == (2, 0)
    assert report.list_changes == []
    assert [(r.rule, r.change) for r in report.rules] == [("res-volunteer", "changed")]
    # the trial rule would have taken 3 points from R3 under both rule sets
    assert [(t.rule, t.entries, t.subjects, t.points, t.base_points) for t in report.trial] == [
        ("res-pet", 1, 1, -3, -3)
    ]


def test_diff_from_a_ledger_database_equals_diff_from_files(
    schemes: tuple[Path, Path], inputs: list[Path], tmp_path: Path
) -> None:
    scheme = load_scheme(schemes[0])
    db = ledger.connect(tmp_path / "gridcredit.db")
    ingest_records(db, scheme, SUBJECTS, file="subjects", kind="subjects")
    ingest_records(db, scheme, EVENTS, file="events", kind="events")
    db.conn.close()
    from_db = diff_schemes(*schemes, tmp_path / "gridcredit.db", period="2024-03")
    from_files = diff_schemes(*schemes, inputs, period="2024-03")
    assert [c.as_dict() for c in from_db.changes] == [c.as_dict() for c in from_files.changes]
    # without a period: everything, as of the day of the last event (R1 +2 in April both ways)
    whole = diff_schemes(*schemes, tmp_path / "gridcredit.db")
    assert whole.period == "all" and whole.as_of == "2024-04-02" and whole.events == 7
    r1 = next(c for c in whole.changes if c.subject == "R1")
    assert (r1.base_score, r1.new_score) == (1042, 1052)


def test_diff_list_membership(schemes: tuple[Path, Path], inputs: list[Path]) -> None:
    scheme_file = schemes[1] / "scheme.yaml"
    text = scheme_file.read_text(encoding="utf-8")
    assert "- tier: [AAA, AA]\n" in text
    scheme_file.write_text(
        text.replace("- tier: [AAA, AA]\n", "- tier: [AAA, AA, A]\n"), encoding="utf-8"
    )
    report = diff_schemes(*schemes, inputs, period="2024-03")
    # M2 (1000, tier A) joins the red list; M1 is held at C by direct grading and stays off it
    assert [(c.list, c.subject, c.change) for c in report.list_changes] == [("red", "M2", "joined")]


def test_diff_formats(schemes: tuple[Path, Path], inputs: list[Path]) -> None:
    report = diff_schemes(
        *schemes, inputs, period="2024-03", base_label="main", new_label="this change"
    )
    data = json.loads(format_diff(report, "json"))
    assert set(data) == {"period", "as_of", "base", "new", "events", "subjects", "seconds", "groups",
                         "changes", "lists", "trial", "rules"}  # fmt: skip
    assert data["base"] == "main" and data["period"] == "2024-03"
    assert data["changes"][0] == {
        "subject": "R1", "group": "residents", "base_score": 1040, "new_score": 1050,
        "base_tier": "AA", "new_tier": "AAA", "base_rank": 1, "new_rank": 1,
        "base_earned": 40, "new_earned": 50, "delta": 10,
    }  # fmt: skip
    assert data["groups"][0]["group"] == "residents" and data["groups"][0]["changed"] == 2
    assert data["groups"][0]["score_changes"] == 2
    assert data["trial"] == [{"rule": "res-pet", "title": "不文明养犬", "group": "residents", "entries": 1,
                              "subjects": 1, "points": -3, "base_entries": 1, "base_points": -3}]  # fmt: skip
    text = format_diff(report, "text")
    assert (
        "residents (居民): 2 of 3 accounts changed (2 in score), points +14 / 0, 1 tier changes,"
        " 1 rank changes" in text
    )
    assert "  R1: score 1040 → 1050 (+10), tier AA → AAA" in text
    assert "  R2: score 1040 → 1044 (+4), rank 1 → 2" in text
    md = format_diff(report, "markdown")
    assert "| 居民（residents） | 3 | 2 | 2 | +14 | 0 | 1 | 1 |" in md
    assert "| R1 | residents | 1040 | 1050 | +10 | AA → AAA | 1 |" in md
    assert "- 修改 `res-volunteer` 参加志愿服务" in md
    with pytest.raises(UsageError, match="unknown diff format"):
        format_diff(report, "html")


def test_base_from_folder_and_git(tmp_path: Path) -> None:
    path, label = resolve_base(str(MINI), ROOT)
    assert path == MINI / "rules" and label == str(MINI)
    rules = rules_from_git("HEAD", ROOT, into=tmp_path / "base")
    assert (rules / "scheme.yaml").is_file() and (rules / "packs" / "residents.yaml").is_file()
    with pytest.raises(UsageError, match="cannot read rules/ at git revision 'no-such-rev'"):
        rules_from_git("no-such-rev", ROOT, into=tmp_path / "x")
    with pytest.raises(UsageError, match="cannot read period"):
        diff_schemes(MINI, MINI, [], period="March")


def test_trial_effects_cover_the_period_and_leave_out_what_was_reversed(tmp_path: Path) -> None:
    """Found in review: `diff --period 2024-03` counted the trial entries of all
    months, and entries a correction had reversed."""
    from types import SimpleNamespace

    from scoring.diff import _trial
    from scoring.ledger import memory_db

    db = memory_db()
    rows = [  # (id, subject, points, at, reason, ref)
        (1, "R1", -4, 1704326400, "match", None),  # 2024-01-04: another month
        (2, "R1", -4, 1709251200, "match", None),  # 2024-03-01
        (3, "R2", -4, 1709337600, "match", None),  # 2024-03-02, withdrawn below
        (4, "R2", 4, 1709424000, "reversal", 3),
    ]
    db.conn.executemany(
        "INSERT INTO trial_entries (id, subject, grp, account, points, wallet, rule, event, at,"
        " period, reason, ref) VALUES (?, ?, 'residents', 'score', ?, 0, 'pet', 'e', ?, '', ?, ?)",
        rows,
    )
    march = (1709222400, 1711900799)  # 2024-03-01 00:00 to 03-31 23:59:59, +08:00
    assert _trial(SimpleNamespace(db=db), *march) == {"pet": (1, 1, -4)}
    assert _trial(SimpleNamespace(db=db), -(2**62), 2**62) == {"pet": (2, 1, -8)}
