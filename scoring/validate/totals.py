"""Pass 2 for running totals: ``points: {total: attr, period, levels | brackets, max}``.

The schema has checked the shapes; here: the attribute is a number the event types
declare, levels and brackets rise (so the order they are written in never changes
what they mean), their points share one sign, and the rule has no clause a running
total cannot carry.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from .messages import ATTR_TYPE_WORDS, Path_

# clauses a running-total rule cannot carry, and what to write instead
_NOT_WITH_TOTAL = {
    "limit": "write the cap as 'max' inside 'points' (it holds per the total's period)",
    "escalate": "a running total is not a repeat offence; write the escalation in a rule of its own",
    "repair": "write the credit repair in a rule of its own",
    "grade": "write the grading in a rule of its own",
    "also": "write the linked scoring in a rule of its own",
}


def _num(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _TotalChecks:
    # provided by the checker class this mixes into (validate.base._Checks)
    add: Any
    attr_spec: Any
    pt: Any  # a point value as written (scoring.precision)

    def check_total(
        self,
        f: str,
        p: Any,
        path: Path_,
        points: dict[str, Any],
        rule: dict[str, Any],
        base: Path_,
        where: str,
        types: list[str],
    ) -> None:
        attr = points.get("total")
        spec = self.attr_spec(f, p, (*path, "total"), attr, types, where, "'points.total'")
        if spec is not None and spec.get("type") not in ("integer", "number"):
            kind = ATTR_TYPE_WORDS.get(spec.get("type"), spec.get("type"))
            self.add(f, p, (*path, "total"),
                     f"{where} keeps a running total of '{attr}', which is {kind}, not a number;"
                     " 'total' needs a numeric attribute such as hours or amount")  # fmt: skip
        if spec is not None and _num(spec.get("min")) and spec["min"] < 0:
            self.add(f, p, (*path, "total"),
                     f"{where} keeps a running total of '{attr}', which may be negative"
                     f" (min {spec['min']} in events.yaml); a negative amount takes the total"
                     " back down: set min: 0 if amounts are never negative",
                     severity="warning")  # fmt: skip
        for key, instead in _NOT_WITH_TOTAL.items():
            if key in rule:
                self.add(f, p, (*base, key),
                         f"{where} scores a running total and has '{key}', which a running"
                         f" total cannot carry; {instead}")  # fmt: skip
        levels = points.get("levels")
        if isinstance(levels, list):
            self._rising(f, p, (*path, "levels"), levels, "reach", where, "level")
            self._one_sign(f, p, (*path, "levels"), levels, where, "level")
            if points.get("count") == "highest":
                prev: float | None = None
                for k, lv in enumerate(levels):
                    pts = lv.get("points") if isinstance(lv, dict) else None
                    if _num(pts) and prev is not None and abs(pts) < abs(prev):
                        self.add(f, p, (*path, "levels", k, "points"),
                                 f"level {k + 1} of {where} is worth {self.pt(pts)}, less than the level"
                                 f" below it ({self.pt(prev)}); with count: highest, reaching it would take"
                                 " points back: give the higher level more points",
                                 severity="warning")  # fmt: skip
                    if _num(pts):
                        prev = pts
        brackets = points.get("brackets")
        if isinstance(brackets, list):
            for k, br in enumerate(brackets[:-1]):
                if isinstance(br, dict) and "upto" not in br:
                    self.add(f, p, (*path, "brackets", k),
                             f"bracket {k + 1} of {where} has no upper bound ('upto') but bracket"
                             f" {k + 2} follows it; only the last bracket may be open: give"
                             f" bracket {k + 1} an 'upto'")  # fmt: skip
            self._rising(f, p, (*path, "brackets"), brackets, "upto", where, "bracket")
            self._one_sign(f, p, (*path, "brackets"), brackets, where, "bracket")
        if "count" in points and "levels" not in points:
            self.add(f, p, (*path, "count"),
                     f"'count' in {where} applies to levels, and this total has brackets;"
                     " remove 'count'")  # fmt: skip

    def _rising(
        self, f: str, p: Any, path: Path_, items: list[Any], key: str, where: str, what: str
    ) -> None:
        prev = None
        for k, item in enumerate(items):
            v = item.get(key) if isinstance(item, dict) else None
            if not _num(v):
                continue
            if prev is not None and v <= prev:
                self.add(f, p, (*path, k, key),
                         f"{what} {k + 1} of {where} has {key}: {v}, not above the {what}"
                         f" before it ({prev}); write the {what}s from the lowest up, each"
                         " higher than the last")  # fmt: skip
            prev = v

    def _one_sign(
        self, f: str, p: Any, path: Path_, items: list[Any], where: str, what: str
    ) -> None:
        signs: dict[int, int] = {}
        for k, item in enumerate(items):
            v: Any = item.get("points") if isinstance(item, dict) else None
            if not _num(v):
                continue
            if v == 0:
                self.add(f, p, (*path, k, "points"),
                         f"{what} {k + 1} of {where} gives 0 points; remove it or give it"
                         " points", severity="warning")  # fmt: skip
                continue
            signs.setdefault(1 if v > 0 else -1, k)
        if len(signs) > 1:
            k = max(signs.values())
            self.add(f, p, (*path, k, "points"),
                     f"the {what}s of {where} mix awards and deductions; a running total either"
                     " adds or takes points: split it into two rules")  # fmt: skip
