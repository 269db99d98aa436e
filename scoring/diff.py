"""What a rules change would do: re-score the same events under two rule sets.

``diff_schemes(base_rules, new_rules, inputs, period=...)`` copies the
subjects and events (up to the end of ``period``) from an existing ledger
database or from input files into a fresh in-memory ledger, scores one copy
under each rule set, and compares, per group and subject, at the end of the
period:

* the credit score (and the points earned inside the period),
* the tier, the rank in the group (competition ranking, whole scheme),
* list memberships (joined / left),
* what trial rules (``status: trial``) would have done (their shadow entries),
* which rules were added, removed or changed.

``--base REV`` is a git revision: :func:`rules_from_git` writes that
revision's ``rules/`` into a temporary folder (``git archive``, read-only).
``format_diff`` renders the report as terminal text, Markdown (for a pull
request comment) or JSON.
"""

from __future__ import annotations

import builtins
import io
import json
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import InputError, UsageError
from .model import Scheme, clause_data
from .precision import WHOLE, Precision, fmt_points, json_points

TOP_MOVERS = 10
INPUT_TABLES = {
    "grids": "id, name, community, community_name, street, street_name",
    "subjects": "id, kind, name, grid, tags, code, links, hash",
    "memberships": "subject, grp",
}
EVENT_COLUMNS = "seq, id, type, subject, at, attrs, amends, batch, line"


@dataclass
class AccountChange:
    subject: str
    group: str
    base_score: int
    new_score: int
    base_tier: str
    new_tier: str
    base_rank: int | None
    new_rank: int | None
    base_earned: int
    new_earned: int

    @property
    def delta(self) -> int:
        return self.new_score - self.base_score

    def as_dict(self, prec: Precision = WHOLE) -> dict[str, Any]:
        d = asdict(self)
        d["delta"] = self.delta
        return _in_points(d, _ACCOUNT_POINTS, prec)


@dataclass
class ListChange:
    list: str
    title: str
    subject: str
    group: str
    change: str  # joined | left
    # ``builtins.list``: the field ``list`` above shadows the name in this class body
    reasons: builtins.list[str] = field(default_factory=builtins.list)


@dataclass
class TrialEffect:
    rule: str
    title: str
    group: str
    entries: int  # shadow entries under the new rules (matches, capped included)
    subjects: int
    points: int
    base_entries: int
    base_points: int


@dataclass
class RuleChange:
    rule: str
    title: str
    change: str  # added | removed | changed


@dataclass
class GroupSummary:
    group: str
    title: str
    accounts: int
    changed: int = 0  # accounts with any change: score, tier, earned points or rank
    score_changes: int = 0  # accounts whose score changed
    points_up: int = 0  # sum of positive score changes
    points_down: int = 0  # sum of negative score changes
    tier_changes: int = 0
    rank_changes: int = 0
    top_movers: list[AccountChange] = field(default_factory=list)


@dataclass
class DiffReport:
    period: str
    as_of: str  # local date the balances are taken at
    base_label: str
    new_label: str
    events: int
    subjects: int
    seconds: float
    groups: list[GroupSummary] = field(default_factory=list)
    changes: list[AccountChange] = field(default_factory=list)  # only accounts that changed
    list_changes: list[ListChange] = field(default_factory=list)
    trial: list[TrialEffect] = field(default_factory=list)
    rules: list[RuleChange] = field(default_factory=list)
    # the scheme's precision: figures are ledger units, shown as points (1002.5) at the edge
    precision: Precision = WHOLE

    def as_dict(self) -> dict[str, Any]:
        prec = self.precision
        return {
            "period": self.period,
            "as_of": self.as_of,
            "base": self.base_label,
            "new": self.new_label,
            "events": self.events,
            "subjects": self.subjects,
            "seconds": round(self.seconds, 3),
            "groups": [
                {
                    **_in_points(
                        {k: v for k, v in asdict(g).items() if k != "top_movers"},
                        ("points_up", "points_down"),
                        prec,
                    ),
                    "top_movers": [m.as_dict(prec) for m in g.top_movers],
                }
                for g in self.groups
            ],
            "changes": [c.as_dict(prec) for c in self.changes],
            "lists": [asdict(c) for c in self.list_changes],
            "trial": [_in_points(asdict(t), ("points", "base_points"), prec) for t in self.trial],
            "rules": [asdict(r) for r in self.rules],
        }


_ACCOUNT_POINTS = ("base_score", "new_score", "base_earned", "new_earned", "delta")


def _in_points(d: dict[str, Any], keys: tuple[str, ...], prec: Precision) -> dict[str, Any]:
    """``d`` with the point figures ``keys`` as JSON numbers of points (whole points: as is)."""
    if prec.scale != 1:
        for k in keys:
            d[k] = json_points(d[k], prec)
    return d


# --------------------------------------------------------------------------- base rules from git


def rules_from_git(rev: str, repo: str | Path, into: str | Path | None = None) -> Path:
    """Write ``rev``'s ``rules/`` folder into a temporary folder; return that rules folder.

    Read-only for the repository (``git archive``). Raises ``UsageError``
    when the revision or its ``rules/`` does not exist.
    """
    repo = Path(repo)

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True)

    try:
        prefix = git("rev-parse", "--show-prefix").stdout.decode().strip()
        # git archive reads a path from the repository root, whatever -C says: a scheme in
        # a subfolder (examples/weihai) is archived by its full path from the top
        top = git("rev-parse", "--show-toplevel").stdout.decode().strip()
        known = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
        ).returncode == 0  # fmt: skip
        if not known:
            branch = rev.split("/", 1)[1] if rev.startswith("origin/") else ""
            fetch = f"git fetch origin {branch}" if branch else "git fetch"
            raise UsageError(
                f"cannot read rules/ at git revision '{rev}': git does not know this revision;"
                f" check its name (a branch, tag or commit), fetch it first ({fetch}),"
                " or pass a rules folder"
            )
        out = subprocess.run(
            ["git", "-C", top, "archive", "--format=tar", rev, "--", f"{prefix}rules"],
            capture_output=True, check=True,
        )  # fmt: skip
    except FileNotFoundError:
        raise UsageError("--base REV needs git; or pass a rules folder as --base") from None
    except subprocess.CalledProcessError as e:
        msg = (e.stderr.decode() if isinstance(e.stderr, bytes) else str(e.stderr or "")).strip()
        if "did not match" in msg:
            raise UsageError(
                f"git revision '{rev}' has no {prefix}rules/ folder; pick a revision that has"
                " the rules, or pass a rules folder as --base"
            ) from None
        raise UsageError(
            f"cannot read rules/ at git revision '{rev}': {msg or 'git failed'};"
            " pass a rules folder as --base instead"
        ) from None
    target = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix="gridcredit-base-"))
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        tar.extractall(target, filter="data")
    rules = target / prefix / "rules"
    if not (rules / "scheme.yaml").is_file():
        raise UsageError(f"git revision '{rev}' has no rules/scheme.yaml")
    return rules


def resolve_base(base: str, repo: str | Path) -> tuple[Path, str]:
    """``--base``: a rules folder (or a repository holding one), else a git revision."""
    p = Path(base)
    if (p / "scheme.yaml").is_file():
        return p, str(p)
    if (p / "rules" / "scheme.yaml").is_file():
        return p / "rules", str(p)
    return rules_from_git(base, repo), f"git {base}"


# --------------------------------------------------------------------------- inputs


def _period_bounds(
    scheme: Scheme, period: str | None, last_at: int | None
) -> tuple[int, int, str, str]:
    """(start, end inclusive, period label, as-of date) for a period key or None (everything)."""
    clock = scheme.clock
    if period:
        try:
            start, end = clock.period_bounds(period)
        except (ValueError, KeyError):
            raise UsageError(
                f"cannot read period '{period}'; write a month (2024-03), quarter (2024-Q1) or year (2024)"
            ) from None
        end -= 1
        return start, end, period, clock.local(end).date().isoformat()
    if last_at is None:
        return -(2**62), 2**62, "all", ""
    day = clock.local(last_at).date()
    return -(2**62), clock.end_of_day(day), "all", day.isoformat()


def _input_db(scheme: Scheme, inputs: Any) -> sqlite_utils.Database:
    """A fresh in-memory ledger holding only grids, subjects and events from ``inputs``."""
    from .ingest import ingest_files, sync_grids
    from .ledger import memory_db

    db = memory_db()
    sync_grids(db, scheme)
    if isinstance(inputs, sqlite_utils.Database):
        src_conn = inputs.conn
        _copy_from_conn(src_conn, db)
        return db
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    paths = [Path(p) for p in items]
    if len(paths) == 1 and paths[0].suffix in (".db", ".sqlite", ".sqlite3"):
        if not paths[0].is_file():
            raise InputError(f"{paths[0]}: no such ledger database")
        src = sqlite3.connect(f"file:{paths[0]}?mode=ro", uri=True)
        try:
            _copy_from_conn(src, db)
        finally:
            src.close()
        return db
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    # subjects first, so events find them; ingest tells the kind from the records
    ingest_files(db, scheme, paths, progress=False)
    return db


def _copy_from_conn(src: sqlite3.Connection, db: sqlite_utils.Database) -> None:
    conn = db.conn
    for table, cols in INPUT_TABLES.items():
        rows = src.execute(f"SELECT {cols} FROM {table}").fetchall()
        marks = ", ".join("?" * len(cols.split(",")))
        conn.executemany(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})", rows)
    cur = src.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq")
    marks = ", ".join("?" * len(EVENT_COLUMNS.split(",")))
    conn.execute("BEGIN")
    while True:
        rows = cur.fetchmany(50_000)
        if not rows:
            break
        conn.executemany(f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({marks})", rows)
    conn.execute("COMMIT")


def _clone(db: sqlite_utils.Database) -> sqlite_utils.Database:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.conn.backup(conn)
    return sqlite_utils.Database(conn)


# --------------------------------------------------------------------------- comparison


@dataclass
class _Side:
    scheme: Scheme
    db: sqlite_utils.Database
    balances: dict[tuple[str, str], tuple[int, str]]
    earned: dict[tuple[str, str], int]
    ranks: dict[tuple[str, str], int]


def _side(scheme: Scheme, db: sqlite_utils.Database, start: int, end: int) -> _Side:
    from .evaluate import score
    from .ledger import balances
    from .rank import competition_ranks

    score(db, scheme)
    bal = {(b.subject, b.group): (b.score, b.tier) for b in balances(db, scheme, as_of=end)}
    earned: dict[tuple[str, str], int] = defaultdict(int)
    for s, g, pts in db.execute(
        "SELECT subject, grp, SUM(points) FROM entries WHERE at >= ? AND at <= ? GROUP BY subject, grp",
        [start, end],
    ).fetchall():
        earned[(s, g)] = pts or 0
    ranks: dict[tuple[str, str], int] = {}
    by_group: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (s, g), (sc, _) in bal.items():
        by_group[g].append((sc, s))
    for g, rows in by_group.items():
        rows.sort(key=lambda r: (-r[0], r[1]))
        for r, (_, s) in zip(competition_ranks([-sc for sc, _ in rows]), rows):
            ranks[(s, g)] = r
    return _Side(scheme, db, bal, earned, ranks)


def _rule_changes(base: Scheme, new: Scheme) -> list[RuleChange]:
    def sig(scheme: Scheme) -> dict[str, tuple[str, str]]:
        out: dict[str, list[str]] = defaultdict(list)
        titles = {}
        for r in scheme.rules:
            titles[r.id] = r.title
            out[r.id].append(json.dumps(
                [r.title, r.on, r.when, *map(clause_data, (r.points, r.limit, r.escalate, r.expires)),
                 r.effective_text, r.wallet, *map(clause_data, (r.grade, r.also, r.repair)),
                 r.status, r.severity],
                sort_keys=True, ensure_ascii=False, default=str,
            ))  # fmt: skip
        return {k: (titles[k], "\n".join(v)) for k, v in out.items()}

    a, b = sig(base), sig(new)
    out = []
    for rid in sorted(set(a) | set(b)):
        if rid not in a:
            out.append(RuleChange(rid, b[rid][0], "added"))
        elif rid not in b:
            out.append(RuleChange(rid, a[rid][0], "removed"))
        elif a[rid][1] != b[rid][1]:
            out.append(RuleChange(rid, b[rid][0], "changed"))
    return out


def _members(
    scheme: Scheme, db: sqlite_utils.Database, end: int
) -> dict[str, dict[tuple[str, str], list[str]]]:
    from .lists import list_members

    out = {}
    for ld in scheme.lists:
        out[ld.id] = {
            (m.subject, m.group): [r.heading or r.text for r in m.reasons]
            for m in list_members(db, scheme, ld, as_of=end)
        }
    return out


def _trial(side: _Side, start: int, end: int) -> dict[str, tuple[int, int, int]]:
    """Per trial rule, within the period (found in review: the counts ran over all
    time while the point changes covered the period): the entries that stand (not
    reversed), the accounts they reach, and the net points."""
    out = {}
    for rule, n, subjects, pts in side.db.execute(
        "SELECT rule, SUM(standing), COUNT(DISTINCT CASE WHEN standing THEN account_key END),"
        " COALESCE(SUM(points), 0) FROM ("
        "  SELECT rule, points, subject || '/' || grp AS account_key,"
        "   reason != 'reversal' AND NOT EXISTS (SELECT 1 FROM trial_entries r"
        "    WHERE r.ref = t.id AND r.reason = 'reversal') AS standing"
        "  FROM trial_entries t WHERE at >= ? AND at <= ?"
        ") GROUP BY rule",
        [start, end],
    ).fetchall():
        out[rule] = (n, subjects, pts)
    return out


def diff_schemes(
    base_rules_dir: str | Path | Scheme,
    new_rules_dir: str | Path | Scheme,
    events_db_or_files: Any,
    *,
    period: str | None = None,
    base_label: str | None = None,
    new_label: str | None = None,
) -> DiffReport:
    """Score the same subjects and events under two rule sets and compare at the period's end.

    ``events_db_or_files``: a ledger database path (``.db``), an open
    ``sqlite_utils.Database``, or subjects/events input files. ``period``:
    ``2024-03``, ``2024-Q1``, ``2024``, or None for all events (balances as
    of the end of the day of the latest event). Events after the period are
    left out; earlier ones are kept, since caps, escalation and expiry need
    the history.
    """
    from .loader import load_scheme

    t0 = time.perf_counter()
    base = base_rules_dir if isinstance(base_rules_dir, Scheme) else load_scheme(base_rules_dir)
    new = new_rules_dir if isinstance(new_rules_dir, Scheme) else load_scheme(new_rules_dir)
    if base.precision != new.precision:
        from .errors import UsageError

        raise UsageError(
            f"the two rule sets count points in different precisions ({base.precision.text} and"
            f" {new.precision.text}); a diff would compare different units. Compare versions"
            " with the same precision: a precision change needs a new ledger anyway"
        )
    inputs = _input_db(new, events_db_or_files)
    (last_at,) = inputs.execute("SELECT MAX(at) FROM events").fetchone()
    start, end, label, as_of = _period_bounds(new, period, last_at)
    inputs.execute("DELETE FROM events WHERE at > ?", [end])
    (n_events,) = inputs.execute("SELECT COUNT(*) FROM events").fetchone()
    (n_subjects,) = inputs.execute("SELECT COUNT(*) FROM subjects").fetchone()
    a = _side(base, _clone(inputs), start, end)
    b = _side(new, inputs, start, end)

    report = DiffReport(
        period=label, as_of=as_of, events=n_events, subjects=n_subjects, seconds=0.0,
        base_label=base_label or str(getattr(base_rules_dir, "root", base_rules_dir)),
        new_label=new_label or str(getattr(new_rules_dir, "root", new_rules_dir)),
        precision=new.precision,
    )  # fmt: skip
    groups: dict[str, GroupSummary] = {}
    for g, grp in new.groups.items():
        groups[g] = GroupSummary(g, grp.title, 0)
    for g, grp in base.groups.items():
        groups.setdefault(g, GroupSummary(g, grp.title, 0))
    for key in sorted(set(a.balances) | set(b.balances), key=lambda k: (k[1], k[0])):
        s, g = key
        base_score, base_tier = a.balances.get(key, (0, ""))
        new_score, new_tier = b.balances.get(key, (0, ""))
        summary = groups[g]
        summary.accounts += 1
        ch = AccountChange(
            s, g, base_score, new_score, base_tier, new_tier, a.ranks.get(key), b.ranks.get(key),
            a.earned.get(key, 0), b.earned.get(key, 0),
        )  # fmt: skip
        moved = ch.delta != 0 or ch.base_tier != ch.new_tier or ch.base_earned != ch.new_earned
        if ch.base_rank != ch.new_rank:
            summary.rank_changes += 1
            moved = True
        if not moved:
            continue
        report.changes.append(ch)
        summary.changed += 1
        if ch.delta:
            summary.score_changes += 1
        if ch.delta > 0:
            summary.points_up += ch.delta
        else:
            summary.points_down += ch.delta
        if ch.base_tier != ch.new_tier:
            summary.tier_changes += 1
    for g, summary in groups.items():
        movers = [c for c in report.changes if c.group == g and c.delta]
        movers.sort(key=lambda c: (-abs(c.delta), c.subject))
        summary.top_movers = movers[:TOP_MOVERS]
    report.groups = [s for s in groups.values() if s.accounts]

    ma, mb = _members(base, a.db, end), _members(new, b.db, end)
    titles = {ld.id: ld.title for ld in base.lists} | {ld.id: ld.title for ld in new.lists}
    for lid in sorted(set(ma) | set(mb)):
        before, after = ma.get(lid, {}), mb.get(lid, {})
        for key in sorted(set(after) - set(before), key=lambda k: (k[1], k[0])):
            report.list_changes.append(
                ListChange(lid, titles[lid], key[0], key[1], "joined", after[key])
            )
        for key in sorted(set(before) - set(after), key=lambda k: (k[1], k[0])):
            report.list_changes.append(
                ListChange(lid, titles[lid], key[0], key[1], "left", before[key])
            )

    ta, tb = _trial(a, start, end), _trial(b, start, end)
    rules = {r.id: r for r in base.rules} | {r.id: r for r in new.rules}
    trial_ids = {r.id for r in new.rules if r.status == "trial"} | set(ta) | set(tb)
    for rid in sorted(trial_ids):
        r = rules[rid]
        n, subj, pts = tb.get(rid, (0, 0, 0))
        bn, _, bp = ta.get(rid, (0, 0, 0))
        report.trial.append(TrialEffect(rid, r.title, r.group, n, subj, pts, bn, bp))
    report.rules = _rule_changes(base, new)
    report.seconds = time.perf_counter() - t0
    return report


# --------------------------------------------------------------------------- output


def _signed(n: int, prec: Precision = WHOLE) -> str:
    return fmt_points(n, prec, sign=True)


def _pts(n: int, prec: Precision = WHOLE) -> str:
    return fmt_points(n, prec)


def _rank(r: int | None) -> str:
    return "-" if r is None else str(r)


_CHANGE_WORDS = {
    "added": "新增",
    "removed": "删除",
    "changed": "修改",
    "joined": "进入",
    "left": "离开",
}


def format_diff(report: DiffReport, fmt: str = "text") -> str:
    """``text`` (terminal), ``markdown`` (pull request comment, Chinese headings) or ``json``."""
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2)
    if fmt == "markdown":
        return _markdown(report)
    if fmt != "text":
        raise UsageError(f"unknown diff format '{fmt}'; use text, markdown or json")
    return _text(report)


def _text(r: DiffReport) -> str:
    p = r.precision
    out = [
        (
            f"diff {r.base_label} → {r.new_label}: period {r.period} (as of {r.as_of or '-'}),"
            f" {r.events:,} events, {r.subjects:,} subjects, {r.seconds:.1f}s"
        )
    ]
    if r.rules:
        out.append("rules: " + ", ".join(f"{c.change} {c.rule} ({c.title})" for c in r.rules))
    if not r.changes and not r.list_changes:
        out.append("no account, tier, rank or list changes")
    for g in r.groups:
        if not g.changed:
            continue
        out.append(
            f"{g.group} ({g.title}): {g.changed} of {g.accounts} accounts changed"
            f" ({g.score_changes} in score), points {_signed(g.points_up, p)} /"
            f" {_signed(g.points_down, p)}, {g.tier_changes} tier changes, {g.rank_changes} rank changes"
        )
        for c in g.top_movers:
            line = (
                f"  {c.subject}: score {_pts(c.base_score, p)} → {_pts(c.new_score, p)}"
                f" ({_signed(c.delta, p)})"
            )
            if c.base_tier != c.new_tier:
                line += f", tier {c.base_tier} → {c.new_tier}"
            if c.base_rank != c.new_rank:
                line += f", rank {_rank(c.base_rank)} → {_rank(c.new_rank)}"
            out.append(line)
    for lc in r.list_changes:
        out.append(f"list {lc.list} ({lc.title}): {lc.subject} ({lc.group}) {lc.change}"
                   + (f": {'; '.join(lc.reasons)}" if lc.reasons else ""))  # fmt: skip
    for t in r.trial:
        out.append(
            f"trial {t.rule} ({t.title}): would write {t.entries} entries for {t.subjects} accounts,"
            f" {_signed(t.points, p)} points (before the change: {t.base_entries} entries,"
            f" {_signed(t.base_points, p)})"
        )
    return "\n".join(out)


def _markdown(r: DiffReport) -> str:
    p = r.precision
    out = [
        "### 规则改动影响（gridcredit diff）",
        "",
        (
            f"对比 `{r.base_label}` → `{r.new_label}`；期间 **{r.period}**（截至 {r.as_of or '-'}），"
            f"重算 {r.events:,} 条事件、{r.subjects:,} 个主体，用时 {r.seconds:.1f} 秒。"
        ),
        "",
    ]
    if r.rules:
        out += ["**改动的规则**", ""]
        out += [f"- {_CHANGE_WORDS[c.change]} `{c.rule}` {c.title}" for c in r.rules]
        out.append("")
    out += [
        "| 群体 | 账户数 | 有变化的账户 | 分数变化的账户 | 加分合计 | 减分合计 | 等级变化 | 排名变化 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in r.groups:
        out.append(f"| {g.title}（{g.group}） | {g.accounts} | {g.changed} | {g.score_changes} |"
                   f" {_signed(g.points_up, p)} | {_signed(g.points_down, p)} | {g.tier_changes} |"
                   f" {g.rank_changes} |")  # fmt: skip
    movers = [c for g in r.groups for c in g.top_movers]
    if movers:
        out += [
            "",
            "**变化最大的账户**",
            "",
            "| 主体 | 群体 | 原分数 | 新分数 | 变化 | 等级 | 排名 |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for c in movers:
            tier = c.new_tier if c.base_tier == c.new_tier else f"{c.base_tier} → {c.new_tier}"
            rank = (
                _rank(c.new_rank)
                if c.base_rank == c.new_rank
                else f"{_rank(c.base_rank)} → {_rank(c.new_rank)}"
            )
            out.append(
                f"| {c.subject} | {c.group} | {_pts(c.base_score, p)} | {_pts(c.new_score, p)} |"
                f" {_signed(c.delta, p)} | {tier} | {rank} |"
            )
    if r.list_changes:
        out += ["", "**红灰榜变化**", "", "| 名单 | 主体 | 变化 | 原因 |", "|---|---|---|---|"]
        for lc in r.list_changes:
            out.append(
                f"| {lc.title} | {lc.subject}（{lc.group}） | {_CHANGE_WORDS[lc.change]} | {'；'.join(lc.reasons)} |"
            )
    if r.trial:
        out += [
            "",
            "**试行规则测算（不计入积分）**",
            "",
            "| 规则 | 记录数 | 涉及账户 | 分数合计 |",
            "|---|---:|---:|---:|",
        ]
        for t in r.trial:
            out.append(
                f"| `{t.rule}` {t.title} | {t.entries} | {t.subjects} | {_signed(t.points, p)} |"
            )
    if not r.changes and not r.list_changes:
        out += ["", "没有账户的分数、等级、排名或名单发生变化。"]
    return "\n".join(out) + "\n"


__all__ = [
    "AccountChange",
    "DiffReport",
    "GroupSummary",
    "ListChange",
    "RuleChange",
    "TrialEffect",
    "diff_schemes",
    "format_diff",
    "resolve_base",
    "rules_from_git",
]
