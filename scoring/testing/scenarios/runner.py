"""``ScenarioRunner``: one scheme loaded and compiled once, each scenario run in a
copy of a prepared empty in-memory ledger through the real ingest → score → assess path."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from ...errors import GridcreditError
from ...model import Rule, Scheme
from ...precision import fmt_points, json_points
from ...yamlsafe import PosDict
from .checker import _Checker
from .coverage import _CoverageTracker
from .load import Scenario, _display, _line
from .results import OUTPUT_COLUMNS, CaseResult, Failure, _same, _show, _unknown

# --------------------------------------------------------------------------- the runner


class ScenarioRunner:
    """Runs scenarios against one scheme, loaded and compiled once; collects coverage."""

    def __init__(self, rules_dir: str | Path):
        from ...compile import compile_scheme
        from ...ingest import sync_grids
        from ...ledger import memory_db
        from ...loader import find_rules_dir, load_scheme

        self.rules_dir = find_rules_dir(rules_dir)
        self.scheme: Scheme = load_scheme(self.rules_dir)
        self.compiled = compile_scheme(self.scheme)
        self.template = memory_db()
        sync_grids(self.template, self.scheme)
        self.titles = self.scheme.rule_titles()
        self.coverage = _CoverageTracker(self.scheme)
        self._tables: dict[tuple[str, int], list[CaseResult]] = {}

    # -- helpers

    def fresh_db(self) -> sqlite_utils.Database:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.template.conn.backup(conn)
        return sqlite_utils.Database(conn)

    def rule_ref(self, rule_id: str) -> str:
        title = self.titles.get(rule_id)
        if title is None:
            a = next((a for a in self.scheme.assessments if a.id == rule_id), None)
            if a is not None:
                return f"assessment {rule_id} ({a.title})"
            item = self.scheme.catalog.get(rule_id)
            if item is not None:
                return f"redemption {rule_id} ({item.title})"
            return rule_id
        return f"rule {rule_id} ({title})"

    def rule_where(self, rule_id: str, key: str = "") -> str:
        """``file:line`` of a rule (of its ``key``, e.g. ``points``, when given), newest version."""
        versions = self.scheme.rule_versions(rule_id)
        if not versions:
            return ""
        r = versions[-1]
        f, line, _ = r.key_src.get(key, r.src) if key else r.src
        return f"{f}:{line}" if f and line else ""

    def limit_text(self, rule_id: str) -> str:
        versions = [r for r in self.scheme.rule_versions(rule_id) if r.limit]
        if not versions:
            return ""
        lim = versions[-1].limit
        assert lim is not None
        parts = []
        if lim.max_points is not None:
            parts.append(
                f"cap {fmt_points(lim.max_points, self.scheme.precision)} points/{lim.per}"
            )
        if lim.max_count is not None:
            parts.append(f"at most {lim.max_count} times/{lim.per}")
        return ", ".join(parts)

    # -- one scenario

    def run(self, sc: Scenario, *, row: int | None = None) -> list[CaseResult]:
        """Run one scenario; a table scenario gives one result per row (``row``: only that one)."""
        if sc.is_table:
            key = (sc.file, sc.line)
            if key not in self._tables:
                self._tables[key] = self._run_table(sc)
            results = self._tables[key]
            return results if row is None else [results[min(row, len(results) - 1)]]
        t0 = time.perf_counter()
        res = CaseResult(sc.file, sc.line, sc.name)
        try:
            self._run_plain(sc, res)
        except GridcreditError as e:
            res.failures.append(Failure(sc.file, sc.line, sc.name, str(e)))
        res.seconds = time.perf_counter() - t0
        return [res]

    def _fail(self, sc: Scenario, line: int, message: str) -> Failure:
        return Failure(sc.file, line, sc.name, message)

    def _subjects(self, sc: Scenario, fails: list[Failure]) -> tuple[list[dict], list[int]]:
        subs, lines = [], []
        raw = sc.data.get("subjects") or []
        d = sc.defaults
        for i, s in enumerate(raw):
            rec: dict[str, Any] = {"id": s} if isinstance(s, str) else dict(s)
            for k in ("groups", "grid", "tags"):
                if k not in rec and k in d:
                    rec[k] = d[k]
            subs.append(rec)
            lines.append(_line(raw, i, sc.line))
        return subs, lines

    def _events(self, sc: Scenario, subjects: list[dict]) -> tuple[list[dict], list[int]]:
        evs, lines = [], []
        raw = sc.data.get("events") or []
        only = subjects[0]["id"] if len(subjects) == 1 else None
        for i, e in enumerate(raw):
            rec = dict(e)
            rec.setdefault("id", f"e{i + 1:04d}")
            if "subject" not in rec and only is not None:
                rec["subject"] = only
            if isinstance(rec.get("attrs"), dict):
                rec["attrs"] = dict(rec["attrs"])
            evs.append(rec)
            lines.append(_line(raw, i, sc.line))
        return evs, lines

    def _ingest(
        self, sc: Scenario, db: sqlite_utils.Database, records: list[dict], lines: list[int],
        kind: str, fails: list[Failure],
    ) -> None:  # fmt: skip
        from ...ingest import ingest_records

        if not records:
            return
        b = ingest_records(db, self.scheme, records, file=sc.file, kind=kind)
        what = "subject" if kind == "subjects" else "event"
        for line, rid, reason in db.execute(
            "SELECT line, record_id, reason FROM rejects WHERE batch = ? AND reason NOT LIKE 'warning:%'",
            [b.batch],
        ).fetchall():
            at = lines[line - 1] if line and 0 < line <= len(lines) else sc.line
            fails.append(
                self._fail(sc, at, f"{what} {rid or ''} was rejected: {reason}".replace("  ", " "))
            )

    def _ingest_file(
        self, sc: Scenario, db: sqlite_utils.Database, key: str, kind: str, fails: list[Failure]
    ) -> None:
        from ...ingest import ingest_file

        name = sc.data.get(key)
        if not isinstance(name, str):
            return
        p = sc.path.parent / name
        line = _line(sc.data, key, sc.line)
        if not p.is_file():
            fails.append(self._fail(sc, line, f"{key} {name}: no such file next to the scenario"))
            return
        b = ingest_file(db, self.scheme, p, kind=kind, progress=False, workers=0)
        for fline, rid, reason in db.execute(
            "SELECT line, record_id, reason FROM rejects WHERE batch = ? AND reason NOT LIKE 'warning:%'",
            [b.batch],
        ).fetchall():
            fails.append(
                self._fail(sc, line, f"{_display(p)}:{fline}: {rid or ''} rejected: {reason}")
            )

    def _setup(self, sc: Scenario, res: CaseResult) -> tuple[sqlite_utils.Database, dict[str, Any]]:
        """Fresh ledger with the scenario's subjects and events, scored and assessed."""
        from ...assess import run_assessment
        from ...evaluate import score

        db = self.fresh_db()
        fails = res.failures
        subjects, slines = self._subjects(sc, fails)
        events, elines = self._events(sc, subjects)
        self._ingest(sc, db, subjects, slines, "subjects", fails)
        self._ingest_file(sc, db, "subjects_file", "subjects", fails)
        self._ingest(sc, db, events, elines, "events", fails)
        self._ingest_file(sc, db, "events_file", "events", fails)
        score(db, self.scheme, self.compiled)
        ev_line = {e["id"]: ln for e, ln in zip(events, elines)}
        for rid, reason in db.execute(
            "SELECT record_id, reason FROM rejects WHERE batch = 0"
        ).fetchall():
            fails.append(self._fail(sc, ev_line.get(rid, sc.line), f"event {rid}: {reason}"))
        assess = sc.data.get("assess") or []
        for i, period in enumerate(assess):
            try:
                run_assessment(db, self.scheme, str(period))
            except GridcreditError as e:
                fails.append(self._fail(sc, _line(assess, i, sc.line), f"assess {period}: {e}"))
        self.coverage.collect(db)
        ctx: dict[str, Any] = {"subjects": {s["id"] for s in subjects}, "events": ev_line}
        ctx["subjects"] |= {r[0] for r in db.execute("SELECT id FROM subjects").fetchall()}
        ctx["events"] = {**{r[0]: sc.line for r in db.execute("SELECT id FROM events")}, **ev_line}
        return db, ctx

    def _as_of(self, sc: Scenario, item: Any, db: sqlite_utils.Database) -> int:
        from ...ledger import default_as_of

        text = item.get("as_of") if isinstance(item, dict) else None
        text = text or sc.data.get("as_of")
        if text:
            return self.scheme.clock.end_of_day(str(text))
        return default_as_of(db, self.scheme)

    def _run_plain(self, sc: Scenario, res: CaseResult) -> None:
        db, ctx = self._setup(sc, res)
        if res.failures:  # inputs did not go in as written: expectations would mislead
            return
        expect = sc.data.get("expect") or {}
        check = _Checker(self, sc, db, ctx, res.failures)
        for key, fn in (
            ("balances", check.balance),
            ("entries", check.entry),
            ("trial_entries", check.trial_entry),
            ("redemptions", check.redemption),
            ("lists", check.list_member),
            ("ranks", check.rank),
            ("assessments", check.assessment),
        ):
            items = expect.get(key) or []
            for i, item in enumerate(items):
                fn(item, _line(items, i, sc.line))
        res.failures.sort(key=lambda f: f.line)

    # -- table scenarios

    def _run_table(self, sc: Scenario) -> list[CaseResult]:
        t0 = time.perf_counter()
        t = sc.data["table"]
        labels = sc.row_labels()
        results = [CaseResult(sc.file, line, f"{sc.name} [{label}]") for line, label in labels]
        setup = CaseResult(sc.file, sc.line, sc.name)
        rule_id = t.get("rule")
        versions = self.scheme.rule_versions(rule_id) if rule_id else []
        tline = _line(sc.data, "table", sc.line)
        if rule_id and not versions:
            setup.failures.append(
                self._fail(sc, _line(t, "rule", tline), _unknown("rule", rule_id, self.titles))
            )
        rule = versions[-1] if versions else None
        group = (
            t.get("group") or (t.get("subject") or {}).get("groups") or sc.defaults.get("groups")
        )
        if isinstance(group, list):
            group = group[0] if group else None
        group = group or (rule.group if rule else None)
        if not group or group not in self.scheme.groups:
            setup.failures.append(self._fail(sc, tline, _unknown("group", str(group), self.scheme.groups)
                                             if group else "table needs 'group' (or 'rule')"))  # fmt: skip
        if setup.failures:
            for r in results:
                r.failures = list(setup.failures)
            return results
        cols = list(t["columns"])
        template = dict(t.get("event") or {})
        etype_default = template.get("type") or (rule.on[0] if rule else None)
        at_default = template.get("at") or _default_time(rule)
        subjects: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        expected: list[dict[str, Any]] = []
        for i, row in enumerate(t["rows"]):
            sid = f"T{i + 1:03d}"
            subj: dict[str, Any] = {"id": sid, "groups": [group]}
            for k in ("grid", "tags"):
                if k in sc.defaults:
                    subj[k] = sc.defaults[k]
            for k, v in (t.get("subject") or {}).items():
                subj[k] = v
            subj["groups"] = subj.get("groups") or [group]
            subj["id"] = sid
            attrs = dict(template.get("attrs") or {})
            ev: dict[str, Any] = {
                "id": f"row{i + 1:03d}",
                "type": etype_default,
                "subject": sid,
                "at": at_default,
            }
            exp: dict[str, Any] = {}
            if len(row) != len(cols):
                results[i].failures.append(self._fail(sc, labels[i][0], f"row has {len(row)} values"
                                                      f" but the table has {len(cols)} columns"))  # fmt: skip
            for c, v in zip(cols, row):
                if c in OUTPUT_COLUMNS:
                    exp[c] = v
                elif c == "at":
                    ev["at"] = v
                elif c == "type":
                    ev["type"] = v
                elif c == "subject.grid":
                    subj["grid"] = v
                elif c == "subject.tags":
                    subj["tags"] = v
                else:
                    attrs[c.removeprefix("attrs.")] = v
            ev["attrs"] = {k: v for k, v in attrs.items() if v is not None}
            subjects.append(subj)
            events.append(ev)
            expected.append(exp)
        scratch = CaseResult(sc.file, sc.line, sc.name)
        tsc = Scenario(sc.file, sc.path, sc.line, sc.name, PosDict(), sc.defaults, sc.rules_dir)
        db = self.fresh_db()
        self._ingest(tsc, db, subjects, [r.line for r in results], "subjects", scratch.failures)
        self._ingest(tsc, db, events, [r.line for r in results], "events", scratch.failures)
        from ...evaluate import score

        score(db, self.scheme, self.compiled)
        self.coverage.collect(db)
        for f in scratch.failures:  # a reject belongs to its row
            for r in results:
                if r.line == f.line:
                    r.failures.append(Failure(f.file, f.line, r.name, f.message))
        trial = bool(rule and rule.status == "trial")
        table = "trial_entries" if trial else "entries"
        as_of_text = t.get("as_of") or sc.data.get("as_of")
        for i, (r, exp) in enumerate(zip(results, expected)):
            if r.failures:
                continue
            eid, sid = events[i]["id"], subjects[i]["id"]
            sql = f"SELECT points, wallet, reason FROM {table} WHERE event = ?"
            params: list[Any] = [eid]
            if rule_id:
                sql += " AND rule = ?"
                params.append(rule_id)
            got = db.execute(sql, params).fetchall()
            units_points = sum(g[0] for g in got)
            actual: dict[str, Any] = {
                "points": sum(g[0] for g in got) if got else None,
                "wallet": sum(g[1] for g in got) if got else None,
                "reason": ",".join(sorted({g[2] for g in got})) if got else None,
            }
            if "score" in exp or "tier" in exp:
                from ...ledger import balances

                as_of = self.scheme.clock.end_of_day(str(as_of_text)) if as_of_text else None
                bal = balances(db, self.scheme, as_of=as_of, group=group, subject=sid)
                actual["score"] = bal[0].score if bal else None
                actual["tier"] = bal[0].tier if bal else None
            prec = self.scheme.precision
            # messages show points as balances does (1000.5); comparisons use the numbers
            shown = {c: fmt_points(actual.get(c), prec) for c in ("points", "wallet", "score")}
            if prec.scale != 1:  # the ledger's units as the points written
                for c in ("points", "wallet", "score"):
                    actual[c] = json_points(actual.get(c), prec)
            what = self.rule_ref(rule_id) if rule_id else "all rules"
            when_at = (
                f" ({self.rule_where(rule_id)})" if rule_id and self.rule_where(rule_id) else ""
            )
            points_at = (
                f" ({self.rule_where(rule_id, 'points')})"
                if rule_id and self.rule_where(rule_id, "points")
                else ""
            )
            for c, want in exp.items():
                have = actual.get(c)
                if _same(want, have):
                    continue
                if c == "points" and have is None:
                    msg = (
                        f"expected {what} to give {_show(want)} points, but it did not match this"
                        f" row's event: no entry was written. Check the row's values against the"
                        f" rule's on, when and effective dates{when_at}, or write null to expect"
                        " no match"
                    )
                elif c == "points" and want is None:
                    # have is not None: _same() accepted None against None above
                    gave = fmt_points(units_points, prec, sign=True)
                    msg = (
                        f"expected {what} not to match this row's event, but it gave {gave}."
                        f" Check the rule's when and effective dates{when_at}, or write the"
                        " points it should give"
                    )
                else:
                    msg = f"expected {c} {_show(want)}, got {shown.get(c, _show(have))} from {what}"
                    if c in ("points", "wallet") and actual.get("reason") == "capped":
                        msg += " (the match was capped: the period's limit was already used)"
                    check = {
                        "points": f"the points the rule gives{points_at}",
                        "wallet": f"whether the rule moves the wallet{when_at}",
                        "reason": f"the rule's cap{when_at}",
                    }.get(c, f"the rule's points{points_at} and the group's tiers in scheme.yaml")
                    msg += f". Check {check}, or correct the row"
                r.failures.append(Failure(r.file, r.line, r.name, msg))
        per = (time.perf_counter() - t0) / max(1, len(results))
        for r in results:
            r.seconds = per
        return results


def _default_time(rule: Rule | None) -> str:
    """A time inside the newest version of the rule (its first day, 10:00); else 2024-06-03."""
    if rule is not None and rule.effective_text[0]:
        return f"{rule.effective_text[0]}T10:00:00"
    return "2024-06-03T10:00:00"
