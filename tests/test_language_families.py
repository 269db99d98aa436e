"""Rule families: one escalation window and one cap shared by several rules, and
``exclusive: highest`` (one act that fits several items scores once, by the highest)."""

from __future__ import annotations

import pytest
import yaml
from conftest import ev, put

from scoring.errors import SchemeError
from scoring.evaluate import score
from scoring.ledger import memory_db
from scoring.loader import load_scheme

NOISE = {
    "id": "noise",
    "title": "噪音",
    "on": "noise",
    "family": "nuisance",
    "points": -10,
    "escalate": {"within": "30d", "factor": 2},
}
PARK = {
    "id": "park",
    "title": "违停",
    "on": "parking",
    "family": "nuisance",
    "points": -5,
    "escalate": {"within": "30d", "factor": 2},
}
VOL = {"id": "vol", "title": "志愿", "on": "volunteer", "family": "good", "points": 4}
SORT = {"id": "sort", "title": "分类", "on": "sorting", "family": "good", "points": 3}
C1 = {"id": "c-minor", "title": "轻", "on": "complaint", "family": "complaint", "points": -5}
C2 = {
    "id": "c-any",
    "title": "任一",
    "on": "complaint",
    "family": "complaint",
    "points": -20,
    "when": {"attrs.severity": {"in": ["general", "serious"]}},
}
C3 = {
    "id": "c-b",
    "title": "同分",
    "on": "complaint",
    "family": "complaint",
    "points": -20,
    "when": {"attrs.severity": "serious"},
}
FAMILIES = {"nuisance": {"title": "扰民"}, "good": {"title": "日常守信", "limit": {"max_points": 10, "per": "month"}},
            "complaint": {"title": "投诉", "exclusive": "highest"}}  # fmt: skip


def scheme_with(tmp_path, rules, families=FAMILIES, name="s"):
    import shutil

    from conftest import FIXTURES

    root = tmp_path / name
    shutil.copytree(FIXTURES / "engine", root)
    pack = {"pack": "residents", "version": "1", "group": "residents", "families": families,
            "rules": rules}  # fmt: skip
    (root / "rules" / "packs" / "residents.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return load_scheme(root)


def entries(s, events):
    db = memory_db()
    put(db, s, events)
    score(db, s)
    return db.execute("SELECT event, rule, points, reason FROM entries ORDER BY id").fetchall()


def test_a_repeat_of_the_same_kind_doubles_across_the_family(tmp_path) -> None:
    s = scheme_with(tmp_path, [NOISE, PARK])
    got = entries(s, [
        ev("a", "parking", "P1", "2024-03-01T10:00"),
        ev("b", "noise", "P1", "2024-03-10T10:00"),  # the family's second match in 30 days
        ev("c", "parking", "P1", "2024-05-01T10:00"),  # the window has passed
    ])  # fmt: skip
    assert got == [
        ("a", "park", -5, "match"),
        ("b", "noise", -20, "match"),
        ("c", "park", -5, "match"),
    ]


def test_a_cap_on_the_family_is_shared(tmp_path) -> None:
    s = scheme_with(tmp_path, [VOL, SORT])
    got = entries(s, [
        ev("a", "volunteer", "P1", "2024-03-01T10:00", hours=1),
        ev("b", "sorting", "P1", "2024-03-02T10:00"),
        ev("c", "volunteer", "P1", "2024-03-03T10:00", hours=1),  # 4 + 3 + 4 > 10: cut to 3
        ev("d", "sorting", "P1", "2024-03-04T10:00"),  # nothing left
    ])  # fmt: skip
    assert [(e, r, p, why) for e, r, p, why in got] == [
        ("a", "vol", 4, "match"), ("b", "sort", 3, "match"), ("c", "vol", 3, "match"),
        ("d", "sort", 0, "capped"),
    ]  # fmt: skip


def test_exclusive_scores_the_highest_whatever_the_order_written(tmp_path) -> None:
    events = [
        ev("a", "complaint", "P1", "2024-03-01T10:00", severity="minor"),
        ev("b", "complaint", "P1", "2024-03-02T10:00", severity="general"),
        ev("c", "complaint", "P1", "2024-03-03T10:00", severity="serious"),  # a tie at -20
    ]
    one = entries(scheme_with(tmp_path, [C1, C2, C3], name="one"), events)
    two = entries(scheme_with(tmp_path, [C3, C2, C1], name="two"), events)
    assert one == two == [
        ("a", "c-minor", -5, "match"), ("b", "c-any", -20, "match"), ("c", "c-any", -20, "match"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{**VOL, "family": "goood"}], "family 'goood', which no pack declares; did you mean 'good'"),
        ([VOL, {**SORT, "points": -3}], "family 'good' mixes awards and deductions"),
        ([VOL, {**SORT, "limit": {"max_points": 5, "per": "month"}}],
         "has a limit of its own, but its family 'good' has one"),
        ([NOISE, {**PARK, "escalate": None}], "give this rule an 'escalate' too"),
        ([C1, {**C2, "when": {"subject.grid": "G1"}}], "the highest item is chosen from the event alone"),
        ([{**NOISE, "points": None}], "doubles (factor) its points on a repeat but has no 'points'"),
    ],
)  # fmt: skip
def test_bad_families_are_refused(tmp_path, rules, message) -> None:
    rules = [{k: v for k, v in r.items() if v is not None} for r in rules]
    with pytest.raises(SchemeError) as e:
        scheme_with(tmp_path, rules)
    assert message in str(e.value), str(e.value)
    assert "residents.yaml:" in str(e.value)
