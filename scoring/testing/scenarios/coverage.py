"""Rule coverage: which rule versions, escalation steps and ``by`` table values the
scenarios' ledgers exercised."""

from __future__ import annotations

from collections import defaultdict

import orjson
import sqlite_utils

from ...model import Rule, Scheme, TablePoints
from ...precision import fmt_points
from .results import Coverage, CoverageItem, _show

# --------------------------------------------------------------------------- coverage


class _CoverageTracker:
    """Which rule versions, escalation steps and by-table values the scenarios exercised."""

    def __init__(self, scheme: Scheme):
        self.scheme = scheme
        self.items: list[CoverageItem] = []
        self.versions: dict[str, list[tuple[Rule, CoverageItem]]] = defaultdict(list)
        self.steps: dict[int, list[CoverageItem]] = {}
        self.table_items: dict[tuple[int, str], CoverageItem] = {}
        self.by_rules: set[str] = set()
        self.esc_rules: set[str] = set()
        prec = scheme.precision  # steps and table values are units: shown as points (+0.5)
        for rule in scheme.rules:
            if rule.status == "retired":
                continue
            # a rule for several groups is one Rule per group: versions are per group
            n = sum(1 for r in scheme.rule_versions(rule.id) if r.group == rule.group)
            label = rule.id if len(rule.groups) <= 1 else f"{rule.id} ({rule.group})"
            if n > 1:
                f, u = rule.effective_text
                label += f" [{f or '…'} – {u or '…'}]"
            item = CoverageItem("rule", rule.id, label, rule.title, rule.src)
            self.items.append(item)
            self.versions[rule.id].append((rule, item))
            if rule.escalate:
                self.esc_rules.add(rule.id)
                self.steps[id(rule)] = []
                for i, pts in enumerate(rule.escalate.steps):
                    it = CoverageItem("step", rule.id, f"{label} step {i + 1} ({fmt_points(pts, prec, sign=True)})", rule.title,
                                      rule.key_src.get("escalate", rule.src))  # fmt: skip
                    self.steps[id(rule)].append(it)
                    self.items.append(it)
            if isinstance(rule.points, TablePoints):
                self.by_rules.add(rule.id)
                by = rule.points.by
                for k, v in rule.points.table.items():
                    it = CoverageItem("table", rule.id, f"{label} {by} = {_show(k)} ({fmt_points(int(v), prec, sign=True)})",
                                      rule.title, rule.key_src.get("points", rule.src))  # fmt: skip
                    self.table_items[(id(rule), _show(k))] = it
                    self.items.append(it)

    def _version(self, rule_id: str, at: int, grp: str = "") -> tuple[Rule, CoverageItem] | None:
        found = None
        for r, it in self.versions.get(rule_id, ()):
            if r.in_force(at):
                if r.group == grp or len(r.groups) <= 1:
                    return r, it
                found = found or (r, it)  # e.g. a linked entry, booked in the link's group
        return found

    def collect(self, db: sqlite_utils.Database) -> None:
        clock = self.scheme.clock
        for table in ("entries", "trial_entries"):
            for rule, at, note, reason, grp in db.execute(
                f"SELECT DISTINCT rule, at, note, reason, grp FROM {table}"
                " WHERE reason IN ('match', 'capped', 'linked', 'repair')"
            ).fetchall():
                if reason == "repair" and note and note.startswith("credit repair by "):
                    rule = note.removeprefix("credit repair by ")
                v = self._version(rule, at, grp)
                if v is not None:
                    v[1].hit = True
            if self.by_rules:
                marks = ",".join("?" * len(self.by_rules))
                for rule, at, grp, attrs in db.execute(
                    f"SELECT e.rule, e.at, e.grp, ev.attrs FROM {table} e JOIN events ev ON ev.id = e.event"
                    f" WHERE e.rule IN ({marks}) AND e.reason IN ('match', 'capped')",
                    sorted(self.by_rules),
                ).fetchall():
                    v = self._version(rule, at, grp)
                    if v is None:
                        continue
                    points = v[0].points
                    assert isinstance(points, TablePoints)
                    value = orjson.loads(attrs).get(points.by)
                    it = self.table_items.get((id(v[0]), _show(value)))
                    if it is not None:
                        it.hit = True
            if self.esc_rules:
                marks = ",".join("?" * len(self.esc_rules))
                seen: dict[tuple, list[int]] = defaultdict(list)
                for rule, s, g, at in db.execute(
                    f"SELECT rule, subject, grp, at FROM {table} WHERE rule IN ({marks})"
                    " AND reason IN ('match', 'capped') ORDER BY at, id",
                    sorted(self.esc_rules),
                ).fetchall():
                    v = self._version(rule, at, g)
                    if v is None:
                        continue
                    r = v[0]
                    esc = r.escalate  # a version without escalation: no window
                    times = seen[(rule, s, g)]
                    floor = clock.sub(at, esc.within) if esc else -(2**62)
                    n = 1 + sum(1 for t in times if t > floor)
                    times.append(at)
                    steps = self.steps.get(id(r), [])
                    if steps:
                        steps[min(n, len(steps)) - 1].hit = True

    def result(self) -> Coverage:
        return Coverage(list(self.items))
