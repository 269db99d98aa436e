"""Pass 2 for rule families (``families:`` in packs, ``family:`` on rules) and for
escalation by a factor: each family is declared once, its rules share one sign, one way of
escalating and one cap, and an exclusive family picks its rule by the event alone."""

from __future__ import annotations

from typing import Any

from ..conditions import reads_subject
from .base import _rule_sign
from .messages import _did_you_mean


class _FamilyChecks:
    # provided by the checker class this mixes into (validate.base._Checks)
    add: Any
    raw: Any
    rules: Any
    ok: Any

    def check_families(self) -> None:
        declared: dict[str, tuple[str, Any]] = {}
        for pfile in self.raw.pack_files():
            # read leniently: a typo elsewhere in the pack must not make its families unknown
            p = self.raw.files.get(pfile)
            fams = p.get("families") if isinstance(p, dict) else None
            for fid in fams if isinstance(fams, dict) else ():
                if fid in declared and declared[fid][0] != pfile:
                    self.add(pfile, p, ("families",),
                             f"family '{fid}' is declared in {declared[fid][0]} too; declare"
                             " each family once (rules of any pack may name it)", key=fid)  # fmt: skip
                    continue
                declared[fid] = (pfile, p["families"][fid])
        members: dict[str, list[tuple[str, Any, int, dict[str, Any]]]] = {}
        for pfile, p, i, r in self.rules:
            base = ("rules", i)
            where = f"rule '{r.get('id')}'"
            esc = r.get("escalate")
            if isinstance(esc, dict) and "factor" in esc and "points" not in r:
                self.add(pfile, p, (*base, "escalate", "factor"),
                         f"{where} doubles (factor) its points on a repeat but has no 'points';"
                         " add points: n, or write the escalation as steps")  # fmt: skip
            fam = r.get("family")
            if not isinstance(fam, str):
                continue
            if fam not in declared:
                self.add(pfile, p, (*base, "family"),
                         f"{where} is in family '{fam}', which no pack declares"
                         f"{_did_you_mean(fam, declared) or ''}; add it under 'families:' in"
                         " a pack (families: {" + fam + ": {title: ...}})")  # fmt: skip
                continue
            members.setdefault(fam, []).append((pfile, p, i, r))
        for fid, rules in members.items():
            spec = declared[fid][1] if isinstance(declared[fid][1], dict) else {}
            signs = {_rule_sign(r) for *_, r in rules} - {0}
            if len(signs) > 1:
                pfile, p, i, r = rules[-1]
                self.add(pfile, p, ("rules", i, "family"),
                         f"family '{fid}' mixes awards and deductions (rule '{r.get('id')}');"
                         " a family shares a window and a cap, so its rules must all add or all"
                         " take points: split it in two families")  # fmt: skip
            escalating = [r for *_, r in rules if "escalate" in r]
            if escalating and len(escalating) < len(rules):
                for pfile, p, i, r in rules:
                    if "escalate" not in r:
                        self.add(pfile, p, ("rules", i, "family"),
                                 f"rule '{r.get('id')}' is in family '{fid}', whose rule"
                                 f" '{escalating[0].get('id')}' escalates over the family's"
                                 " matches; give this rule an 'escalate' too, so every match of"
                                 " the family counts the same way")  # fmt: skip
            for pfile, p, i, r in rules:
                if "limit" in spec and "limit" in r:
                    self.add(pfile, p, ("rules", i, "limit"),
                             f"rule '{r.get('id')}' has a limit of its own, but its family"
                             f" '{fid}' has one shared by its rules; remove one of them")  # fmt: skip
                if spec.get("exclusive") == "highest":
                    if r.get("when") is not None and reads_subject(r["when"]):
                        self.add(pfile, p, ("rules", i, "when"),
                                 f"rule '{r.get('id')}' is in family '{fid}' (exclusive: highest)"
                                 " but its condition reads the subject; the highest item is"
                                 " chosen from the event alone: test attrs.* only")  # fmt: skip
                    if isinstance(r.get("points"), dict) and "total" in r["points"]:
                        self.add(pfile, p, ("rules", i, "points"),
                                 f"rule '{r.get('id')}' scores a running total and cannot be"
                                 f" in family '{fid}' (exclusive: highest)")  # fmt: skip
