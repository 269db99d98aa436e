"""The pure scoring core: events in (time, id) order → ledger entries.

:class:`Scorer` touches no database, no file and no process. It is what the
SQLite runner (``scoring.evaluate.runner``) drives for a ``score`` run, and
what a per-partition job (Spark) can drive with state of its own.

Inputs
    The compiled scheme (rules, catalog, groups, clock); the subjects (their
    groups, grid, tags and links: :meth:`Scorer.load_subjects`); the prior
    state of those subjects' accounts (:meth:`Scorer.start_state` and the other
    ``load_*`` methods: fixed score and wallet sums, the entries that still
    count for cap counters and escalation windows, points that expire, direct
    gradings in force, granted redemptions by item for stock and per-subject
    limits); the corrections to expect (:meth:`Scorer.plan`: which events a
    later event withdraws, amends or disputes, and the amendment chains); the
    closed months (:class:`PostingMonths`); and the events as rows
    ``(id, subject, at, "type\\x1fattributes JSON", amends)`` in (time, id)
    order, fed in batches of any size to :meth:`Scorer.score_rows`.

Prior ledger rows the core may need mid-stream (the live entries of an event a
correction reverses, a penalty an earlier run wrote that a credit repair undoes,
an earlier redemption a withdrawal gives back, whether a corrected event exists)
come through a :class:`PriorState`: SQLite queries in the runner, in-memory
lists in ``scoring.evaluate.memory``. Entries of the run itself are kept in
memory: the runner never reads its own output back.

Outputs
    Everything goes to ``emit(op, rows)``, in the order the core decides it, at
    :meth:`Scorer.flush` (every entry batch) or at once (the few others):
    ``KINDS`` (entry kinds ``(id, group, account, rule, pack_hash, reason,
    note)``), ``ENTRIES`` (rows of ``ENTRY_COLUMNS`` order, 16 values, or compact
    7-tuples ``(subject, points, wallet, event, at, period, kind)``: see
    :meth:`Scorer.full`), ``TRIAL`` (shadow-ledger rows, 16 values),
    ``REDEMPTIONS``, ``WITHDRAWN`` (an earlier redemption given back),
    ``OBJECTIONS`` (upserts by target) and ``REJECTS`` (``(reason, waits,
    event)``). Entry ids are ``first_id`` on, in emit order (``first_trial_id``
    for trial entries), so a reversal's ``ref`` needs no read-back. Counts go to
    ``Scorer.summary``; late events per posting month to ``late_by_month``.

New state
    After the last batch the scorer's containers hold the subjects' new state:
    ``acct`` (fixed score, wallet), ``subjects[s].caps`` (cap counters),
    ``matches`` (escalation windows), ``expiring``, ``graded``,
    ``stock_used``/``item_usage``.

What crosses subjects (what a partitioned run must keep together)
    - Linked scoring (a rule's ``also``): an event of subject A posts to the
      subject A links to (``links``), moving that account's score and wallet.
      A and its link targets must be in one partition, or the linked postings
      must be replayed in the target's partition in (time, id) order.
    - Catalog stock (``stock``) is first come, first served over all subjects:
      every redemption of an item with stock must be scored in one partition
      (per-subject limits and wallets are per subject).
    - Corrections (withdraw, objection, amends) name an event by id, of any
      subject: the reversal posts to the subjects of the *target's* entries.
      A correction must be in the partition of its target's subject (ingest
      does not require them to share a subject).
    - Credit repair, escalation windows, caps and gradings are per account
      (subject, group): subject partitioning keeps them whole.
    Everything else (memo of rule steps, rule eras, period spans) is a cache.

Why one long module: the event loop (:meth:`Scorer.score_rows`) and the steps it
calls per event (``_apply``, reversals, repair) share the scorer's state bound as
locals and attributes of one object; spreading them over more classes would add
a method layer per event. Redemptions, a per-request path, live apart
(``redemptions.py``).
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from ..compile import (
    FAR_FUTURE,
    FAR_PAST,
    CompiledRule,
    CompiledScheme,
    compile_scheme,
    decimal_text,
    exact,
)
from ..conditions import SubjectView, reads_subject
from ..durations import PERIOD_KINDS
from ..grading import capped_tier
from ..model import Scheme
from ..posting import PostingMonths
from .outputs import (
    ENTRIES,
    KINDS,
    OBJECTIONS,
    REJECTS,
    TRIAL,
    ScoreSummary,
)
from .redemptions import Redemptions

REDEEM, WITHDRAW, OBJECTION = "redeem", "withdraw", "objection"
# a reject's ``waits`` naming an event (a correction's target), not a subject
WAITS_EVENT = "event:"
SIMPLE, CAPPED, GENERAL = 0, 1, 2  # rule shapes, see CompiledRule.shape
INLINE, APPLY, PER_EVENT = 0, 1, 2  # how a memoised step is carried out (see Scorer._steps)
MEMO_MAX = 200_000  # distinct (type, attributes) per groups remembered before starting afresh

# the reasons of the shadow-ledger entries a correction reverses
_TRIAL_REVERSED = ("match", "linked", "repair")

Emit = Callable[[str, list], None]

# The note of a running-total entry: the total before and after the event, in its period,
# and, for an entry rewritten after a correction, the event it stands for. What explain
# shows, and what the next run reads the totals back from (see Scorer.load_totals).
_TOTAL_NOTE = re.compile(r"^total (\S+) (\S+) → (\S+) \((.+?)\)(?:; recomputed for event (.+))?$")


class PriorState(Protocol):
    """The ledger as it stood before this run (entries with ids below the run's
    ``first_id`` / ``first_trial_id``), as the core asks for it mid-stream.

    "Live" means not undone by a reversal written before this run; what this
    run undoes the core tracks itself.
    """

    def has_event(self, event_id: str) -> bool:
        """Whether an event of this id was ingested (a correction's target)."""
        ...

    def live_entries(self, event_id: str) -> list[tuple]:
        """The live entries of an event, as (id, subject, grp, account, points,
        wallet, rule, pack_hash, at, expires_at, reason)."""
        ...

    def live_repairs(self, entry_id: int) -> list[tuple]:
        """The live credit repairs of an entry, as in ``live_entries``."""
        ...

    def live_trial_entries(self, event_id: str) -> list[tuple[int, tuple]]:
        """The event's shadow-ledger entries of reason match, linked or repair not
        reversed, as (id, row in ``ENTRY_COLUMNS`` order), in id order."""
        ...

    def penalties(
        self, subject: str, grp: str, rules: list[str], since: int, until: int
    ) -> list[tuple]:
        """Negative (or grading) match or linked entries of ``rules`` dated in [since, until] that
        nothing refers to, as (id, points, rule, pack_hash, at, expires_at)."""
        ...

    def granted_redemption(self, event_id: str) -> tuple | None:
        """(item, subject, quantity, at) of the event's redemption, if granted."""
        ...


class NoPrior:
    """A :class:`PriorState` with no earlier ledger: every event is this run's."""

    def __init__(self, events: Iterable[str] = ()):
        self.events = set(events)

    def has_event(self, event_id: str) -> bool:
        return event_id in self.events

    def live_entries(self, event_id: str) -> list[tuple]:
        return []

    def live_repairs(self, entry_id: int) -> list[tuple]:
        return []

    def live_trial_entries(self, event_id: str) -> list[tuple[int, tuple]]:
        return []

    def penalties(
        self, subject: str, grp: str, rules: list[str], since: int, until: int
    ) -> list[tuple]:
        return []

    def granted_redemption(self, event_id: str) -> tuple | None:
        return None


_NO_SUBJECT = SubjectView(id="")  # what a memoised (attribute-only) condition is given


@dataclass(slots=True)
class _Subject:
    view: SubjectView
    groups: tuple[str, ...]
    kind: str
    # the stored id object: the scorer's dicts hold it as their keys, so they compare
    # keys by identity instead of by content (ids read from SQLite are new strings)
    sid: str = ""
    # what the rules make of an event, by ``type \x1f attributes JSON``: one dict shared
    # by the subjects of the same groups (see Scorer._steps)
    memo: dict[str, list[tuple]] = field(default_factory=dict)
    # [fixed score, wallet] per group: the lists of Scorer.acct, without a key to hash
    acct: dict[str, list[int]] = field(default_factory=dict)
    # cap counters by rule id (a rule scores one group): [period, points, matches] of
    # the latest period; a new period starts one afresh, so none is ever pruned
    caps: dict[str, list[Any]] = field(default_factory=dict)
    trial_caps: dict[str, list[Any]] = field(default_factory=dict)


class Scorer(Redemptions):
    """The running state of one scoring pass over a set of subjects (see the module
    docstring). Feed it with :meth:`score_rows`, call :meth:`finish` at the end."""

    def __init__(
        self,
        scheme: Scheme,
        compiled: CompiledScheme | None = None,
        *,
        emit: Emit | None = None,
        prior: PriorState | None = None,
        calendar: PostingMonths | None = None,
        first_id: int = 1,
        first_trial_id: int = 1,
    ):
        self.scheme = scheme
        self.clock = scheme.clock
        self.compiled = compiled or compile_scheme(scheme)
        self.summary = ScoreSummary()
        self.emit: Emit = emit if emit is not None else _discard
        self.prior: PriorState = prior if prior is not None else NoPrior()
        self.calendar = calendar if calendar is not None else PostingMonths(self.clock)
        self.buf: list[tuple] = []  # entry rows, full or compact (see ENTRIES)
        self._kinds: dict[tuple, int] = {}  # entry kind -> its id in KINDS
        self._kind_rows: list[tuple] = []  # the kinds by id
        self._new_kinds: list[tuple] = []  # kinds not yet emitted
        self.redeemed: list[tuple] = []
        self.trial_buf: list[tuple] = []
        self.has_trial = any(c.trial for c in self.compiled.rules)
        self._period_cache: dict[tuple[str, int], str] = {}
        self.group_order = {g: i for i, g in enumerate(scheme.groups)}
        self.by_type_group: dict[tuple[str, str], list[CompiledRule]] = {}
        for c in self.compiled.rules:
            for t in c.rule.on:
                self.by_type_group.setdefault((t, c.group), []).append(c)
        self.system_types = frozenset((REDEEM, WITHDRAW, OBJECTION))
        # Rule versions take effect and end at these instants; between two of them (an
        # era: [start, end]) the same rules are in force, so what they make of an event
        # is memoised for the era: (type, groups, attrs JSON) -> steps (see _steps).
        self._era_bounds = sorted(
            {t for c in self.compiled.rules for t in (c.start, c.end) if FAR_PAST < t < FAR_FUTURE}
        )
        self._era = [0, 0]
        # memo per groups tuple: ``type \x1f attributes JSON`` -> steps (see _steps)
        self._memos: dict[tuple[str, ...], dict[str, list[tuple]]] = {}
        # rules whose condition reads the subject: tested per event, not memoised
        self._subject_rules = frozenset(
            c.id for c in self.compiled.rules if c.rule.when and reads_subject(c.rule.when)
        )
        # [start, end, key] of the period of each kind last looked at
        self._spans: dict[str, list[Any]] = {k: [0, 0, ""] for k in PERIOD_KINDS}
        self._late_seen: set[str] = set()
        self.late_by_month: dict[str, int] = defaultdict(int)
        self.rules_by_id = {c.id: c for c in self.compiled.rules}
        # a rule written for several groups is one compiled rule per group
        self.rules_by_id_group = {(c.id, c.group): c for c in self.compiled.rules}
        # rules scoring a running total (points: {total: ...}); their state is in self.totals
        self.total_rules = sorted(c.id for c in self.compiled.rules if c.total is not None)
        self._total_set = frozenset(self.total_rules)
        self._now = 0  # the time of the event being scored, for subject.graded / subject.tier
        # families with exclusive: highest (one act that fits several items scores once)
        self._exclusive = any(c.exclusive for c in self.compiled.rules)
        self.subjects: dict[str, _Subject] = {}
        self.start_state({})
        self.begin(first_id, first_trial_id)
        self.plan()

    # --- state -------------------------------------------------------------

    def load_subjects(
        self,
        grids: dict[str, tuple[str, str]],
        memberships: Iterable[tuple[str, str]],
        subjects: Iterable[tuple[str, str | None, str | None, str | None, str | None]],
    ) -> None:
        """The subjects: ``grids`` (grid → (community, street)), ``memberships``
        (subject, group) and ``subjects`` (id, kind, grid, tags JSON, links JSON)."""
        groups: dict[str, list[str]] = defaultdict(list)
        for s, g in memberships:
            groups[s].append(g)
        order = self.group_order
        self.subjects = {}
        for sid, kind, grid, tags, links in subjects:
            comm, street = grids.get(grid or "", ("", ""))
            view = SubjectView(
                id=sid,
                grid=grid or "",
                community=comm,
                street=street,
                tags=frozenset(orjson.loads(tags)) if tags else frozenset(),
                links=orjson.loads(links) if links else {},
            )
            gs = tuple(sorted(groups.get(sid, []), key=lambda g: order.get(g, 999)))
            memo = self._memos.get(gs)
            if memo is None:
                memo = self._memos[gs] = {}
            view.probe = self._probe  # subject.graded / subject.tier at the event
            self.subjects[sid] = _Subject(view, gs, kind or "person", sid, memo)

    def start_state(self, accounts: dict[tuple[str, str], list[int]]) -> None:
        """Start the accounts' state afresh from ``accounts``: [fixed score, wallet]
        of each (subject, group), the fixed score leaving out points that expire."""
        self.acct: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.acct.update(accounts)
        self._other_caps: dict[tuple[bool, str], dict[str, list[Any]]] = {}
        self.matches: dict[tuple, list[int]] = defaultdict(list)
        self.expiring: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        # direct gradings still in force and not undone: (subject, group) → [(tier, until, entry id)]
        self.graded: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
        # running totals: (trial, subject, group, rule, period key) → the entries adding to
        # it, [entry id, event, amount, row], in entry-id order (a rewrite after a correction
        # renews the entries after the undone one, so the order holds); events → their keys
        self.totals: dict[tuple, list[list[Any]]] = {}
        self.total_events: dict[str, list[tuple]] = defaultdict(list)

    def horizons(self, since: int) -> dict[str, int]:
        """How far back each capped or escalating rule's entries still count for a
        run from ``since``: a cap counter holds the period ``since`` falls in (an
        earlier one is reset by the first event), an escalation window looks back
        its length from each event. What :meth:`count_prior` needs, by rule id."""
        horizons: dict[str, int] = {}
        for c in self.compiled.rules:
            if c.cap_per:
                horizons[c.id] = self._spans_of(since, c.cap_per)[0]
            if c.esc_steps or c.esc_factor:
                h = self.clock.sub(since, c.esc_within) - 86400 if c.esc_within else -(2**62)
                horizons[c.id] = min(h, horizons.get(c.id, h))
        return horizons

    def count_prior(self, rows: Iterable[tuple], trial: bool) -> None:
        """Cap counters and escalation windows from earlier entries since the rules'
        horizons, in (time, id) order: (rule, subject, group, at, points, reason,
        reason of the entry a reversal undoes, ...), ``at`` being the undone
        entry's for a reversal (it counts in that entry's period)."""
        capped_rules = {(c.id, c.group): c for c in self.compiled.rules if c.cap_per}
        esc_rules = {(c.id, c.group): c for c in self.compiled.rules if c.esc_steps or c.esc_factor}
        for rule, s, g, at, pts, reason, undone, *_ in rows:
            capped = capped_rules.get((rule, g))
            if capped is not None and capped.cap_per:
                pk = self._period(at, capped.cap_per)
                caps = self._caps_of(s, trial)
                ck = capped.cap_key  # the rule's, or its family's shared cap
                u = caps.get(ck)
                if u is None or u[0] < pk:
                    u = caps[ck] = [pk, 0, 0]
                if u[0] != pk:
                    pass  # a reversal of an entry in a period already over
                elif reason == "match":
                    u[1] += abs(pts)
                    u[2] += 1
                elif reason == "reversal" and undone == "match":
                    u[1] -= abs(pts)
                    u[2] -= 1
            esc = esc_rules.get((rule, g))
            if esc is not None and reason in ("match", "capped"):
                self.matches[(trial, esc.esc_key, s, g)].append(at)
            elif esc is not None and reason == "reversal" and undone in ("match", "capped"):
                times = self.matches.get((trial, esc.esc_key, s, g))
                if times and at in times:
                    times.remove(at)

    def load_totals(self, rows: Iterable[tuple], trial: bool = False) -> None:
        """Running totals from earlier entries of the rules in ``total_rules``: their match
        entries (live ones; for the shadow ledger all of them, as trial corrections give
        nothing back) as (id, row in ``ENTRY_COLUMNS`` order), in id order. The total
        before and after each entry is in its note."""
        for entry_id, row in rows:
            m = _TOTAL_NOTE.match(row[15] or "")
            if m is None or row[10] != "match":
                continue
            _, before, after, pk, stands_for = m.groups()
            eid = stands_for or row[7]
            key = (trial, row[0], row[1], row[5], pk)
            self.totals.setdefault(key, []).append(
                [entry_id, eid, exact(after) - exact(before), tuple(row)]
            )
            if not trial:
                self.total_events[eid].append(key)

    def link_accounts(self) -> None:
        """Give each subject its accounts' lists (the hot loop's, without a key to hash)."""
        for sid, subj in self.subjects.items():
            subj.acct = {g: self.acct[(sid, g)] for g in subj.groups}

    def load_expiring(self, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Points that expire after the run's start: (subject, group, expires_at, points)."""
        for s, g, exp, pts in rows:
            self.expiring[(s, g)].append((exp, pts))

    def load_graded(self, rows: Iterable[tuple[str, str, str, int, int]]) -> None:
        """Direct gradings in force and not undone: (subject, group, tier, until, entry id)."""
        for s, g, tier, until, eid in rows:
            self.graded[(s, g)].append((tier, until, eid))

    def begin(self, first_id: int, first_trial_id: int = 1) -> None:
        """Start the run's own bookkeeping: its entries take ids from ``first_id``
        (trial entries from ``first_trial_id``) in emit order."""
        self.first_id = first_id
        self.first_trial_id = first_trial_id
        self.flushed = 0
        self.trial_flushed = 0
        self.undone: set[int] = set()  # entries reversed or repaired in this run
        self.reversed: set[int] = set()
        self.trial_reversed: set[int] = set()
        self.run_rows: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
        self.run_trial_rows: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
        self.penalties: dict[tuple[str, str], list[tuple[int, tuple]]] = defaultdict(list)
        self.repairs: dict[int, list[tuple[int, tuple]]] = defaultdict(list)  # penalty id → repairs
        self.granted: dict[str, tuple[str, str, int, int]] = {}  # this run's granted redemptions
        self.returned: set[str] = set()  # redemptions given back in this run
        self.stock_used: dict[str, int] = defaultdict(int)
        self.item_usage: dict[tuple, int] = defaultdict(int)
        self.repairable = {
            r for c in self.compiled.rules if c.repair for r in c.repair.get("rules", [])
        }
        for c in self.compiled.rules:
            if c.id in self.repairable:
                c.shape = GENERAL  # their penalties are tracked in _post for credit repair

    def plan(
        self,
        targets: Iterable[str] = (),
        amendments: Iterable[tuple[str, str, int]] = (),
        skip_amended: Iterable[str] = (),
    ) -> None:
        """The corrections to expect. ``targets``: the events that this pass's
        events withdraw, amend or dispute; ``amendments``: (amended, amending id,
        its time) across the ledger; ``skip_amended``: events amended by one that
        sorts before them (never scored: the amendment replaces them). The entries
        of targets and of their versions are kept in memory for the reversal."""
        self.amendments: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for amends, aid, aat in amendments:
            self.amendments[amends].append((aat, aid))
        for versions in self.amendments.values():
            versions.sort()
        found = set(targets)
        for t in list(found):
            found.update(aid for _, aid in self._versions(t))
        self._all_targets = frozenset(found)
        self.targets = self._all_targets
        self.skip_amended = frozenset(skip_amended)

    def finish(self) -> None:
        """Emit what is still queued: redemptions, entry kinds, entries, trial entries."""
        self.flush_redemptions()
        self.flush()

    # --- helpers -----------------------------------------------------------

    def _caps_of(self, sid: str, trial: bool) -> dict[str, list[Any]]:
        """The cap counters of a subject, by rule id (see _Subject.caps)."""
        subj = self.subjects.get(sid)
        if subj is None:  # entries of a subject no longer listed
            return self._other_caps.setdefault((trial, sid), {})
        return subj.trial_caps if trial else subj.caps

    def _counter(self, period: str, sid: str, rule: str, trial: bool) -> list[Any]:
        """The cap counter ``[period, points, matches]`` of a subject under a rule for
        ``period``. Events come in time order, so a period other than the counter's
        is a later one: the cap starts afresh."""
        caps = self._caps_of(sid, trial)
        u = caps.get(rule)
        if u is None:
            u = caps[rule] = [period, 0, 0]
        elif u[0] != period:
            u[:] = [period, 0, 0]
        return u

    def _period(self, at: int, kind: str) -> str:
        key = (kind, at // 900)
        p = self._period_cache.get(key)
        if p is None:
            p = self._period_cache[key] = self.clock.period(at, kind)
        return p

    def _posting(self, at: int, eid: str) -> str:
        month = self.calendar.posting_month(at)
        if month != self.clock.month(at) and eid not in self._late_seen:
            self._late_seen.add(eid)  # an amendment posts twice (reversal, new entries)
            self.summary.late += 1
            self.late_by_month[month] += 1
        return month

    def _kind(self, *kind: Any) -> int:
        """The id of an entry kind ``(group, account, rule, pack hash, reason, note)``."""
        k = self._kinds.get(kind)
        if k is None:
            k = self._kinds[kind] = len(self._kind_rows)
            self._kind_rows.append(kind)
            self._new_kinds.append((k, *kind))
        return k

    def _rule_kinds(self, c: CompiledRule, grp: str) -> tuple[int, int, int, int]:
        """The kinds of a common-shape rule's entries: a match that moves the wallet,
        one that does not, and a match capped by count or by points."""
        return (
            self._kind(grp, "score+wallet", c.id, c.pack_hash, "match", None),
            self._kind(grp, "score", c.id, c.pack_hash, "match", None),
            self._kind(grp, "score", c.id, c.pack_hash, "capped", c.count_note),
            self._kind(grp, "score", c.id, c.pack_hash, "capped", c.points_note),
        )

    def full(self, row: tuple) -> tuple:
        """An entry row in full, whether it was queued full or compact (see ENTRIES)."""
        if len(row) != 7:
            return row
        sid, pts, w, eid, at, period, kind = row
        grp, account, rule, pack_hash, reason, note = self._kind_rows[kind]
        return (sid, grp, account, pts, w, rule, pack_hash, eid, at, period, reason,
                None, None, None, None, note)  # fmt: skip

    def flush(self) -> None:
        """Emit the queued entries (the runner writes them to the ledger)."""
        if self._new_kinds:
            self.emit(KINDS, self._new_kinds[:])
            self._new_kinds.clear()
        if self.buf:
            self.summary.entries += len(self.buf)
            self.flushed += len(self.buf)
            self.emit(ENTRIES, self.buf[:])  # a copy: loops hold on to self.buf
            self.buf.clear()
        self._flush_trial()

    def _flush_trial(self) -> None:
        if self.trial_buf:
            self.summary.trial_entries += len(self.trial_buf)
            self.trial_flushed += len(self.trial_buf)
            self.emit(TRIAL, self.trial_buf[:])
            self.trial_buf.clear()

    def _post(self, row: tuple, trial: bool = False) -> None:
        """Queue one entry and keep the running state (score, gradings, penalties) in step."""
        if trial:
            self.trial_buf.append(row)
            return
        entry_id = self.first_id + self.flushed + len(self.buf)
        self.buf.append(row)
        key = (row[0], row[1])
        pts = row[3]
        if pts:
            if row[12] is None:
                self.acct[key][0] += pts
            else:
                self.expiring[key].append((row[12], pts))
        if row[13] is not None:
            self.graded[key].append((row[13], row[14], entry_id))
        if (
            (pts < 0 or row[13] is not None)  # a penalty or a grading: credit repair undoes it
            and row[10] in ("match", "linked")
            and row[5] in self.repairable
        ):
            self.penalties[key].append((entry_id, row))
        elif row[10] == "repair":
            self.repairs[row[11]].append((entry_id, row))

    def _probe(self, subject: str, grp: str, what: str) -> Any:
        """What a condition reads of the subject's state at the event being scored
        (``self._now``): ``graded`` (a direct grading in force, not undone), ``tier``, or
        ``listed`` (the ids of the lists by tier or score the account is on, as
        ``scoring.lists`` tells them from the same score and tier)."""
        at = self._now
        if what == "graded":
            return any(
                until > at and entry_id not in self.undone
                for _, until, entry_id in self.graded.get((subject, grp), ())
            )
        if grp not in self.scheme.groups:
            return None if what == "tier" else frozenset()
        score, tier = self._score_at(subject, grp, at)
        if what == "tier":
            return tier
        # listed: the lists by tier or score the account is on (validate refuses the others)
        return frozenset(
            ld.id
            for ld in self.scheme.lists
            if grp in ld.groups
            and any(
                (rs.tiers is not None or rs.min_score is not None or rs.max_score is not None)
                and (rs.tiers is None or tier in rs.tiers)
                and (rs.min_score is None or score >= rs.min_score)
                and (rs.max_score is None or score <= rs.max_score)
                for rs in ld.reasons
            )
        )

    def _score_at(self, subject: str, grp: str, at: int) -> tuple[int, str]:
        """Score and tier of one account at ``at`` (for redemptions)."""
        g = self.scheme.groups[grp]
        key = (subject, grp)
        score = (
            g.base_score
            + self.acct[key][0]
            + sum(p for e, p in self.expiring.get(key, ()) if e > at)
        )
        tier = g.tier_of(score)
        for grade, until, entry_id in self.graded.get(key, ()):
            if until > at and entry_id not in self.undone:
                tier = capped_tier(g, tier, grade)
        return score, tier

    # --- the run -----------------------------------------------------------

    # --- scoring -----------------------------------------------------------

    def _enter_era(self, at: int) -> None:
        """Make the era holding ``at`` current; the memo starts afresh (in place, so
        loops that hold it see the change)."""
        bounds = self._era_bounds
        i = bisect.bisect_right(bounds, at)
        self._era[:] = [
            bounds[i - 1] if i else FAR_PAST,
            bounds[i] if i < len(bounds) else FAR_FUTURE,
        ]
        for memo in self._memos.values():
            memo.clear()

    def _first_sight(
        self, eid: str, sid: str, subj: _Subject | None, at: int, key: str
    ) -> list[tuple] | None:
        """An event the memo does not answer: a system event (redemption, withdrawal,
        objection), carried out here; one naming no known subject; or the first of its
        (type, attributes) for the subject's groups in this era: its steps, memoised.
        None when the event is done with."""
        etype, _, attrs_json = key.partition("\x1f")
        if etype in self.system_types:
            if etype == REDEEM:
                self._redeem(eid, sid, at, orjson.loads(attrs_json))
            elif etype == WITHDRAW or etype == OBJECTION:
                self._correction(eid, etype, at, orjson.loads(attrs_json))
            return None
        if subj is None:
            if etype in self.compiled.by_type:
                self._unknown_subject(eid, sid)
            return None
        return self._steps(etype, subj, key, attrs_json, at)

    def _steps(self, etype: str, subj: _Subject, key: str, attrs_json: str, at: int) -> list[tuple]:
        """What the rules in force at ``at`` make of one (type, groups, attributes):
        memoised for the era in ``subj.memo`` (shared by subjects of the same groups) by
        ``key``, the event's ``type \x1f attributes JSON`` as the scan reads it, since
        most events repeat a few attribute sets. Each step
        is ``(group, rule, points, mode, kinds)``: mode ``INLINE`` has the points of a
        matched common-shape rule, ``APPLY`` a matched rule with other effects,
        ``PER_EVENT`` a rule whose condition reads the subject (tested for each event);
        ``kinds`` are the entry kinds of a common-shape rule (see _rule_kinds). Rules
        that cannot match or are not in force are left out."""
        memo = subj.memo
        if len(memo) >= MEMO_MAX:
            memo.clear()
        attrs = orjson.loads(attrs_json)
        steps: list[tuple] = []
        for g in subj.groups:
            for c in self.by_type_group.get((etype, g), ()):
                if not (c.start <= at < c.end):
                    continue
                kinds = self._rule_kinds(c, g) if c.shape != GENERAL else None
                if c.id in self._subject_rules:
                    steps.append((g, c, None, PER_EVENT, kinds))
                    continue
                if c.test is not None and not c.test(attrs, _NO_SUBJECT, g, etype):
                    continue
                if c.shape == GENERAL:
                    steps.append((g, c, None, APPLY, None))
                    continue
                pts = c.points(attrs)  # type: ignore[misc]  # never None for these shapes
                if pts:
                    steps.append((g, c, pts, INLINE, kinds))
        if self._exclusive and len(steps) > 1:
            steps = _highest_of_families(steps, attrs)
        memo[key] = steps
        return steps

    def _spans_of(self, at: int, kind: str) -> list[Any]:
        """``[start, end, key]`` of the ``kind`` period holding ``at``, kept for reuse."""
        key = self.clock.period(at, kind)
        start, end = self.clock.period_bounds(key)
        span = self._spans[kind]
        span[:] = [start, end, key]
        return span

    def score_rows(self, rows: Iterable[tuple]) -> None:
        subjects = self.subjects
        loads = orjson.loads
        posting = self._posting
        apply = self._apply
        buf = self.buf
        latest = self.calendar.latest  # months up to the latest closed one are history
        n = 0
        targets = self.targets
        era = self._era
        first_sight = self._first_sight
        spans = self._spans
        spans_of = self._spans_of
        month = spans["month"]  # events come in time order: the month rarely changes
        skip = self.skip_amended
        special = skip | targets  # one set lookup per event on the common path
        capped_n = 0
        for eid, sid, at, key, amends in rows:
            n += 1
            if eid in special:
                if eid in skip:
                    continue
                if eid in targets:
                    self._score_rows_of_target([(eid, sid, at, key, amends)])
                    continue
            if amends and self._names_an_event(amends, eid, "amends"):
                self._reverse_event(amends, eid, at)
            if not (era[0] <= at < era[1]):
                self._enter_era(at)
            subj = subjects.get(sid)
            if subj is None:
                first_sight(eid, sid, None, at, key)
                continue
            steps = subj.memo.get(key)
            if steps is None:
                steps = first_sight(eid, sid, subj, at, key)
                if steps is None:
                    continue
            if not steps:
                continue
            sid = subj.sid  # the stored id object: the dict keys below hold it
            period = None
            attrs = None
            for grp, c, pts, mode, kinds in steps:
                if mode == PER_EVENT:
                    if attrs is None:  # the key split once, on the first step that reads it
                        etype, _, attrs_json = key.partition("\x1f")
                        attrs = loads(attrs_json)
                    test = c.test
                    self._now = at  # what subject.graded / subject.tier read
                    if test is not None and not test(attrs, subj.view, grp, etype):
                        continue
                    if c.shape == GENERAL:
                        mode = APPLY
                    else:
                        pts = c.points(attrs)  # type: ignore[misc]  # never None for these shapes
                        if not pts:
                            continue
                if period is None:
                    if not (month[0] <= at < month[1]):
                        month = spans_of(at, "month")
                    period = month[2]
                    if latest and period <= latest:
                        period = posting(at, eid)
                if mode == APPLY:
                    if attrs is None:
                        etype, _, attrs_json = key.partition("\x1f")
                        attrs = loads(attrs_json)
                    apply(c, eid, sid, subj, at, attrs, period)
                    continue
                # the common shapes, inline: points (a number or a points form),
                # optionally a cap; no windows, expiry or side effects
                if c.shape == CAPPED:
                    span = spans[c.cap_per]  # type: ignore[index]  # set for capped rules
                    if not (span[0] <= at < span[1]):
                        span = spans_of(at, c.cap_per)  # type: ignore[arg-type]
                    u = subj.caps.get(c.cap_key)  # _counter, inline
                    if u is None:
                        u = subj.caps[c.cap_key] = [span[2], 0, 0]
                    elif u[0] != span[2]:
                        u[:] = [span[2], 0, 0]  # a new period
                    if c.max_count is not None and u[2] >= c.max_count:
                        capped_n += 1
                        buf.append((sid, 0, 0, eid, at, period, kinds[2]))
                        continue
                    note = None
                    if c.max_points is not None:
                        left = c.max_points - u[1]
                        if left <= 0:
                            capped_n += 1
                            buf.append((sid, 0, 0, eid, at, period, kinds[3]))
                            continue
                        if abs(pts) > left:
                            cut = left if pts > 0 else -left
                            note = (
                                f"cut from {c.show(pts)} to {c.show(cut)} by {c.points_note[:-8]}"
                            )
                            pts = cut
                    u[1] += abs(pts)
                    u[2] += 1
                else:
                    note = None
                a = subj.acct[grp]
                if pts > 0 and c.wallet is not False:
                    a[1] += pts
                    if note is None:
                        buf.append((sid, pts, pts, eid, at, period, kinds[0]))
                    else:
                        buf.append((sid, grp, "score+wallet", pts, pts, c.id, c.pack_hash, eid,
                                    at, period, "match", None, None, None, None, note))  # fmt: skip
                elif note is None:
                    buf.append((sid, pts, 0, eid, at, period, kinds[1]))
                else:
                    buf.append((sid, grp, "score", pts, 0, c.id, c.pack_hash, eid, at,
                                period, "match", None, None, None, None, note))  # fmt: skip
                a[0] += pts
        self.summary.events += n
        self.summary.capped += capped_n

    def _score_rows_of_target(self, rows: list[tuple]) -> None:
        """Score an event that a later event withdraws, amends or disputes, keeping its
        entries (with their ids) in memory so the reversal needs no ledger read."""
        eid = rows[0][0]
        start = self.flushed + len(self.buf)
        tstart = self.trial_flushed + len(self.trial_buf)
        self.targets = frozenset()  # score it the ordinary way, without recursing here
        try:
            self.score_rows(rows)
        finally:
            self.targets = self._all_targets
        self.summary.events -= 1  # counted by the caller
        mine = self.run_rows[eid]
        for i, row in enumerate(self.buf[start - self.flushed :]):
            row = self.full(row)
            if row[7] == eid:
                mine.append((self.first_id + start + i, row))
        if self.has_trial:  # its shadow-ledger entries too (see _reverse_trial)
            tmine = self.run_trial_rows[eid]
            for i, row in enumerate(self.trial_buf[tstart - self.trial_flushed :]):
                if row[7] == eid:
                    tmine.append((self.first_trial_id + tstart + i, row))

    def _apply(
        self, c: CompiledRule, eid: str, sid: str, subj: _Subject, at: int, attrs: dict, period: str
    ) -> None:
        if c.withhold is not None:  # e.g. no bonuses while a downgrade is unrepaired
            self._now = at
            if c.withhold(attrs, subj.view, c.group, c.rule.on[0]):
                if c.points is not None and not c.points(attrs):
                    return  # no match anyway
                self.summary.withheld += 1
                self._post((sid, c.group, "score", 0, 0, c.id, c.pack_hash, eid, at, period,
                            "capped", None, None, None, None, c.withhold_note), c.trial)  # fmt: skip
                return
        if c.total is not None:
            self._apply_total(c, eid, sid, subj, at, attrs, period)
            return
        grp = c.group
        trial = c.trial
        if c.esc_steps or c.esc_factor:
            base = 0
            if c.esc_factor:  # {within, factor}: a repeat scores the rule's points × factor
                found = c.points(attrs) if c.points is not None else None
                if not found:
                    return
                base = found
            # the window is the rule's, or its family's (every match of the family counts)
            times = self.matches[(trial, c.esc_key, sid, grp)]
            floor = self.clock.sub(at, c.esc_within) if c.esc_within else -(2**62)
            n = 1 + sum(1 for t in times if t > floor)
            times.append(at)
            if c.esc_steps:
                pts = c.esc_steps[min(n, len(c.esc_steps)) - 1]
            else:
                pts = base * c.esc_factor if n > 1 else base
        else:
            found = c.points(attrs) if c.points is not None else 0
            if found is None:
                return
            pts = found
        if pts == 0 and c.repair is None and not c.grade_to:
            return  # a zero-point match is no match: it neither counts against a cap nor shows
        capped = False
        note = None
        if c.cap_per:
            u = self._counter(self._period(at, c.cap_per), sid, c.cap_key, trial)
            if c.max_count is not None and u[2] >= c.max_count:
                capped, note = True, c.count_note
            elif c.max_points is not None:
                left = c.max_points - u[1]
                if left <= 0:
                    capped, note = True, c.points_note
                elif abs(pts) > left:
                    cut = left if pts > 0 else -left
                    note = f"cut from {c.show(pts)} to {c.show(cut)} by {c.points_note[:-8]}"
                    pts = cut
            if not capped:
                u[1] += abs(pts)
                u[2] += 1
        if capped:
            self.summary.capped += 1
            capped_row: tuple = (sid, grp, "score", 0, 0, c.id, c.pack_hash, eid, at, period, "capped",
                   None, None, None, None, note)  # fmt: skip
            self._post(capped_row, trial)
            return
        if pts == 0 and c.repair is None and not c.grade_to:
            return
        if c.repair is not None:
            self._repair(c, eid, sid, grp, at, period, trial)
            if pts == 0 and not c.grade_to:
                return
        wallet_moves = c.wallet if c.wallet is not None else pts > 0
        w = 0
        if wallet_moves:
            if trial:
                w = max(pts, 0)
            else:
                a = self.acct[(sid, grp)]
                w = pts if pts > 0 else -min(-pts, a[1])
                a[1] += w
        if c.expires:
            expires_at: int | None = self.clock.add(at, c.expires)
        else:  # by the entry's size (after caps and escalation), or to a calendar boundary
            expires_at = c.expiry(at, pts) if c.expiry is not None else None
        grade: str | None = None
        grade_until: int | None = None
        if c.grade_to and c.grade_for:
            grade, grade_until = c.grade_to, self.clock.add(at, c.grade_for)
            if pts == 0 and note is None:  # a grading of its own, without points
                note = f"direct grading to {grade}"
        account = "score+wallet" if w else "score"
        row = (sid, grp, account, pts, w, c.id, c.pack_hash, eid, at, period, "match",
               None, expires_at, grade, grade_until, note)  # fmt: skip
        self._post(row, trial)
        for link in c.also:
            self._linked(c, link, eid, subj, at, period, pts, expires_at, trial)

    def _apply_total(
        self, c: CompiledRule, eid: str, sid: str, subj: _Subject, at: int, attrs: dict, period: str
    ) -> None:
        """A match of a running-total rule: the event adds its amount to the subject's total
        in the period and scores what that adds to the total's points; an entry is written
        even when that is 0, so the total (in its note) is kept and shown."""
        t = c.total
        assert t is not None
        x = attrs.get(t.attr)
        if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
            return  # no amount: no match
        amount = exact(x)
        pk = "ever" if t.period == "ever" else self._period(at, t.period)
        key = (c.trial, sid, c.group, c.id, pk)
        entries = self.totals.setdefault(key, [])
        before = sum((e[2] for e in entries), exact(0))
        after = before + amount
        pts = t.points_of(after) - t.points_of(before)
        note = f"total {t.attr} {decimal_text(before)} → {decimal_text(after)} ({pk})"
        if c.expires:
            expires_at: int | None = self.clock.add(at, c.expires)
        else:
            expires_at = c.expiry(at, pts) if c.expiry is not None else None
        row = self._total_row(c, sid, pts, eid, at, period, expires_at, note, c.trial)
        if c.trial:
            self._post(row, True)
            entries.append([0, eid, amount, row])
            return
        entry_id = self.first_id + self.flushed + len(self.buf)
        self._post(row)
        entries.append([entry_id, eid, amount, row])
        self.total_events[eid].append(key)

    def _total_row(
        self, c: CompiledRule, sid: str, pts: int, eid: str, at: int, period: str,
        expires_at: int | None, note: str, trial: bool,
    ) -> tuple:  # fmt: skip
        grp = c.group
        w = 0
        if pts and (c.wallet if c.wallet is not None else pts > 0):
            if trial:
                w = max(pts, 0)
            else:
                a = self.acct[(sid, grp)]
                w = pts if pts > 0 else -min(-pts, a[1])
                a[1] += w
        return (sid, grp, "score+wallet" if w else "score", pts, w, c.id, c.pack_hash, eid, at,
                period, "match", None, expires_at, None, None, note)  # fmt: skip

    def _undo_total(self, target: str, eid: str, at: int, period: str) -> None:
        """``target`` is undone: take its amounts out of their running totals and score the
        later events of each total again, by new entries at ``at`` (the old ones are
        reversed; history is never edited)."""
        for key in self.total_events.pop(target, ()):
            entries = self.totals.get(key, [])
            i = next((k for k, e in enumerate(entries) if e[1] == target), None)
            if i is None:
                continue
            entry_id, _, amount, row = entries.pop(i)
            self._reverse_entry(_live_tuple(entry_id, row), eid, at, period, f"event {target}")
            if not amount:
                continue
            c = self.rules_by_id_group.get((key[3], key[2]))
            if c is None or c.total is None:
                continue
            t = c.total
            before = sum((e[2] for e in entries[:i]), exact(0))
            for e in entries[i:]:
                old_id, stands_for, amt, old = e
                self._reverse_entry(
                    _live_tuple(old_id, old), eid, at, period, f"event {stands_for}"
                )
                after = before + amt
                pts = t.points_of(after) - t.points_of(before)
                note = (f"total {t.attr} {decimal_text(before)} → {decimal_text(after)}"
                        f" ({key[4]}); recomputed for event {stands_for}")  # fmt: skip
                new = self._total_row(c, key[1], pts, eid, at, period, old[12], note, False)
                e[0] = self.first_id + self.flushed + len(self.buf)
                e[3] = new
                self._post(new)
                before = after

    def _linked(
        self, c: CompiledRule, link: dict, eid: str, subj: _Subject, at: int, period: str,
        pts: int, expires_at: int | None, trial: bool,
    ) -> None:  # fmt: skip
        name = link.get("link", "")
        target = subj.view.links.get(name)
        if target is None:  # this subject has no such link: nothing to give
            return
        tsubj = self.subjects.get(target)
        grp: str = link.get("group") or c.group
        if tsubj is None or grp not in tsubj.groups:
            if not trial:  # found in review: the linked points vanished without a word
                why = "is not in the subjects file" if tsubj is None else f"is not in group '{grp}'"
                self._reject(
                    eid,
                    f"linked points of rule '{c.id}' for {subj.view.id}'s {name} '{target}' not"
                    f" given: '{target}' {why}"
                    + ("; they wait: ingest the subject and run `gridcredit score`" if tsubj is None
                       else "; correct the subject's groups or links"),
                    waits=target if tsubj is None else None,
                )  # fmt: skip
            return
        lp = link.get("points", "same")
        p = pts if lp == "same" else int(lp)
        lg = link.get("grade") if c.grade_to else None  # a grading passed on (联奖联罚)
        if p == 0 and not lg:
            return
        grade = grade_until = None
        if lg:
            grade = c.grade_to if lg == "same" else lg
            grade_until = self.clock.add(at, c.grade_for)  # type: ignore[arg-type]
        if c.expiry is not None:  # a linked entry's validity follows its own size
            expires_at = c.expiry(at, p)
        w = 0
        moves = c.wallet if c.wallet is not None else p > 0
        if moves and not trial:
            a = self.acct[(target, grp)]
            w = p if p > 0 else -min(-p, a[1])
            a[1] += w
        row = (target, grp, "score+wallet" if w else "score", p, w, c.id, c.pack_hash, eid, at,
               period, "linked", None, expires_at, grade, grade_until,
               f"linked from {subj.view.id}")  # fmt: skip
        self._post(row, trial)

    def _repair(
        self, c: CompiledRule, eid: str, sid: str, grp: str, at: int, period: str, trial: bool
    ) -> None:
        spec = c.repair or {}
        rules = set(spec.get("rules", []))
        if not rules or trial:
            return
        floor = self.clock.sub(at, spec["within"])
        candidates = [
            (row[8], entry_id, row[3], row[5], row[6], row[12])
            for entry_id, row in self.penalties.get((sid, grp), ())
            if row[5] in rules and floor <= row[8] <= at and entry_id not in self.undone
        ]
        for entry_id, pts, rule, pack_hash, oat, expires_at in self.prior.penalties(
            sid, grp, sorted(rules), floor, at
        ):
            if entry_id not in self.undone:
                candidates.append((oat, entry_id, pts, rule, pack_hash, expires_at))
        if not candidates:
            return
        _, ref, orig, rule, pack_hash, expires_at = max(candidates)  # the most recent penalty
        self.undone.add(ref)
        back = -orig if spec.get("restore", "all") == "all" else (-orig) // 2
        self._post(
            (
                sid,
                grp,
                "score",
                back,
                0,
                rule,
                pack_hash,
                eid,
                at,
                period,
                "repair",
                ref,
                expires_at,
                None,
                None,
                f"credit repair by {c.id}",
            )  # fmt: skip
        )

    def _versions(self, target: str) -> list[tuple[int, str]]:
        """(time, id) of the events that amend ``target``, and of those that amend
        them in turn, in order (a loop of amendments is followed once)."""
        out: list[tuple[int, str]] = []
        todo, seen = [target], {target}
        while todo:
            for version in self.amendments.get(todo.pop(), ()):
                if version[1] not in seen:
                    seen.add(version[1])
                    out.append(version)
                    todo.append(version[1])
        return sorted(out)

    def _reverse_event(self, target: str, eid: str, at: int) -> None:
        """Undo ``target`` as it stands when ``eid`` (at ``at``) corrects it: its own
        live entries and those of its amendments that come before ``eid``, so that
        of two amendments of one event only the later stands, and a withdrawal of
        an amended event withdraws its amendment too."""
        period = self._posting(at, eid)
        self._reverse_entries(target, eid, at, period)
        undone = [target]
        for version in self._versions(target):
            if version < (at, eid):
                self._reverse_entries(version[1], eid, at, period)
                undone.append(version[1])
        if self.has_trial:
            self._reverse_trial(undone, eid, at, period)

    def _reverse_trial(self, undone: list[str], eid: str, at: int, period: str) -> None:
        """Undo the shadow-ledger entries of the undone events too (found in review: a
        withdrawn event's trial entries stood, so trial figures overstated a rule's
        effect). Trial reversals give no cap room or window back, in a run or after."""
        buf = self.trial_buf
        for t in undone:
            rows = self.prior.live_trial_entries(t) + self.run_trial_rows.get(t, [])
            for ref, r in sorted(rows):
                if r[10] not in _TRIAL_REVERSED or ref in self.trial_reversed:
                    continue
                self.trial_reversed.add(ref)
                buf.append((r[0], r[1], r[2], -r[3], -r[4], r[5], r[6], eid, at, period,
                            "reversal", ref, r[12], None, None,
                            f"reverses trial entry {ref} of event {t}"))  # fmt: skip

    def _reverse_entries(self, target: str, eid: str, at: int, period: str) -> None:
        """Undo every live entry of ``target`` with new opposite entries.

        Credit repairs that restored one of those entries are undone too (else
        the penalty would be paid back twice), and a withdrawn redemption gives
        its points and its stock back.
        """
        found = self._live_entries(self.run_rows.get(target, ()), self.prior.live_entries(target))
        if self.total_rules:  # running totals' entries are undone by _undo_total, below
            found = [e for e in found if not (e[10] == "match" and e[6] in self._total_set)]
        for entry in found:
            if self._reverse_entry(entry, eid, at, period, f"event {target}"):
                repairs = self._live_entries(
                    self.repairs.get(entry[0], ()), self.prior.live_repairs(entry[0])
                )
                for repair in repairs:
                    self._reverse_entry(repair, eid, at, period, f"the repair of entry {entry[0]}")
        if any(e[10] == "redeem" for e in found):
            self._return_redemption(target)
        if target in self.total_events:  # running totals: the later entries are scored again
            self._undo_total(target, eid, at, period)

    def _live_entries(self, mine: Iterable[tuple[int, tuple]], earlier: list[tuple]) -> list[tuple]:
        """Entries not yet reversed: this run's (``mine``, from memory) and earlier
        runs' (from the prior state), as (id, subject, grp, account, points, wallet,
        rule, pack_hash, at, expires_at, reason), in id order."""
        rows = [
            (entry_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[8], r[12], r[10])
            for entry_id, r in mine
        ]
        rows += earlier
        return sorted(rows)

    def _reverse_entry(self, entry: tuple, eid: str, at: int, period: str, what: str) -> bool:
        ref, s, g, account, pts, w, rule, pack_hash, oat, expires_at, reason = entry
        if reason not in ("match", "capped", "linked", "repair", "redeem") or ref in self.reversed:
            return False
        self.reversed.add(ref)
        self.undone.add(ref)
        c = self.rules_by_id_group.get((rule, g)) or self.rules_by_id.get(rule)
        if reason in ("match", "capped") and c is not None:
            if c.cap_per and reason == "match":
                u = self._caps_of(s, False).get(c.cap_key)
                if u and u[0] == self._period(oat, c.cap_per):
                    u[1] -= abs(pts)
                    u[2] -= 1
            if c.esc_steps or c.esc_factor:
                times = self.matches.get((False, c.esc_key, s, g))
                if times and oat in times:
                    times.remove(oat)
        back_w = 0
        if w:
            a = self.acct[(s, g)]
            back_w = -w if w < 0 else -min(w, a[1])
            a[1] += back_w
        self._post(
            (
                s,
                g,
                account,
                -pts,
                back_w,
                rule,
                pack_hash,
                eid,
                at,
                period,
                "reversal",
                ref,
                expires_at,
                None,
                None,
                f"reverses entry {ref} of {what}",
            )  # fmt: skip
        )
        if reason != "capped":
            self.summary.reversals += 1
        return True

    def _correction(self, eid: str, etype: str, at: int, attrs: dict) -> None:
        target = attrs.get("target")
        if not target:
            return
        if not self._names_an_event(
            target, eid, "withdraws" if etype == WITHDRAW else "objects to"
        ):
            return
        if etype == WITHDRAW:
            self._reverse_event(target, eid, at)
            return
        status = attrs.get("status", "open")
        self.emit(OBJECTIONS, [(target, eid, status, at, None if status == "open" else at)])
        if status == "upheld":
            self._reverse_event(target, eid, at)

    def _names_an_event(self, target: str, eid: str, verb: str) -> bool:
        """Whether a correction names another ingested event; if not, it reverses
        nothing and leaves a reject of batch 0 at its file and line, so that a
        mistyped id is seen (found in review: it passed without a word)."""
        if target != eid and self.prior.has_event(target):
            return True
        self.summary.orphan_corrections += 1
        what = "itself" if target == eid else f"event '{target}', which is not in the ledger"
        self._reject(
            eid,
            f"the correction {verb} {what}: nothing was reversed; check the id it names",
            # the target may come in a later file: the correction is then scored again
            # (see Engine._requeue_waiting), so that any split gives the one-run ledger
            waits=None if target == eid else WAITS_EVENT + target,
        )
        return False

    def _unknown_subject(self, eid: str, sid: str) -> None:
        """A reject of batch 0 at the event's own file and line: the event waits
        (see _requeue_waiting)."""
        self.summary.unknown_subject += 1
        self._reject(
            eid,
            f"event names subject '{sid}', which is not in the subjects file; it waits:"
            " ingest the subject and run `gridcredit score`",
            waits=sid,
        )

    def _reject(self, eid: str, reason: str, waits: str | None = None) -> None:
        """A reject of scoring's own (batch 0), at the event's file and line; ``waits``:
        the subject whose coming makes the next run score the event again."""
        self.emit(REJECTS, [(reason, waits, eid)])


def _highest_of_families(steps: list[tuple], attrs: dict) -> list[tuple]:
    """Of the steps of one event, keep one per (group, exclusive family): the rule of the
    largest points written for these attributes (|points|; a tie goes to the smaller rule
    id, so the order rules are written in never decides)."""
    best: dict[tuple[str, str], tuple] = {}
    for step in steps:
        g, c, pts, mode, _ = step
        if not c.exclusive:
            continue
        if mode != INLINE:
            found = c.points(attrs) if c.points is not None else None
            pts = found if found is not None else (c.esc_steps[0] if c.esc_steps else 0)
        rank = (abs(pts or 0), _neg(c.id))
        k = (g, c.family)
        if k not in best or rank > best[k][0]:
            best[k] = (rank, step)
    keep = {id(v[1]) for v in best.values()}
    return [s for s in steps if not s[1].exclusive or id(s) in keep]


def _neg(text: str) -> tuple[int, ...]:
    """A key that sorts strings in reverse (so max() prefers the smaller id)."""
    return tuple(-ord(ch) for ch in text) + (1,)


def _live_tuple(entry_id: int, r: tuple) -> tuple:
    """An entry row as ``PriorState.live_entries`` gives it."""
    return (entry_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[8], r[12], r[10])


def _discard(op: str, rows: list) -> None:
    """The default ``emit``: output nobody asked for."""
