"""The synthetic county (scoring/demo/county.py): determinism, validity, populations, codes, speed."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from scoring.demo import (
    DemoFiles,
    generate_county,
    generate_events_file,
    uscc_check_char,
    uscc_valid,
)
from scoring.errors import UsageError
from scoring.loader import load_scheme
from scoring.model import AttrSpec, Scheme

REPO = Path(__file__).resolve().parents[1]
SYSTEM = {"redeem", "withdraw", "objection", "survey"}


@pytest.fixture(scope="module")
def scheme() -> Scheme:
    return load_scheme(REPO / "rules")


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory, scheme: Scheme) -> DemoFiles:
    return generate_county(
        tmp_path_factory.mktemp("county"), scheme, events=40_000, residents=4_000
    )


def _read_subjects(path: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in map(orjson.loads, path.read_bytes().splitlines())}


def _attr_ok(spec: AttrSpec, v: Any) -> bool:
    if spec.type == "boolean":
        ok = isinstance(v, bool)
    elif spec.type == "integer":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif spec.type == "number":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif spec.type == "date":
        ok = isinstance(v, str) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v))
    else:
        ok = isinstance(v, str)
    if ok and spec.type in ("integer", "number"):
        ok = (spec.min is None or v >= spec.min) and (spec.max is None or v <= spec.max)
    if ok and spec.values is not None:
        ok = v in spec.values
    return ok


def _problem(scheme: Scheme, line: bytes) -> str | None:
    """Why a line is a bad record (the kinds the generator makes), or None if valid."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "malformed"
    if any(k not in rec for k in ("id", "type", "subject", "at")):
        return "missing_field"
    et = scheme.event_types.get(rec["type"])
    if et is None:
        return "unknown_type"
    attrs = rec.get("attrs") or {}
    for name, spec in et.attrs.items():
        if name not in attrs:
            if spec.required:
                return "missing_field"
        elif not _attr_ok(spec, attrs[name]):
            return "out_of_range"
    if set(attrs) - set(et.attrs):
        return "undeclared_attr"
    return None


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, scheme: Scheme) -> None:
    a = generate_county(tmp_path / "a", scheme, events=6_000, residents=1_500)
    generate_county(tmp_path / "b", scheme, events=6_000, residents=1_500)
    generate_county(tmp_path / "c", scheme, events=6_000, residents=1_500, seed=7)
    names = [p.name for p in [a.subjects, *a.events]]
    assert names == [
        "subjects.jsonl",
        "events-2024-01.jsonl",
        "events-2024-02.jsonl",
        "events-2024-03.jsonl",
    ]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name


def test_every_line_is_accounted_for(county: DemoFiles, scheme: Scheme) -> None:
    st = county.stats
    lines = [ln for p in county.events for ln in p.read_bytes().splitlines()]
    assert len(lines) == st.lines == 40_000
    assert st.lines == st.events + st.bad_total + st.duplicates
    problems = Counter(p for p in (_problem(scheme, ln) for ln in lines) if p)
    # Exactly the deliberate bad records are invalid, of the kinds counted.
    assert problems == st.bad
    assert set(problems) == {"malformed", "unknown_type", "out_of_range", "missing_field"}
    assert 0.001 <= st.bad_total / st.lines <= 0.0035
    seen: set[bytes] = set()
    repeats = 0
    for ln in lines:
        if ln in seen:
            repeats += 1
        seen.add(ln)
    assert repeats == st.duplicates
    assert 0.002 <= st.duplicates / st.lines <= 0.0045


def test_types_declared_and_sent_to_groups_with_rules(county: DemoFiles, scheme: Scheme) -> None:
    subjects = _read_subjects(county.subjects)
    reacting: dict[str, set[str]] = {}
    for pack in scheme.packs:
        for rule in pack.rules:
            for t in rule.on:
                reacting.setdefault(t, set()).add(pack.group)
    types: Counter[str] = Counter()
    ids: dict[str, int] = {}
    for path in county.events:
        for n, ln in enumerate(path.read_bytes().splitlines()):
            if _problem(scheme, ln):
                continue
            rec = orjson.loads(ln)
            if rec["id"] in ids:
                continue  # a repeated line
            ids[rec["id"]] = n
            t = rec["type"]
            types[t] += 1
            assert t in scheme.event_types
            subject = subjects[rec["subject"]]
            if t not in SYSTEM:
                assert reacting[t] & set(subject["groups"]), (t, subject["groups"])
            if t in ("withdraw", "objection"):
                assert rec["attrs"]["target"] in ids, rec  # an earlier event
            if "amends" in rec:
                assert rec["amends"] in ids
            if t == "redeem":
                assert rec["attrs"]["item"] in scheme.catalog
                assert "residents" in subject["groups"]
            if t == "survey":
                assert subject["groups"] == ["property_companies"]
    assert types == county.stats.by_type
    # Frequent, rare and special streams are all there, in a believable order.
    assert types.most_common(1)[0][0] == "garbage_sorting_check"
    assert types["volunteer_service"] > 10 * max(1, types["blood_donation"])
    assert types["survey"] == 3 * county.stats.populations["property_companies"]
    assert types["illegal_parking"] > 0 and types["withdraw"] > 0 and types["objection"] > 0


def test_parking_has_repeat_offenders(county: DemoFiles) -> None:
    offenders: Counter[str] = Counter()
    for path in county.events:
        for ln in path.read_bytes().splitlines():
            if b'"illegal_parking"' in ln:
                try:
                    offenders[orjson.loads(ln)["subject"]] += 1
                except (orjson.JSONDecodeError, KeyError):
                    pass
    assert offenders.most_common(1)[0][1] >= 3  # escalation steps need repeats


def test_times_are_local_and_late_records_sit_in_the_next_file(
    county: DemoFiles, scheme: Scheme
) -> None:
    late = 0
    for path in county.events:
        month = path.stem.removeprefix("events-")
        seen: set[str] = set()
        for ln in path.read_bytes().splitlines():
            try:
                rec = orjson.loads(ln)
                at = rec["at"]
            except (orjson.JSONDecodeError, KeyError):
                continue
            assert at.endswith("+08:00") and datetime.fromisoformat(at).tzinfo is not None
            if at[:7] != month and rec["id"] not in seen:
                assert at[:7] < month
                late += 1
            seen.add(rec["id"])
    assert late == county.stats.late
    assert 0.0005 <= late / county.stats.lines <= 0.003


def test_populations_as_specified(tmp_path: Path, scheme: Scheme) -> None:
    files = generate_county(tmp_path, scheme, events=1_000)
    subjects = _read_subjects(files.subjects)
    groups = Counter(g for s in subjects.values() for g in s["groups"])
    grids = len(scheme.grids)
    communities = len({g.community for g in scheme.grids.values()})
    assert groups["residents"] == 20_000
    party_residents = sum(
        1 for s in subjects.values() if s["groups"][:2] == ["residents", "party_members"]
    )
    assert 0.07 <= party_residents / 20_000 <= 0.09
    assert groups["community_workers"] == 3 * communities
    assert grids <= groups["grid_workers"] <= 2 * grids
    assert groups["cadres"] == math.ceil(grids / 2)
    assert groups["merchants"] == 600
    assert groups["co_building_units"] == 40
    assert groups["property_companies"] == 60
    assert files.stats.populations == dict(groups)
    person = re.compile(r"[\u4e00-\u9fff]{2,4}")
    residents = [s for s in subjects.values() if "residents" in s["groups"]]
    assert all(person.fullmatch(s["name"]) for s in residents)
    assert all(s["grid"] in scheme.grids for s in subjects.values())
    tags = Counter(t for s in residents for t in s["tags"])
    assert {"志愿者", "低保户", "楼栋长"} <= set(tags)
    heads = [
        s["links"]["household_head"] for s in residents if "household_head" in s.get("links", {})
    ]
    assert 0.3 * len(residents) < len(heads) < 0.6 * len(residents)
    assert all("residents" in subjects[h]["groups"] for h in heads)
    assert not any("household_head" in subjects[h].get("links", {}) for h in heads)
    merchants = [s for s in subjects.values() if s["groups"] == ["merchants"]]
    assert all(
        re.search(r"(店|超市|饭店|馆|铺|行|厂|房)(（.+店）)?$", m["name"]) for m in merchants
    )
    assert len({m["name"] for m in merchants}) == len(merchants)
    assert all(
        "residents" in subjects[m["links"]["legal_representative"]]["groups"] for m in merchants
    )


def test_populations_scale_with_residents(tmp_path: Path, scheme: Scheme) -> None:
    files = generate_county(tmp_path, scheme, events=500, residents=2_000)
    pops = files.stats.populations
    assert pops["residents"] == 2_000
    assert pops["merchants"] == 60
    assert pops["co_building_units"] == 4
    assert pops["property_companies"] == 6


def test_credit_codes_valid_except_the_deliberate_ones(tmp_path: Path, scheme: Scheme) -> None:
    # Real published codes.
    for code in ("91350100M000100Y43", "91110000802100433B", "9144030071526726XG"):
        assert uscc_valid(code)
        assert uscc_check_char(code[:17]) == code[17]
    assert not uscc_valid("91350100M000100Y44")
    files = generate_county(tmp_path, scheme, events=500)
    subjects = _read_subjects(files.subjects)
    coded = {sid: s["code"] for sid, s in subjects.items() if s.get("code")}
    orgs = [
        sid
        for sid, s in subjects.items()
        if set(s["groups"]) & {"merchants", "co_building_units", "property_companies"}
    ]
    assert sorted(coded) == sorted(orgs)
    invalid = sorted(sid for sid, code in coded.items() if not uscc_valid(code))
    assert invalid == sorted(files.stats.bad_codes)
    assert 2 <= len(invalid) <= 10
    assert all(
        re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{2}370321[0-9A-HJ-NPQRTUWXY]{10}", c)
        for c in coded.values()
    )


def test_events_file_for_benchmarks(tmp_path: Path, scheme: Scheme) -> None:
    start = time.perf_counter()
    stats = generate_events_file(
        tmp_path / "ev.jsonl", scheme, n=10_000, subjects=tmp_path / "subjects.jsonl"
    )
    elapsed = time.perf_counter() - start
    lines = (tmp_path / "ev.jsonl").read_bytes().splitlines()
    assert len(lines) == stats.lines == 10_000
    assert (tmp_path / "subjects.jsonl").stat().st_size > 0
    assert elapsed < 5.0  # ~0.3 s on an idle laptop, mostly building 20,000 residents
    clean = generate_events_file(tmp_path / "clean.jsonl", scheme, n=2_000, dirty=False)
    assert clean.bad_total == clean.duplicates == clean.late == 0
    assert all(
        _problem(scheme, ln) is None for ln in (tmp_path / "clean.jsonl").read_bytes().splitlines()
    )


def test_bad_arguments_are_usage_errors(tmp_path: Path, scheme: Scheme) -> None:
    with pytest.raises(UsageError, match="YYYY-MM"):
        generate_county(tmp_path, scheme, events=10, months=("2024-1x",))
    with pytest.raises(UsageError, match="residents"):
        generate_county(tmp_path, scheme, events=10, residents=0)


def test_any_scheme_works_from_its_own_declarations(tmp_path: Path) -> None:
    mini = load_scheme(REPO / "tests" / "fixtures" / "mini" / "rules")
    files = generate_county(tmp_path, mini, events=3_000, residents=500)
    reacting = {t for p in mini.packs for r in p.rules for t in r.on}
    types = set(files.stats.by_type)
    assert types - SYSTEM <= reacting
    assert types - SYSTEM
    lines = [ln for p in files.events for ln in p.read_bytes().splitlines()]
    assert sum(1 for ln in lines if _problem(mini, ln)) == files.stats.bad_total
    subjects = _read_subjects(files.subjects)
    assert {g for s in subjects.values() for g in s["groups"]} == set(mini.groups)
