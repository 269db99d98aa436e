"""The ``gridcredit`` command line: thin commands over the library.

Each command calls library functions and turns domain errors into a clean
message and exit code: 0 success, 1 invalid input or failed scenarios,
2 usage errors. No traceback is ever the answer to bad input.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import apsw
import click
import orjson

from .durations import parse_as_of
from .errors import GridcreditError, SchemeError, UsageError


class Context:
    def __init__(self, scheme_dir: str, db_path: str | None):
        self.scheme_dir = Path(scheme_dir)
        self.db_path = db_path
        self._scheme: Any = None
        self._db: Any = None

    @property
    def repo(self) -> Path:
        """The scheme repository (the folder holding ``rules/``)."""
        from .loader import find_rules_dir

        rules = find_rules_dir(self.scheme_dir)
        return rules.parent if rules.name == "rules" else rules

    def scheme(self, check: bool = True):
        if self._scheme is None:
            from .loader import load_scheme

            # load_scheme builds the scheme's plugins (the repository's plugins/ too)
            self._scheme = load_scheme(self.scheme_dir, check=check)
        return self._scheme

    def private_dir(self) -> Path:
        """Private outputs (personal codes, key cache): beside the database, never in the site."""
        path = Path(self.db_path) if self.db_path else self.repo / "gridcredit.db"
        return path.resolve().parent / "private"

    def db(self):
        if self._db is None:
            from .ledger import connect

            path = Path(self.db_path) if self.db_path else self.repo / "gridcredit.db"
            self._db = connect(path)
        return self._db


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-caused errors into a message on stderr and the right exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SchemeError as e:
            for p in e.problems:
                click.echo(str(p), err=True)
            n = len(e.problems)
            click.echo(f"{n} error{'s' if n != 1 else ''}; fix the rules and run again", err=True)
            sys.exit(e.exit_code)
        except GridcreditError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except sqlite3.DatabaseError as e:
            if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                from .ledger.bulk import DISK_FULL

                click.echo(f"error: {DISK_FULL.format(error=e)}", err=True)
                sys.exit(1)
            if "readonly" in str(e) or "read-only" in str(e):
                click.echo(
                    f"error: the ledger database cannot be written ({e}): check that the user"
                    " running gridcredit may write the file and its folder (SQLite keeps its"
                    " -wal and -shm files beside it)",
                    err=True,
                )
                sys.exit(1)
            click.echo(
                f"error: the ledger database failed: {e}. If another gridcredit command is running,"
                " wait for it; if the file is damaged, restore it from a backup",
                err=True,
            )
            sys.exit(1)
        except apsw.Error as e:  # an ingest worker's scratch database (see bulk.child_connection)
            click.echo(
                f"error: a database failed: {e}. If the disk is full, free disk space beside"
                " the ledger (ingest stages large files there) and run the command again:"
                " a file stored already is not stored twice",
                err=True,
            )
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo(
                "interrupted: the step under way was rolled back; the steps finished before it"
                " (each file ingested, each score run) are kept. Run the command again to finish:"
                " nothing is done twice",
                err=True,
            )
            sys.exit(130)

    return wrapper


def as_of_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of",
        "as_of",
        metavar="DATE",
        help="Balances at the end of this local day (YYYY-MM-DD).",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--scheme", "scheme_dir", default=".", show_default=True, metavar="DIR",
    help="The scheme repository (with rules/) or the rules folder.",
)  # fmt: skip
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Ledger database [default: gridcredit.db in the scheme repository].",
)
@click.version_option(package_name="gridcredit")
@click.pass_context
def cli(ctx: click.Context, scheme_dir: str, db_path: str | None) -> None:
    """gridcredit: community credit-point schemes (信用积分) as a repository."""
    ctx.obj = Context(scheme_dir, db_path)


pass_ctx = click.make_pass_decorator(Context)


@cli.command()
@pass_ctx
@handle_errors
def validate(ctx: Context) -> None:
    """Check every rules file; print each problem as file:line:col: message."""
    from .validate import validate_scheme

    problems = validate_scheme(ctx.scheme_dir)
    for p in sorted(problems):
        click.echo(str(p), err=p.severity == "error")
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        n = len(errors)
        click.echo(
            f"{n} error{'s' if n != 1 else ''}; fix them and run `gridcredit validate` again",
            err=True,
        )
        sys.exit(1)
    scheme = ctx.scheme(check=False)
    n_rules = len({r.id for r in scheme.rules})
    versions = f" ({len(scheme.rules)} versions)" if len(scheme.rules) != n_rules else ""
    click.echo(
        f"ok: {scheme.title}: {len(scheme.groups)} groups, {n_rules} rules{versions} in"
        f" {len(scheme.packs)} packs,"
        f" {len(scheme.event_types)} event types, {len(scheme.grids)} grids,"
        f" {len(scheme.assessments)} assessments, {len(scheme.catalog)} catalog items"
    )


@cli.command()
@click.option("--group", help="Only this group.")
@pass_ctx
@handle_errors
def rules(ctx: Context, group: str | None) -> None:
    """The scheme in plain Chinese, grouped by group (the text the site shows)."""
    from dataclasses import replace

    from .render import render_scheme

    scheme = ctx.scheme()
    if group:
        if group not in scheme.groups:
            raise UsageError(f"unknown group {group!r}; groups: {', '.join(scheme.groups)}")
        scheme = replace(
            scheme,
            groups={group: scheme.groups[group]},
            packs=[p for p in scheme.packs if p.group == group],
        )
    click.echo(render_scheme(scheme))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--kind",
    type=click.Choice(["events", "subjects", "jurisdictions"]),
    help="What the files hold [default: told from their first record or header].",
)
@click.option("--strict", is_flag=True, help="Exit 1 if any record was rejected.")
@pass_ctx
@handle_errors
def ingest(
    ctx: Context, files: tuple[str, ...], quiet: bool, kind: str | None, strict: bool
) -> None:
    """Load subjects, jurisdictions or events (JSON Lines or CSV), accounting for every record.

    Rejected records are kept with file, line and reason (`gridcredit rejects`);
    the command still exits 0 unless --strict is given.
    """
    from .ingest import FilesRefused, ingest_files, summary_line

    summaries: list[Any] = []

    def stored(s: Any) -> None:  # each file's accounting once it is committed
        click.echo(summary_line(s))
        summaries.append(s)

    refused: list[Any] = []
    try:
        ingest_files(
            ctx.db(), ctx.scheme(), [Path(f) for f in files], kind=kind, progress=not quiet,
            on_batch=stored,
        )  # fmt: skip
    except FilesRefused as e:
        refused = e.errors
    rejected = sum(getattr(s, "rejected", 0) for s in summaries)
    if rejected:
        click.echo(
            f"{rejected:,} records rejected; each is kept with its file, line and reason:"
            " see `gridcredit rejects`",
            err=True,
        )
    for err in refused:
        click.echo(f"error: {err}", err=True)
    if refused:
        n = len(refused)
        click.echo(
            f"{n} of {len(files)} file{'s' if len(files) != 1 else ''} refused as a whole:"
            " nothing of "
            + ("it" if n == 1 else "them")
            + " was stored"
            + (f"; the other {len(files) - n} were ingested (above)" if len(files) > n else "")
            + ". Fix "
            + ("it" if n == 1 else "them")
            + " and ingest "
            + ("it" if n == 1 else "them")
            + " again",
            err=True,
        )
        sys.exit(1)
    if rejected and strict:
        sys.exit(1)


@cli.command()
@click.option("--limit", default=50, show_default=True, help="How many to show (0: all).")
@click.option(
    "--warnings", is_flag=True, help="Also the warnings about records that were accepted."
)
@pass_ctx
@handle_errors
def rejects(ctx: Context, limit: int, warnings: bool) -> None:
    """Records that were rejected, with file, line and reason."""
    where = "" if warnings else " WHERE reason NOT LIKE 'warning: %'"
    db = ctx.db()
    (total,) = db.execute(f"SELECT COUNT(*) FROM rejects{where}").fetchone()
    rows = db.execute(
        f"SELECT file, line, record_id, reason FROM rejects{where} ORDER BY rowid LIMIT ?",
        [limit if limit > 0 else -1],
    ).fetchall()
    for file, line, rid, reason in rows:
        where_ = f"{file}:{line}" if line else file
        click.echo(f"{where_}: {reason}" + (f" (record {rid})" if rid else ""))
    if total > len(rows):
        click.echo(f"… and {total - len(rows):,} more: `gridcredit rejects --limit 0` lists all")
    elif not rows:
        click.echo("no rejected records")


@cli.command()
@pass_ctx
@handle_errors
def score(ctx: Context) -> None:
    """Evaluate every unscored event into the ledger."""
    from .evaluate import score as run

    summary = run(ctx.db(), ctx.scheme())
    rate = summary.events / summary.seconds if summary.seconds else 0
    click.echo(f"{summary.line()} in {summary.seconds:.2f}s ({rate:,.0f} events/s)")


@cli.command()
@as_of_option
@click.option("--group", help="Only this group.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@pass_ctx
@handle_errors
def balances(ctx: Context, as_of: str | None, group: str | None, fmt: str) -> None:
    """Score, wallet and tier per subject-group."""
    from .ledger import balances as read
    from .ledger.reads import render_balances

    scheme = ctx.scheme()
    if group and group not in scheme.groups:
        raise UsageError(f"unknown group {group!r}; groups: {', '.join(scheme.groups)}")
    found = read(ctx.db(), scheme, as_of=parse_as_of(scheme, as_of), group=group)
    if fmt in ("json", "csv"):
        sys.stdout.write(render_balances(found, fmt, scheme.precision))
        return
    from .precision import fmt_points

    click.echo(f"{'subject':<14} {'group':<20} {'score':>6} {'wallet':>7} tier")
    for b in found:
        score, wallet = (
            fmt_points(b.score, scheme.precision),
            fmt_points(b.wallet, scheme.precision),
        )
        click.echo(f"{b.subject:<14} {b.group:<20} {score:>6} {wallet:>7} {b.tier}")


@cli.command()
@click.argument("subject")
@click.option("--group", help="Only this group's account.")
@as_of_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_ctx
@handle_errors
def explain(ctx: Context, subject: str, group: str | None, as_of: str | None, fmt: str) -> None:
    """The entries behind a subject's balance, with rule titles and running score."""
    from dataclasses import asdict

    from .ledger import balances as read
    from .ledger import explain as run

    scheme = ctx.scheme()
    db = ctx.db()
    t = parse_as_of(scheme, as_of)
    if t is None:  # the header says which day this is: the day of the latest event or entry
        from .ledger.reads import default_as_of

        t = default_as_of(db, scheme)
    day = f" as of {scheme.clock.local(t):%Y-%m-%d}" if t < 2**62 else ""
    lines = run(db, scheme, subject, group=group, as_of=t)
    bals = read(db, scheme, as_of=t, subject=subject, group=group)
    if not bals:
        raise GridcreditError(
            f"no subject {subject!r} in the ledger; check the id or ingest the subjects file"
        )
    prec = scheme.precision
    if fmt == "json":
        rows = [asdict(x) for x in lines]
        if prec.scale != 1:
            from .precision import json_points

            for r in rows:
                for k in ("points", "wallet", "running_score", "running_wallet"):
                    r[k] = json_points(r[k], prec)
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from .precision import fmt_points

    for b in bals:
        g = scheme.groups[b.group]
        graded = f" (直接判级 ≤ {b.graded})" if b.graded else ""
        click.echo(
            f"{subject} · {g.title} ({b.group}){day}: score {fmt_points(b.score, prec)},"
            f" wallet {fmt_points(b.wallet, prec)}, tier {b.tier}{graded}"
        )
        click.echo(f"  {'date':<10} {'points':>6} {'wallet':>6} {'score':>6}  rule")
        click.echo(f"  {'':<10} {'':>6} {'':>6} {fmt_points(g.base_score, prec):>6}  base score")
        for x in lines:
            if x.group != b.group:
                continue
            flags = []
            if x.reason == "withheld":  # the note says why: [withheld: 判级期间不加分]
                flags.append(f"withheld: {x.note}" if x.note else "withheld")
            elif x.reason != "match":
                flags.append(x.reason)
            if x.escalation:  # why the points are doubled or stepped: ×2 再犯 (repeat: 2nd …)
                flags.append(x.escalation)
            if x.trial:
                flags.append("trial: not counted")
            if x.expired:
                flags.append(f"expired {x.expires}")
            elif x.expires:
                flags.append(f"expires {x.expires}")
            if x.objection:
                flags.append("异议 under review")
            if x.note and x.reason != "withheld":
                flags.append(x.note)
            if x.period != x.date[:7]:  # late for a closed month: in that month's figures no
                flags.append(f"posted to {x.period}")
            extra = f"  [{'; '.join(flags)}]" if flags else ""
            score_col = "" if x.trial else fmt_points(x.running_score, prec)
            pts, wal = (fmt_points(v, prec, sign=True) if v else "+0" for v in (x.points, x.wallet))
            click.echo(
                f"  {x.date:<10} {pts:>6} {wal:>6} {score_col:>6}  {x.title} ({x.rule}){extra}"
            )


@cli.command()
@click.argument("month")
@click.option(
    "--site",
    "site_dir",
    metavar="DIR",
    help="The MkDocs docs_dir [default: site/ in the scheme repository].",
)
@click.option("--force", is_flag=True, help="Rewrite a month that is published already.")
@pass_ctx
@handle_errors
def publish(ctx: Context, month: str, site_dir: str | None, force: bool) -> None:
    """Close MONTH (YYYY-MM) and write its site pages and open data.

    Safe to stop at any point: run it again to complete the month (the same
    files); until then `gridcredit build` refuses the site.
    """
    from .periods import check_month, close_month, is_closed
    from .pipeline import check_publishable, publish_month, publish_write_error
    from .publish.files import checkpoint, publish_lock

    check_month(month)
    db, scheme = ctx.db(), ctx.scheme()
    from .evaluate import score as run

    site = Path(site_dir) if site_dir else ctx.repo / "site"
    # one publish per site: a second one is refused before it scores or closes anything
    try:
        with publish_lock(site):
            if check_publishable(site, month, force=force):
                click.echo(f"completing the unfinished publish of {month}", err=True)
            run(db, scheme)
            if not is_closed(db, month):
                rec = close_month(db, scheme, month)
                click.echo(
                    f"{month} closed: ledger hash {rec['hash'][:16]},"
                    f" {rec['late_events']} late events absorbed"
                )
                checkpoint("month-closed")
            paths = publish_month(
                db, scheme, month, site, private_dir=ctx.private_dir(), force=force
            )
    except OSError as e:  # e.g. the site folder cannot be made: a full or read-only disk
        raise publish_write_error(e, month, site) from None
    click.echo(f"wrote {len(paths):,} files into {site}; personal codes in {ctx.private_dir()}")


@cli.command()
@click.option(
    "--config", "config", metavar="FILE", help="mkdocs.yml [default: in the scheme repository]."
)
@pass_ctx
@handle_errors
def build(ctx: Context, config: str | None) -> None:
    """Build the static site with MkDocs (strict) into public/."""
    from .pipeline import build_site

    out = build_site(Path(config) if config else ctx.repo / "mkdocs.yml")
    click.echo(f"site built: {out / 'index.html'}")


@cli.command()
@click.option(
    "--out", "out_dir", default="demo", show_default=True, help="Folder for the demo county."
)
@click.option("--events", default=100_000, show_default=True, help="Events over all months.")
@click.option("--residents", default=20_000, show_default=True)
@click.option("--months", default="2024-01,2024-02,2024-03", show_default=True)
@click.option("--seed", default=20240101, show_default=True)
@click.option("--no-build", is_flag=True, help="Skip the MkDocs build.")
@pass_ctx
@handle_errors
def demo(
    ctx: Context, out_dir: str, events: int, residents: int, months: str, seed: int, no_build: bool
) -> None:
    """Generate a synthetic county, run the whole pipeline for each month, build the site."""
    from .demo import run_demo

    run_demo(
        ctx.repo, Path(out_dir), events=events, residents=residents,
        months=[m.strip() for m in months.split(",") if m.strip()], seed=seed,
        build=not no_build, echo=click.echo,
    )  # fmt: skip


@cli.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option(
    "-k", "select", metavar="EXPR",
    help="Only scenarios whose name, file or rule id matches, e.g. -k \"res-volunteer and not 表格\".",
)  # fmt: skip
@click.option(
    "--min-coverage", "min_coverage", type=click.FloatRange(0, 100), metavar="PERCENT",
    help="Fail unless the scenarios exercise at least this share of rules, steps and table values.",
)  # fmt: skip
@pass_ctx
@handle_errors
def run_tests(
    ctx: Context, paths: tuple[str, ...], select: str | None, min_coverage: float | None
) -> None:
    """Run the rule regression scenarios [default: tests/scenarios/] and report rule coverage."""
    from .testing.scenarios import format_report, run_scenarios

    repo = ctx.repo
    report = run_scenarios(
        list(paths) or [repo / "tests" / "scenarios"], ctx.scheme_dir,
        select=select, min_coverage=min_coverage,
    )  # fmt: skip
    click.echo(format_report(report))
    if not report.ok:
        sys.exit(1)
    if select and not report.cases and not report.errors:
        # an empty selection proves nothing: say so, as pytest does (found in review)
        click.echo(
            f"error: -k {select!r} selects no scenario: it matches scenario names, file"
            " names and the ids of the rules a scenario exercises",
            err=True,
        )
        sys.exit(2)


@cli.command()
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--base", required=True, metavar="REV",
    help="The rules before the change: a git revision (main, HEAD, origin/main) or a rules folder.",
)  # fmt: skip
@click.option(
    "--period", metavar="PERIOD",
    help="Compare at the end of this month (2024-03), quarter (2024-Q1) or year"
    " [default: all events, as of the day of the latest one].",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
    show_default=True, help="markdown: for a pull request comment.",
)  # fmt: skip
@pass_ctx
@handle_errors
def diff(ctx: Context, inputs: tuple[str, ...], base: str, period: str | None, fmt: str) -> None:
    """What a rules change does: re-score the same events under the --base rules and the
    current ones, and list changed scores, tiers, ranks and list memberships.

    INPUTS are subjects and events files; without them, the ledger database's.
    """
    import tempfile

    from .diff import diff_schemes, format_diff, resolve_base, rules_from_git

    scheme = ctx.scheme()
    repo = ctx.repo
    if period:
        try:
            scheme.clock.period_bounds(period)
        except (ValueError, KeyError):
            raise UsageError(
                f"--period {period!r}: write a month (2024-03), quarter (2024-Q1) or year (2024)"
            ) from None
    source: Any
    if inputs:
        source = [Path(f) for f in inputs]
    else:
        path = Path(ctx.db_path) if ctx.db_path else repo / "gridcredit.db"
        if not path.is_file():
            raise UsageError(
                f"no ledger database at {path}; pass the subjects and events files"
                " (gridcredit diff --base REV subjects.jsonl events.jsonl) or ingest them first"
            )
        source = ctx.db()
        if not source.execute("SELECT 1 FROM events LIMIT 1").fetchone():
            raise UsageError(
                f"the ledger {path} holds no events; pass the subjects and events files"
                " or ingest them first"
            )
    with tempfile.TemporaryDirectory(prefix="gridcredit-base-") as tmp:
        b = Path(base)
        if b.is_dir():
            if not ((b / "scheme.yaml").is_file() or (b / "rules" / "scheme.yaml").is_file()):
                raise UsageError(
                    f"--base {base}: this folder holds neither scheme.yaml nor rules/scheme.yaml;"
                    " pass a rules folder or a git revision"
                )
            base_dir, label = resolve_base(base, repo)
        else:  # a git revision: its rules/ into a folder that is removed afterwards
            base_dir, label = rules_from_git(base, repo, into=tmp), f"git {base}"
        report = diff_schemes(base_dir, scheme, source, period=period, base_label=label)
    click.echo(format_diff(report, fmt).rstrip("\n"))


@cli.command()
@pass_ctx
@handle_errors
def plugins(ctx: Context) -> None:
    """List plugins and the hooks they implement."""
    for p in ctx.scheme().plugins.describe():
        hooks = p["hooks"]
        assert isinstance(hooks, list)
        click.echo(f"{p['name']}: {', '.join(hooks) or '-'}")
        if p["file"]:
            click.echo(f"    {p['file']}")


@cli.command()
@click.argument("period")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_ctx
@handle_errors
def assess(ctx: Context, period: str, fmt: str) -> None:
    """Run the assessments of a period (2024-Q1, 2024-03 or 2024)."""
    from .assess import run_assessment
    from .precision import metric_on_points

    scheme = ctx.scheme()
    runs = run_assessment(ctx.db(), scheme, period)
    scale = scheme.precision.scale  # a metric on points is in units: shown as points
    on_points = {a.id for a in scheme.assessments if scale != 1 and metric_on_points(a.metric)}
    if fmt == "json":
        data = [r.as_dict(scheme.precision, on_points=r.assessment in on_points) for r in runs]
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not runs:
        click.echo(
            f"nothing assessed for {period}: no events or entries in that period, or no"
            " assessment of that period kind in assessments.yaml"
        )
    for r in runs:
        state = "" if r.new else " (already assessed; nothing changed)"
        div = scale if r.assessment in on_points else 1
        click.echo(
            f"{r.title} ({r.assessment}) {r.period}{state}: {len(r.selected)} selected, {len(r.awards)} awards"
        )
        for x in r.selected:
            value = f"{x.value / div:.2f}" if x.value is not None else "-"
            click.echo(f"  #{x.rank} {x.scope_name or x.scope_id} ({x.scope_id}) {value} {x.badge}")


@cli.command()
@click.argument("month")
@pass_ctx
@handle_errors
def close(ctx: Context, month: str) -> None:
    """Close a month: freeze its figures (publish does this too)."""
    from .periods import close_month

    rec = close_month(ctx.db(), ctx.scheme(), month)
    click.echo(
        f"{month} closed: ledger hash {rec['hash'][:16]}, {rec['late_events']} late events absorbed"
    )


@cli.command()
@click.option("--month", help="Only requests posted in this month (YYYY-MM).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_ctx
@handle_errors
def redemptions(ctx: Context, month: str | None, fmt: str) -> None:
    """Redemption outcomes per item, per subject and per partner merchant."""
    from .periods import check_month
    from .rank import redemption_report

    if month is not None:
        check_month(month)
    rep = redemption_report(ctx.db(), ctx.scheme(), month)
    if fmt == "json":
        sys.stdout.write(orjson.dumps(rep.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    click.echo(rep.text())


@cli.command(name="lists")
@as_of_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_ctx
@handle_errors
def lists_(ctx: Context, as_of: str | None, fmt: str) -> None:
    """Members of the public lists (红榜, 灰榜) with the reasons that put them there."""
    from .ledger import default_as_of
    from .lists import list_members

    scheme = ctx.scheme()
    t = parse_as_of(scheme, as_of)
    if t is None:
        t = default_as_of(ctx.db(), scheme)
    out = {ld.id: list_members(ctx.db(), scheme, ld, t) for ld in scheme.lists}
    if fmt == "json":
        data = {k: [m.as_dict(scheme.precision) for m in v] for k, v in out.items()}
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for ld in scheme.lists:
        members = out[ld.id]
        click.echo(f"{ld.title} ({ld.id}): {len(members)}")
        for m in members:
            flag = " [异议标注]" if m.objection else ""
            click.echo(f"  {m.subject} {m.name} ({m.group}){flag}")
            for r in m.reasons:
                click.echo(f"      {r.text}")


def _lean_sqlite_utils() -> None:
    """Import sqlite-utils without pandas and numpy.

    sqlite-utils imports both when they are installed (the Spark extra brings
    them) only to guess column types of pandas and numpy values, which
    gridcredit never passes: half a second on every command. They stay
    importable for plugins afterwards.
    """
    blocked = [n for n in ("pandas", "numpy") if n not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils.db  # noqa: F401
    finally:
        for name in blocked:
            if sys.modules.get(name) is None:
                del sys.modules[name]


def main() -> None:
    _lean_sqlite_utils()
    try:
        cli(prog_name="gridcredit")
    except BrokenPipeError:  # e.g. `gridcredit balances | head`
        sys.exit(0)


if __name__ == "__main__":
    main()
