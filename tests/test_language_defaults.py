"""Defaults declared once (pack or scheme.yaml) and rules written once for several groups."""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import FIXTURES, ev, put

from scoring.errors import SchemeError
from scoring.evaluate import score
from scoring.ledger import memory_db
from scoring.loader import load_scheme

PARK = {"id": "park", "title": "违停", "on": "parking", "points": -5}
NOISE = {
    "id": "noise",
    "title": "噪音",
    "on": "noise",
    "escalate": {"within": "30d", "steps": [-30, -31]},
}
VOL = {"id": "vol", "title": "志愿", "on": "volunteer", "points": {"per": "hours", "value": 1}}
FIX = {"id": "fix", "title": "修复", "on": "fix", "points": -1, "no_defaults": ["escalate"],
       "repair": {"rules": ["park"]}}  # fmt: skip


def make(tmp_path, rules, pack_defaults=None, scheme_defaults=None, group="residents"):
    root = tmp_path / "s"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(FIXTURES / "engine", root)
    if scheme_defaults:
        sf = root / "rules" / "scheme.yaml"
        sf.write_text(sf.read_text(encoding="utf-8") + yaml.safe_dump({"defaults": scheme_defaults}),
                      encoding="utf-8")  # fmt: skip
    pack = {"pack": group, "version": "1", "group": group, "rules": rules}
    if pack_defaults:
        pack["defaults"] = pack_defaults
    (root / "rules" / "packs" / f"{group}.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return load_scheme(root)


def test_defaults_merge_by_kind_and_the_rule_wins(tmp_path) -> None:
    s = make(
        tmp_path, [PARK, NOISE, VOL, FIX],
        pack_defaults={"deductions": {"escalate": {"within": "30d", "factor": 2},
                                      "expires": {"after": "1 year"}},
                       "awards": {"wallet": False}},
        scheme_defaults={"deductions": {"expires": {"after": "3 years"}, "severity": "minor"}},
    )  # fmt: skip
    rules = {r.id: r for r in s.rules}
    assert (
        rules["park"].escalate.factor == 2 and rules["park"].expires.after.n == 1
    )  # pack over scheme
    assert rules["park"].severity == "minor"  # from the scheme
    assert rules["noise"].escalate.steps == (-30, -31)  # its own escalate wins
    assert rules["vol"].escalate is None and rules["vol"].wallet is False  # awards' defaults
    assert rules["fix"].escalate is None and rules["fix"].expires.after.n == 1  # no_defaults
    db = memory_db()
    put(
        db,
        s,
        [
            ev("a", "parking", "P1", "2024-03-01T10:00"),
            ev("b", "parking", "P1", "2024-03-05T10:00"),
        ],
    )
    score(db, s)
    assert [p for (p,) in db.execute("SELECT points FROM entries ORDER BY id")] == [-5, -10]


def test_a_bad_default_is_reported_at_the_defaults_line(tmp_path) -> None:
    with pytest.raises(SchemeError) as e:
        make(tmp_path, [PARK], pack_defaults={"deductions": {"expires": {"by_size": [
            {"after": "1 year"}, {"upto": 40, "after": "2 years"}]}}})  # fmt: skip
    text = str(e.value)
    assert "size band 1 of the validity of rule 'park' has no 'upto'" in text
    assert "residents.yaml:" in text


def test_a_rule_for_several_groups_keeps_a_cap_per_account(tmp_path) -> None:
    capped = {
        **VOL,
        "groups": ["residents", "party_members"],
        "limit": {"max_points": 3, "per": "month"},
    }
    s = make(tmp_path, [capped])
    db = memory_db()
    people = [{"id": "X", "groups": ["residents", "party_members"], "name": "某", "grid": "G1"}]
    put(db, s, [ev("a", "volunteer", "X", "2024-03-01T10:00", hours=2),
                ev("b", "volunteer", "X", "2024-03-02T10:00", hours=2)], subjects=people)  # fmt: skip
    score(db, s)
    got = db.execute("SELECT grp, event, points FROM entries ORDER BY grp, id").fetchall()
    assert got == [("party_members", "a", 2), ("party_members", "b", 1),
                   ("residents", "a", 2), ("residents", "b", 1)]  # fmt: skip


def test_an_unknown_group_in_groups_is_refused(tmp_path) -> None:
    with pytest.raises(SchemeError) as e:
        make(tmp_path, [{**VOL, "groups": ["residents", "residnts"]}])
    assert "residnts" in str(e.value) and "residents.yaml:" in str(e.value)
