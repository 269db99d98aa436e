"""Pass 2 for packs: rule versions and windows, links, points, escalation, repair."""

from __future__ import annotations

import difflib
import re
from datetime import date, timedelta
from typing import Any

from ..yamlsafe import position
from .base import _coerce_key, _fits_type, _rule_sign, _Version
from .conditions import _ConditionChecks
from .expiry import _ExpiryChecks
from .families import _FamilyChecks
from .messages import ATTR_TYPE_WORDS, SYSTEM_EVENT_TYPES, Path_, _describe, _did_you_mean
from .totals import _TotalChecks


class _RuleChecks(_TotalChecks, _ExpiryChecks, _FamilyChecks, _ConditionChecks):
    # -- rule packs ---------------------------------------------------------

    def check_rules(self) -> None:
        versions: dict[str, list[_Version]] = {}
        for pfile, p, i, r in self.rules:
            pack_window = self.window(p.get("effective"))
            eff = r.get("effective") if isinstance(r.get("effective"), dict) else None
            window = self.window(eff) if eff else pack_window
            versions.setdefault(r["id"], []).append(_Version(pfile, p, i, window))
        for pfile in self.raw.pack_files():
            if not self.ok(pfile):
                continue
            p = self.raw.files[pfile]
            self.check_pack(pfile, p)
            for i, r in enumerate(p.get("rules") or []):
                self.check_rule(pfile, p, i, r)
        for rid, vs in versions.items():
            self.check_versions(rid, vs)
        self.check_families()
        self.check_groups_have_packs()

    def cite(self, v: _Version) -> str:
        """Where a rule version's id is, in the form problems are printed in."""
        line, col = position(v.pack, ("rules", v.at, "id"))
        return f"{v.file}:{line}:{col}"

    def check_versions(self, rid: str, vs: list[_Version]) -> None:
        """Versions of one rule: one group, windows that neither overlap nor leave gaps."""
        groups = list(dict.fromkeys(str(v.pack.get("group")) for v in vs))
        if len(groups) > 1:
            home = self.home_group(rid, groups)
            first = next(v for v in vs if str(v.pack.get("group")) == home)
            for v in vs:
                if str(v.pack.get("group")) != home and self.ok(v.file):
                    self.add(
                        v.file,
                        v.pack,
                        ("rules", v.at, "id"),
                        f"rule id '{rid}' is already used by group '{home}' at"
                        f" {self.cite(first)}; a rule id belongs to one group and is never"
                        " reused: give this rule a new id",
                    )
            vs = [v for v in vs if str(v.pack.get("group")) == home]
        # the later version is the one a change adds: it carries the problem
        order = sorted(range(len(vs)), key=lambda k: (vs[k].window.start or date.min, k))
        ranked = [vs[k] for k in order]
        for b in range(1, len(ranked)):
            later = ranked[b]
            clash = next((a for a in ranked[:b] if a.window.overlaps(later.window)), None)
            if clash is not None:
                if self.ok(later.file):
                    self.add(
                        later.file,
                        later.pack,
                        ("rules", later.at, "id"),
                        f"rule '{rid}' is defined twice with overlapping effective dates:"
                        f" this version is in force {later.window.text()}, the version at"
                        f" {self.cite(clash)} {clash.window.text()}; versions of one rule need"
                        " disjoint windows: end the earlier one the day before the later one"
                        " starts (effective: {until: ...}), or give this rule a new id",
                    )
                continue
            before = ranked[b - 1]
            end, start = before.window.end, later.window.start
            if end and start and (start - end).days > 1 and self.ok(later.file):
                gap_from, gap_to = end + timedelta(days=1), start - timedelta(days=1)
                days = (gap_to - gap_from).days + 1
                self.add(
                    later.file,
                    later.pack,
                    ("rules", later.at, "id"),
                    f"rule '{rid}' has no version in force from {gap_from} to {gap_to}"
                    f" ({days} day{'s' if days != 1 else ''}): the version at"
                    f" {self.cite(before)} ends {end} and this one starts {start}, so events"
                    f" on those days score nothing under it; end the earlier version on"
                    f" {start - timedelta(days=1)} (effective: {{until: ...}}) unless the pause"
                    " is meant",
                    severity="warning",
                )

    def home_group(self, rid: str, groups: list[str]) -> str:
        """The group a rule id used in several groups belongs to: the one whose other
        rules share its prefix ('res-' in residents), then the one the prefix names
        ('mer' merchants, 'pm' party_members), else the first in file order."""
        prefix = rid.split("-", 1)[0]

        def score(g: str) -> tuple[int, bool, int]:
            shared = sum(
                1
                for other, owners in self.rule_groups.items()
                if other != rid and other.split("-", 1)[0] == prefix and g in owners
            )
            initials = "".join(w[:1] for w in g.split("_"))
            named = g.startswith(prefix) or initials == prefix
            return (shared, named, -groups.index(g))

        return max(groups, key=score)

    def check_groups_have_packs(self) -> None:
        """A group no pack, linked scoring or assessment gives points to stays at its
        base score for ever: usually a pack that is missing or names another group."""
        if not self.ok(self.scheme_file) or not self.groups or not self.rule_ids_complete:
            return
        scored: set[str] = set()
        for pfile in self.raw.pack_files():
            p = self.raw.files.get(pfile)
            if isinstance(p, dict):
                scored.add(str(p.get("group")))
        for _, _, _, r in self.rules:
            scored.update(str(g) for g in r.get("groups") or [])
            for link in r.get("also") or []:
                if isinstance(link, dict):
                    scored.add(str(link.get("group")))
        a_data = self.raw.get("assessments.yaml")
        for a in (a_data.get("assessments") or []) if isinstance(a_data, dict) else []:
            if isinstance(a, dict):
                award = a.get("award")
                target = award.get("group") if isinstance(award, dict) else None
                scored.add(str(target or a.get("group")))
        for gid in self.groups:
            if gid not in scored:
                self.add(
                    self.scheme_file,
                    self.scheme,
                    ("groups",),
                    f"group '{gid}' has no rule pack (and no linked scoring or assessment"
                    f" gives it points), so everyone in it keeps the base score; add a pack"
                    f" with 'group: {gid}' in packs/, or check the 'group:' of your packs",
                    key=gid,
                    severity="warning",
                )

    def check_pack(self, f: str, p: dict[str, Any]) -> None:
        where = f"pack '{p.get('pack')}'"
        self.check_group(f, p, ("group",), p.get("group"), where)
        self.check_window(f, p, ("effective",), p.get("effective"), where)

    def check_rule(self, f: str, p: dict[str, Any], i: int, r: dict[str, Any]) -> None:
        rid = r.get("id")
        where = f"rule '{rid}'"
        base: Path_ = ("rules", i)
        group = p.get("group")
        self.check_window(f, p, (*base, "effective"), r.get("effective"), where)
        if isinstance(r.get("effective"), dict) and isinstance(p.get("effective"), dict):
            rw, pw = self.window(r["effective"]), self.window(p["effective"])
            if (pw.start and (rw.start is None or rw.start < pw.start)) or (
                pw.end and (rw.end is None or rw.end > pw.end)
            ):
                self.add(
                    f,
                    p,
                    (*base, "effective"),
                    f"{where} is in force {rw.text()}, outside its pack's window"
                    f" ({pw.text()}); the rule's own dates win, so check that this is meant",
                    severity="warning",
                )

        # groups: a rule written once for several groups
        for k, g in enumerate(r.get("groups") or []):
            self.check_group(f, p, (*base, "groups", k), g, where)

        # on
        on = r.get("on")
        on_list = [on] if isinstance(on, str) else list(on or [])
        types_ok: list[str] = []
        for k, t in enumerate(on_list):
            path = (*base, "on") if isinstance(on, str) else (*base, "on", k)
            if self.event_types is None:
                continue
            if t not in self.event_types:
                hint = _did_you_mean(t, self.event_types) or self.type_by_title(t)
                self.add(
                    f,
                    p,
                    path,
                    f"{where} scores events of type '{t}', which events.yaml does not"
                    f" declare{hint}",
                )
                continue
            types_ok.append(t)
            if t in SYSTEM_EVENT_TYPES:
                self.add(
                    f,
                    p,
                    path,
                    f"{where} scores '{t}' events, which the engine already handles itself"
                    f" ({'redemptions' if t == 'redeem' else 'corrections'}); a rule on them"
                    " is rarely meant",
                    severity="warning",
                )
        attr_scope = types_ok if len(types_ok) == len(on_list) or self.event_types else []

        # when
        if "when" in r:
            self.check_condition(f, p, (*base, "when"), r["when"], where, attr_scope, on_list)

        # points
        points = r.get("points")
        sign = _rule_sign(r)
        if isinstance(points, dict) and "total" in points:
            self.check_total(f, p, (*base, "points"), points, r, base, where, attr_scope)
        elif isinstance(points, dict):
            self.check_points(f, p, (*base, "points"), points, where, attr_scope)
        if points == 0 and "repair" not in r and "grade" not in r:
            self.add(
                f,
                p,
                (*base, "points"),
                f"{where} gives 0 points and repairs nothing; give it points or remove it",
                severity="warning",
            )
        severity = r.get("severity")
        if severity and sign > 0 and "escalate" not in r:
            self.add(
                f,
                p,
                (*base, "severity"),
                f"{where} has severity '{severity}', which marks a penalty, but it gives"
                " positive points; remove 'severity' or make the points negative",
                severity="warning",
            )

        # escalate
        esc = r.get("escalate")
        if esc is not None and "points" in r and not (isinstance(esc, dict) and "factor" in esc):
            self.add(
                f,
                p,
                (*base, "escalate"),
                f"{where} has 'points' and 'escalate'; write only one of them: escalate's"
                " steps are the points",
            )
        if isinstance(esc, dict):
            self.check_duration(f, p, (*base, "escalate", "within"), esc.get("within"), where)
            steps = [s for s in esc.get("steps") or [] if isinstance(s, int)]
            spath = (*base, "escalate", "steps")
            signs = {(s > 0) - (s < 0) for s in steps}
            if 0 in signs:
                k = steps.index(0)
                self.add(
                    f,
                    p,
                    (*spath, k),
                    f"escalate step {k + 1} of {where} is 0; every step should add or take"
                    " points: remove it or give it a value",
                )
            if {1, -1} <= signs:
                self.add(
                    f,
                    p,
                    spath,
                    f"the escalate steps of {where} ({', '.join(map(str, steps))}) mix"
                    " positive and negative values; all steps must have one sign: negative"
                    " for a penalty (e.g. [-5, -10, -20]), positive for a reward",
                )
            elif severity and signs == {1}:
                self.add(
                    f,
                    p,
                    spath,
                    f"{where} is a penalty (severity: {severity}) but its escalate steps"
                    f" ({', '.join(map(str, steps))}) are positive; write them negative,"
                    " e.g. [-5, -10, -20]",
                )
            elif any(abs(steps[k + 1]) < abs(steps[k]) for k in range(len(steps) - 1)):
                self.add(
                    f,
                    p,
                    spath,
                    f"the escalate steps of {where} ({', '.join(map(str, steps))}) get smaller"
                    " for repeat offences; check the order (the n-th time takes step n)",
                    severity="warning",
                )

        # limit
        limit = r.get("limit")
        if isinstance(limit, dict) and r.get("status") != "retired":
            for cap in ("max_points", "max_count"):
                if limit.get(cap) == 0 and not isinstance(limit.get(cap), bool):
                    self.add(
                        f,
                        p,
                        (*base, "limit", cap),
                        f"{where} has {cap} 0, so it can never score; to stop using a rule"
                        " set 'status: retired' (never delete it), otherwise raise the cap",
                    )
            table = (
                (r.get("points") or {}).get("table") if isinstance(r.get("points"), dict) else None
            )
            values = [v for v in (table or {}).values() if isinstance(v, (int, float))]
            if table is not None and isinstance(r["points"].get("default"), (int, float)):
                values.append(r["points"]["default"])
            if "max_points" in limit and any(v > 0 for v in values) and any(v < 0 for v in values):
                self.add(
                    f,
                    p,
                    (*base, "limit", "max_points"),
                    f"{where} both awards and deducts points under one cap: max_points counts"
                    " both together, so good conduct uses up the room left for penalties (and"
                    " the other way round); split it into an award rule and a penalty rule,"
                    " each with its own cap",
                    severity="warning",
                )

        # durations
        self.check_expires(f, p, (*base, "expires"), r.get("expires"), where)

        # grade
        grade = r.get("grade")
        if isinstance(grade, dict):
            self.check_duration(f, p, (*base, "grade", "for"), grade.get("for"), where, bare=True)
            if isinstance(group, str) and self.groups and group in self.groups:
                self.check_tier(f, p, (*base, "grade", "to"), grade.get("to"), group, where)
            if sign > 0:
                self.add(
                    f,
                    p,
                    (*base, "grade"),
                    f"{where} gives points but also holds the tier down (grade); direct"
                    " grading is meant for serious violations",
                    severity="warning",
                )

        # also
        for k, link in enumerate(r.get("also") or []):
            self.check_group(f, p, (*base, "also", k, "group"), link.get("group"), where)
            self.check_link(f, p, (*base, "also", k, "link"), link.get("link"), where)
            lg = link.get("grade") if isinstance(link, dict) else None
            if lg is not None and not isinstance(grade, dict):
                self.add(f, p, (*base, "also", k, "grade"),
                         f"{where} passes a grading on to the '{link.get('link')}' link but"
                         " does not grade itself; add grade: {to: ..., for: ...} to the rule or"
                         " remove 'grade' from the link")  # fmt: skip
            elif isinstance(lg, str) and lg != "same" and self.groups:
                lgroup = link.get("group") or group
                if isinstance(lgroup, str) and lgroup in self.groups:
                    self.check_tier(f, p, (*base, "also", k, "grade"), lg, lgroup, where)

        # withhold
        withhold = r.get("withhold")
        if isinstance(withhold, dict) and "when" in withhold:
            self.check_condition(
                f, p, (*base, "withhold", "when"), withhold["when"], where, attr_scope, on_list
            )

        # repair
        repair = r.get("repair")
        if isinstance(repair, dict):
            if "within" in repair:
                self.check_duration(f, p, (*base, "repair", "within"), repair.get("within"), where)
            for k, target in enumerate(repair.get("rules") or []):
                tpath = (*base, "repair", "rules", k)
                if target == rid:
                    self.add(
                        f,
                        p,
                        tpath,
                        f"{where} repairs itself; name the penalty rules it repairs",
                    )
                    continue
                if not self.check_rule_ref(f, p, tpath, target, where, "repairs"):
                    continue
                if self.rule_sign.get(target, -1) > 0:
                    self.add(
                        f,
                        p,
                        tpath,
                        f"{where} repairs rule '{target}', which gives points rather than"
                        " taking them; repair undoes penalties: name a penalty rule",
                        severity="warning",
                    )
                owners = self.rule_groups.get(target, set())
                if isinstance(group, str) and owners and group not in owners:
                    self.add(
                        f,
                        p,
                        tpath,
                        f"{where} (group '{group}') repairs rule '{target}' of group"
                        f" '{min(owners)}'; repair only reaches penalties in the same"
                        " group, so this never applies",
                        severity="warning",
                    )

    def type_by_title(self, name: str) -> str:
        """A hint for an event type written by its Chinese name instead of its code."""
        titles = self.event_titles
        if not self.event_types:
            return "; declare it in events.yaml (it has no types yet)"
        if not re.search(r"[^\x00-\x7f]", name):
            return "; declare it in events.yaml"
        close = [c for c, t in titles.items() if t == name] or [
            c for t in difflib.get_close_matches(name, list(titles.values()), n=1, cutoff=0.5)
            for c, ct in titles.items() if ct == t
        ]  # fmt: skip
        codes = (
            "; event types are the codes declared in events.yaml (such as"
            f" {next(iter(self.event_types))}), not their Chinese titles"
        )
        if close:
            return f"{codes}: did you mean '{close[0]}' ({titles[close[0]]})?"
        return f"{codes}; write the code, or declare a new type in events.yaml"

    def check_link(self, f: str, p: Any, path: Path_, name: Any, where: str) -> None:
        """Link names are free-form (a subject's ``links: {name: id}``), so an unknown
        one is a warning, not an error: a county may register its own. But a typo
        silently reaches nobody, so say which names are known."""
        from ..render import LINK_WORDS

        declared = (self.scheme or {}).get("links") if isinstance(self.scheme, dict) else None
        if isinstance(declared, dict) and declared:
            # the scheme names its links: any other name is a mistake (it reaches nobody)
            names = {str(k): v for k, v in declared.items()}
            if isinstance(name, str) and name not in names:
                listing = ", ".join(f"{k} ({v})" for k, v in names.items())
                self.add(
                    f,
                    p,
                    path,
                    f"{where} also scores the subject's '{name}' link, which scheme.yaml"
                    f" 'links' does not declare{_did_you_mean(name, names) or '.'} Declared:"
                    f" {listing}; add '{name}' to 'links' in scheme.yaml if it is a new one",
                )
            return
        if not isinstance(name, str) or name in LINK_WORDS:
            return
        known = ", ".join(f"{k} ({v})" for k, v in LINK_WORDS.items())
        self.add(
            f,
            p,
            path,
            f"{where} also scores the subject's '{name}' link, which is not a known link"
            f" name{_did_you_mean(name, LINK_WORDS) or '.'} Only subjects whose 'links' use"
            " exactly this name are reached, and the site shows the name untranslated."
            f" Known names: {known}",
            severity="warning",
        )

    def check_points(
        self,
        f: str,
        p: Any,
        path: Path_,
        points: dict[str, Any],
        where: str,
        types: list[str],
    ) -> None:
        if "per" in points:
            attr = points.get("per")
            spec = self.attr_spec(f, p, (*path, "per"), attr, types, where, "'points.per'")
            if spec is not None and spec.get("type") not in ("integer", "number"):
                self.add(
                    f,
                    p,
                    (*path, "per"),
                    f"{where} gives points per '{attr}', which is"
                    f" {ATTR_TYPE_WORDS.get(spec.get('type'), spec.get('type'))}, not a number;"
                    " 'per' needs a numeric attribute such as hours (use 'by' with a table for"
                    " text values)",
                )
            if points.get("value") == 0:
                self.add(
                    f,
                    p,
                    (*path, "value"),
                    f"{where} gives 0 points per '{attr}'; give a value or remove the rule",
                    severity="warning",
                )
        elif "by" in points:
            attr = points.get("by")
            spec = self.attr_spec(f, p, (*path, "by"), attr, types, where, "'points.by'")
            table = points.get("table")
            if spec is not None and isinstance(table, dict):
                atype = spec.get("type")
                values = spec.get("values")
                for key in table:
                    kv = _coerce_key(key, atype)
                    if key == "default" and not (isinstance(values, list) and key in values):
                        self.add(
                            f,
                            p,
                            (*path, "table"),
                            f"'default' is inside the table of 'points' in {where}, where it"
                            f" is read as a value of '{attr}' and never matches; move it out of"
                            f" the table, beside 'by:' (by: {attr}, table: {{...}},"
                            f" default: {table[key]})",
                            key=key,
                        )
                        continue
                    if not _fits_type(kv, atype):
                        self.add(
                            f,
                            p,
                            (*path, "table"),
                            f"table key {_describe(key)} in 'points' of {where} is not"
                            f" {ATTR_TYPE_WORDS.get(atype, atype)}, the type of '{attr}'; it"
                            " can never match",
                            key=key,
                        )
                    elif isinstance(values, list) and kv not in values:
                        self.add(
                            f,
                            p,
                            (*path, "table"),
                            f"table key {_describe(key)} in 'points' of {where} is not a value"
                            f" of '{attr}' ({', '.join(map(str, values))})"
                            f"{_did_you_mean(str(key), values) or '; it can never match'}",
                            key=key,
                        )
        else:
            unknown = [k for k in points if k not in self.points_forms]
            if unknown:
                self.add(
                    f,
                    p,
                    path,
                    f"'points' of {where} has an unknown form ('{unknown[0]}'); write a whole"
                    " number, {per: attr, value: n} or {by: attr, table: {...}}",
                )
