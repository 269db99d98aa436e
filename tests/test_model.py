"""Typed rule clauses: the loader types each clause once, with its defaults in ``model``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scoring.compile import compile_points
from scoring.durations import Duration
from scoring.loader import build_scheme, read_scheme
from scoring.model import (
    Also,
    Effective,
    Escalate,
    Expires,
    FixedPoints,
    Grade,
    Limit,
    PerPoints,
    Points,
    Repair,
    Rule,
    Scheme,
    TablePoints,
    clause_data,
    make_points,
)
from scoring.plugins import build_plugins

HERE = Path(__file__).parent
SCORING = HERE.parent / "scoring"


@pytest.fixture(scope="module")
def scheme() -> Scheme:
    return build_scheme(read_scheme(HERE / "fixtures" / "mini"))


def rule(**kw: object) -> Rule:
    return Rule(id="r", title="r", on=["e"], group="g", pack="p", pack_version="1",
                pack_hash="h", **kw)  # type: ignore[arg-type]  # fmt: skip


def test_wallet_defaults_by_sign_in_one_place() -> None:
    r = rule()
    assert r.wallet is None
    assert r.moves_wallet(5) is True
    assert r.moves_wallet(-5) is False
    assert r.moves_wallet(0) is False
    assert rule(wallet=False).moves_wallet(5) is False
    assert rule(wallet=True).moves_wallet(-5) is True


def test_points_forms() -> None:
    fixed = make_points(3)
    assert isinstance(fixed, FixedPoints) and fixed.n == 3 and fixed.spec() == 3
    per = make_points({"per": "hours", "value": 2})
    assert isinstance(per, PerPoints)
    assert (per.per, per.value, per.round) == ("hours", 2, "floor")  # round's default
    by = make_points({"by": "severity", "table": {"minor": -2, "serious": -10}})
    assert isinstance(by, TablePoints)
    assert (by.by, by.default, by.values()) == ("severity", None, [-2, -10])
    assert make_points(None) is None
    assert make_points(True).spec() is True  # not a form: compile gives the old message


def test_unknown_form_keeps_its_raw_parameters() -> None:
    spec = {"stars": "rating", "weight": 2}
    p = make_points(spec)
    assert type(p) is Points
    assert p.form == "stars"
    assert p.params == spec and p.spec() == spec  # what the plugin's compile gets
    with pytest.raises(ValueError, match="points mapping needs one of the keys by, per"):
        compile_points(p.spec(), build_plugins().points_forms)


def test_clauses_are_typed_once_by_the_loader(scheme: Scheme) -> None:
    typed = {
        "points": Points,
        "limit": Limit,
        "escalate": Escalate,
        "expires": Expires,
        "grade": Grade,
        "repair": Repair,
    }
    seen: set[str] = set()
    for r in scheme.rules:
        assert isinstance(r.effective, Effective)
        assert isinstance(r.also, tuple) and all(isinstance(a, Also) for a in r.also)
        seen.update("also" for _ in r.also[:1])
        for name, cls in typed.items():
            value = getattr(r, name)
            assert value is None or isinstance(value, cls), (r.id, name, value)
            if value is not None:
                seen.add(name)
    assert {"points", "limit", "escalate", "expires", "grade", "also"} <= seen


def test_durations_parse_once(scheme: Scheme) -> None:
    for r in scheme.rules:
        if r.expires:
            assert isinstance(r.expires.after, Duration)
        if r.escalate:
            assert isinstance(r.escalate.within, Duration)
            assert isinstance(r.escalate.steps, tuple)
        if r.grade:
            assert isinstance(r.grade.for_, Duration)


def test_repair_defaults() -> None:
    r = Repair(rules=("x",))
    assert (r.within, r.restore) == (Duration(12, "months"), "all")
    assert Also(link="household").points == "same"


def test_src_takes_no_part_in_equality() -> None:
    a = Limit("month", 10, None, src=("a.yaml", 3, 5))
    b = Limit("month", 10, None, src=("a.yaml", 9, 5))
    assert a == b
    assert clause_data(a) == {"per": "month", "max_points": 10, "max_count": None}


def test_effective_window(scheme: Scheme) -> None:
    r = rule(effective=Effective(start=100, end=200, text=("2024-01-01", "2024-02-01")))
    assert (r.effective_from, r.effective_until) == (100, 200)
    assert r.in_force(100) and not r.in_force(200) and not r.in_force(99)
    assert rule().in_force(0)


# a rule clause read as a raw mapping (``r.get("limit")``, ``rule.escalate["steps"]``,
# ``isinstance(rule.points, dict)`` ...) outside the loader, the model and validate (which
# checks the raw YAML before anything is typed) means a second set of defaults somewhere.
# (The evaluator reads ``CompiledRule``, whose fields compile fills from the typed clauses.)
CLAUSES = "points|limit|escalate|expires|grade|also|repair|wallet|effective|adopted|status"
RAW_CLAUSE = re.compile(
    rf"""\b(r|rule)\.get\(["']({CLAUSES})["']|\brule\[["']({CLAUSES})["']"""
    rf"""|(?<![.\w])(limit|lim|esc|grade)\.get\(["']"""
    rf"""|\b(r|rule|version)\.({CLAUSES})(\.get\(|\[)"""
    rf"""|isinstance\((r|rule)\.({CLAUSES}), dict\)"""
)
# defaults.py merges raw YAML before typing; precision.py turns its point values into units
ALLOWED = {"loader.py", "model.py", "defaults.py", "precision.py"}


def test_no_stage_reads_raw_rule_clauses() -> None:
    found = []
    for path in sorted(SCORING.rglob("*.py")):
        rel = path.relative_to(SCORING).as_posix()
        if rel in ALLOWED or rel.startswith("validate/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if RAW_CLAUSE.search(line):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
