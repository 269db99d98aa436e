"""Defects a county policy clerk found trying the rule language (one test or more each)."""

from __future__ import annotations

import shutil

import yaml
from conftest import FIXTURES

from scoring.loader import load_scheme

VOL = {"id": "vol", "title": "志愿服务", "on": "volunteer", "points": {"per": "hours", "value": 1},
       "groups": ["residents", "party_members"]}  # fmt: skip
PARK = {"id": "park", "title": "违停", "on": "parking", "points": -5}


def scheme_dir(tmp_path, rules, pack_extra=None, group="residents"):
    """The engine fixture with one pack ``group`` holding ``rules``; returns the scheme root."""
    root = tmp_path / "s"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(FIXTURES / "engine", root)
    pack = {"pack": group, "version": "1", "group": group, **(pack_extra or {}), "rules": rules}
    (root / "rules" / "packs" / f"{group}.yaml").write_text(
        yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return root


# --------------------------------------------------------------------------- 1. multi-group rules


def test_rules_text_shows_a_multi_group_rule_once_under_each_group(tmp_path) -> None:
    from scoring.render import render_scheme

    text = render_scheme(load_scheme(scheme_dir(tmp_path, [VOL, PARK])))
    residents, rest = text.split("## 党员\n")
    party = rest.split("## 商户\n")[0]
    assert residents.count("##### 志愿服务") == 1 and "##### 违停" in residents
    assert party.count("##### 志愿服务") == 1 and "违停" not in party
    assert "### residents（1版）" in party  # the pack's heading, with only this group's rules


def test_site_rules_list_each_multi_group_rule_under_each_group(tmp_path) -> None:
    from scoring.publish.data import _rules

    packs = _rules(load_scheme(scheme_dir(tmp_path, [VOL, PARK])), "2024-03")
    assert [(p.group, [r.id for r in p.rules]) for p in packs] == [
        ("residents", ["vol", "park"]),
        ("party_members", ["vol"]),
    ]


def test_coverage_names_the_group_of_a_multi_group_rule(tmp_path) -> None:
    from scoring.testing.scenarios import coverage_report, run_scenarios

    root = scheme_dir(tmp_path, [VOL, PARK])
    sc = root / "tests" / "scenarios"
    sc.mkdir(parents=True, exist_ok=True)
    (sc / "one.yaml").write_text(
        "name: 居民志愿服务\n"
        "subjects: [{id: X, groups: [residents], grid: G1}]\n"
        "events:\n  - {type: volunteer, at: 2024-03-01T09:00, hours: 2}\n"
        "expect:\n  balances:\n    - {subject: X, score: 1002}\n",
        encoding="utf-8",
    )
    report = run_scenarios([sc], root)
    text = coverage_report(report)
    missing = [line.strip() for line in text.splitlines() if ": rule " in line]
    assert [m.split(": ", 1)[1] for m in missing] == [
        "rule vol (party_members) (志愿服务)",
        "rule park (违停)",
    ]
