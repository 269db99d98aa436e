"""The driver: one month's run through every stage, in order.

score → assess (periods ending this month) → close the month → gather the
month's public figures (``month_data``) → publish pages and open data.
Follow this file to find where any number on the site was computed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from . import publish as pub
from .assess import assessment_results, periods_ending_in, run_assessment
from .evaluate import ScoreSummary, score
from .ledger import get_state, set_state
from .lists import all_lists
from .model import Scheme
from .periods import close_month, closed_months, is_closed, month_record
from .plugins import plugins_of
from .rank import MonthView, grid_rankings, rankings
from .render import render_rule


@dataclass
class MonthRun:
    month: str
    scored: ScoreSummary | None = None
    assessed: list[Any] = field(default_factory=list)
    closed: dict[str, Any] | None = None
    paths: list[Path] = field(default_factory=list)
    publish_seconds: float = 0.0


KEY_FILE = "lookup.key"


def lookup_secret(
    db: sqlite_utils.Database, private_dir: Path | None = None, site_dir: Path | None = None
) -> bytes:
    """The scheme's private key for personal look-up codes, made once.

    Kept in ``<private_dir>/lookup.key`` (beside the ledger, never in the site)
    and in the ledger's state: a ledger rebuilt from the same inputs finds the
    key file, so residents' codes stay valid and the site's files are the same
    bytes. A ledger that already has another key is refused, never changed: the
    codes handed out depend on it. The site never holds the key, only slow
    salted hashes of the codes.
    """
    from .errors import InputError

    path = Path(private_dir) / KEY_FILE if private_dir is not None else None
    if (
        path is not None
        and site_dir is not None
        and Path(site_dir).resolve() in path.resolve().parents
    ):
        raise InputError(
            f"publish: the private folder {private_dir} is inside the site folder {site_dir};"
            " the look-up key would be published. Keep the ledger outside the site"
        )
    stored = value = get_state(db, "lookup_secret")
    if path is not None and path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        try:
            if len(bytes.fromhex(text)) != 32:
                raise ValueError
        except ValueError:
            raise InputError(
                f"{path}: not a look-up key (64 hexadecimal characters); restore it from a"
                " backup: every personal code handed out depends on it"
            ) from None
        if value is not None and value != text:
            raise InputError(
                f"{path} is not the look-up key this ledger published with: the personal codes"
                " handed out depend on the ledger's own key. Publish this ledger with its own"
                " private folder (--db in a folder of its own), or move that file away if"
                " another ledger (a trial) made it; gridcredit then writes this ledger's key there"
            )
        value = text
    else:
        value = value or secrets.token_hex(32)
        if path is not None:
            write_key(path, value)
    if stored != value:
        set_state(db, "lookup_secret", value)
    return bytes.fromhex(value)


def write_key(path: Path, value: str) -> None:
    """Write a key file readable by its owner only, from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    path.chmod(0o600)  # an existing file keeps its mode through O_TRUNC


def month_data(db: sqlite_utils.Database, scheme: Scheme, month: str) -> pub.MonthData:
    """Everything the site shows for ``month``, gathered from the ledger and the scheme."""
    view = MonthView(db, scheme, month)
    subjects = {
        sid: (name, kind, grid, code)
        for sid, name, kind, grid, code in db.execute(
            "SELECT id, name, kind, grid, code FROM subjects"
        ).fetchall()
    }
    groups = [
        pub.GroupInfo(
            id=g.id,
            title=g.title,
            kind=g.kind,
            tiers=[pub.TierInfo(t.id, t.title, t.min, t.max) for t in g.tiers],
        )
        for g in scheme.groups.values()
    ]
    grids = [
        pub.GridInfo(g.id, g.name, g.community, g.community_name, g.street, g.street_name)
        for g in scheme.grids.values()
    ]
    graded = _graded_at_month_end(db, scheme, month)
    ranking_rows: dict[str, list[pub.RankRow]] = {}
    for gid in scheme.groups:
        rows = []
        for table in rankings(db, scheme, month, group=gid, by="score", within="scheme", view=view):
            for r in table.rows:
                _, kind, _, code = subjects.get(r.subject, ("", "person", "", None))
                rows.append(
                    pub.RankRow(
                        subject=r.subject,
                        name=r.name,
                        grid=r.grid or "",
                        score=r.score,
                        tier=r.tier,
                        rank=r.rank,
                        previous_rank=r.previous_rank,
                        earned=r.earned,
                        wallet=r.wallet,
                        kind=kind or "person",
                        code=code,
                        community=r.community or "",
                        street=r.street or "",
                        note="直接判级" if (r.subject, gid) in graded else "",
                    )  # fmt: skip
                )
        ranking_rows[gid] = rows
    resident_group = "residents" if "residents" in scheme.groups else next(iter(scheme.groups))
    grid_rows = [
        pub.GridRank(
            grid=r.grid,
            name=r.name,
            community=r.community,
            mean_score=r.mean_score or 0.0,
            residents=r.residents,
            rank=r.rank or 0,
            previous_rank=r.previous_rank,
        )  # fmt: skip
        for t in grid_rankings(db, scheme, month, group=resident_group, within="scheme", view=view)
        for r in t.rows
        if r.rank is not None
    ]
    return pub.MonthData(
        title=scheme.title,
        month=month,
        groups=groups,
        grids=grids,
        rankings=ranking_rows,
        grid_rankings=grid_rows,
        assessments=_assessments(db, scheme, month, subjects),
        lists=_lists(db, scheme, month, subjects),
        rules=_rules(scheme, month),
        catalog=_catalog(scheme, {sid: v[0] for sid, v in subjects.items()}),
        trends=_trends(db, scheme, month),
        lookup=_lookup(db, scheme, month, ranking_rows),
        # the archive page reads each month's content hash from its published
        # manifest.json (what residents can check); the ledger's closing hash is
        # another value and is not shown as the content hash
        archive=[],
        late_events=int(month_record(db, month).get("late_events") or 0),
    )


def _graded_at_month_end(
    db: sqlite_utils.Database, scheme: Scheme, month: str
) -> set[tuple[str, str]]:
    from .periods import month_end

    t = month_end(scheme, month)
    return {
        (s, g)
        for s, g in db.execute(
            "SELECT subject, grp FROM entries e WHERE grade IS NOT NULL AND at <= ? AND grade_until > ?"
            " AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref = e.id AND r.at <= ?)",
            [t, t, t],
        ).fetchall()
    }


def _assessments(
    db: sqlite_utils.Database, scheme: Scheme, month: str, subjects: dict[str, tuple]
) -> list[pub.AssessmentResult]:
    units = {g.community: g.community_name for g in scheme.grids.values()}
    units.update({g.street: g.street_name for g in scheme.grids.values()})
    out = []
    for period in periods_ending_in(month):
        for run in assessment_results(db, scheme, period):
            a = next((x for x in scheme.assessments if x.id == run.assessment), None)
            out.append(
                pub.AssessmentResult(
                    id=run.assessment,
                    title=run.title,
                    badge=a.badge if a else "",
                    period=run.period,
                    selected=[
                        pub.Selection(
                            scope=r.scope_id,
                            name=r.scope_name or r.scope_id,
                            value=r.value if r.value is not None else 0.0,
                            rank=r.rank or 0,
                            kind="grid"
                            if run.scope == "grid"
                            else (
                                "community"
                                if run.scope == "community"
                                else scheme.groups[a.group].kind
                                if a and a.group in scheme.groups
                                else "person"
                            ),
                            # the ranking unit by name, unless it is the whole scheme
                            unit=units.get(r.unit, "") if r.unit and r.unit != scheme.id else "",
                            grid=(subjects.get(r.scope_id, ("", "", "", None))[2] or "")
                            if run.scope == "subject"
                            else "",
                        )  # fmt: skip
                        for r in run.selected
                    ],
                    metric=_metric_text(a.metric) if a else "",
                )
            )
    return out


def _metric_text(metric: dict[str, Any]) -> str:
    words = {"mean": "平均", "sum": "合计", "count": "人数", "median": "中位数"}
    what = {"score": "信用分", "points": "本期所得积分"}
    for k, v in metric.items():
        if k in words:
            return f"{what.get(v, v)}{words[k]}"
        if k == "weighted":
            who = {"residents": "居民", "community": "社区", "owners_committee": "业委会"}
            parts = [
                f"{who.get((p.get('survey') or {}).get('respondent', ''), '测评')}评价{p.get('weight')}%"
                for p in v
            ]
            return "加权测评：" + "、".join(parts)
    return ""


def _lists(
    db: sqlite_utils.Database, scheme: Scheme, month: str, subjects: dict[str, tuple]
) -> list[pub.PublicList]:
    out = []
    members = all_lists(db, scheme, month=month)
    for ld in scheme.lists:
        out.append(
            pub.PublicList(
                id=ld.id,
                title=ld.title,
                description=ld.description,
                members=[
                    pub.ListMember(
                        subject=m.subject,
                        name=m.name,
                        group=m.group,
                        kind=m.kind or "organization",
                        code=subjects.get(m.subject, (None, None, None, None))[3],
                        grid=m.grid or "",
                        reasons=[
                            pub.ListReason(_reason_text(r), r.since, r.until, r.objection)
                            for r in m.reasons
                        ],
                    )  # fmt: skip
                    for m in members.get(ld.id, [])
                ],
            )
        )
    return out


def _reason_text(reason: Any) -> str:
    """A list reason without its dates: the page shows the window beside it."""
    text = reason.text
    if reason.since and text.startswith(f"{reason.since} "):
        text = text[len(reason.since) + 1 :]
    return text.split("，公示至")[0]


def _adopted_text(adopted: Any) -> str:
    if adopted is None or not adopted.by:
        return ""
    ref = f"（{adopted.ref}）" if adopted.ref else ""
    return f"{adopted.on} 经{adopted.by}通过{ref}"


def _rules(scheme: Scheme, month: str) -> list[pub.RulePackText]:
    """The rules in force during ``month``; trial rules only estimate, so they are left out."""
    start, end = scheme.clock.period_bounds(month)

    def shown(r: Any) -> bool:
        return (
            r.status != "trial"
            and (r.effective_from is None or r.effective_from < end)
            and (r.effective_until is None or r.effective_until > start)
        )

    return [
        pub.RulePackText(
            title=p.title,
            group=p.group,
            version=p.version,
            adopted=_adopted_text(p.adopted),
            rules=[
                pub.RuleText(r.id, r.title, render_rule(r, scheme), _adopted_text(r.adopted))
                for r in p.rules
                if shown(r)
            ],
        )
        for p in scheme.packs
        if any(shown(r) for r in p.rules)
    ]


def _catalog(scheme: Scheme, names: dict[str, str]) -> list[pub.CatalogItem]:
    """The redemption catalog; a partner merchant appears by name, never by its id."""
    out = []
    for it in scheme.catalog.values():
        if it.available_from or it.available_until:
            clock = scheme.clock
            start = clock.local(it.available_from).strftime("%Y-%m-%d") if it.available_from else ""
            end = (
                clock.local(it.available_until - 1).strftime("%Y-%m-%d")
                if it.available_until
                else ""
            )
            available = f"{start} 至 {end}".strip()
        else:
            available = "长期"
        out.append(
            pub.CatalogItem(
                id=it.id,
                title=it.title,
                cost=it.cost,
                min_tier=it.min_tier,
                groups=[scheme.groups[g].title for g in (it.groups or []) if g in scheme.groups],
                stock=it.stock,
                available=available,
                partner=names.get(it.partner, "合作商户") if it.partner else "",
            )  # fmt: skip
        )
    return out


def _trends(db: sqlite_utils.Database, scheme: Scheme, month: str) -> list[pub.TrendPoint]:
    rows = db.execute(
        "SELECT month, grp, AVG(score), COUNT(*) FROM month_balances WHERE month <= ?"
        " GROUP BY month, grp ORDER BY month, grp",
        [month],
    ).fetchall()
    tiers: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for m, g, tier, n in db.execute(
        "SELECT month, grp, tier, COUNT(*) FROM month_balances WHERE month <= ?"
        " GROUP BY month, grp, tier",
        [month],
    ).fetchall():
        tiers[(m, g)][tier] = n
    return [
        pub.TrendPoint(m, g, round(mean, 2), n, dict(sorted(tiers[(m, g)].items())))
        for m, g, mean, n in rows
    ]


def _lookup(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    ranking_rows: dict[str, list[pub.RankRow]],
) -> list[pub.LookupAccount]:
    """Per person: the balance, the month-end figures and the entries of the last
    ``publish.HISTORY_MONTHS`` closed months up to ``month``, for the private
    look-up page (SPEC §9: a person checks their balance and history)."""
    titles = scheme.rule_titles()
    titles.update({a.id: a.title for a in scheme.assessments})
    titles.update({i.id: f"兑换：{i.title}" for i in scheme.catalog.values()})
    disputed = {t for (t,) in db.execute("SELECT target FROM objections WHERE status = 'open'")}
    clock = scheme.clock
    months = sorted({m for m in closed_months(db) if m <= month} | {month})
    months = months[-pub.HISTORY_MONTHS :]
    marks = ",".join("?" for _ in months)
    entries: dict[tuple[str, str], list[pub.LookupEntry]] = defaultdict(list)
    days: dict[int, str] = {}  # local date per quarter hour (UTC offsets are whole quarters)
    for s, g, rule, pts, wal, at, reason, event, period in db.execute(
        "SELECT subject, grp, rule, points, wallet, at, reason, event, period FROM entries"
        f" WHERE period IN ({marks}) ORDER BY period, at, id",
        months,
    ):
        flag = {"capped": "已达上限", "reversal": "撤销", "repair": "信用修复"}.get(reason, "")
        if event in disputed:
            flag = "异议审核中"
        day = days.get(at // 900)
        if day is None:
            day = days[at // 900] = clock.local(at).strftime("%Y-%m-%d")
        entries[(s, g)].append(
            pub.LookupEntry(
                day,
                titles.get(rule, rule or ""),
                pts,
                wal,
                flag,
                period,
            )  # fmt: skip
        )
    history: dict[tuple[str, str], list[pub.LookupMonth]] = defaultdict(list)
    for m, s, g, sc, wal, tier in db.execute(
        "SELECT month, subject, grp, score, wallet, tier FROM month_balances"
        f" WHERE month IN ({marks}) AND month < ? ORDER BY month",
        [*months, month],
    ):
        history[(s, g)].append(pub.LookupMonth(m, sc, tier or "", wal or 0))
    out = []
    for gid, rows in ranking_rows.items():
        if scheme.groups[gid].kind != "person":
            continue
        for r in rows:
            out.append(
                pub.LookupAccount(
                    subject=r.subject,
                    group=gid,
                    score=r.score,
                    wallet=r.wallet,
                    tier=r.tier,
                    entries=entries.get((r.subject, gid), []),
                    name=r.name,
                    kind="person",
                    note=r.note,
                    history=history.get((r.subject, gid), []),
                )  # fmt: skip
            )
    return out


def run_month(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    site_dir: Path,
    *,
    private_dir: Path | None = None,
) -> MonthRun:
    """Score, assess, close and publish one month."""
    import time

    run = MonthRun(month)
    run.scored = score(db, scheme)
    for period in periods_ending_in(month):
        run.assessed.extend(run_assessment(db, scheme, period))
    if not is_closed(db, month):
        run.closed = close_month(db, scheme, month)
    t = time.perf_counter()
    run.paths = publish_month(db, scheme, month, site_dir, private_dir=private_dir)
    run.publish_seconds = time.perf_counter() - t
    return run


def publish_month(
    db: sqlite_utils.Database,
    scheme: Scheme,
    month: str,
    site_dir: Path,
    *,
    private_dir: Path | None = None,
    force: bool = False,
) -> list[Path]:
    """Write the pages and open data of a closed month; personal codes go to ``private_dir``.

    A month's pages are written once: publishing it again into the same site is
    refused unless ``force`` (the frozen figures are the same, but list reasons
    and flags would show today's state of late corrections and objections).
    """
    from .errors import GridcreditError

    if not is_closed(db, month):
        raise GridcreditError(
            f"{month} is not closed; `gridcredit publish {month}` closes it first"
        )
    manifest = Path(site_dir) / "data" / month / "manifest.json"
    if manifest.exists() and not force:
        raise GridcreditError(
            f"{month} is published already ({manifest}); a published month's pages never change."
            " To build the site run `gridcredit build`; to rewrite the month anyway use --force"
        )
    pm = plugins_of(scheme)
    data = month_data(db, scheme, month)
    secret = lookup_secret(db, private_dir, Path(site_dir))
    publishers = pm.publishers
    masked: dict[tuple[str, str], str] = {}

    def mask(name: str, kind: str) -> str:  # the hook once per distinct name, not per cell
        key = (name, kind)
        if key not in masked:
            masked[key] = pm.hook.mask_name(name=name, kind=kind)
        return masked[key]

    paths = pub.publish_month(
        month, data, Path(site_dir), secret=secret, mask=mask,
        publishers=publishers, private_dir=private_dir,
    )  # fmt: skip
    if private_dir is not None:
        from .lookup import write_private_codes

        people = sorted({(a.subject, a.name) for a in data.lookup})
        write_private_codes(
            Path(private_dir) / f"codes-{month}.csv", secret, people, site_dir=Path(site_dir)
        )
    pm.hook.after_publish(month=month, site_dir=Path(site_dir), paths=paths)
    return paths


def build_site(config: Path) -> Path:
    """``mkdocs build`` (strict, per mkdocs.yml) with a fixed build date, so the same
    pages give byte-identical files. Returns the output folder."""
    import logging
    import os

    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    from .errors import GridcreditError

    if not config.is_file():
        raise GridcreditError(f"{config}: no MkDocs configuration here; run in a scheme repository")
    os.environ["SOURCE_DATE_EPOCH"] = os.environ.get("SOURCE_DATE_EPOCH", "1704067200")
    logging.getLogger("mkdocs").setLevel(logging.WARNING)
    try:  # material's search segments Chinese with jieba; silence its dictionary-loading chatter
        import jieba

        jieba.setLogLevel(logging.WARNING)
    except ImportError:  # pragma: no cover
        pass
    try:
        cfg = load_config(str(config))
        build(cfg)
    except MkDocsException as e:
        raise GridcreditError(f"{config}: site build failed: {e}") from None
    except SystemExit as e:  # mkdocs aborts strict builds this way
        raise GridcreditError(f"{config}: site build failed in strict mode ({e})") from None
    return Path(cfg["site_dir"])


def run_demo(
    repo: Path,
    out: Path,
    *,
    events: int = 100_000,
    residents: int = 20_000,
    months: list[str] | None = None,
    seed: int = 20240101,
    build: bool = True,
    echo: Any = print,
) -> dict[str, Any]:
    """The demo county end to end: generate, ingest, and per month score, assess,
    close and publish; then build the site. Everything lands in ``out``."""
    import shutil
    import time

    from .demo import generate_county
    from .ingest import ingest_files, summary_line
    from .ledger import balances, connect
    from .loader import load_scheme

    months = months or ["2024-01", "2024-02", "2024-03"]
    t0 = time.perf_counter()
    scheme = load_scheme(repo)  # with the repository's plugins/
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "gridcredit.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    site = out / "site"
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(repo / "site", site)
    config = (repo / "mkdocs.yml").read_text(encoding="utf-8")
    (out / "mkdocs.yml").write_text(config, encoding="utf-8")
    echo(f"gridcredit demo: {scheme.title}")
    files = generate_county(
        out / "input", scheme, seed=seed, events=events, months=months, residents=residents
    )
    echo(f"generated {files.subjects.name} and {len(files.events)} event files in {out / 'input'}")
    db = connect(db_path)
    summaries = ingest_files(db, scheme, [files.subjects], progress=False)
    for s in summaries:
        echo("  " + summary_line(s))
    private = out / "private"
    # the demo's look-up key comes from its seed: the same demo, the same site bytes
    private.mkdir(parents=True, exist_ok=True)
    seed_key = hashlib.sha256(f"gridcredit-demo-lookup-key:{seed}".encode()).hexdigest()
    write_key(private / KEY_FILE, seed_key)
    for month, path in zip(months, files.events, strict=False):
        for s in ingest_files(db, scheme, [path], progress=False):
            echo("  " + summary_line(s))
        run = run_month(db, scheme, month, site, private_dir=private)
        awards = sum(len(a.awards) for a in run.assessed)
        echo(f"{month}: {run.scored.line() if run.scored else ''}")
        if run.assessed:
            echo(
                f"  assessed {', '.join(sorted({a.period for a in run.assessed}))}: {awards} awards"
            )
        echo(
            f"  closed, hash {run.closed['hash'][:16] if run.closed else '-'};"
            f" published {len(run.paths):,} files in {run.publish_seconds:.1f}s"
        )
    last = months[-1]
    _print_summary(db, scheme, last, echo)
    built = None
    if build:
        t = time.perf_counter()
        built = build_site(out / "mkdocs.yml")
        echo(f"site built with MkDocs in {time.perf_counter() - t:.1f}s")
    echo(f"done in {time.perf_counter() - t0:.1f}s")
    if built:
        echo(f"open the site: {(built / 'index.html').resolve().as_uri()}")
        echo(f"  or serve it: python3 -m http.server -d {built} 8000  → http://127.0.0.1:8000/")
    echo(f"personal look-up codes (private, never published): {private}")
    return {"db": db_path, "site": site, "public": built, "balances": len(balances(db, scheme))}


def _print_summary(db: sqlite_utils.Database, scheme: Scheme, month: str, echo: Any) -> None:
    from .periods import month_figures

    figs = month_figures(db, scheme, month)
    names = dict(db.execute("SELECT id, name FROM subjects").fetchall())
    pm = plugins_of(scheme)
    echo(f"\n{month} at a glance")
    for gid, g in scheme.groups.items():
        mine = [f for f in figs if f.group == gid]
        if not mine:
            continue
        top = max(mine, key=lambda f: (f.score, f.earned, [-ord(c) for c in f.subject]))
        tiers: dict[str, int] = defaultdict(int)
        for f in mine:
            tiers[f.tier] += 1
        counts = " ".join(f"{t.id}:{tiers.get(t.id, 0)}" for t in g.tiers)
        name = pm.hook.mask_name(name=names.get(top.subject, ""), kind=g.kind)
        echo(
            f"  {g.title:<8} {len(mine):>6,} accounts  top {name} {top.score} ({top.tier})  tiers {counts}"
        )
    rejected = db.execute("SELECT COUNT(*) FROM rejects").fetchone()[0]
    echo(f"  rejected records kept with file, line and reason: {rejected:,} (gridcredit rejects)")
