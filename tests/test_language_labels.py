"""Words, not codes: Chinese names of enumerated attribute values (``values: {code: 名称}``
in events.yaml) and link names declared by the scheme (``links:`` in scheme.yaml)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, ev, put

from scoring.errors import SchemeError
from scoring.evaluate import score
from scoring.ledger import memory_db
from scoring.loader import load_scheme
from scoring.render import render_rule
from scoring.validate import validate_scheme

RUMOUR = (
    "  rumour: {title: 散布谣言, attrs: {level: {type: string, title: 情节,"
    " values: {rumour_minor: 情节轻微, rumour_serious: 情节严重}}}}\n"
)
LINKS = "links: {father: 父亲, spouse: 配偶, legal_representative: 法定代表人}\n"


def make(tmp_path: Path, rules: list[dict], *, links: bool = True) -> Path:
    root = tmp_path / "scheme"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(FIXTURES / "engine", root)
    ey = root / "rules" / "events.yaml"
    ey.write_text(ey.read_text(encoding="utf-8") + RUMOUR, encoding="utf-8")
    if links:
        sy = root / "rules" / "scheme.yaml"
        sy.write_text(sy.read_text(encoding="utf-8") + LINKS, encoding="utf-8")
    pack = {"pack": "residents", "version": "1", "group": "residents", "rules": rules}
    (root / "rules" / "packs" / "residents.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return root


RULES = [
    {"id": "rumour", "title": "散布谣言", "on": "rumour",
     "points": {"by": "level", "table": {"rumour_minor": -5, "rumour_serious": -20}},
     "also": [{"link": "father", "group": "residents", "points": -2}]},
    {"id": "rumour-serious-only", "title": "严重谣言", "on": "rumour", "points": -1,
     "when": {"attrs.level": {"in": ["rumour_serious"]}}},
]  # fmt: skip


def test_values_and_links_are_shown_in_chinese(tmp_path) -> None:
    s = load_scheme(make(tmp_path, RULES))
    assert s.event_types["rumour"].attrs["level"].values == ["rumour_minor", "rumour_serious"]
    text = render_rule(s.rules[0], s)
    assert "“情节严重”扣20分" in text, text
    assert "rumour_serious" not in text
    assert "父亲" in text and "father" not in text, text
    text = render_rule(s.rules[1], s)
    assert "情节严重" in text and "rumour_serious" not in text, text


def test_values_written_as_a_mapping_score_and_check_like_a_list(tmp_path) -> None:
    s = load_scheme(make(tmp_path, RULES))
    db = memory_db()
    put(
        db,
        s,
        [
            ev("r1", "rumour", "P1", "2024-03-01T10:00", level="rumour_serious"),
            ev("r2", "rumour", "P1", "2024-03-02T10:00", level="rumour_bad"),  # not declared
        ],
        subjects=[
            {
                "id": "P1",
                "groups": ["residents"],
                "name": "张三",
                "grid": "G1",
                "links": {"father": "P2"},
            },
            {"id": "P2", "groups": ["residents"], "name": "张父", "grid": "G1"},
        ],  # fmt: skip
    )
    score(db, s)
    got = db.execute("SELECT subject, event, rule, points FROM entries ORDER BY id").fetchall()
    assert got == [
        ("P1", "r1", "rumour", -20),
        ("P2", "r1", "rumour", -2),
        ("P1", "r1", "rumour-serious-only", -1),
    ]
    (reason,) = db.execute("SELECT reason FROM rejects WHERE record_id = 'r2'").fetchone()
    assert "rumour_bad" in reason and "rumour_serious" in reason


def test_a_link_the_scheme_does_not_declare_is_an_error_at_its_place(tmp_path) -> None:
    rules = [{**RULES[0], "also": [{"link": "fathr", "group": "residents", "points": -2}]}]
    with pytest.raises(SchemeError) as e:
        load_scheme(make(tmp_path, rules))
    text = str(e.value)
    assert (
        "'fathr' link, which scheme.yaml 'links' does not declare; did you mean 'father'?" in text
    )
    assert "Declared: father (父亲), spouse (配偶)" in text
    assert re.search(r"residents\.yaml:\d+:\d+: ", text), text  # an error (it stops loading)


def test_without_declared_links_the_five_known_names_stay_and_others_warn(tmp_path) -> None:
    rules = [{**RULES[0], "also": [{"link": "father", "group": "residents", "points": -2}]}]
    problems = validate_scheme(make(tmp_path, rules, links=False))
    (p,) = [p for p in problems if "'father' link" in p.message]
    assert p.severity == "warning" and "not a known link name" in p.message
    s = load_scheme(make(tmp_path, RULES[:1], links=False))
    assert "父亲" not in render_rule(s.rules[0], s)


def test_a_label_that_is_not_text_is_refused(tmp_path) -> None:
    root = make(tmp_path, RULES)
    ey = root / "rules" / "events.yaml"
    ey.write_text(ey.read_text(encoding="utf-8").replace("情节轻微", "[1]"), encoding="utf-8")
    with pytest.raises(SchemeError) as e:
        load_scheme(root)
    assert "events.yaml:" in str(e.value)


def test_doubling_on_a_repeat_is_worded_once(tmp_path) -> None:
    rule = {**RULES[1], "escalate": {"within": "1 year", "factor": 2}}
    s = load_scheme(make(tmp_path, [rule]))
    text = render_rule(s.rules[0], s)
    assert "一年内再次发生的加倍计分" in text and "再次发生再次发生" not in text, text


def test_a_repair_may_undo_what_a_rule_wrote_through_also_in_its_group(tmp_path) -> None:
    root = make(tmp_path, [{"id": "fix-linked", "title": "修复", "on": "fix", "points": -5,
                            "repair": {"rules": ["m-fine"], "within": "1 year"}}])  # fmt: skip
    merchants = {"pack": "merchants", "version": "1", "group": "merchants", "rules": [
        {"id": "m-fine", "title": "处罚", "on": "parking", "points": -20,
         "also": [{"link": "legal_representative", "group": "residents", "points": -10}]}]}  # fmt: skip
    (root / "rules" / "packs" / "merchants.yaml").write_text(
        yaml.safe_dump(merchants, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    assert not [p for p in validate_scheme(root) if "never applies" in p.message]
    merchants["rules"][0].pop("also")
    (root / "rules" / "packs" / "merchants.yaml").write_text(
        yaml.safe_dump(merchants, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    (p,) = [p for p in validate_scheme(root) if "never applies" in p.message]
    assert p.severity == "warning"
