"""The ``gridcredit`` command line: thin commands over the library.

Each command calls library functions and turns domain errors into a clean
message and exit code: 0 success, 1 invalid input or failed scenarios,
2 usage errors. No traceback is ever the answer to bad input.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import orjson

from .errors import GridcreditError, SchemeError, UsageError


class Context:
    def __init__(self, scheme_dir: str, db_path: str | None):
        self.scheme_dir = Path(scheme_dir)
        self.db_path = db_path
        self._scheme = None
        self._db = None

    @property
    def repo(self) -> Path:
        """The scheme repository (the folder holding ``rules/``)."""
        from .loader import find_rules_dir

        rules = find_rules_dir(self.scheme_dir)
        return rules.parent if rules.name == "rules" else rules

    def scheme(self, check: bool = True):
        if self._scheme is None:
            from .loader import load_scheme
            from .plugins import set_default_plugins_dir

            set_default_plugins_dir(self.repo / "plugins")
            self._scheme = load_scheme(self.scheme_dir, check=check)
        return self._scheme

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
        except KeyboardInterrupt:
            click.echo("interrupted; the database is as it was before this command", err=True)
            sys.exit(130)

    return wrapper


def as_of_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of", "as_of", metavar="DATE", help="Balances at the end of this local day (YYYY-MM-DD)."
    )(f)


def parse_as_of(scheme: Any, as_of: str | None) -> int | None:
    if not as_of:
        return None
    try:
        return scheme.clock.end_of_day(as_of)
    except ValueError:
        raise UsageError(f"--as-of {as_of!r}: write a date as YYYY-MM-DD, e.g. 2024-03-31") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--scheme", "scheme_dir", default=".", show_default=True, metavar="DIR",
    help="The scheme repository (with rules/) or the rules folder.",
)  # fmt: skip
@click.option("--db", "db_path", metavar="PATH", help="Ledger database [default: gridcredit.db in the scheme repository].")
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
        click.echo(f"{len(errors)} error(s); the rules were not changed", err=True)
        sys.exit(1)
    scheme = ctx.scheme(check=False)
    n_rules = len({r.id for r in scheme.rules})
    click.echo(
        f"ok: {scheme.title}: {len(scheme.groups)} groups, {n_rules} rules in {len(scheme.packs)} packs,"
        f" {len(scheme.event_types)} event types, {len(scheme.grids)} grids,"
        f" {len(scheme.assessments)} assessments, {len(scheme.catalog)} catalog items"
    )


@cli.command()
@click.option("--group", help="Only this group.")
@pass_ctx
@handle_errors
def rules(ctx: Context, group: str | None) -> None:
    """The scheme in plain Chinese, grouped by group (the text the site shows)."""
    from .render import render_scheme

    click.echo(render_scheme(ctx.scheme(), group=group) if group else render_scheme(ctx.scheme()))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_ctx
@handle_errors
def ingest(ctx: Context, files: tuple[str, ...], quiet: bool) -> None:
    """Load subjects, jurisdictions or events (JSON Lines or CSV), accounting for every record."""
    from .ingest import ingest_files, summary_line

    summaries = ingest_files(ctx.db(), ctx.scheme(), [Path(f) for f in files], progress=not quiet)
    for s in summaries:
        click.echo(summary_line(s))
    rejected = sum(getattr(s, "rejected", 0) for s in summaries)
    if rejected:
        click.echo(
            f"{rejected:,} records rejected; each is kept with its file, line and reason:"
            " see `gridcredit rejects`",
            err=True,
        )


@cli.command()
@click.option("--limit", default=50, show_default=True, help="How many to show.")
@pass_ctx
@handle_errors
def rejects(ctx: Context, limit: int) -> None:
    """Records that were rejected, with file, line and reason."""
    rows = ctx.db().execute(
        "SELECT file, line, record_id, reason FROM rejects ORDER BY rowid LIMIT ?", [limit]
    ).fetchall()
    for file, line, rid, reason in rows:
        where = f"{file}:{line}" if line else file
        click.echo(f"{where}: {reason}" + (f" (record {rid})" if rid else ""))


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
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@pass_ctx
@handle_errors
def balances(ctx: Context, as_of: str | None, group: str | None, fmt: str) -> None:
    """Score, wallet and tier per subject-group."""
    from .ledger import balances as read

    scheme = ctx.scheme()
    if group and group not in scheme.groups:
        raise UsageError(f"unknown group {group!r}; groups: {', '.join(scheme.groups)}")
    rows = [b.as_dict() for b in read(ctx.db(), scheme, as_of=parse_as_of(scheme, as_of), group=group)]
    if fmt == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "csv":
        out = io.StringIO()
        w = csv.DictWriter(out, ["subject", "group", "score", "wallet", "tier"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        sys.stdout.write(out.getvalue())
    else:
        click.echo(f"{'subject':<14} {'group':<20} {'score':>6} {'wallet':>7} tier")
        for r in rows:
            click.echo(f"{r['subject']:<14} {r['group']:<20} {r['score']:>6} {r['wallet']:>7} {r['tier']}")


@cli.command()
@click.argument("subject")
@click.option("--group", help="Only this group's account.")
@as_of_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
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
    lines = run(db, scheme, subject, group=group, as_of=t)
    bals = read(db, scheme, as_of=t, subject=subject, group=group)
    if not bals:
        raise GridcreditError(f"no subject {subject!r} in the ledger; check the id or ingest the subjects file")
    if fmt == "json":
        sys.stdout.write(orjson.dumps([asdict(x) for x in lines], option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for b in bals:
        g = scheme.groups[b.group]
        graded = f" (直接判级 ≤ {b.graded})" if b.graded else ""
        click.echo(f"{subject} · {g.title} ({b.group}): score {b.score}, wallet {b.wallet}, tier {b.tier}{graded}")
        click.echo(f"  {'date':<10} {'points':>6} {'wallet':>6} {'score':>6}  rule")
        click.echo(f"  {'':<10} {'':>6} {'':>6} {g.base_score:>6}  base score")
        for x in lines:
            if x.group != b.group:
                continue
            flags = []
            if x.reason != "match":
                flags.append(x.reason)
            if x.trial:
                flags.append("trial: not counted")
            if x.expired:
                flags.append("expired")
            if x.objection:
                flags.append("异议 under review")
            if x.note:
                flags.append(x.note)
            extra = f"  [{'; '.join(flags)}]" if flags else ""
            score_col = "" if x.trial else str(x.running_score)
            click.echo(f"  {x.date:<10} {x.points:>+6} {x.wallet:>+6} {score_col:>6}  {x.title} ({x.rule}){extra}")


@cli.command()
@pass_ctx
@handle_errors
def plugins(ctx: Context) -> None:
    """List plugins and the hooks they implement."""
    from .plugins import describe_plugins, get_plugin_manager

    ctx.scheme()
    for p in describe_plugins(get_plugin_manager()):
        click.echo(f"{p['name']}: {', '.join(p['hooks']) or '-'}")
        if p["file"]:
            click.echo(f"    {p['file']}")


def main() -> None:
    try:
        cli(prog_name="gridcredit")
    except BrokenPipeError:  # e.g. `gridcredit balances | head`
        sys.exit(0)


if __name__ == "__main__":
    main()
