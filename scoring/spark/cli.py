"""``python -m scoring.spark score|balances|close|assess|publish``: the Spark runner's command line.

    python -m scoring.spark score --scheme DIR --subjects PATH… --events PATH… \\
        --ledger DIR [--master local[N]] [--partitions N]
    python -m scoring.spark balances --ledger DIR [--as-of DATE] [--group G] \\
        [--format json|csv]
    python -m scoring.spark close MONTH --scheme DIR --ledger DIR
    python -m scoring.spark assess PERIOD --scheme DIR --ledger DIR
    python -m scoring.spark publish MONTH --scheme DIR --ledger DIR [--site DIR] \\
        [--private DIR] [--force]

On a cluster: ``spark-submit --master yarn -m scoring.spark score …`` is not a
spark-submit form; submit ``scoring/spark/__main__.py`` (or a one-line script that
calls :func:`main`) with ``--master`` given to spark-submit and omitted here.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import GridcreditError, SchemeError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scoring.spark",
        description="gridcredit on Apache Spark: the same rules and ledger as the SQLite path.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "score",
        help="Ingest subjects and events and score them into a ledger (a ledger that"
        " exists is continued from its stored state, as gridcredit ingest + score do).",
    )
    s.add_argument("--scheme", required=True, metavar="DIR", help="the scheme repository")
    s.add_argument("--subjects", nargs="+", default=[], metavar="PATH",
                   help="subjects files: JSON Lines, CSV or Parquet (files or folders)")  # fmt: skip
    s.add_argument("--events", nargs="+", default=[], metavar="PATH",
                   help="events files: JSON Lines, CSV or Parquet (files or folders)")  # fmt: skip
    s.add_argument("--ledger", required=True, metavar="DIR",
                   help="the Spark ledger folder (new: a full run; existing: continued)")  # fmt: skip
    s.add_argument("--master", help="Spark master, e.g. local[2] (default: spark-submit's)")
    s.add_argument("--partitions", type=int, default=None, metavar="N",
                   help="scoring partitions (default 16; the ledger is the same for any N)")  # fmt: skip
    b = sub.add_parser("balances", help="Score, wallet and tier per subject-group.")
    b.add_argument("--ledger", required=True, metavar="DIR")
    b.add_argument("--as-of", metavar="DATE", help="balances at the end of this local day")
    b.add_argument("--group", help="only this group")
    b.add_argument("--format", dest="fmt", choices=["json", "csv"], default="json")
    b.add_argument("--scheme", metavar="DIR", help="the scheme (default: the one scored with)")
    b.add_argument("--master", help="Spark master (default: local[*] or spark-submit's)")
    for name, arg, text in (
        ("close", "month", "Close MONTH (YYYY-MM): freeze its figures into a new ledger version."),
        ("assess", "period", "Run the assessments of PERIOD (2024-Q1, 2024-03 or 2024)."),
        ("publish", "month", "Assess, close and publish MONTH: the site gridcredit publishes."),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument(arg)
        c.add_argument("--scheme", required=True, metavar="DIR", help="the scheme repository")
        c.add_argument("--ledger", required=True, metavar="DIR", help="the Spark ledger folder")
        c.add_argument("--master", help="Spark master (default: local[*] or spark-submit's)")
        if name == "publish":
            c.add_argument("--site", metavar="DIR",
                           help="the MkDocs docs_dir (default: site/ in the scheme repository)")  # fmt: skip
            c.add_argument("--private", metavar="DIR",
                           help="personal codes and the look-up key (default: private/ beside"
                                " the ledger folder; never inside the site)")  # fmt: skip
            c.add_argument("--force", action="store_true",
                           help="rewrite a month that is published already")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        if args.command == "score":
            _score(args)
        elif args.command == "balances":
            _balances(args)
        else:
            _month(args)
    except SchemeError as e:
        for p in e.problems:
            print(str(p), file=sys.stderr)
        print(f"{len(e.problems)} errors; fix the rules and run again", file=sys.stderr)
        sys.exit(e.exit_code)
    except GridcreditError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def _score(args: argparse.Namespace) -> None:
    from ..ingest.records import summary_line
    from .run import DEFAULT_PARTITIONS, score
    from .session import get_session

    spark = get_session(args.master)
    run = score(
        spark, args.scheme, args.subjects, args.events, args.ledger,
        partitions=args.partitions or DEFAULT_PARTITIONS,
    )  # fmt: skip
    for b in run.batches:
        print(summary_line(b))
    s = run.summary
    rate = s.events / s.seconds if s.seconds else 0
    print(f"{s.line()} in {s.seconds:.2f}s ({rate:,.0f} events/s)")
    print(f"ledger: {run.version}")
    print("stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in run.stages.items()))


def _balances(args: argparse.Namespace) -> None:
    from ..durations import parse_as_of
    from ..errors import UsageError
    from ..ledger.reads import render_balances
    from . import ledger as store
    from .balances import balances
    from .ingest import scheme_of
    from .session import get_session

    version = store.current(args.ledger)
    scheme, _ = scheme_of(args.scheme or store.read_meta(version)["scheme"])
    if args.group and args.group not in scheme.groups:
        raise UsageError(f"unknown group {args.group!r}; groups: {', '.join(scheme.groups)}")
    spark = get_session(args.master)
    rows = balances(spark, version, scheme, as_of=parse_as_of(scheme, args.as_of), group=args.group)
    sys.stdout.write(render_balances(rows, args.fmt, scheme.precision))


def _month(args: argparse.Namespace) -> None:
    from pathlib import Path

    from . import ledger as store
    from .ingest import scheme_of
    from .session import get_session

    scheme, _ = scheme_of(str(Path(args.scheme).resolve()))
    store.current(args.ledger)  # no ledger: say so before Spark starts
    spark = get_session(args.master)
    if args.command == "close":
        from .close import close

        rec = close(spark, args.ledger, scheme, args.month)
        print(
            f"{args.month} closed: ledger hash {rec['hash'][:16]},"
            f" {rec['late_events']} late events absorbed"
        )
    elif args.command == "assess":
        from .month import assess

        runs = assess(spark, args.ledger, scheme, args.period).runs
        if not runs:
            print(
                f"nothing assessed for {args.period}: no events or entries in that period, or no"
                " assessment of that period kind in assessments.yaml"
            )
        for r in runs:
            state = "" if r.new else " (already assessed; nothing changed)"
            print(f"{r.title} ({r.assessment}) {r.period}{state}: {len(r.selected)} selected,"
                  f" {len(r.awards)} awards")  # fmt: skip
    else:
        from .month import publish

        site = Path(args.site) if args.site else Path(args.scheme) / "site"
        private = (
            Path(args.private) if args.private
            else store.current(args.ledger).parent.resolve().parent / "private"
        )  # fmt: skip
        out = publish(spark, args.ledger, scheme, args.month, site, private_dir=private,
                      force=args.force)  # fmt: skip
        if out.closed:
            print(f"{args.month} closed: ledger hash {out.closed['hash'][:16]},"
                  f" {out.closed['late_events']} late events absorbed")  # fmt: skip
        print(f"wrote {len(out.paths):,} files into {site}; personal codes in {private}")
        print("stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in out.seconds.items()))
