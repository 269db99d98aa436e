"""Checking a scenario's expectations against its ledger (balances, entries,
redemptions, lists, ranks, assessments), each miss a ``Failure`` in words policy staff act on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import sqlite_utils

from ...precision import fmt_points, json_points, metric_on_points, plain_points
from ...yamlsafe import PosDict
from .load import Scenario
from .results import Failure, _same, _show, _signed, _unknown

if TYPE_CHECKING:
    from .runner import ScenarioRunner


# --------------------------------------------------------------------------- expectations


class _Checker:
    def __init__(
        self,
        runner: ScenarioRunner,
        sc: Scenario,
        db: sqlite_utils.Database,
        ctx: dict,
        fails: list[Failure],
    ):
        self.r = runner
        self.scheme = runner.scheme
        # a fractional scheme's ledger holds units; scenarios are written in points
        prec = self.scheme.precision
        self.pts: Any = (lambda u: u) if prec.scale == 1 else (lambda u: json_points(u, prec))
        self.prec = prec
        self.sc = sc
        self.db = db
        self.ctx = ctx
        self.fails = fails

    def show(self, units: Any) -> str:
        """Ledger units as points, as ``gridcredit balances`` prints them (``1000.5``)."""
        return fmt_points(units, self.prec)

    def signed(self, units: Any) -> str:
        return fmt_points(units, self.prec, sign=True)

    def fail(self, line: int, msg: str) -> None:
        self.fails.append(Failure(self.sc.file, line, self.sc.name, msg))

    def _subject_ok(self, sid: str, line: int) -> bool:
        if sid not in self.ctx["subjects"]:
            self.fail(line, _unknown("subject", sid, self.ctx["subjects"])
                      + " (not among this scenario's subjects)")  # fmt: skip
            return False
        return True

    def _group_of(self, item: dict, line: int) -> str | None:
        sid = str(item["subject"])
        grp = item.get("group")
        if grp is not None:
            if grp not in self.scheme.groups:
                self.fail(line, _unknown("group", str(grp), self.scheme.groups))
                return None
            return str(grp)
        gs = [r[0] for r in self.db.execute("SELECT grp FROM memberships WHERE subject = ?", [sid])]
        if len(gs) == 1:
            return gs[0]
        self.fail(line, f"subject {sid} is in groups {', '.join(gs)}; say which with 'group:'")
        return None

    def _rule_ok(self, rule: Any, line: int) -> bool:
        known = (
            set(self.r.titles) | {a.id for a in self.scheme.assessments} | set(self.scheme.catalog)
        )
        if rule is not None and rule not in known:
            self.fail(line, _unknown("rule", str(rule), self.r.titles))
            return False
        return True

    def _who(self, sid: str, grp: str) -> str:
        return f"{sid} ({grp})"

    def _explain(self, sid: str, grp: str, as_of: int) -> str:
        """The rules behind a balance, biggest first: what a person needs to see to fix it."""
        rows = self.db.execute(
            "SELECT rule, period, SUM(points), SUM(wallet), SUM(reason = 'capped') FROM entries"
            " WHERE subject = ? AND grp = ? AND at <= ? AND (expires_at IS NULL OR expires_at > ?)"
            " GROUP BY rule, period ORDER BY ABS(SUM(points)) DESC, rule LIMIT 6",
            [sid, grp, as_of, as_of],
        ).fetchall()
        parts = []
        for rule, period, pts, wal, capped in rows:
            if not pts and not wal and not capped:
                continue
            text = f"{self.r.rule_ref(rule)} gave {self.signed(pts)}"
            if wal != pts:
                text += f" (wallet {self.signed(wal)})"
            text += f" in {period}"
            extra = []
            lim = self.r.limit_text(rule)
            if lim:
                extra.append(lim)
            if capped:
                extra.append(f"{capped} match{'es' if capped > 1 else ''} capped")
            if extra:
                text += f" ({'; '.join(extra)})"
            parts.append(text)
        g = self.scheme.groups[grp]
        if not parts:
            return f" — no entries count for {sid} in {grp} at that date, only the base {self.show(g.base_score)}"
        return " — " + "; ".join(parts)

    def balance(self, item: dict, line: int) -> None:
        from ...ledger import balances

        sid = str(item["subject"])
        if not self._subject_ok(sid, line):
            return
        grp = self._group_of(item, line)
        if grp is None:
            return
        as_of = self.r._as_of(self.sc, item, self.db)
        got = balances(self.db, self.scheme, as_of=as_of, group=grp, subject=sid)
        if not got:
            self.fail(line, f"{sid} has no {grp} account (is {grp} among its groups?)")
            return
        b = got[0]
        when = f" as of {item['as_of']}" if item.get("as_of") else ""
        for key in ("score", "wallet", "tier"):
            if key not in item:
                continue
            want, have = item[key], getattr(b, key)
            if key != "tier":
                have = self.pts(have)
            if _same(want, have):
                continue
            got_text = str(have) if key == "tier" else self.show(getattr(b, key))
            msg = f"expected {self._who(sid, grp)} {key} {_show(want)}{when}, got {got_text}"
            g = self.scheme.groups[grp]
            if key == "score":
                msg += f" (base {self.show(g.base_score)})"
            if key == "tier":
                msg += f" (score {self.show(b.score)}"
                msg += f", held at most {b.graded} by direct grading" if b.graded else ""
                band = next((x for x in g.tiers if x.id == str(want)), None)
                msg += f"; {want} is {self._band(band)})" if band is not None else ")"
            # what to check: the entries behind the figure, then the rules or the expectation
            check = {
                "score": "these rules' points, caps and validity, or the expected score",
                "wallet": "which rules move the wallet (wallet:) and any redemptions, or the"
                " expected wallet",
                "tier": f"the score against the tiers of {grp} in scheme.yaml, or the expected tier",
            }[key]
            self.fail(item.val_pos.get(key, (line,))[0] if isinstance(item, PosDict) else line,
                      msg + self._explain(sid, grp, as_of) + f". Check {check}")  # fmt: skip

    def _band(self, tier: Any) -> str:
        """A tier's score band in words: ``1030–1049``, ``1050 or more``."""
        lo, hi = (None if v is None else plain_points(v, self.prec) for v in (tier.min, tier.max))
        if lo is not None and hi is not None:
            return f"{lo}–{hi}"
        return f"{lo} or more" if lo is not None else f"{hi} or less"

    def entry(self, item: dict, line: int, table: str = "entries") -> None:
        sid = str(item["subject"])
        if not self._subject_ok(sid, line):
            return
        rule = item.get("rule")
        if not self._rule_ok(rule, line):
            return
        grp = item.get("group")
        if grp is not None and grp not in self.scheme.groups:
            self.fail(line, _unknown("group", str(grp), self.scheme.groups))
            return
        ev = item.get("event")
        if ev is not None and ev not in self.ctx["events"]:
            self.fail(line, _unknown("event", str(ev), self.ctx["events"]))
            return
        where, params = ["subject = ?"], [sid]
        for key, col in (("group", "grp"), ("rule", "rule"), ("event", "event")):
            if item.get(key) is not None:
                where.append(f"{col} = ?")
                params.append(item[key])
        rows = self.db.execute(
            f"SELECT points, wallet, reason, event, period, grp, rule FROM {table} WHERE {' AND '.join(where)}"
            " ORDER BY at, id",
            params,
        ).fetchall()
        keep = [
            r for r in rows
            if ("points" not in item or self.pts(r[0]) == item["points"])
            and ("wallet" not in item or self.pts(r[1]) == item["wallet"])
            and (item.get("reason") is None or r[2] == item["reason"])
        ]  # fmt: skip
        want_n = item.get("count")
        if (want_n is None and keep) or (want_n is not None and len(keep) == want_n):
            return
        trial = table == "trial_entries"
        noun = "trial entr" if trial else "entr"
        desc = [f"for {sid}"]
        if grp:
            desc.append(f"in {grp}")
        if rule:
            desc.append(f"from {self.r.rule_ref(rule)}")
        if ev:
            desc.append(f"on event {ev}")
        shape = []
        if "points" in item:
            shape.append(f"points {_signed(item['points'])}")
        if "wallet" in item:
            shape.append(f"wallet {_signed(item['wallet'])}")
        if item.get("reason"):
            shape.append(f"reason {item['reason']}")
        with_shape = f" with {', '.join(shape)}" if shape else ""
        if want_n is None:
            head = f"expected {'a trial entry' if trial else 'an entry'}"
        elif want_n == 0:
            head = f"expected no {noun}y"
        else:
            head = f"expected {want_n} {noun}{'y' if want_n == 1 else 'ies'}"
        msg = f"{head} {' '.join(desc)}{with_shape}"
        found = len(keep)
        seen = ", ".join(
            f"{self.signed(p)}{'' if w == p else f' (wallet {self.signed(w)})'} {reason} on {e}"
            f" in {per}" + ("" if rule else f" by {ru}")
            for p, w, reason, e, per, g, ru in (keep if want_n is not None and keep else rows)[:6]
        )
        listed = len(keep) if want_n is not None and keep else len(rows)
        if listed > 6:
            seen += f" … ({listed} in all)"
        if want_n is not None and found > want_n:
            # an unexpected entry: say what came out, and that the rule's conditions decide it
            msg += f", but {found} {'was' if found == 1 else 'were'} written: {seen}"
            msg += ". Check " + self._match_hint(rule, ev, sid, item.get("reason"))
            msg += f", or expect count: {found}"
        elif not rows:
            # nothing at all: the rule did not match (or a zero-point match wrote nothing)
            whom = f"{self.r.rule_ref(rule)} wrote" if rule else "no rule wrote"
            if rule:
                msg += f", but none was written: {whom} no {noun}ies for {sid}"
            else:
                msg += f", but none was written: {whom} any {noun}y for {sid}"
            if grp or ev:
                msg += " " + " ".join(d for d in desc[1:] if not d.startswith("from "))
            msg += ". Check " + self._match_hint(rule, ev, sid, item.get("reason"))
            if item.get("points") == 0 or item.get("wallet") == 0:
                msg += (
                    "; a match worth 0 points writes no entry: to expect that the rule gives"
                    " nothing here, write count: 0"
                )
        else:
            # entries were written, but not the ones expected: show them side by side
            if found:
                msg += f", but only {found} of the {len(rows)} written {'matches' if found == 1 else 'match'}"
            elif len(rows) == 1:
                msg += f", but the {noun}y written differs"
            else:
                msg += f", but the {len(rows)} {noun}ies written differ"
            ids = {r[6] for r in rows}  # one rule wrote them all: point at it
            msg += f": {seen}. Check " + self._value_hint(
                rule or (ids.pop() if len(ids) == 1 else None), item
            )
        self.fail(line, msg)

    def _match_hint(self, rule: Any, ev: Any, sid: str, item_reason: Any = None) -> str:
        """What decides whether a rule matches: the event's type, time and attributes
        against the rule's on, when and effective dates (at the rule's place in its file)."""
        what = f"event {ev}" if ev is not None else f"{sid}'s events"
        if ev is not None:
            row = self.db.execute(
                "SELECT type, at, attrs FROM events WHERE id = ?", [ev]
            ).fetchone()
            if row is not None:
                etype, at, attrs = row
                day = self.scheme.clock.local(at).strftime("%Y-%m-%d %H:%M")
                shown = ", ".join(
                    f"{k} {_show(v)}" for k, v in sorted(orjson.loads(attrs or "{}").items())
                )
                what += f" ({etype} at {day}{', ' + shown if shown else ''})"
        if rule in self.scheme.catalog or item_reason == "redeem":
            return f"{what} against the item's cost, minimum tier, stock and limits in catalog.yaml"
        if rule is not None and any(a.id == rule for a in self.scheme.assessments):
            return f"the assessment {rule} (its period, metric and select) in assessments.yaml"
        if rule is None:
            return f"{what} against the on and when of the rules you expect"
        where = self.r.rule_where(rule)
        return f"{what} against the rule's on, when and effective dates" + (
            f" ({where})" if where else ""
        )

    def _value_hint(self, rule: Any, item: dict) -> str:
        """Where the expected figures come from in the rule, to check against the scenario."""
        parts = []
        if "points" in item or "wallet" in item:
            if not rule:
                parts.append("the rules' points and caps")
            else:
                cap = " and its cap" if self.r.limit_text(rule) else ""
                parts.append(f"the points rule {rule} gives{cap}")
        if "wallet" in item:
            parts.append(
                "whether it moves the wallet (wallet:)" if rule else "which rules move the wallet"
            )
        if item.get("reason"):
            parts.append("whether the match was capped")
        if rule in self.scheme.catalog:
            return "the item's cost in catalog.yaml, or correct the expected values"
        where = self.r.rule_where(rule, "points") if rule else ""
        text = " and ".join(parts) or "the rule's on and when"
        return text + (f" ({where})" if where else "") + ", or correct the expected values"

    def trial_entry(self, item: dict, line: int) -> None:
        self.entry(item, line, table="trial_entries")

    def redemption(self, item: dict, line: int) -> None:
        ev = str(item["event"])
        if ev not in self.ctx["events"]:
            self.fail(line, _unknown("event", ev, self.ctx["events"]))
            return
        row = self.db.execute(
            "SELECT outcome, reason_code, item, subject, grp, cost FROM redemptions WHERE event = ?",
            [ev],
        ).fetchone()
        if row is None:
            self.fail(line, f"event {ev} made no redemption (is it of type redeem?)")
            return
        outcome, code, it, sid, grp, cost = row
        want = (
            item["outcome"],
            item.get("reason_code", code if item["outcome"] == "rejected" else None),
        )
        if (outcome, code) == want:
            return
        title = self.scheme.catalog[it].title if it in self.scheme.catalog else it
        got = outcome + (f" ({code})" if code else "")
        exp = item["outcome"] + (f" ({item['reason_code']})" if item.get("reason_code") else "")
        msg = f"expected redemption {ev} of {it} ({title}) by {sid} to be {exp}, got {got}"
        if grp in self.scheme.groups:
            from ...ledger import balances

            at = self.db.execute("SELECT at FROM events WHERE id = ?", [ev]).fetchone()[0]
            b = balances(self.db, self.scheme, as_of=at, group=grp, subject=sid)
            if b:
                # the wallet before the request: without its own debit (found in review)
                (own,) = self.db.execute(
                    "SELECT COALESCE(SUM(wallet), 0) FROM entries WHERE event = ? AND subject = ?"
                    " AND grp = ?",
                    [ev, sid, grp],
                ).fetchone()
                msg += (
                    f" — just before it {sid} ({grp}) had score {self.show(b[0].score)},"
                    f" tier {b[0].tier}, wallet {self.show(b[0].wallet - own)}; cost {self.show(cost)}"
                )
        self.fail(line, msg)

    def list_member(self, item: dict, line: int) -> None:
        from ...lists import list_members

        lid, sid = str(item["list"]), str(item["subject"])
        if lid not in {ld.id for ld in self.scheme.lists}:
            self.fail(line, _unknown("list", lid, [ld.id for ld in self.scheme.lists]))
            return
        if not self._subject_ok(sid, line):
            return
        as_of = self.r._as_of(self.sc, item, self.db)
        members = [
            m for m in list_members(self.db, self.scheme, lid, as_of=as_of) if m.subject == sid
        ]
        ld = next(ld for ld in self.scheme.lists if ld.id == lid)
        when = f" as of {item['as_of']}" if item.get("as_of") else ""
        if bool(members) != bool(item["member"]):
            if members:
                why = "; ".join(r.text or r.heading for m in members for r in m.reasons)
                self.fail(
                    line, f"expected {sid} not on list {lid} ({ld.title}){when}, but it is: {why}"
                )
            else:
                from ...ledger import balances

                bs = balances(self.db, self.scheme, as_of=as_of, subject=sid)
                state = ", ".join(f"{b.group} score {self.show(b.score)} tier {b.tier}" for b in bs)
                self.fail(
                    line,
                    f"expected {sid} on list {lid} ({ld.title}){when}, but it is not ({state})",
                )
            return
        text = item.get("reason")
        if text and members:
            reasons = [f"{r.heading} {r.text}" for m in members for r in m.reasons]
            if not any(text in r for r in reasons):
                self.fail(line, f"expected a reason containing '{text}' for {sid} on {lid}; reasons: "
                          + "; ".join(reasons))  # fmt: skip

    def rank(self, item: dict, line: int) -> None:
        from ...rank import grid_rankings, rankings

        as_of = self.r._as_of(self.sc, item, self.db)
        month = str(item.get("month") or self.scheme.clock.month(as_of))
        within = item.get("within", "scheme")
        have: int | None
        if "grid" in item:
            gid = str(item["grid"])
            grid_group = str(item.get("group", "residents"))
            grid_tables = grid_rankings(
                self.db, self.scheme, month, group=grid_group, within=within
            )
            grid_rows = [r for gt in grid_tables for r in gt.rows if r.grid == gid]
            have = grid_rows[0].rank if grid_rows else None
            who = f"grid {gid}"
        else:
            sid = str(item["subject"])
            if not self._subject_ok(sid, line):
                return
            grp = self._group_of(item, line)
            if grp is None:
                return
            tables = rankings(
                self.db, self.scheme, month, group=grp, by=item.get("by", "score"), within=within
            )
            rows = [r for t in tables for r in t.rows if r.subject == sid]
            have = rows[0].rank if rows else None
            who = self._who(sid, grp)
        if have == item["rank"]:
            return
        ranked = ""
        if "grid" not in item:
            table = next(
                (t for t in tables if any(r.subject == item["subject"] for r in t.rows)), None
            )
            if table:
                ranked = " — " + ", ".join(
                    f"{r.rank}. {r.subject} {self.show(r.score)}" for r in table.rows[:8]
                )
        self.fail(line, f"expected {who} rank {item['rank']} in {month} (within {within}), got"
                  f" {have if have is not None else 'not ranked'}{ranked}")  # fmt: skip

    def assessment(self, item: dict, line: int) -> None:
        aid = str(item["assessment"])
        if aid not in {a.id for a in self.scheme.assessments}:
            self.fail(line, _unknown("assessment", aid, [a.id for a in self.scheme.assessments]))
            return
        period, scope = str(item["period"]), str(item["scope_id"])
        row = self.db.execute(
            "SELECT value, rank, selected FROM assessment_results WHERE assessment = ? AND period = ?"
            " AND scope_id = ?",
            [aid, period, scope],
        ).fetchone()
        if row is None:
            ran = [str(p) for p in self.sc.data.get("assess") or []]
            hint = "" if period in ran else f"; add {period} to 'assess:'"
            self.fail(line, f"no result of assessment {aid} for {scope} in {period}{hint}")
            return
        value, rank, selected = row
        metric = next(a.metric for a in self.scheme.assessments if a.id == aid)
        scale = self.scheme.precision.scale
        if scale != 1 and value is not None and metric_on_points(metric):
            value = value / scale  # a mean of points is held in units; scenarios say points
        got = {"value": value, "rank": rank, "selected": bool(selected)}
        for key in ("selected", "value", "rank"):
            if key in item and not _same(item[key], got[key]):
                self.fail(line, f"expected assessment {aid} {period} {scope} {key} {_show(item[key])},"
                          f" got {_show(got[key])} (value {_show(value)}, rank {_show(rank)})")  # fmt: skip
