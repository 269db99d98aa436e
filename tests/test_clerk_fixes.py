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


# --------------------------------------------------------------------------- 2. validate


FAM = {"petition": {"title": "信访"}}
P1 = {"id": "p1", "title": "缠访", "on": "parking", "points": -5, "family": "petition"}
P2 = {"id": "p2", "title": "闹访", "on": "noise", "points": -10, "family": "petition"}


def test_a_typo_in_a_pack_does_not_hide_its_families(tmp_path) -> None:
    from scoring.validate import validate_scheme

    typo = {"id": "t", "title": "错字", "on": "parking", "pionts": -1}
    extra = {"defaults": {"deductions": {"escalate": {"within": "1 year", "factor": 2}}},
             "families": FAM}  # fmt: skip
    root = scheme_dir(tmp_path, [P1, P2, typo], pack_extra=extra)
    errors = [p.message for p in validate_scheme(root) if p.severity == "error"]
    assert errors == [
        "rule 't' needs one of 'points', 'escalate', 'repair' or 'grade'",
        "unknown key 'pionts' in rule 't'; did you mean 'points'?",
    ]


def test_a_bad_default_is_reported_once_at_the_defaults_line(tmp_path) -> None:
    from scoring.validate import validate_scheme

    root = scheme_dir(tmp_path, [P1, P2, PARK],
                      pack_extra={"defaults": {"deductions": {"escalate": {"within": "一年", "factor": 2}}}})  # fmt: skip
    problems = [p for p in validate_scheme(root) if p.severity == "error"]
    within = [p for p in problems if "within" in p.message]
    assert len(within) == 1, [str(p) for p in problems]
    assert str(within[0]).endswith(
        "residents.yaml:7:15: 'defaults.deductions.escalate.within' is '一年', which is not a"
        " duration; write a number and a unit, e.g. '365d', '12 months', '3 years'"
    )


# --------------------------------------------------------------------------- 3. diff --base REV


def _git_repo_with_scheme_in_a_subfolder(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    sub = repo / "examples" / "town"
    shutil.copytree(FIXTURES / "engine", sub)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                        *args], check=True, capture_output=True)  # fmt: skip

    repo.mkdir(exist_ok=True)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "scheme")
    return repo, sub


def test_diff_base_reads_the_rules_of_a_scheme_in_a_subfolder(tmp_path) -> None:
    from scoring.diff import rules_from_git

    _, sub = _git_repo_with_scheme_in_a_subfolder(tmp_path)
    rules = rules_from_git("HEAD", sub, into=tmp_path / "base")
    assert rules == tmp_path / "base" / "examples" / "town" / "rules"
    assert (rules / "packs" / "residents.yaml").read_bytes() == (
        sub / "rules" / "packs" / "residents.yaml"
    ).read_bytes()


def test_diff_base_suggests_fetching_only_for_an_unknown_revision(tmp_path) -> None:
    import pytest

    from scoring.diff import rules_from_git
    from scoring.errors import UsageError

    repo, sub = _git_repo_with_scheme_in_a_subfolder(tmp_path)
    with pytest.raises(UsageError) as e:
        rules_from_git("origin/main", sub, into=tmp_path / "x")
    assert str(e.value) == (
        "cannot read rules/ at git revision 'origin/main': git does not know this revision;"
        " check its name (a branch, tag or commit), fetch it first (git fetch origin main),"
        " or pass a rules folder"
    )
    (repo / "other").mkdir()
    with pytest.raises(UsageError) as e:
        rules_from_git("HEAD", repo / "other", into=tmp_path / "y")
    assert str(e.value) == (
        "git revision 'HEAD' has no other/rules/ folder; pick a revision that has the rules,"
        " or pass a rules folder as --base"
    )


# --------------------------------------------------------------------------- 4./5. explain


GRADE = {"id": "noisy", "title": "噪音扰民", "on": "noise", "grade": {"to": "C", "for": "1 year"}}
BONUS = {"id": "vol", "title": "志愿服务", "on": "volunteer", "points": 5,
         "withhold": {"when": {"subject.graded": True}, "note": "判级期间不加分"}}  # fmt: skip


def _ledger(tmp_path, rules, events):
    """A scheme folder, and a ledger holding P1 and ``events`` (JSON lines), scored."""
    from click.testing import CliRunner

    from scoring.cli import cli

    root = scheme_dir(tmp_path, rules)
    subjects, evfile, db = tmp_path / "s.jsonl", tmp_path / "e.jsonl", tmp_path / "l.db"
    subjects.write_text(
        '{"id": "P1", "groups": ["residents"], "name": "张三", "grid": "G1"}\n', encoding="utf-8"
    )
    evfile.write_text("".join(e + "\n" for e in events), encoding="utf-8")

    def run(*args):
        result = CliRunner().invoke(cli, ["--scheme", str(root), "--db", str(db), *map(str, args)])
        assert result.exit_code == 0, result.output
        return result.stdout

    run("ingest", "-q", subjects, evfile)
    return run


EVENTS = [
    '{"id": "e1", "type": "noise", "subject": "P1", "at": "2024-03-01T09:00:00"}',
    '{"id": "e2", "type": "volunteer", "subject": "P1", "at": "2024-03-05T09:00:00",'
    ' "attrs": {"hours": 1}}',
]


def test_a_withheld_bonus_is_labelled_withheld_and_counted_apart(tmp_path) -> None:
    run = _ledger(tmp_path, [GRADE, BONUS], EVENTS)
    assert (
        run("score")
        .splitlines()[0]
        .startswith("scored 2 events → 2 entries (0 capped, 1 withheld, 0 reversals),")
    )
    lines = run("explain", "P1").splitlines()
    assert "  2024-03-05     +0     +0   1000  志愿服务 (vol)  [withheld: 判级期间不加分]" in lines
    assert not [line for line in lines if "capped" in line]


def test_explain_says_which_day_it_reports(tmp_path) -> None:
    run = _ledger(tmp_path, [GRADE, BONUS], EVENTS)
    run("score")
    head = "P1 · 居民 (residents) as of {}: score 1000, wallet 0, tier C (直接判级 ≤ C)"
    assert run("explain", "P1").splitlines()[0] == head.format("2024-03-05")  # the latest event
    assert run("explain", "P1", "--as-of", "2024-03-02").splitlines()[0] == head.format(
        "2024-03-02"
    )


# --------------------------------------------------------------------------- 6. rule text


def _items(tmp_path, rules, rule_id, **packs):
    from scoring.render import render_rule

    root = scheme_dir(tmp_path, rules)
    for group, more in packs.items():
        (root / "rules" / "packs" / f"{group}.yaml").write_text(
            yaml.safe_dump({"pack": group, "version": "1", "group": group, "rules": more},
                           allow_unicode=True, sort_keys=False), encoding="utf-8")  # fmt: skip
    s = load_scheme(root)
    rule = next(r for r in s.rules if r.id == rule_id)
    return [line[2:] for line in render_rule(rule, s).splitlines() if line.startswith("- ")]


def test_a_doubling_outside_a_family_says_again_once(tmp_path) -> None:
    rule = {**PARK, "escalate": {"within": "1 year", "factor": 2}}
    assert "计分：每次扣5分；一年内再次发生的加倍计分" in _items(tmp_path, [rule], "park")


def test_dates_in_rule_text_are_written_the_chinese_way(tmp_path) -> None:
    rule = {**PARK, "effective": {"from": "2020-01-01"},
            "adopted": {"by": "区领导小组", "on": "2019-12-20"}}  # fmt: skip
    items = _items(tmp_path, [rule], "park")
    assert "施行日期：自2020年1月1日起施行" in items
    assert "通过：经区领导小组于2019年12月20日通过" in items
    until = {**PARK, "effective": {"until": "2021-06-30"}}
    assert "施行日期：至2021年6月30日止" in _items(tmp_path, [until], "park")


def test_a_grading_passed_on_alone_reads_as_also_graded(tmp_path) -> None:
    rule = {"id": "evade", "title": "偷税", "on": "noise", "grade": {"to": "C", "for": "1 year"},
            "also": [{"link": "legal_representative", "group": "residents", "grade": "same"}]}  # fmt: skip
    items = _items(tmp_path, [PARK], "evade", merchants=[rule])
    assert "联奖联罚：同时对其法定代表人（居民账户）一并判定为C级（差）" in items


def test_repairing_a_rule_that_only_grades_undoes_the_grading(tmp_path) -> None:
    fix = {"id": "fix", "title": "履行完毕", "on": "fix", "points": 0,
           "repair": {"rules": ["noisy"], "within": "5 years"}}  # fmt: skip
    items = _items(tmp_path, [GRADE, fix, PARK], "fix")
    assert "信用修复：5年内最近一次“噪音扰民”的直接判级予以撤销" in items
    fix2 = {**fix, "repair": {"rules": ["park"], "within": "5 years"}}
    assert "信用修复：5年内最近一次“违停”的扣分予以撤销" in _items(
        tmp_path, [GRADE, fix2, PARK], "fix"
    )


# --------------------------------------------------------------------------- 7. YAML layout


def _yaml_error(text: str) -> str:
    import pytest

    from scoring.yamlsafe import YamlProblem, load_yaml_text

    with pytest.raises(YamlProblem) as e:
        load_yaml_text(text, "p.yaml")
    return str(e.value.problem)


INDENT = (
    "p.yaml:{}: YAML syntax error: this line's indentation does not match the lines above;"
    " indent it like its siblings (use spaces)"
)


def test_a_tab_is_explained_in_a_clerks_words() -> None:
    assert _yaml_error("rules:\n  - id: a\n  \ttitle: b\n") == (
        "p.yaml:3:3: YAML syntax error: a Tab character; replace the Tab at this column with"
        " spaces (YAML indents with spaces only)"
    )


def test_a_line_indented_wrongly_is_explained_in_a_clerks_words() -> None:
    assert _yaml_error("rules:\n  - id: a\n    title: x\n  on: y\n") == INDENT.format("4:3")
    assert _yaml_error("rules:\n  - id: a\n    title: x\n   on: y\n") == INDENT.format("4:4")
    assert _yaml_error("rules:\n  - id: a\n    title: x\n      on: y\n") == INDENT.format("4:9")
    # text after a colon is not an indentation problem, and keeps the parser's words
    assert _yaml_error("title: a: b\n").endswith("mapping values are not allowed here")


def test_a_full_width_colon_in_a_flow_mapping_is_named(tmp_path) -> None:
    from scoring.validate import validate_scheme

    root = scheme_dir(tmp_path, [PARK])
    pack = root / "rules" / "packs" / "residents.yaml"
    pack.write_text(
        pack.read_text(encoding="utf-8") + "  limit: {max_points：20, per: year}\n",
        encoding="utf-8",
    )
    errors = [str(p) for p in validate_scheme(root) if "full-width" in p.message]
    assert [e.split("residents.yaml:", 1)[1] for e in errors] == [
        "9:21: 'max_points：20' in 'limit' of rule 'park' has a full-width '：' where YAML needs"
        " ':' and a space, so it is read as one unknown key; switch the input method to"
        " half-width (English) punctuation and type it again"
    ]


# --------------------------------------------------------------------------- 8. bare numbers


def test_a_bare_number_as_a_grading_or_validity_duration_is_a_warning(tmp_path) -> None:
    from scoring.validate import validate_scheme

    graded = {**GRADE, "grade": {"to": "C", "for": 3}}
    kept = {**PARK, "expires": {"after": 2}}
    root = scheme_dir(tmp_path, [graded, kept, {**VOL, "expires": {"after": "30d"}}])
    got = [(p.severity, p.line, p.message) for p in validate_scheme(root) if "bare" in p.message]
    assert got == [
        ("warning", 10, "rule 'noisy': 'for: 3' is a bare number, read as 3 days; write"
                       " 'for: 3 years' if years were meant, or 'for: 3 days'"),
        ("warning", 16, "rule 'park': 'after: 2' is a bare number, read as 2 days; write"
                        " 'after: 2 years' if years were meant, or 'after: 2 days'"),
    ]  # fmt: skip
    load_scheme(root)  # a warning: the scheme still loads
