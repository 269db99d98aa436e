"""Exact fractional points: a scheme's precision, and points as integers of its smallest unit.

``scheme.yaml`` may declare ``precision: 0.1`` (or ``0.5``, ``0.25`` …: one over a whole
number) or ``decimals: 1`` (precision 0.1); by default points are whole. The engine never
sees a fraction: as the rules are read (``loader.read_scheme``, before any check), every
point value written in a rule file (rule points, table values and defaults, caps, escalation
steps, link points, running-total level/bracket points and maxima, by-size expiry bands,
tier bounds, base scores, list score bounds, catalog costs, award points) is turned into a
whole number of units (``points × scale``; 0.5 at precision 0.1 is 5), so the scorer, the
ledger, tiers, caps and rankings all work on integers exactly as for whole-point schemes. A
value with more decimals than the precision is an error at its position saying the fix.

``per`` values are rates (0.01 point per yuan), not point values: any decimals, the product
is computed exactly (``Fraction``) and rounded to the unit as the rule's ``round`` says.

Display divides by the scale once, at the edge: :func:`fmt_points` (text, the scheme's
decimals) and :func:`json_points` (a JSON number, e.g. 1002.5). Scale 1 (whole points) is
the default and changes nothing: no value is touched and every number prints as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from .errors import Problem

MAX_DECIMALS = 4  # 0.0001 point: finer than any published scheme


@dataclass(frozen=True)
class Precision:
    """``scale`` units make one point; numbers print with ``decimals`` places."""

    scale: int = 1
    decimals: int = 0

    @property
    def text(self) -> str:
        """The precision as a person writes it: ``1`` (whole points), ``0.1``, ``0.5``."""
        if self.scale == 1:
            return "1"
        return _dec_text(Decimal(1) / Decimal(self.scale), self.decimals)

    def describe(self) -> str:
        return "whole points" if self.scale == 1 else f"precision {self.text}"


WHOLE = Precision()


def _dec_text(d: Decimal, decimals: int) -> str:
    return format(d.quantize(Decimal(1).scaleb(-decimals)) if decimals else d, "f")


def exact_number(x: Any) -> Fraction | None:
    """A YAML number as written, exactly (0.1 is 1/10, not the float next to it)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    if isinstance(x, int):
        return Fraction(x)
    try:
        return Fraction(Decimal(repr(x)))
    except (InvalidOperation, ValueError):
        return None


def parse_precision(data: Any) -> tuple[Precision, str, str]:
    """The precision ``scheme.yaml`` declares: (precision, error message, key at fault)."""
    if not isinstance(data, dict):
        return WHOLE, "", ""
    if "precision" in data and "decimals" in data:
        return WHOLE, "write either precision or decimals, not both", "decimals"
    if "decimals" in data:
        d = data["decimals"]
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= MAX_DECIMALS:
            return (
                WHOLE,
                f"decimals must be a whole number from 0 to {MAX_DECIMALS}"
                " (decimals: 1 gives points like 0.1), not {d!r}",
                "decimals",
            )
        return Precision(10**d, d), "", ""
    if "precision" in data:
        p = exact_number(data["precision"])
        bad = (
            f"precision must be 1 or one over a whole number with at most {MAX_DECIMALS}"
            f" decimals (e.g. precision: 0.1 or 0.5), not {data['precision']!r}"
        )
        if p is None or p <= 0 or p > 1 or p.numerator != 1:
            return WHOLE, bad, "precision"
        decimals = next((d for d in range(MAX_DECIMALS + 1) if (p * 10**d).denominator == 1), -1)
        if decimals < 0:  # 1/3 has no finite decimals; 0.00001 is finer than any scheme
            return WHOLE, bad, "precision"
        return Precision(p.denominator, decimals), "", ""
    return WHOLE, "", ""


# --------------------------------------------------------------------------
# display: one function for text, one for JSON


def fmt_points(units: Any, prec: Precision = WHOLE, *, sign: bool = False) -> str:
    """``units`` as points with the scheme's decimals: ``1002.5``; ``+0.5`` with ``sign``.
    Whole points (and anything not an integer) print as ``str`` would."""
    if prec.scale == 1 or isinstance(units, bool) or not isinstance(units, int):
        text = str(units)
        return f"+{text}" if sign and isinstance(units, int) and units > 0 else text
    text = _dec_text(Decimal(units) / Decimal(prec.scale), prec.decimals)
    return f"+{text}" if sign and units > 0 else text


def plain_points(units: Any, prec: Precision = WHOLE) -> str:
    """``units`` as a clerk writes points in a rule or a message: ``1000``, ``1009.5``."""
    text = fmt_points(units, prec)
    if prec.scale == 1 or "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def json_points(units: Any, prec: Precision = WHOLE) -> Any:
    """``units`` as a JSON number of points: an int for whole points, else a float whose
    shortest form is the decimal (1002.5)."""
    if prec.scale == 1 or isinstance(units, bool) or not isinstance(units, int):
        return units
    return float(Decimal(units) / Decimal(prec.scale))


class Pts(float):
    """Points of a fractional scheme on the site: a float (sorts, sums, JSON as a number)
    that prints with the scheme's decimals (``1000.0``, ``1002.5``), in text and CSV."""

    decimals = 1

    def __str__(self) -> str:
        return f"{float(self):.{self.decimals}f}"

    __repr__ = __str__  # csv writes floats by repr; json.dumps uses float.__repr__

    def __format__(self, spec: str) -> str:
        if spec.endswith("d"):  # a page's {points:+d} for whole points: the same, with decimals
            spec = f"{spec[:-1]}.{self.decimals}f"
        return str(self) if not spec else float.__format__(float(self), spec)


_PTS: dict[int, type[Pts]] = {}


def site_points(units: Any, prec: Precision) -> Any:
    """``units`` as a :class:`Pts` of the scheme's decimals (``None`` and whole-point
    schemes pass through unchanged)."""
    if prec.scale == 1 or units is None or isinstance(units, bool):
        return units
    cls = _PTS.get(prec.decimals)
    if cls is None:
        cls = _PTS[prec.decimals] = type(f"Pts{prec.decimals}", (Pts,), {"decimals": prec.decimals})
    return cls(Decimal(units) / Decimal(prec.scale))


def precision_of(scheme: Any) -> Precision:
    return getattr(scheme, "precision", None) or WHOLE


# --------------------------------------------------------------------------
# reading: point values written in the rule files → integer units


class _Scaler:
    def __init__(self, prec: Precision):
        self.prec = prec
        self.problems: list[Problem] = []
        self.seen: set[int] = set()  # containers done (a default is shared by many rules)

    def value(self, file: str, container: Any, key: Any, what: str) -> None:
        """Scale ``container[key]`` in place when it is a number."""
        x = container[key]
        q = exact_number(x)
        if q is None:
            return
        units = q * self.prec.scale
        if units.denominator != 1:
            if isinstance(container, dict):
                line, col = getattr(container, "val_pos", {}).get(
                    key, getattr(container, "pos", (0, 0))
                )
            else:
                pos = getattr(container, "item_pos", None)
                line, col = (
                    pos[key] if pos and key < len(pos) else getattr(container, "pos", (0, 0))
                )
            if self.prec.scale == 1:
                fix = "write a whole number, or declare e.g. precision: 0.5 in scheme.yaml"
            else:
                fix = (
                    f"write a multiple of {self.prec.text}, or make the scheme's precision finer"
                    " in scheme.yaml"
                )
            self.problems.append(
                Problem(
                    file,
                    line,
                    col,
                    f"{what} {_show(x)} has more decimals than the scheme allows"
                    f" ({self.prec.describe()}); {fix}",
                )
            )
            units = Fraction(round(units))
        container[key] = int(units)

    def keys(self, file: str, d: Any, keys: tuple[str, ...], what: str = "") -> None:
        if isinstance(d, dict):
            for k in keys:
                if k in d:
                    self.value(file, d, k, what or k)

    def once(self, x: Any) -> bool:
        if id(x) in self.seen:
            return False
        self.seen.add(id(x))
        return True

    def rule(self, file: str, r: Any) -> None:
        if not isinstance(r, dict) or not self.once(r):
            return
        if "points" in r:
            p = r["points"]
            if isinstance(p, dict):
                self.points_map(file, p)
            else:
                self.value(file, r, "points", "points")
        lim = r.get("limit")
        if isinstance(lim, dict) and self.once(lim):
            self.keys(file, lim, ("max_points",))
        esc = r.get("escalate")
        if isinstance(esc, dict) and self.once(esc):
            steps = esc.get("steps")
            if isinstance(steps, list):
                for i in range(len(steps)):
                    self.value(file, steps, i, "escalation step")
        for link in r.get("also") or [] if isinstance(r.get("also"), list) else []:
            if isinstance(link, dict) and self.once(link):
                self.keys(file, link, ("points",), "link points")
        self.expires(file, r.get("expires"))

    def points_map(self, file: str, p: dict[str, Any]) -> None:
        if not self.once(p):
            return
        if isinstance(p.get("table"), dict) and self.once(p["table"]):
            for k in list(p["table"]):
                self.value(file, p["table"], k, "table value")
        self.keys(file, p, ("default",), "default points")
        if "total" in p:
            self.keys(file, p, ("max",), "running-total max")
            for key in ("levels", "brackets"):
                for item in p.get(key) or [] if isinstance(p.get(key), list) else []:
                    if isinstance(item, dict) and self.once(item):
                        self.keys(file, item, ("points",), f"{key[:-1]} points")

    def expires(self, file: str, e: Any) -> None:
        if isinstance(e, dict) and self.once(e) and isinstance(e.get("by_size"), list):
            for band in e["by_size"]:
                if isinstance(band, dict) and self.once(band):
                    self.keys(file, band, ("upto",), "by_size upto")

    def tiers(self, file: str, tiers: Any) -> None:
        if isinstance(tiers, list) and self.once(tiers):
            for t in tiers:
                if isinstance(t, dict):
                    self.keys(file, t, ("min", "max"), "tier bound")


POINT_METRICS = ("score", "points")


def metric_on_points(metric: Any) -> bool:
    """An assessment metric whose values are points (``mean: score``, ``sum: points``), not
    counts: its ``select`` bounds are point values and its results print as points."""
    return isinstance(metric, dict) and any(
        k != "count" and v in POINT_METRICS for k, v in metric.items()
    )


def scale_files(files: dict[str, Any], scheme_file: str, prec: Precision) -> list[Problem]:
    """Turn every point value in the loaded rule files into integer units, in place.

    ``files``: display path → data (``RawScheme.files``). Returns the problems (values
    with more decimals than ``prec``); scale 1 touches only such values."""
    sc = _Scaler(prec)
    s = files.get(scheme_file)
    if isinstance(s, dict):
        for tiers in (
            (s.get("tier_sets") or {}).values() if isinstance(s.get("tier_sets"), dict) else []
        ):
            sc.tiers(scheme_file, tiers)
        for g in (s.get("groups") or {}).values() if isinstance(s.get("groups"), dict) else []:
            if isinstance(g, dict):
                sc.keys(scheme_file, g, ("base_score",), "base_score")
                sc.tiers(scheme_file, g.get("tiers"))
        for ld in s.get("lists") or [] if isinstance(s.get("lists"), list) else []:
            for rs in (ld.get("reasons") or []) if isinstance(ld, dict) else []:
                if isinstance(rs, dict):
                    sc.keys(scheme_file, rs, ("min_score", "max_score"), "score bound")
        _defaults(sc, scheme_file, s)
    for name, data in files.items():
        if name == scheme_file or not isinstance(data, dict):
            continue
        base = name.rsplit("/", 1)[-1]
        if "pack" in data or isinstance(data.get("rules"), list):
            for fam in (
                (data.get("families") or {}).values()
                if isinstance(data.get("families"), dict)
                else []
            ):
                if isinstance(fam, dict) and isinstance(fam.get("limit"), dict):
                    if sc.once(fam["limit"]):
                        sc.keys(name, fam["limit"], ("max_points",))
            for r in data.get("rules") or [] if isinstance(data.get("rules"), list) else []:
                sc.rule(name, r)
            _defaults(sc, name, data)
        elif base == "catalog.yaml":
            for it in data.get("items") or [] if isinstance(data.get("items"), list) else []:
                sc.keys(name, it, ("cost",), "catalog cost")
        elif base == "assessments.yaml":
            for a in (
                data.get("assessments") or [] if isinstance(data.get("assessments"), list) else []
            ):
                if not isinstance(a, dict):
                    continue
                award = a.get("award")
                if isinstance(award, dict):
                    sc.keys(name, award, ("points",), "award points")
                    sc.expires(name, award.get("expires"))
                metric, sel = a.get("metric"), a.get("select")
                if metric_on_points(metric) and isinstance(sel, dict):
                    sc.keys(name, sel, ("min", "max"), "select bound")
                bands = sel.get("bands") if isinstance(sel, dict) else None
                for band in bands if isinstance(bands, list) else []:
                    if isinstance(band, dict):
                        sc.keys(name, band, ("points",), "band points")
                        if metric_on_points(metric):
                            sc.keys(name, band, ("min",), "band bound")
    return sc.problems


def _defaults(sc: _Scaler, file: str, data: dict[str, Any]) -> None:
    d = data.get("defaults")
    if isinstance(d, dict):
        for layer in d.values():
            sc.rule(file, layer)


def _show(x: Any) -> str:
    return repr(x) if isinstance(x, float) else str(x)
