"""Pass 2's state (the names every file defines, gathered leniently) and the small checks all parts use."""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

from ..durations import PERIOD_KINDS, parse_duration
from ..errors import Problem
from ..yamlsafe import key_position, position
from .messages import Path_, _did_you_mean

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
    def __init__(self, raw: Any, passed: set[str], plugins: Any):
        self.raw = raw
        self.passed = passed
        self.problems: list[Problem] = []
        self.scheme_file = raw.scheme_file
        self.scheme = raw.files.get(self.scheme_file)
        self.events_file = raw.display("events.yaml")
        self.events = raw.files.get(self.events_file)
        self.plugins = plugins
        self.operators: dict[str, Any] = plugins.operators
        self.points_forms: set[str] = set(plugins.points_forms)
        self._gather()

    # -- helpers ------------------------------------------------------------

    def pt(self, units: Any) -> str:
        """A point value of the (scaled) data as the clerk wrote it: 1009.5, not 2019."""
        from ..precision import WHOLE, plain_points

        return plain_points(units, getattr(self.raw, "precision", WHOLE))

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
                    {
                        str(k): _values_listed(v)
                        for k, v in (attrs or {}).items()
                        if isinstance(v, dict)
                    }
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
                owners = self.rule_groups.setdefault(r["id"], set())
                # the groups its entries are written in: its own, the several of 'groups',
                # and those its 'also' writes linked entries in (a repair may undo those)
                own = r.get("groups")
                owners.update(map(str, own) if isinstance(own, list) else [str(p.get("group"))])
                for link in r.get("also") or [] if isinstance(r.get("also"), list) else []:
                    if isinstance(link, dict) and isinstance(link.get("group"), str):
                        owners.add(link["group"])
                self.rule_sign[r["id"]] = _rule_sign(r)
        if any(p.file in {*self.raw.pack_files()} for p in self.raw.problems):
            self.rule_ids_complete = False
        packs_dir = self.raw.display("packs") + "/"
        if any(p.file.startswith(packs_dir) for p in self.raw.problems):
            self.rule_ids_complete = False
        self.rule_ids = set(self.rule_groups)

    def window(self, eff: Any) -> _Window:
        if not isinstance(eff, dict):
            return _Window(None, None)
        return _Window(_parse_date(eff.get("from")), _parse_date(eff.get("until")))

    def check_window(
        self,
        f: str,
        data: Any,
        path: Path_,
        eff: Any,
        where: str,
        what: str = "effective window",
    ) -> None:
        if not isinstance(eff, dict):
            return
        w = self.window(eff)
        if w.start and w.end and w.end < w.start:
            self.add(
                f,
                data,
                (*path, "until"),
                f"the {what} of {where} ends ({w.end}) before it starts ({w.start});"
                " swap the dates or correct the typo",
            )

    # -- shared reference checks ---------------------------------------------

    def check_group(self, f: str, data: Any, path: Path_, gid: Any, where: str) -> bool:
        if self.groups is None or not isinstance(gid, str):
            return True
        if gid in self.groups:
            return True
        hint = _did_you_mean(gid, self.groups) or (
            f"; groups are: {', '.join(sorted(self.groups))}"
        )
        self.add(
            f,
            data,
            path,
            f"{where} names group '{gid}', which scheme.yaml does not define{hint}",
        )
        return False

    def check_tier(self, f: str, data: Any, path: Path_, tier: Any, gid: str, where: str) -> bool:
        tiers = self.group_tiers.get(gid)
        if tiers is None or not isinstance(tier, str):
            return True
        if tier in tiers:
            return True
        hint = _did_you_mean(tier, tiers) or ""
        self.add(
            f,
            data,
            path,
            f"{where} names tier '{tier}', which is not a tier of group '{gid}'"
            f" ({', '.join(tiers)}){hint}",
        )
        return False

    def check_rule_ref(
        self, f: str, data: Any, path: Path_, rid: Any, where: str, verb: str = "names"
    ) -> bool:
        if not isinstance(rid, str):
            return False
        if rid in self.rule_ids:
            return True
        if not self.rule_ids_complete:
            return False
        hint = _did_you_mean(rid, self.rule_ids) or ""
        self.add(
            f,
            data,
            path,
            f"{where} {verb} rule '{rid}', which no rule pack defines{hint}",
        )
        return False

    def check_duration(
        self, f: str, data: Any, path: Path_, value: Any, where: str, *, bare: bool = False
    ) -> None:
        """``bare``: warn when the duration is a bare number (read as days), where a
        clerk most likely meant years (how long a grading or an entry lasts)."""
        if value is None:
            return
        try:
            parse_duration(value)
        except ValueError as e:
            self.add(f, data, path, f"{where}: {e}")
            return
        if bare and isinstance(value, int) and not isinstance(value, bool):
            key = path[-1]
            self.add(f, data, path,
                     f"{where}: '{key}: {value}' is a bare number, read as {value} days; write"
                     f" '{key}: {value} years' if years were meant, or '{key}: {value} days'",
                     severity="warning")  # fmt: skip

    def attr_spec(
        self,
        f: str,
        p: Any,
        path: Path_,
        attr: Any,
        types: list[str],
        where: str,
        what: str,
        key: Any = None,
    ) -> dict[str, Any] | None:
        """The attribute's spec if every type in ``types`` declares it (same spec type)."""
        if self.event_types is None or not types or not isinstance(attr, str):
            return None
        missing = [t for t in types if attr not in self.event_types.get(t, {})]
        if missing:
            declared: set[str] = set()
            for t in missing:
                declared |= set(self.event_types.get(t, {}))
            hint = _did_you_mean(attr, declared) or (
                f"; declared: {', '.join(sorted(declared))}" if declared else ""
            )
            self.add(
                f,
                p,
                path,
                f"{what} of {where} uses attribute '{attr}', which event type '{missing[0]}'"
                f" does not declare in events.yaml{hint}",
                key=key,
            )
            return None
        specs = [self.event_types[t][attr] for t in types]
        kinds = {s.get("type") for s in specs}
        if len(kinds) > 1:
            self.add(
                f,
                p,
                path,
                f"{what} of {where} uses attribute '{attr}', which has different types in"
                f" {', '.join(types)} ({', '.join(sorted(map(str, kinds)))}); give it one type"
                " in events.yaml or split the rule",
                key=key,
            )
            return None
        return specs[0]


def _values_listed(spec: dict[str, Any]) -> dict[str, Any]:
    """An attribute's declaration with ``values`` as a list of the codes (``values`` may be
    written as a mapping of code: Chinese name)."""
    if isinstance(spec.get("values"), dict):
        return {**spec, "values": list(spec["values"])}
    return spec
