"""Pass 2 for scheme.yaml (groups, tiers, lists), jurisdictions, events, assessments and the catalog."""

from __future__ import annotations

import difflib
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..yamlsafe import position
from .base import _Base, _fits_type
from .expiry import _ExpiryChecks
from .messages import ATTR_TYPE_WORDS, Path_, _describe, _did_you_mean


class _SchemeChecks(_ExpiryChecks, _Base):
    # -- scheme.yaml --------------------------------------------------------

    def check_scheme_file(self) -> None:
        f, s = self.scheme_file, self.scheme
        tz = s.get("timezone")
        if isinstance(tz, str):
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                self.add(
                    f,
                    s,
                    ("timezone",),
                    f"unknown time zone '{tz}'; use an IANA name such as Asia/Shanghai",
                )
        for name in s.get("tier_sets") or {}:
            self.check_tiers(f, s, ("tier_sets", name), f"tier set '{name}'")
        for gid, g in (s.get("groups") or {}).items():
            tiers = g.get("tiers")
            if isinstance(tiers, str) and tiers not in (self.tier_sets or {}):
                known = sorted(self.tier_sets or {})
                self.add(
                    f,
                    s,
                    ("groups", gid, "tiers"),
                    f"group '{gid}' uses tier set '{tiers}', which tier_sets does not define"
                    f"{_did_you_mean(tiers, known) or '; defined: ' + ', '.join(known)}",
                )
            elif isinstance(tiers, list):
                self.check_tiers(f, s, ("groups", gid, "tiers"), f"the tiers of group '{gid}'")
        seen: dict[str, Path_] = {}
        for i, ld in enumerate(s.get("lists") or []):
            lid = str(ld.get("id"))
            if lid in seen:
                self.add(
                    f,
                    s,
                    ("lists", i, "id"),
                    f"list id '{lid}' is used twice (first at line {position(s, seen[lid])[0]});"
                    " give each list its own id",
                )
            seen.setdefault(lid, ("lists", i, "id"))
            groups = ld.get("groups")
            for j, gid in enumerate(groups or []):
                self.check_group(f, s, ("lists", i, "groups", j), gid, f"list '{lid}'")
            list_groups = [
                g for g in (groups or list(self.groups or {})) if g in (self.groups or {})
            ]
            for j, reason in enumerate(ld.get("reasons") or []):
                where = f"reason {j + 1} of list '{lid}'"
                base = ("lists", i, "reasons", j)
                tiers = reason.get("tier")
                tier_list = [tiers] if isinstance(tiers, str) else list(tiers or [])
                for k, tier in enumerate(tier_list):
                    tpath = (*base, "tier") if isinstance(tiers, str) else (*base, "tier", k)
                    for gid in list_groups:
                        if not self.check_tier(f, s, tpath, tier, gid, where):
                            break
                for k, rid in enumerate(reason.get("rules") or []):
                    rpath = (*base, "rules", k)
                    if self.check_rule_ref(f, s, rpath, rid, where) and list_groups:
                        owners = self.rule_groups.get(rid, set())
                        if owners and not owners & set(list_groups):
                            self.add(
                                f,
                                s,
                                rpath,
                                f"{where} names rule '{rid}' of group"
                                f" '{min(owners)}', but the list only shows"
                                f" {', '.join(list_groups)}: this reason can never list"
                                " anyone; name a rule of those groups",
                                severity="warning",
                            )
                if "within" in reason:
                    self.check_duration(f, s, (*base, "within"), reason["within"], where)
                lo, hi = reason.get("min_score"), reason.get("max_score")
                if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                    self.add(
                        f,
                        s,
                        (*base, "min_score"),
                        f"{where} has min_score {lo} above max_score {hi}: no score fits; swap"
                        " them",
                    )

    def check_tiers(self, f: str, s: Any, path: Path_, where: str) -> None:
        node: Any = s
        for step in path:
            node = node[step]
        tiers = [t for t in node if isinstance(t, dict)]
        if not tiers:
            return
        seen: dict[str, int] = {}
        for i, t in enumerate(tiers):
            tid = str(t.get("id"))
            if tid in seen:
                self.add(
                    f,
                    s,
                    (*path, i, "id"),
                    f"tier id '{tid}' appears twice in {where}; give each tier its own id",
                )
            seen.setdefault(tid, i)
            lo, hi = t.get("min"), t.get("max")
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                self.add(
                    f,
                    s,
                    (*path, i, "min"),
                    f"tier '{tid}' in {where} has min {self.pt(lo)} above max {self.pt(hi)}: no score fits;"
                    " swap them",
                )
        first, last = tiers[0], tiers[-1]
        if "max" in first:
            self.add(
                f,
                s,
                (*path, 0, "max"),
                f"tier '{first.get('id')}' is the highest in {where} but has max {self.pt(first['max'])}:"
                f" scores above {self.pt(first['max'])} would belong to no tier; remove 'max' from the"
                " highest tier (tiers are listed from highest to lowest)",
            )
        if "min" in last and len(tiers) > 0:
            n = len(tiers) - 1
            self.add(
                f,
                s,
                (*path, n, "min"),
                f"tier '{last.get('id')}' is the lowest in {where} but has min {self.pt(last['min'])}:"
                f" scores below {self.pt(last['min'])} would belong to no tier; remove 'min' from the"
                " lowest tier",
            )
        for i, t in enumerate(tiers):
            tier_id = t.get("id")
            if i < len(tiers) - 1 and "min" not in t:
                self.add(
                    f,
                    s,
                    (*path, i),
                    f"tier '{tier_id}' in {where} has no min; only the lowest tier may leave out"
                    " 'min': write the score where this tier starts",
                )
            if i > 0 and "max" not in t:
                self.add(
                    f,
                    s,
                    (*path, i),
                    f"tier '{tier_id}' in {where} has no max; only the highest tier may leave out"
                    " 'max': write the score where this tier ends",
                )
        for i in range(len(tiers) - 1):
            hi_min, lo_min = tiers[i].get("min"), tiers[i + 1].get("min")
            if isinstance(hi_min, int) and isinstance(lo_min, int) and lo_min >= hi_min:
                self.add(
                    f,
                    s,
                    (*path, i + 1),
                    f"tiers in {where} must be listed from highest to lowest, but"
                    f" '{tiers[i + 1].get('id')}' (from {self.pt(lo_min)}) comes after"
                    f" '{tiers[i].get('id')}' (from {self.pt(hi_min)}); reorder them",
                )
                return
        for i in range(len(tiers) - 1):
            hi_t, lo_t = tiers[i], tiers[i + 1]
            hi_min, lo_max = hi_t.get("min"), lo_t.get("max")
            if not isinstance(hi_min, int) or not isinstance(lo_max, int):
                continue
            hid, lid = hi_t.get("id"), lo_t.get("id")
            if lo_max + 1 < hi_min:
                gap = (
                    f"score {self.pt(lo_max + 1)} belongs"
                    if lo_max + 2 == hi_min
                    else f"scores {self.pt(lo_max + 1)} to {self.pt(hi_min - 1)} belong"
                )
                self.add(
                    f,
                    s,
                    (*path, i, "min"),
                    f"tier '{lid}' ends at {self.pt(lo_max)} but '{hid}' starts at {self.pt(hi_min)}: {gap} to no"
                    f" tier in {where}; set '{hid}' min to {self.pt(lo_max + 1)} or '{lid}' max to"
                    f" {self.pt(hi_min - 1)}",
                )
            elif lo_max >= hi_min:
                both = (
                    f"score {self.pt(hi_min)} belongs"
                    if lo_max == hi_min
                    else f"scores {self.pt(hi_min)} to {self.pt(lo_max)} belong"
                )
                self.add(
                    f,
                    s,
                    (*path, i, "min"),
                    f"tier '{lid}' ends at {self.pt(lo_max)} but '{hid}' starts at {self.pt(hi_min)}: {both} to"
                    f" both tiers in {where}; set '{lid}' max to {self.pt(hi_min - 1)}",
                )

    # -- jurisdictions ------------------------------------------------------

    def check_jurisdictions(self, f: str) -> None:
        j = self.raw.files[f]
        seen: dict[str, tuple[str, Path_]] = {}

        def note(kind: str, ident: Any, path: Path_) -> None:
            key = str(ident)
            if key in seen:
                other_kind, other = seen[key]
                self.add(
                    f,
                    j,
                    path,
                    f"{kind} id '{key}' is already used by a {other_kind} at line"
                    f" {position(j, other)[0]}; every street, community and grid needs its own"
                    " id (subjects name their grid by it)",
                )
            else:
                seen[key] = (kind, path)

        for i, st in enumerate(j.get("streets") or []):
            note("street", st.get("id"), ("streets", i, "id"))
            for k, c in enumerate(st.get("communities") or []):
                note("community", c.get("id"), ("streets", i, "communities", k, "id"))
                for m, g in enumerate(c.get("grids") or []):
                    note(
                        "grid",
                        g.get("id"),
                        ("streets", i, "communities", k, "grids", m, "id"),
                    )

    # -- events.yaml --------------------------------------------------------

    def check_events(self) -> None:
        f, e = self.events_file, self.events
        for tid, t in (e.get("types") or {}).items():
            for name, a in (t.get("attrs") or {}).items():
                where = f"attribute '{name}' of event type '{tid}'"
                base = ("types", tid, "attrs", name)
                atype = a.get("type")
                lo, hi = a.get("min"), a.get("max")
                if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
                    self.add(
                        f,
                        e,
                        (*base, "min"),
                        f"{where} has min {lo} above max {hi}: no value fits; swap them",
                    )
                if atype in ("string", "boolean", "date") and (lo is not None or hi is not None):
                    self.add(
                        f,
                        e,
                        (*base, "min" if lo is not None else "max"),
                        f"{where} is {ATTR_TYPE_WORDS[atype]}, so min/max do not apply;"
                        " remove them or make it a number",
                        severity="warning",
                    )
                declared = a.get("values") or []
                for k, v in enumerate(declared):
                    if not _fits_type(v, atype):
                        self.add(
                            f,
                            e,
                            (*base, "values", v if isinstance(declared, dict) else k),
                            f"value {_describe(v)} in {where} is not"
                            f" {ATTR_TYPE_WORDS.get(atype, atype)}; fix the value or the"
                            " attribute's type",
                        )
        catalog = self.raw.get("catalog.yaml")
        types = e.get("types") or {}
        if isinstance(catalog, dict) and catalog.get("items") and "redeem" not in types:
            self.add(
                f,
                e,
                ("types",),
                "catalog.yaml lists items but no 'redeem' event type is declared, so no"
                " redemption can be recorded; add a 'redeem' type with an 'item' attribute",
                key="types",
                severity="warning",
            )

    # -- assessments.yaml ------------------------------------------------------

    def check_bands(self, f: str, a_data: Any, base: Path_, a: dict, where: str) -> None:
        """``select: {bands}`` from the highest down; an award needs points somewhere."""
        select = a.get("select")
        raw_bands = select.get("bands") if isinstance(select, dict) else None
        bands = [b for b in raw_bands or [] if isinstance(b, dict)]
        for k in range(1, len(bands)):
            lo, hi = bands[k].get("min"), bands[k - 1].get("min")
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo >= hi:
                self.add(
                    f,
                    a_data,
                    (*base, "select", "bands", k, "min"),
                    f"band {k + 1} of {where} has min: {lo}, not below the band before it"
                    f" ({hi}); write the bands from the highest down",
                )
        award = a.get("award")
        if isinstance(award, dict) and "points" not in award:
            missing = [k + 1 for k, b in enumerate(bands) if "points" not in b]
            if not bands or missing:
                what = (
                    f"band {missing[0]} of its select has no points"
                    if bands
                    else "it selects without bands"
                )
                self.add(
                    f,
                    a_data,
                    (*base, "award"),
                    f"the award of {where} has no points and {what}; write 'points' in the"
                    " award (or in every band)",
                )

    def check_assessments(self, f: str) -> None:
        a_data = self.raw.files[f]
        seen: dict[str, int] = {}
        survey_values: list[Any] | None = None
        if self.event_types is not None:
            survey = self.event_types.get("survey")
            if survey is not None:
                survey_values = (survey.get("respondent") or {}).get("values")
        for i, a in enumerate(a_data.get("assessments") or []):
            aid = str(a.get("id"))
            where = f"assessment '{aid}'"
            base = ("assessments", i)
            if aid in seen:
                self.add(
                    f,
                    a_data,
                    (*base, "id"),
                    f"assessment id '{aid}' is used twice (first at line"
                    f" {position(a_data, ('assessments', seen[aid], 'id'))[0]}); give each its"
                    " own id",
                )
            seen.setdefault(aid, i)
            self.check_group(f, a_data, (*base, "group"), a.get("group"), where)
            award = a.get("award")
            self.check_bands(f, a_data, base, a, where)
            if isinstance(award, dict) and "expires" in award:
                self.check_expires(f, a_data, (*base, "award", "expires"), award["expires"], where)
            if isinstance(award, dict) and "group" in award:
                self.check_group(f, a_data, (*base, "award", "group"), award["group"], where)
                if a.get("scope") == "subject" and award["group"] != a.get("group"):
                    self.add(
                        f,
                        a_data,
                        (*base, "award", "group"),
                        f"{where} ranks single subjects of group '{a.get('group')}' but awards"
                        f" group '{award['group']}'; for scope: subject the award goes to the"
                        " subject itself: remove 'award.group'",
                        severity="warning",
                    )
            metric = a.get("metric") or {}
            known = set(self.plugins.metrics)
            for key in metric if isinstance(metric, dict) else ():
                if key not in known:
                    hint = difflib.get_close_matches(str(key), sorted(known), n=1)
                    self.add(
                        f,
                        a_data,
                        (*base, "metric"),
                        f"unknown metric '{key}' in {where}"
                        + (f"; did you mean '{hint[0]}'?" if hint else "")
                        + f" Metrics: {', '.join(sorted(known))}",
                        key=key,
                    )
            parts = metric.get("weighted")
            if isinstance(parts, list):
                total = sum(pt.get("weight", 0) for pt in parts if isinstance(pt, dict))
                if total != 100:
                    self.add(
                        f,
                        a_data,
                        (*base, "metric", "weighted"),
                        f"the weights in {where} add up to {total:g}, not 100; the score is"
                        " the weighted mean either way, but check the shares",
                        severity="warning",
                    )
                for k, pt in enumerate(parts):
                    survey_spec = pt.get("survey") if isinstance(pt, dict) else None
                    if not isinstance(survey_spec, dict):
                        continue
                    spath = (*base, "metric", "weighted", k, "survey", "respondent")
                    if self.event_types is not None and "survey" not in self.event_types:
                        self.add(
                            f,
                            a_data,
                            spath,
                            f"{where} reads survey results, but events.yaml declares no"
                            " 'survey' event type; declare it with attrs respondent and score",
                        )
                        break
                    resp = survey_spec.get("respondent")
                    if isinstance(survey_values, list) and resp not in survey_values:
                        self.add(
                            f,
                            a_data,
                            spath,
                            f"{where} reads surveys by respondent '{resp}', which is not a"
                            " value of 'respondent' in the survey event type"
                            f" ({', '.join(map(str, survey_values))})"
                            f"{_did_you_mean(str(resp), survey_values)}",
                        )

    # -- catalog.yaml --------------------------------------------------------

    def check_catalog(self, f: str) -> None:
        c = self.raw.files[f]
        seen: dict[str, int] = {}
        for i, it in enumerate(c.get("items") or []):
            iid = str(it.get("id"))
            where = f"item '{iid}'"
            base = ("items", i)
            if iid in seen:
                self.add(
                    f,
                    c,
                    (*base, "id"),
                    f"item id '{iid}' is used twice (first at line"
                    f" {position(c, ('items', seen[iid], 'id'))[0]}); redemption events name"
                    " items by id, so give each its own",
                )
            seen.setdefault(iid, i)
            groups = it.get("groups")
            for k, gid in enumerate(groups or []):
                self.check_group(f, c, (*base, "groups", k), gid, where)
            self.check_window(
                f, c, (*base, "available"), it.get("available"), where, "availability window"
            )
            tier = it.get("min_tier")
            if isinstance(tier, str) and self.groups is not None:
                if groups:
                    targets = [g for g in groups if g in self.groups]
                else:
                    targets = [g for g, d in self.groups.items() if d.get("kind") == "person"]
                for gid in targets:
                    if not self.check_tier(f, c, (*base, "min_tier"), tier, gid, where):
                        break
