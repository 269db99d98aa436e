"""``subject.listed``: a condition reads the lists (by tier or score) the subject's account
is on at the event, e.g. "while on the black list, bonuses do not count"."""

from __future__ import annotations

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

LISTS = """
lists:
  - id: black
    title: 黑名单
    groups: [residents]
    reasons:
      - max_score: 989
  - id: red
    title: 红榜
    groups: [residents]
    reasons:
      - tier: [A]
  - id: bad_deeds
    title: 失信公示
    groups: [residents]
    reasons:
      - rules: [fine]
"""


def scheme_with(tmp_path: Path, rules: list[dict]):
    root = tmp_path / "scheme"
    shutil.copytree(FIXTURES / "engine", root)
    sy = root / "rules" / "scheme.yaml"
    sy.write_text(sy.read_text(encoding="utf-8") + LISTS, encoding="utf-8")
    rules = [{"id": "fine", "title": "违规", "on": "parking", "points": -15}, *rules]
    pack = {"pack": "residents", "version": "1", "group": "residents", "rules": rules}
    (root / "rules" / "packs" / "residents.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return load_scheme(root)


RULES = [
    {"id": "vol", "title": "志愿", "on": "volunteer", "points": {"per": "hours", "value": 10},
     "withhold": {"when": {"subject.listed": {"contains": "black"}}, "note": "黑名单期间加分不计"}},
    {"id": "star", "title": "红榜加分", "on": "sorting", "points": 5,
     "when": {"subject.listed": {"contains": "red"}}},
]  # fmt: skip


def test_a_condition_reads_the_lists_at_the_event(tmp_path) -> None:
    s = scheme_with(tmp_path, RULES)
    db = memory_db()
    put(db, s, [
        ev("s1", "sorting", "P1", "2024-03-01T10:00"),  # 1000, B: on no list, no bonus
        ev("f1", "parking", "P1", "2024-03-02T10:00"),  # 985: on the black list
        ev("v1", "volunteer", "P1", "2024-03-03T10:00", hours=1),  # listed: not counted
        ev("f2", "withdraw", "P1", "2024-03-04T10:00", target="f1"),  # 1000: off it
        ev("v2", "volunteer", "P1", "2024-03-05T10:00", hours=2),  # +20 → 1020, A: red
        ev("s2", "sorting", "P1", "2024-03-06T10:00"),  # on the red list: +5
    ])  # fmt: skip
    score(db, s)
    got = db.execute("SELECT event, points, reason, note FROM entries ORDER BY id").fetchall()
    assert got == [
        ("f1", -15, "match", None),
        ("v1", 0, "capped", "not counted: 黑名单期间加分不计"),
        ("f2", 15, "reversal", "reverses entry 1 of event f1"),
        ("v2", 20, "match", None),
        ("s2", 5, "match", None),
    ]


def test_listed_in_plain_chinese(tmp_path) -> None:
    s = scheme_with(tmp_path, RULES)
    text = render_rule(next(r for r in s.rules if r.id == "star"), s)
    assert "事件发生时在红榜上" in text, text


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ("blak", "names list 'blak', which scheme.yaml does not declare; did you mean 'black'?"),
        ("bad_deeds", "reads list 'bad_deeds', which lists subjects by the rules or severity"),
    ],
)
def test_bad_listed_is_refused_at_its_line(tmp_path, listed, message) -> None:
    rule = {"id": "x", "title": "x", "on": "sorting", "points": 1,
            "when": {"subject.listed": {"contains": listed}}}  # fmt: skip
    with pytest.raises(SchemeError) as e:
        scheme_with(tmp_path, [rule])
    text = str(e.value)
    assert message in text, text
    assert "residents.yaml:" in text
