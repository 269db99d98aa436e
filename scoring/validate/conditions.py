"""Pass 2 for ``when``: each test's field, operator and values against the attribute types."""

from __future__ import annotations

from typing import Any

from ..conditions import SHORTHAND
from .base import _Base, _fits_type, _parse_date, _type_fix
from .messages import (
    ATTR_TYPE_WORDS,
    PLURAL_TYPE_WORDS,
    SUBJECT_FIELDS,
    Path_,
    _and_list,
    _describe,
    _did_you_mean,
    _operator_hint,
)


class _ConditionChecks(_Base):
    def check_condition(
        self,
        f: str,
        p: Any,
        path: Path_,
        cond: Any,
        where: str,
        types: list[str],
        on_list: list[str],
    ) -> None:
        if not isinstance(cond, dict):
            return
        for key, value in cond.items():
            here = (*path, key)
            if key in ("all", "any"):
                for k, sub in enumerate(value or []):
                    self.check_condition(f, p, (*here, k), sub, where, types, on_list)
                continue
            if key == "not":
                self.check_condition(f, p, here, value, where, types, on_list)
                continue
            field = str(key)
            spec: dict[str, Any] | None
            if field.startswith("attrs."):
                spec = self.attr_spec(f, p, path, field[6:], types, where, "'when'", key=key)
                if spec is None:
                    continue
                spec = dict(spec)
            elif field in SUBJECT_FIELDS:
                spec = {"type": SUBJECT_FIELDS[field]}
                known = self.known_values(field, on_list)
                if known is not None:
                    spec["values"] = known
                    spec["_strict"] = True
            else:
                continue  # the schema already refused it
            tests = value if isinstance(value, dict) else {SHORTHAND: value}
            for op_name, arg in tests.items():
                opath = (*here, op_name) if isinstance(value, dict) else here
                self.check_test(f, p, opath, field, spec, str(op_name), arg, where)
                if field == "subject.listed":
                    self.check_listed(f, p, opath, arg, where)

    def check_listed(self, f: str, p: Any, path: Path_, arg: Any, where: str) -> None:
        """``subject.listed`` names lists of scheme.yaml that the scorer can tell at the
        event: those listed by tier or score (an entry-based reason is worked out from
        the ledger when a list is published, not while scoring)."""
        lists = {
            str(ld.get("id")): ld
            for ld in (self.scheme or {}).get("lists") or []
            if isinstance(ld, dict) and ld.get("id") is not None
        }
        for k, name in enumerate(arg if isinstance(arg, list) else [arg]):
            here = (*path, k) if isinstance(arg, list) else path
            ld = lists.get(str(name))
            if ld is None:
                hint = _did_you_mean(str(name), lists) or (
                    f"; the lists of scheme.yaml are: {', '.join(sorted(lists))}"
                    if lists
                    else "; scheme.yaml declares no lists"
                )
                self.add(
                    f,
                    p,
                    here,
                    f"subject.listed in {where} names list '{name}', which scheme.yaml does not declare{hint}",
                )
                continue
            by_entries = [
                r
                for r in ld.get("reasons") or []
                if isinstance(r, dict) and (r.get("rules") or r.get("severity"))
            ]
            if by_entries:
                self.add(
                    f,
                    p,
                    here,
                    f"subject.listed in {where} reads list '{name}', which lists subjects by the"
                    " rules or severity of their entries; at the event the scorer can tell only"
                    " lists by tier or score (min_score, max_score): read the tier instead"
                    " (subject.tier) or list by tier",
                )

    def known_values(self, field: str, on_list: list[str]) -> list[str] | None:
        if field == "type":
            return list(on_list)
        if field == "subject.group":
            return sorted(self.groups) if self.groups is not None else None
        if field == "subject.grid":
            return sorted(self.grids) if self.grids is not None else None
        if field == "subject.community":
            return sorted(self.communities) if self.grids is not None else None
        if field == "subject.street":
            return sorted(self.streets) if self.grids is not None else None
        return None

    def check_test(
        self,
        f: str,
        p: Any,
        path: Path_,
        field: str,
        spec: dict[str, Any],
        op_name: str,
        arg: Any,
        where: str,
    ) -> None:
        op = self.operators.get(op_name)
        atype = spec.get("type", "string")
        name = field.removeprefix("attrs.")
        what = f"'{name}'"
        if op is None:
            if self.operators:
                hint = _operator_hint(op_name, self.operators)
                self.add(
                    f,
                    p,
                    path,
                    f"unknown operator '{op_name}' on '{field}' in {where}{hint}",
                )
            return
        op_types = tuple(getattr(op, "types", ()) or ())
        if op_types and atype not in op_types:
            good = [
                o for o, v in self.operators.items() if atype in (getattr(v, "types", ()) or ())
            ]
            self.add(
                f,
                p,
                path,
                f"operator '{op_name}' in {where} cannot be used on {what}, which is"
                f" {ATTR_TYPE_WORDS.get(atype, atype)}: '{op_name}' works on"
                f" {_and_list(list(dict.fromkeys(PLURAL_TYPE_WORDS.get(t, t) for t in op_types)))};"
                f" use {', '.join(sorted(good)[:6])} instead",
            )
            return
        try:
            op.compile(arg)
        except Exception as e:  # noqa: BLE001 - a plugin operator may raise anything
            self.add(f, p, path, f"operator '{op_name}' on '{field}' in {where}: {e}")
            return
        # values against the attribute's declaration, as the operator's value shape asks
        shape = getattr(op, "value_shape", "")
        values = spec.get("values")
        if shape in ("value", "values", "text") and atype != "tags":
            items = arg if isinstance(arg, list) and shape == "values" else [arg]
            for k, v in enumerate(items):
                vpath = (*path, k) if shape == "values" else path
                if shape == "text":
                    if not isinstance(v, str) and atype == "string":
                        self.add(
                            f,
                            p,
                            vpath,
                            f"'{op_name}' on {what} in {where} needs text, not {_describe(v)}",
                        )
                    continue
                if v is None:
                    continue
                if not _fits_type(v, atype):
                    self.add(
                        f,
                        p,
                        vpath,
                        f"{where} compares {what} with {_describe(v)}, but {what} is"
                        f" {ATTR_TYPE_WORDS.get(atype, atype)}{_type_fix(atype)}",
                    )
                elif isinstance(values, list) and v not in values:
                    kind = {
                        "type": "an event type this rule is on",
                        "subject.group": "a group",
                        "subject.grid": "a grid in the jurisdictions file",
                        "subject.community": "a community in the jurisdictions file",
                        "subject.street": "a street in the jurisdictions file",
                    }.get(field, f"a value of {what}")
                    listing = "" if len(values) > 12 else f" ({', '.join(map(str, values))})"
                    never = ""
                    if getattr(op, "never_if_undeclared", False):
                        never = _did_you_mean(str(v), values) or "; the test can never hold"
                    self.add(
                        f,
                        p,
                        vpath,
                        f"{where} compares {what} with {_describe(v)}, which is not {kind}"
                        f"{listing}{never}",
                    )
        if shape in ("ordered", "range"):
            items = arg if isinstance(arg, list) else [arg]
            for v in items:
                if atype == "date" and _parse_date(v) is None:
                    self.add(
                        f,
                        p,
                        path,
                        f"'{op_name}' on {what} in {where} needs a date (YYYY-MM-DD), not"
                        f" {_describe(v)}",
                    )
                    return
                if atype in ("integer", "number") and (
                    isinstance(v, bool) or not isinstance(v, (int, float))
                ):
                    self.add(
                        f,
                        p,
                        path,
                        f"'{op_name}' on {what} in {where} needs a number, not {_describe(v)}",
                    )
                    return
            if shape == "range" and len(items) == 2:
                lo, hi = items
                try:
                    if lo > hi:
                        self.add(
                            f,
                            p,
                            path,
                            f"'{op_name}: [{lo}, {hi}]' on {what} in {where} starts above its"
                            f" end, so it never holds; write [{hi}, {lo}]",
                        )
                except TypeError:
                    pass
            lo_b, hi_b = spec.get("min"), spec.get("max")
            v = items[0] if items else None
            never_within = getattr(op, "never_within", None)
            if (
                never_within is not None
                and isinstance(v, (int, float))
                and not isinstance(v, bool)
                and never_within(
                    v,
                    lo_b if isinstance(lo_b, (int, float)) else None,
                    hi_b if isinstance(hi_b, (int, float)) else None,
                )
            ):
                self.add(
                    f,
                    p,
                    path,
                    f"'{op_name}: {v}' on {what} in {where} can never hold: events.yaml"
                    f" allows {what} only from {lo_b} to {hi_b}",
                    severity="warning",
                )
