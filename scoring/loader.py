"""Load a scheme's ``rules/`` folder into the model.

``read_scheme`` parses every file safely (keeping positions), ``validate``
checks the raw data, and ``build_scheme`` turns valid data into ``model``
objects. ``load_scheme`` does all three and raises ``SchemeError`` listing
every problem found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .durations import Clock, parse_duration
from .errors import Problem, SchemeError
from .model import (
    Adopted,
    Also,
    Assessment,
    AttrSpec,
    CatalogItem,
    Effective,
    Escalate,
    EventType,
    Family,
    Grade,
    Grid,
    Group,
    Limit,
    ListDef,
    ListReason,
    Pack,
    Repair,
    Rule,
    Scheme,
    Tier,
    Withhold,
    make_expires,
    make_points,
)
from .precision import WHOLE, Precision, parse_precision
from .yamlsafe import YamlProblem, load_yaml_bytes, read_rules_file

if TYPE_CHECKING:
    from .plugins import Plugins

SCHEME_FILE = "scheme.yaml"
OPTIONAL_FILES = ("events.yaml", "assessments.yaml", "catalog.yaml")


@dataclass
class RawScheme:
    """Every rules file as loaded, keyed by its display path (relative to the repo)."""

    root: Path  # the rules folder
    files: dict[str, Any] = field(default_factory=dict)  # display path → data
    hashes: dict[str, str] = field(default_factory=dict)  # display path → sha256 hex
    relnames: dict[str, str] = field(default_factory=dict)  # display path → path inside rules/
    problems: list[Problem] = field(default_factory=list)
    precision: Precision = WHOLE  # scheme.yaml's; every point value above is in its units

    def display(self, name: str) -> str:
        return _display(self.root / name)

    def get(self, name: str) -> Any:
        return self.files.get(self.display(name))

    @property
    def scheme_file(self) -> str:
        return self.display(SCHEME_FILE)

    def pack_files(self) -> list[str]:
        prefix = self.display("packs") + "/"
        return sorted(k for k in self.files if k.startswith(prefix))

    def jurisdictions_file(self) -> str | None:
        scheme = self.get(SCHEME_FILE)
        name = scheme.get("jurisdictions") if isinstance(scheme, dict) else None
        return self.display(name) if isinstance(name, str) else None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _present(path: Path) -> bool:
    """There is something at ``path``: a FIFO or a dangling link too, which reading then
    refuses with a reason, rather than a misleading "not found"."""
    return path.exists() or path.is_symlink()


def find_rules_dir(path: str | Path) -> Path:
    """Accept a scheme repository (with ``rules/``) or the rules folder itself."""
    p = Path(path)
    if _present(p / "rules" / SCHEME_FILE):
        return p / "rules"
    if _present(p / SCHEME_FILE):
        return p
    from .errors import UsageError

    raise UsageError(
        f"no {SCHEME_FILE} in {p.resolve()} or in {p.resolve() / 'rules'}; run gridcredit in a"
        " scheme repository or pass --scheme DIR"
    )


def read_scheme(path: str | Path) -> RawScheme:
    root = find_rules_dir(path)
    raw = RawScheme(root=root)
    names = [SCHEME_FILE, *OPTIONAL_FILES]
    paths = [root / n for n in names if _present(root / n)]
    paths += sorted((root / "packs").glob("*.yaml")) + sorted((root / "packs").glob("*.yml"))
    scheme_data = _read(raw, root / SCHEME_FILE)
    if isinstance(scheme_data, dict) and isinstance(scheme_data.get("jurisdictions"), str):
        jpath = root / scheme_data["jurisdictions"]
        if _present(jpath):
            paths.append(jpath)
        else:
            from .yamlsafe import position

            line, col = position(scheme_data, ["jurisdictions"])
            raw.problems.append(
                Problem(raw.scheme_file, line, col, f"jurisdictions file {jpath.name} not found")
            )
    for p in paths[1:]:
        _read(raw, p)
    from .defaults import apply_defaults

    # defaults: {...} of the scheme and the packs, merged into the rules before any check
    apply_defaults(scheme_data, [raw.files.get(f) for f in raw.pack_files()])
    _scale_points(raw, scheme_data)
    return raw


def _scale_points(raw: RawScheme, scheme_data: Any) -> None:
    """Point values as integers of the scheme's smallest unit (``scoring.precision``),
    before any check: every later stage works on whole numbers."""
    from .precision import scale_files
    from .yamlsafe import position

    prec, error, key = parse_precision(scheme_data)
    raw.precision = prec
    if error:
        line, col = position(scheme_data, [key])
        raw.problems.append(Problem(raw.scheme_file, line, col, error))
    raw.problems.extend(scale_files(raw.files, raw.scheme_file, prec))


def _read(raw: RawScheme, path: Path) -> Any:
    display = _display(path)
    try:
        # regular files only, size-limited while reading: the scheme repository is the
        # folder holding rules/, where a symlinked file must point
        content = read_rules_file(path, display, inside=raw.root.resolve().parent)
        raw.hashes[display] = hashlib.sha256(content).hexdigest()
        raw.relnames[display] = path.relative_to(raw.root).as_posix()
        data = load_yaml_bytes(content, display)
    except YamlProblem as e:
        raw.problems.append(e.problem)
        return None
    except OSError as e:
        raw.problems.append(Problem(display, 1, 1, f"cannot read file: {e.strerror}"))
        return None
    raw.files[display] = data
    return data


def load_scheme(path: str | Path, *, check: bool = True, plugins: Plugins | None = None) -> Scheme:
    """Read, validate and build the scheme; raise ``SchemeError`` with every error.

    Builds the scheme's plugins once (:func:`scoring.plugins.build_plugins`:
    built-ins, entry points, the repository's ``plugins/``) and keeps them as
    ``scheme.plugins``. ``plugins``: use these instead (tests, notebooks: e.g.
    ``build_plugins(folder, extra=[recorder])``).
    """
    from .plugins import build_plugins, plugins_dir_of

    raw = read_scheme(path)
    # the one plugin manager of this scheme: validate, compile and every stage use it
    if plugins is None:
        plugins = build_plugins(plugins_dir_of(raw.root))
    problems = list(raw.problems)
    if check and not problems:
        from .validate import check_scheme

        problems += check_scheme(raw, plugins=plugins)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise SchemeError(errors)
    scheme = build_scheme(raw)
    scheme.plugins = plugins
    plugins.hook.scheme_loaded(scheme=scheme)
    return scheme


def _src(data: Any, file: str) -> tuple[str, int, int]:
    line, col = getattr(data, "pos", (0, 0))
    return (file, line, col)


def _adopted(data: Any) -> Adopted | None:
    if not isinstance(data, dict):
        return None
    return Adopted(
        by=str(data.get("by", "")), on=str(data.get("on", "")), ref=str(data.get("ref", ""))
    )


def _day(clock: Clock, text: Any, *, after: bool = False) -> int | None:
    if text is None:
        return None
    d = date.fromisoformat(str(text)[:10])
    return clock.day_start(d + timedelta(days=1) if after else d)


def _clauses(r: dict[str, Any], file: str, clock: Clock, peff: dict[str, Any]) -> dict[str, Any]:
    """A rule's clauses typed, once: the ``Rule`` fields after its names and before its status."""
    limit = r.get("limit")
    escalate = r.get("escalate")
    expires = r.get("expires")
    grade = r.get("grade")
    repair = r.get("repair")
    eff = r.get("effective") or peff
    return {
        "points": make_points(r.get("points"), _src(r.get("points"), file)),
        "limit": Limit(
            per=limit.get("per"),
            max_points=limit.get("max_points"),
            max_count=limit.get("max_count"),
            src=_src(limit, file),
        )
        if limit
        else None,
        "escalate": Escalate(
            within=parse_duration(escalate["within"]),
            steps=tuple(escalate.get("steps") or ()),
            factor=escalate.get("factor"),
            src=_src(escalate, file),
        )
        if isinstance(escalate, dict)
        else None,
        "expires": make_expires(expires, _src(expires, file)),
        "effective": Effective(
            start=_day(clock, eff.get("from")),
            end=_day(clock, eff.get("until"), after=True),
            text=(str(eff.get("from") or ""), str(eff.get("until") or "")),
            src=_src(eff, file),
        ),
        "wallet": r.get("wallet"),
        "grade": Grade(to=grade["to"], for_=parse_duration(grade["for"]), src=_src(grade, file))
        if isinstance(grade, dict)
        else None,
        "also": tuple(
            Also(
                link=link.get("link", ""),
                group=link.get("group") or "",
                points=link.get("points", "same"),
                grade=str(link.get("grade") or ""),
                src=_src(link, file),
            )
            for link in r.get("also") or []
        ),
        "repair": Repair(
            rules=tuple(repair.get("rules", [])),
            **({"within": parse_duration(repair["within"])} if "within" in repair else {}),
            restore=repair.get("restore", "all"),
            src=_src(repair, file),
        )
        if isinstance(repair, dict)
        else None,
        "withhold": Withhold(
            when=r["withhold"].get("when"),
            note=str(r["withhold"].get("note", "")),
            src=_src(r["withhold"], file),
        )
        if isinstance(r.get("withhold"), dict)
        else None,
        "family": str(r.get("family") or ""),
    }


def build_scheme(raw: RawScheme) -> Scheme:
    """Build model objects from raw data that has passed validation."""
    sfile = raw.scheme_file
    s = raw.get(SCHEME_FILE) or {}
    clock = Clock(s.get("timezone", "Asia/Shanghai"))

    tier_sets: dict[str, list[Tier]] = {}
    for name, tiers in (s.get("tier_sets") or {}).items():
        tier_sets[name] = [
            Tier(
                id=str(t["id"]),
                title=str(t.get("title", t["id"])),
                min=t.get("min"),
                max=t.get("max"),
                src=_src(t, sfile),
            )
            for t in tiers
        ]
    groups: dict[str, Group] = {}
    for gid, g in (s.get("groups") or {}).items():
        tiers = g.get("tiers")
        tier_list = (
            tier_sets.get(tiers, [])
            if isinstance(tiers, str)
            else [
                Tier(
                    str(t["id"]),
                    str(t.get("title", t["id"])),
                    t.get("min"),
                    t.get("max"),
                    _src(t, sfile),
                )
                for t in (tiers or [])
            ]
        )
        groups[gid] = Group(
            id=gid,
            title=str(g.get("title", gid)),
            kind=g.get("kind", "person"),
            base_score=int(g.get("base_score", 0)),
            tiers=tier_list,
            tier_set=tiers if isinstance(tiers, str) else "",
            src=_src(g, sfile),
        )

    grids: dict[str, Grid] = {}
    jfile = raw.jurisdictions_file()
    jdata = raw.files.get(jfile) if jfile else None
    for street in (jdata or {}).get("streets", []) or []:
        for comm in street.get("communities", []) or []:
            for grid in comm.get("grids", []) or []:
                grids[str(grid["id"])] = Grid(
                    id=str(grid["id"]),
                    name=str(grid.get("name", grid["id"])),
                    community=str(comm["id"]),
                    community_name=str(comm.get("name", comm["id"])),
                    street=str(street["id"]),
                    street_name=str(street.get("name", street["id"])),
                )

    efile = raw.display("events.yaml")
    event_types: dict[str, EventType] = {}
    for tid, t in ((raw.get("events.yaml") or {}).get("types") or {}).items():
        attrs = {
            name: AttrSpec(
                name=name,
                type=a.get("type", "string"),
                title=str(a.get("title", "")),
                unit=str(a.get("unit", "")),
                min=a.get("min"),
                max=a.get("max"),
                values=list(a["values"]) if a.get("values") is not None else None,
                labels={str(k): str(v) for k, v in a["values"].items()}
                if isinstance(a.get("values"), dict)
                else {},
                required=bool(a.get("required", False)),
                src=_src(a, efile),
            )
            for name, a in (t.get("attrs") or {}).items()
        }
        event_types[tid] = EventType(
            id=tid, title=str(t.get("title", tid)), attrs=attrs, src=_src(t, efile)
        )

    packs: list[Pack] = []
    families: dict[str, Family] = {}
    for pfile in raw.pack_files():
        p = raw.files[pfile]
        if not isinstance(p, dict):
            continue
        for fid, fam in (p.get("families") or {}).items():
            if not isinstance(fam, dict):
                continue
            flimit = fam.get("limit")
            families[str(fid)] = Family(
                id=str(fid),
                title=str(fam.get("title", fid)),
                exclusive=str(fam.get("exclusive") or ""),
                limit=Limit(
                    per=str(flimit.get("per")),
                    max_points=flimit.get("max_points"),
                    max_count=flimit.get("max_count"),
                    src=_src(flimit, pfile),
                )
                if isinstance(flimit, dict)
                else None,
                src=_src(fam, pfile),
            )
        phash = raw.hashes[pfile][:12]
        pack_adopted = _adopted(p.get("adopted"))
        peff = p.get("effective") or {}
        rules: list[Rule] = []
        for r in p.get("rules") or []:
            on = r.get("on")
            written = tuple(str(g) for g in r.get("groups") or ())
            # a rule for several groups (groups: [...]) is one Rule per group, in that order
            rules.extend(
                Rule(
                    id=str(r["id"]),
                    title=str(r.get("title", r["id"])),
                    on=[on] if isinstance(on, str) else list(on or []),
                    group=grp,
                    groups=written,
                    pack=str(p.get("pack")),
                    pack_version=str(p.get("version", "")),
                    pack_hash=phash,
                    when=r.get("when"),
                    **_clauses(r, pfile, clock, peff),
                    status=r.get("status", p.get("status", "active")),
                    severity=str(r.get("severity", "")),
                    adopted=_adopted(r.get("adopted")) or pack_adopted,
                    note=str(r.get("note", "")),
                    src=_src(r, pfile),
                    key_src={k: (pfile, *r.val_pos[k]) for k in r} if hasattr(r, "val_pos") else {},
                )
                for grp in (written or (str(p.get("group")),))
            )
        packs.append(
            Pack(
                id=str(p.get("pack")),
                version=str(p.get("version", "")),
                group=str(p.get("group")),
                title=str(p.get("title", p.get("pack"))),
                file=pfile,
                hash=phash,
                adopted=pack_adopted,
                rules=rules,
                src=_src(p, pfile),
            )
        )

    lists = []
    for ld in s.get("lists") or []:
        reasons = []
        for rs in ld.get("reasons") or []:
            tiers = rs.get("tier")
            reasons.append(
                ListReason(
                    tiers=[tiers] if isinstance(tiers, str) else (list(tiers) if tiers else None),
                    min_score=rs.get("min_score"),
                    max_score=rs.get("max_score"),
                    rules=list(rs["rules"]) if rs.get("rules") else None,
                    severity=rs.get("severity"),
                    within=parse_duration(rs["within"]) if rs.get("within") else None,
                    text=str(rs.get("text", "")),
                    src=_src(rs, sfile),
                )
            )
        lists.append(
            ListDef(
                id=str(ld["id"]),
                title=str(ld.get("title", ld["id"])),
                groups=list(ld.get("groups") or []),
                reasons=reasons,
                description=str(ld.get("description", "")),
                src=_src(ld, sfile),
            )
        )

    afile = raw.display("assessments.yaml")
    assessments = [
        Assessment(
            id=str(a["id"]),
            title=str(a.get("title", a["id"])),
            period=a.get("period", "quarter"),
            scope=a.get("scope", "subject"),
            group=str(a.get("group", "")),
            metric=a.get("metric") or {},
            select=a.get("select") or {},
            rank_within=a.get("rank_within", "scheme"),
            award=a.get("award"),
            badge=str(a.get("badge", "")),
            src=_src(a, afile),
            award_expires=make_expires(
                (a.get("award") or {}).get("expires"), _src(a.get("award"), afile)
            )
            if isinstance(a.get("award"), dict)
            else None,
        )
        for a in (raw.get("assessments.yaml") or {}).get("assessments") or []
    ]

    cfile = raw.display("catalog.yaml")
    catalog: dict[str, CatalogItem] = {}
    for it in (raw.get("catalog.yaml") or {}).get("items") or []:
        av = it.get("available") or {}
        catalog[str(it["id"])] = CatalogItem(
            id=str(it["id"]),
            title=str(it.get("title", it["id"])),
            cost=int(it["cost"]),
            min_tier=it.get("min_tier"),
            groups=list(it["groups"]) if it.get("groups") else None,
            stock=it.get("stock"),
            limit=dict(it["limit"]) if it.get("limit") else None,
            available_from=_day(clock, av.get("from")),
            available_until=_day(clock, av.get("until"), after=True),
            partner=it.get("partner"),
            description=str(it.get("description", "")),
            src=_src(it, cfile),
        )

    whole = hashlib.sha256(
        "".join(f"{raw.relnames[k]}:{v}\n" for k, v in sorted(raw.hashes.items())).encode()
    )
    return Scheme(
        id=str(s.get("scheme", "scheme")),
        title=str(s.get("title", s.get("scheme", ""))),
        timezone=clock.tzname,
        root=str(raw.root),
        groups=groups,
        grids=grids,
        event_types=event_types,
        packs=packs,
        lists=lists,
        assessments=assessments,
        catalog=catalog,
        links={str(k): str(v) for k, v in (s.get("links") or {}).items()}
        if isinstance(s.get("links"), dict)
        else {},
        hash=whole.hexdigest()[:16],
        raw=dict(s),
        families=families,
        precision=parse_precision(s)[0],
    )
