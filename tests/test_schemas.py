"""The JSON Schemas in schemas/ accept the reference scheme in rules/ and reject typos.

YAML is read the way the scheme loader must read it: YAML 1.2 core scalars,
so ``on:`` stays the string key ``on`` (not boolean True) and dates stay
``YYYY-MM-DD`` strings.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
SCHEMAS = ROOT / "schemas"

HEADER = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 surprises: only true/false are booleans, no timestamps."""


_CoreLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CoreLoader)


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(name: str, data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(name).iter_errors(data)
    ]


def schema_name_for(path: Path) -> str:
    rel = path.relative_to(RULES)
    if rel.parts[0] == "packs":
        return "pack"
    return rel.stem


RULE_FILES = sorted(RULES.rglob("*.yaml"))


def test_reference_scheme_is_complete() -> None:
    names = {str(p.relative_to(RULES)) for p in RULE_FILES}
    for required in (
        "scheme.yaml",
        "jurisdictions.yaml",
        "events.yaml",
        "assessments.yaml",
        "catalog.yaml",
    ):
        assert required in names
    packs = {p.stem for p in (RULES / "packs").glob("*.yaml")}
    assert packs == set(load(RULES / "scheme.yaml")["groups"])


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMAS.glob("*.schema.json")))
def test_schema_is_valid_2020_12_with_id(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/" + name)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_rules_file_has_schema_header(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = HEADER.match(first)
    assert m, f"{path.name}: first line must be '# yaml-language-server: $schema=...'"
    target = (path.parent / m.group(1)).resolve()
    assert target.is_file(), f"{path.name}: header points at missing {m.group(1)}"
    assert target.name == f"{schema_name_for(path)}.schema.json"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_rules_file_validates(path: Path) -> None:
    assert errors(schema_name_for(path), load(path)) == []


# --------------------------------------------------------------- cross-file consistency
# (the engine's validator does these too; here they keep the reference scheme honest)


def _packs() -> list[dict[str, Any]]:
    return [load(p) for p in sorted((RULES / "packs").glob("*.yaml"))]


def _condition_fields(cond: Any) -> list[str]:
    out: list[str] = []
    if isinstance(cond, dict):
        for key, value in cond.items():
            if key in ("all", "any"):
                for c in value:
                    out += _condition_fields(c)
            elif key == "not":
                out += _condition_fields(value)
            else:
                out.append(key)
    return out


def test_rules_use_declared_types_and_attributes() -> None:
    types = load(RULES / "events.yaml")["types"]
    for pack in _packs():
        for rule in pack["rules"]:
            on = rule["on"] if isinstance(rule["on"], list) else [rule["on"]]
            for t in on:
                assert t in types, f"{rule['id']}: undeclared event type {t}"
            attrs = set().union(*(types[t].get("attrs", {}) for t in on))
            for field in _condition_fields(rule.get("when")):
                if field.startswith("attrs."):
                    assert field[6:] in attrs, f"{rule['id']}: undeclared attribute {field}"
            pts = rule.get("points")
            if isinstance(pts, dict):
                attr = pts.get("per") or pts.get("by")
                assert attr in attrs, f"{rule['id']}: undeclared attribute {attr}"
                if "table" in pts:
                    spec = next(
                        types[t]["attrs"][attr] for t in on if attr in types[t].get("attrs", {})
                    )
                    assert set(pts["table"]) <= set(spec.get("values", pts["table"])), rule["id"]


def test_rule_ids_prefixed_unique_and_refs_resolve() -> None:
    scheme = load(RULES / "scheme.yaml")
    prefixes = {
        "residents": "res-",
        "party_members": "pm-",
        "community_workers": "cw-",
        "grid_workers": "gw-",
        "cadres": "cad-",
        "merchants": "mer-",
        "co_building_units": "cbu-",
        "property_companies": "prop-",
    }
    seen: dict[str, list[dict[str, Any]]] = {}
    for pack in _packs():
        assert pack["group"] in scheme["groups"]
        assert 6 <= len({r["id"] for r in pack["rules"]}) <= 12, pack["pack"]
        for rule in pack["rules"]:
            assert rule["id"].startswith(prefixes[pack["group"]]), rule["id"]
            seen.setdefault(rule["id"], []).append(rule)
    # versions of one rule id must have disjoint effective windows
    multi = {k: v for k, v in seen.items() if len(v) > 1}
    assert multi, "the reference scheme should show a rule with two versions"
    for rid, versions in multi.items():
        windows = sorted(
            (v["effective"].get("from", "0000"), v["effective"].get("until", "9999"))
            for v in versions
        )
        for (_, end), (start, _) in itertools.pairwise(windows):
            assert end < start, f"{rid}: overlapping effective windows"
    for pack in _packs():
        for rule in pack["rules"]:
            for target in rule.get("repair", {}).get("rules", []):
                assert target in seen, f"{rule['id']}: repair names unknown rule {target}"
    for lst in scheme["lists"]:
        for reason in lst["reasons"]:
            for rid in reason.get("rules", []):
                assert rid in seen, f"list {lst['id']}: unknown rule {rid}"


def test_tier_bands_are_contiguous_and_referenced_tiers_exist() -> None:
    scheme = load(RULES / "scheme.yaml")
    for name, tiers in scheme["tier_sets"].items():
        assert "max" not in tiers[0] and "min" not in tiers[-1], name
        for hi, lo in itertools.pairwise(tiers):
            assert lo["max"] == hi["min"] - 1, (
                f"{name}: gap or overlap between {hi['id']} and {lo['id']}"
            )
    tiers_of = {
        g: {t["id"] for t in scheme["tier_sets"][spec["tiers"]]}
        for g, spec in scheme["groups"].items()
    }
    for item in load(RULES / "catalog.yaml")["items"]:
        if "min_tier" in item:
            for g in item["groups"]:
                assert item["min_tier"] in tiers_of[g], (
                    f"{item['id']}: tier {item['min_tier']} not in {g}"
                )
    for pack in _packs():
        for rule in pack["rules"]:
            if "grade" in rule:
                assert rule["grade"]["to"] in tiers_of[pack["group"]], rule["id"]


def test_jurisdictions_size_and_ids() -> None:
    streets = load(RULES / "jurisdictions.yaml")["streets"]
    communities = [c for s in streets for c in s["communities"]]
    grids = [g for c in communities for g in c["grids"]]
    assert len(streets) >= 3 and len(communities) >= 10 and len(grids) >= 100
    for s in streets:
        for c in s["communities"]:
            assert re.fullmatch(re.escape(s["id"]) + r"C\d{2}", c["id"])
            for g in c["grids"]:
                assert re.fullmatch(re.escape(c["id"]) + r"G\d{2}", g["id"])
    assert len({g["id"] for g in grids}) == len(grids)


# --------------------------------------------------------------- bad examples are rejected


@pytest.fixture
def pack() -> dict[str, Any]:
    return load(RULES / "packs" / "residents.yaml")


def test_unknown_rule_key_rejected(pack: dict[str, Any]) -> None:
    pack["rules"][0]["limt"] = {"max_points": 40, "per": "month"}
    assert any("limt" in e for e in errors("pack", pack))


def test_points_as_string_rejected(pack: dict[str, Any]) -> None:
    pack["rules"][0]["points"] = "2"
    assert errors("pack", pack)


def test_rule_needs_points_escalate_or_repair(pack: dict[str, Any]) -> None:
    # "both points and escalate" is the validator's semantic check (tests/bad/points-and-escalate)
    bad = copy.deepcopy(pack)
    del bad["rules"][0]["points"]
    assert errors("pack", bad)
    bad["rules"][0]["repair"] = {"rules": ["res-illegal-parking"], "within": "12 months"}
    assert not errors("pack", bad)


@pytest.mark.parametrize(
    "when",
    [
        {"attr.hours": {"gte": 1}},  # misspelt field prefix
        {"attrs.hours": {"between": [1]}},  # between needs two bounds
        {"any": {"attrs.hours": 1}},  # any takes a list
    ],
)
def test_bad_conditions_rejected(pack: dict[str, Any], when: dict[str, Any]) -> None:
    pack["rules"][0]["when"] = when
    assert errors("pack", pack)


@pytest.mark.parametrize(
    "patch",
    [
        {"limit": {"max_points": 40, "per": "fortnight"}},
        {"expires": {"after": "twelve months"}},
        {"status": "draft"},
        {"severity": "grave"},
        {"effective": {"from": "2024-13-01"}},
        {"id": "Res_Volunteer"},
    ],
)
def test_bad_rule_values_rejected(pack: dict[str, Any], patch: dict[str, Any]) -> None:
    pack["rules"][0].update(patch)
    assert errors("pack", pack)


def test_unquoted_yaml_date_objects_are_not_strings(pack: dict[str, Any]) -> None:
    # documents the loader contract: dates must reach the schema as strings
    pack["adopted"]["on"] = __import__("datetime").date(2024, 1, 10)
    assert errors("pack", pack)


def test_scheme_typos_rejected() -> None:
    scheme = load(RULES / "scheme.yaml")
    scheme["groups"]["residents"]["base"] = 1000
    assert any("base" in e for e in errors("scheme", scheme))
    scheme = load(RULES / "scheme.yaml")
    scheme["lists"][0]["reasons"][0]["min_score"] = 1050  # two reason kinds in one entry
    assert errors("scheme", scheme)


def test_events_registry_rejects_unknown_attr_type() -> None:
    events = load(RULES / "events.yaml")
    events["types"]["volunteer_service"]["attrs"]["hours"]["type"] = "float"
    assert errors("events", events)


def test_catalog_rejects_negative_cost() -> None:
    catalog = load(RULES / "catalog.yaml")
    catalog["items"][0]["cost"] = -5
    assert errors("catalog", catalog)


# --------------------------------------------------------------- records and scenarios


def test_subject_and_event_records() -> None:
    good_subject = {
        "id": "M0001",
        "groups": ["merchants"],
        "name": "永乐巷便民超市",
        "grid": "S01C04G02",
        "code": "91370321MA3C4XYW0K",
        "links": {"legal_representative": "R0007"},
    }
    assert errors("subject", good_subject) == []
    assert errors("subject", {**good_subject, "phone": "13800000000"})
    assert errors("subject", {**good_subject, "code": "123"})
    event = {
        "id": "E1",
        "type": "volunteer_service",
        "subject": "R0001",
        "at": "2024-03-05T09:30:00",
        "attrs": {"hours": 2.5},
    }
    assert errors("event", event) == []
    assert errors("event", {**event, "hours": 3}) == []  # top-level attribute
    assert errors("event", {k: v for k, v in event.items() if k != "at"})
    assert errors("event", {**event, "attrs": "hours=2"})


def test_scenario_schema() -> None:
    scenario = {
        "name": "志愿服务每月封顶40分",
        "description": "38分已用，再来3小时只得2分",
        "as_of": "2024-03-31",
        "subjects": [{"id": "R1", "groups": ["residents"], "grid": "S01C01G01"}],
        "events": [
            {
                "id": "E1",
                "type": "volunteer_service",
                "subject": "R1",
                "at": "2024-03-05T09:00:00",
                "attrs": {"hours": 3},
            }
        ],
        "expect": {
            "balances": [
                {"subject": "R1", "group": "residents", "score": 1006, "wallet": 6, "tier": "A"}
            ],
            "entries": [{"subject": "R1", "rule": "res-volunteer", "points": 6, "reason": "match"}],
            "redemptions": [{"event": "E9", "outcome": "rejected", "reason_code": "tier_too_low"}],
            "lists": [{"list": "grey", "subject": "M1", "member": False}],
            "ranks": [
                {"subject": "R1", "group": "residents", "within": "grid", "rank": 1},
                {"grid": "S01C01G01", "within": "community", "rank": 1},
            ],
        },
    }
    assert errors("scenario", scenario) == []
    table = {
        "name": "志愿服务时长取整",
        "table": {
            "rule": "res-volunteer",
            "columns": ["attrs.hours", "points"],
            "rows": [[0.4, None], [0.5, 1], [1.9, 3]],
        },
    }
    assert errors("scenario", table) == []
    assert errors("scenario", {**scenario, "events_file": "events.jsonl"})  # both forms
    bad = copy.deepcopy(scenario)
    bad["expect"]["balances"][0]["scroe"] = 1006
    assert errors("scenario", bad)
    bad = copy.deepcopy(scenario)
    bad["expect"]["redemptions"][0]["reason_code"] = "too_poor"
    assert errors("scenario", bad)
    assert errors("scenario", {"name": "no expectations", "events": []})


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_rules_file_validates_as_loaded_by_the_engine(path: Path) -> None:
    from scoring.yamlsafe import load_yaml

    assert errors(schema_name_for(path), load_yaml(path)) == []


# --------------------------------------------------------------- fractional points in an editor

WEIHAI = ROOT / "examples" / "weihai" / "rules"
WEIHAI_FILES = sorted(WEIHAI.rglob("*.yaml"))


def _weihai_schema(path: Path) -> str:
    return "pack" if path.parent.name == "packs" else path.stem


@pytest.mark.parametrize("path", WEIHAI_FILES, ids=lambda p: str(p.relative_to(WEIHAI)))
def test_fractional_scheme_files_validate_as_an_editor_reads_them(path: Path) -> None:
    """An editor checks the files as written (points: 0.1, tier max 1049.9): the schema
    accepts decimals where validate does (found in review: they were marked red)."""
    assert (SCHEMAS / f"{_weihai_schema(path)}.schema.json").is_file()
    assert errors(_weihai_schema(path), load(path)) == []


def test_weihai_writes_decimals_the_editor_now_accepts() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in WEIHAI_FILES)
    assert "points: 0.1" in text and "max: 1049.9" in text  # the case above is a real one


def test_the_engine_still_checks_point_values_in_whole_units() -> None:
    """validate reads values already in units: there a point value stays a whole number,
    so the editor's looser schema changes nothing the engine accepts."""
    from scoring.validate.schema import schema_problems

    pack = {"pack": "p", "version": "1", "group": "residents",
            "rules": [{"id": "r", "title": "某", "on": "x", "points": 0.5}]}  # fmt: skip
    assert errors("pack", pack) == []  # the editor: fine at some precision
    (problem,) = schema_problems("packs/p.yaml", pack, "pack.schema.json")
    assert "whole number" in problem.message
