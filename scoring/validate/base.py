"""Pass 2's state: the names every file defines, gathered leniently, and small shared helpers."""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

from ..durations import PERIOD_KINDS
from ..errors import Problem
from ..yamlsafe import key_position, position
from .lookups import _operators, _points_forms
from .messages import Path_

PERIODS = PERIOD_KINDS


def _parse_date(v: Any) -> date | None:
    try:
        return date.fromisoformat(str(v))
    except ValueError:
        return None


class _Window:
    """An inclusive date window; ``None`` ends are open."""

    def __init__(self, start: date | None, end: date | None):
        self.start, self.end = start, end

    def overlaps(self, other: _Window) -> bool:
        a0 = self.start or date.min
        a1 = self.end or date.max
        b0 = other.start or date.min
        b1 = other.end or date.max
        return a0 <= b1 and b0 <= a1

    def text(self) -> str:
        if self.start and self.end:
            return f"from {self.start} to {self.end}"
        if self.start:
            return f"from {self.start} on"
        if self.end:
            return f"until {self.end}"
        return "at all times"


class _Version(NamedTuple):
    file: str
    pack: dict[str, Any]
    at: int  # the rule's place in the pack's rules list
    window: _Window


def _rule_sign(r: dict[str, Any]) -> int:
    points = r.get("points")
    values: list[float] = []
    if isinstance(points, (int, float)) and not isinstance(points, bool):
        values = [points]
    elif isinstance(points, dict):
        if isinstance(points.get("value"), (int, float)):
            values = [points["value"]]
        elif isinstance(points.get("table"), dict):
            values = [v for v in points["table"].values() if isinstance(v, (int, float))]
    esc = r.get("escalate")
    if isinstance(esc, dict):
        values += [s for s in esc.get("steps") or [] if isinstance(s, (int, float))]
    if values and all(v < 0 for v in values):
        return -1
    if values and all(v > 0 for v in values):
        return 1
    return 0


def _fits_type(v: Any, atype: Any) -> bool:
    if atype == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if atype == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if atype == "string":
        return isinstance(v, str)
    if atype == "boolean":
        return isinstance(v, bool)
    if atype == "date":
        return isinstance(v, str) and _parse_date(v) is not None
    return True


def _coerce_key(key: Any, atype: Any) -> Any:
    """Table keys are mapping keys: YAML may give '2' for an integer attribute."""
    if atype in ("integer", "number") and isinstance(key, str):
        try:
            return int(key)
        except ValueError:
            try:
                return float(key)
            except ValueError:
                return key
    return key


def _type_fix(atype: Any) -> str:
    return {
        "boolean": "; write true or false without quotes",
        "integer": "; write a whole number without quotes",
        "number": "; write a number without quotes",
        "string": "; put the value in quotes",
        "date": "; write a date as YYYY-MM-DD",
    }.get(str(atype), "")


class _Base:
    def __init__(self, raw: Any, passed: set[str]):
        self.raw = raw
        self.passed = passed
        self.problems: list[Problem] = []
        self.scheme_file = raw.scheme_file
        self.scheme = raw.files.get(self.scheme_file)
        self.events_file = raw.display("events.yaml")
        self.events = raw.files.get(self.events_file)
        self.operators = _operators()
        self.points_forms = _points_forms()
        self._gather()

    # -- helpers ------------------------------------------------------------

    def ok(self, file: str | None) -> bool:
        return file is not None and file in self.passed

    def add(
        self,
        file: str,
        data: Any,
        path: Path_,
        message: str,
        *,
        key: Any = None,
        severity: str = "error",
    ) -> None:
        if key is not None:
            line, col = key_position(data, path, key)
        else:
            line, col = position(data, path)
        self.problems.append(Problem(file, line, col, message, severity))

    # -- names the files define (gathered leniently) -------------------------

    def _gather(self) -> None:
        s = self.scheme if isinstance(self.scheme, dict) else {}
        tier_sets = s.get("tier_sets")
        self.tier_sets: dict[str, list[dict[str, Any]]] | None = None
        if isinstance(tier_sets, dict):
            self.tier_sets = {
                str(k): [t for t in v if isinstance(t, dict)]
                for k, v in tier_sets.items()
                if isinstance(v, list)
            }
        groups = s.get("groups")
        self.groups: dict[str, dict[str, Any]] | None = None
        self.group_tiers: dict[str, list[str] | None] = {}
        if isinstance(groups, dict):
            self.groups = {str(k): v for k, v in groups.items() if isinstance(v, dict)}
            for gid, g in self.groups.items():
                tiers = g.get("tiers")
                if isinstance(tiers, str):
                    ts = (self.tier_sets or {}).get(tiers)
                    self.group_tiers[gid] = [str(t.get("id")) for t in ts] if ts else None
                elif isinstance(tiers, list):
                    self.group_tiers[gid] = [str(t.get("id")) for t in tiers if isinstance(t, dict)]
                else:
                    self.group_tiers[gid] = None

        self.event_types: dict[str, dict[str, dict[str, Any]]] | None = None
        # attribute declarations are only trusted from an events.yaml that passed its
        # schema: a misspelt 'attrs' key would otherwise make every attribute "unknown"
        if (
            self.ok(self.events_file)
            and isinstance(self.events, dict)
            and isinstance(self.events.get("types"), dict)
        ):
            self.event_types = {}
            for tid, t in self.events["types"].items():
                attrs = t.get("attrs") if isinstance(t, dict) else None
                self.event_types[str(tid)] = (
                    {str(k): v for k, v in (attrs or {}).items() if isinstance(v, dict)}
                    if isinstance(attrs, dict)
                    else {}
                )
        self.event_titles: dict[str, str] = {}
        if isinstance(self.events, dict) and isinstance(self.events.get("types"), dict):
            for tid, t in self.events["types"].items():
                if isinstance(t, dict) and isinstance(t.get("title"), str):
                    self.event_titles[str(tid)] = t["title"]
        # no events.yaml at all: one error says so (in ``run``), not one per rule
        self.events_missing = self.events_file not in self.raw.files and self.events_file not in {
            p.file for p in self.raw.problems
        }

        self.grids: set[str] | None = None
        self.communities: set[str] = set()
        self.streets: set[str] = set()
        jfile = self.raw.jurisdictions_file()
        jdata = self.raw.files.get(jfile) if jfile else None
        if isinstance(jdata, dict) and isinstance(jdata.get("streets"), list):
            self.grids = set()
            for st in jdata["streets"]:
                if not isinstance(st, dict):
                    continue
                self.streets.add(str(st.get("id")))
                for c in st.get("communities") or []:
                    if not isinstance(c, dict):
                        continue
                    self.communities.add(str(c.get("id")))
                    for g in c.get("grids") or []:
                        if isinstance(g, dict):
                            self.grids.add(str(g.get("id")))

        # rules: (file, pack, index, rule) for every rule-like mapping
        self.rules: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = []
        self.rule_groups: dict[str, set[str]] = {}
        self.rule_ids_complete = True
        self.rule_sign: dict[str, int] = {}
        for pfile in self.raw.pack_files():
            p = self.raw.files.get(pfile)
            if not isinstance(p, dict) or not isinstance(p.get("rules"), list):
                self.rule_ids_complete = False
                continue
            for i, r in enumerate(p["rules"]):
                if not isinstance(r, dict) or not isinstance(r.get("id"), str):
                    self.rule_ids_complete = False
                    continue
                self.rules.append((pfile, p, i, r))
                self.rule_groups.setdefault(r["id"], set()).add(str(p.get("group")))
                self.rule_sign[r["id"]] = _rule_sign(r)
        if any(p.file in {*self.raw.pack_files()} for p in self.raw.problems):
            self.rule_ids_complete = False
        packs_dir = self.raw.display("packs") + "/"
        if any(p.file.startswith(packs_dir) for p in self.raw.problems):
            self.rule_ids_complete = False
        self.rule_ids = set(self.rule_groups)
