"""Incremental Spark runs: the next run starts from the stored version, not from all history.

``score --ledger DIR`` on a ledger with a current version continues it as
``gridcredit ingest`` of the new files and ``gridcredit score`` continue a SQLite
ledger (:class:`scoring.evaluate.runner.Engine`):

- the new files take the next batch numbers; events are deduplicated against the
  stored accepted events (the ``events`` table, by month);
- events that waited (a scoring reject of batch 0 naming a subject or an event
  that has come since) are scored again (``Engine._requeue_waiting``);
- when the first new event sorts before the latest one scored, in an open month,
  the run *rewinds* as the SQLite runner does: the stored events from that point
  on in open months are scored again with the new ones (their entries,
  redemptions, scoring rejects and objection states are replaced);
- only the components (see :mod:`.partition`) of the subjects of the events to
  score are scored; each partition gets the stored state of its own subjects by a
  join (never a broadcast of the ledger): the sums of their accounts, the entries
  that caps, escalation windows, running totals, expiry, gradings, credit repair
  and corrections read, their shadow-ledger entries and granted redemptions.
  :func:`start` gives the core that state as ``Engine._load_state`` gives it from
  SQLite, and :class:`PartitionPrior` answers the core's mid-run questions;
- entry ids continue after the stored maximum (a partition numbers its own
  entries from :data:`OFFSET`, below which an id is a stored entry's);
- closed months (the ``periods`` table that ``close`` writes): a late event posts
  to the first open month and is counted in that month's ``late_events``;
- unchanged tables and month partitions are hard-linked into the new version
  (:func:`scoring.spark.ledger.carry`), changed ones rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError
from ..evaluate.core import OBJECTION, WITHDRAW
from ..evaluate.memory import MemoryPrior
from ..posting import PostingMonths
from . import ledger as store

# a partition's own entries are numbered from here; a ref below it is a stored entry's id
OFFSET = 1 << 40
# the kinds of the prior-state rows in a scoring task's input (after subjects 0, events 1)
P_ENTRY, P_TRIAL, P_SUM, P_REDEEMED = 2, 3, 4, 5
_ENTRY_COLS = (
    "subject", "grp", "account", "points", "wallet", "rule", "pack_hash", "event", "at",
    "period", "reason", "ref", "expires_at", "grade", "grade_until", "note",
)  # fmt: skip


# --- the stored version --------------------------------------------------------------


@dataclass
class Stored:
    """What a run needs of the current version before it starts."""

    version: Path
    meta: dict[str, Any]
    files: list[str]  # the file of batch n at n - 1
    closed: set[str] = field(default_factory=set)
    periods: list[tuple] = field(default_factory=list)
    last_key: tuple[int, str] | None = None  # (time, id) of the latest event scored
    max_id: int = 0
    max_trial_id: int = 0


def load(spark: Any, ledger: str) -> Stored | None:
    """The current version of ``ledger`` (None when there is none yet)."""
    from pyspark.sql import functions as F

    root = store._local(ledger)
    if not (root / store.POINTER).exists():
        return None
    version = store.current(ledger)
    meta = store.read_meta(version)
    if not (version / "events").exists():
        raise InputError(
            f"{version}: this ledger version keeps no events table (written before"
            " incremental runs); score all files into a new --ledger folder once"
        )
    s = Stored(version, meta, [b["file"] for b in meta.get("batches", [])])
    if (version / "periods").exists():
        s.periods = [tuple(r) for r in store.table(spark, version, "periods").collect()]
        s.closed = {r[0] for r in s.periods if r[1] == 1}
    top = store.table(spark, version, "events").agg(F.max(F.struct("at", "id"))).first()[0]
    s.last_key = None if top is None else (top[0], top[1])
    s.max_id = store.table(spark, version, "entries").agg(F.max("id")).first()[0] or 0
    s.max_trial_id = store.table(spark, version, "trial_entries").agg(F.max("id")).first()[0] or 0
    return s


def open_start(scheme: Any, closed: set[str]) -> int:
    """The first instant of the first open month (``Engine._open_start``)."""
    from ..durations import next_month

    if not closed:
        return -(2**62)
    return scheme.clock.period_bounds(next_month(max(closed)))[0]


def month_col(col: Any, tz: str) -> Any:
    """The local month ``YYYY-MM`` of an epoch-seconds column (the session is in UTC)."""
    from pyspark.sql import functions as F

    return F.date_format(F.from_utc_timestamp(F.timestamp_seconds(col), tz), "yyyy-MM")


# --- in a scoring task ---------------------------------------------------------------


class PartitionPrior(MemoryPrior):
    """The :class:`~scoring.evaluate.core.PriorState` of one partition: the stored
    entries of its subjects that the core may ask for, held in lists (the sets of
    reversed and referred entries computed once: the prior state does not change
    during the run)."""

    def __init__(
        self,
        events: Iterable[str],
        entries: list[tuple[int, tuple]],
        trial_entries: list[tuple[int, tuple]],
        redemptions: dict[str, tuple],
    ):
        super().__init__(events, entries, trial_entries, redemptions)
        self._reversed = self._refs(self.entries, ("reversal",))
        self._trial_reversed = self._refs(self.trial_entries, ("reversal",))
        self._referred = self._refs(self.entries, None)
        self._by_event: dict[str, list[tuple[int, tuple]]] = {}
        self._by_ref: dict[int, list[tuple[int, tuple]]] = {}
        for i, r in self.entries:
            self._by_event.setdefault(r[7], []).append((i, r))
            if r[11] is not None:
                self._by_ref.setdefault(r[11], []).append((i, r))

    def _rows(self, rows: Iterable[tuple[int, tuple]]) -> list[tuple]:
        return [
            (i, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[8], r[12], r[10])
            for i, r in rows
            if i not in self._reversed
        ]

    def live_entries(self, event_id: str) -> list[tuple]:
        return self._rows(self._by_event.get(event_id, ()))

    def live_repairs(self, entry_id: int) -> list[tuple]:
        return self._rows((i, r) for i, r in self._by_ref.get(entry_id, ()) if r[10] == "repair")

    def live_trial_entries(self, event_id: str) -> list[tuple[int, tuple]]:
        return [
            (i, r)
            for i, r in self.trial_entries
            if r[7] == event_id and r[10] in ("match", "linked", "repair")
            and i not in self._trial_reversed
        ]  # fmt: skip

    def penalties(
        self, subject: str, grp: str, rules: list[str], since: int, until: int
    ) -> list[tuple]:
        return [
            (i, r[3], r[5], r[6], r[8], r[12])
            for i, r in self.entries
            if r[0] == subject and r[1] == grp and r[5] in rules and (r[3] < 0 or r[13] is not None)
            and r[10] in ("match", "linked") and since <= r[8] <= until and i not in self._referred
        ]  # fmt: skip


def entry_row(d: dict[str, Any]) -> tuple[int, tuple]:
    """(id, row in ``ENTRY_COLUMNS`` order) of a stored entry shipped as JSON."""
    return d["id"], tuple(d.get(c) for c in _ENTRY_COLS)


def start(core: Any, info: dict[str, Any], run_events: set[str], prior_rows: list[tuple]) -> None:
    """Give ``core`` (its subjects loaded) the stored state of its partition, as
    ``Engine._load_state`` reads it from SQLite: account sums, cap counters and
    escalation windows since the rules' horizons, running totals, expiring points,
    gradings in force, granted redemptions (stock over every subject), the closed
    months, ids after :data:`OFFSET`, and a :class:`PartitionPrior`.

    ``prior_rows``: (kind, JSON) of the partition's stored rows (``P_*``)."""
    entries: list[tuple[int, tuple]] = []
    trial: list[tuple[int, tuple]] = []
    sums: dict[tuple[str, str], list[int]] = {}
    redeemed: dict[str, tuple] = {}
    for kind, text in prior_rows:
        d = orjson.loads(text)
        if kind == P_ENTRY:
            entries.append(entry_row(d))
        elif kind == P_TRIAL:
            trial.append(entry_row(d))
        elif kind == P_SUM:
            sums[(d["subject"], d["grp"])] = [d["fixed"], d["wallet"]]
        elif kind == P_REDEEMED:
            redeemed[d["event"]] = (d["item"], d["subject"], d["quantity"], d["at"], d["outcome"])
    entries.sort()
    trial.sort()
    since = info["since"]
    core.start_state(sums)
    horizons = core.horizons(since)
    if horizons:
        by_id = dict(entries)
        rows: list[tuple] = []
        for i, r in entries:
            h = horizons.get(r[5])
            if h is None:
                continue
            if r[10] in ("match", "capped"):
                if r[8] >= h:
                    rows.append((r[5], r[0], r[1], r[8], r[3], r[10], None, r[8], i))
            elif r[10] == "reversal" and r[11] is not None:
                o = by_id.get(r[11])
                oat = r[8] if o is None else o[8]
                if oat >= h:
                    rows.append(
                        (r[5], r[0], r[1], oat, r[3], r[10], None if o is None else o[10], r[8], i)
                    )
        rows.sort(key=lambda x: (x[7], x[8]))
        core.count_prior(rows, False)
        trows = [
            (r[5], r[0], r[1], r[8], r[3], r[10], None)
            for i, r in trial
            if r[5] in horizons and r[10] in ("match", "capped") and r[8] >= horizons[r[5]]
        ]  # (in id order; the SQLite read sorts by time, then id)
        trows.sort(key=lambda x: x[3])
        core.count_prior(trows, True)
    if core.total_rules:
        totals = set(core.total_rules)
        reversed_ = {r[11] for _, r in entries if r[10] == "reversal" and r[11] is not None}
        core.load_totals(
            ((i, r) for i, r in entries if r[5] in totals and r[10] == "match" and i not in reversed_),
            False,
        )  # fmt: skip
        core.load_totals(((i, r) for i, r in trial if r[5] in totals and r[10] == "match"), True)
    core.link_accounts()
    core.load_expiring(
        sorted(
            (r[0], r[1], r[12], r[3]) for _, r in entries if r[12] is not None and r[12] > since
        )  # fmt: skip
    )
    undone = {r[11] for _, r in entries if r[10] in ("reversal", "repair") and r[11] is not None}
    core.load_graded(
        (r[0], r[1], r[13], r[14], i)
        for i, r in entries
        if r[13] is not None and r[14] > since and i not in undone
    )
    core.begin(OFFSET, OFFSET)
    core.load_redemptions(
        (v[0], v[1], v[2], v[3]) for v in redeemed.values() if v[4] == "granted"
    )  # fmt: skip
    for item, used in info["stock"].items():  # first come, first served over every subject
        core.stock_used[item] = used
    core.calendar = PostingMonths(core.clock, info["closed"])
    core.prior = PartitionPrior(
        run_events | set(info["known"]), entries, trial, redeemed
    )  # fmt: skip


def plan_args(rows: list[tuple], info: dict[str, Any]) -> tuple[set[str], list, list[str]]:
    """``Scorer.plan``'s arguments for a partition's rows, the stored amendments
    (``info["amendments"]``: (id, at, amends) of every stored amending event) added."""
    from ..evaluate.memory import plan_for

    mine = {r[0] for r in rows}
    earlier = [(i, None, at, None, a) for i, at, a in info["amendments"] if i not in mine]
    return plan_for(rows, earlier)


# --- on the driver: what the run scores, and from which state ------------------------


def correction_targets(attrs: str | None, etype: str, amends: str | None) -> list[str]:
    out = [amends] if amends else []
    if etype in (WITHDRAW, OBJECTION) and attrs:
        t = orjson.loads(attrs).get("target")
        if t and isinstance(t, str):
            out.append(t)
    return out


def rewound_objections(
    stored: list[tuple], redo: set[str], events: list[tuple], rejected: set[str]
) -> dict[str, list]:
    """The objections table after a rewind (``Engine._rewind_objections``): each
    objection whose latest event is scored again is set back to what its earlier
    objection events made of it. ``stored``: objection rows; ``events``: (id, at,
    attrs) of the stored objection events, any order; ``rejected``: events with a
    scoring reject."""
    rows = {r[0]: list(r) for r in stored}
    targets = {t for t, r in rows.items() if r[1] in redo}
    for t in targets:
        del rows[t]
    for eid, at, attrs in sorted(events, key=lambda e: (e[1], e[0])):
        if eid in redo or eid in rejected:
            continue
        a = orjson.loads(attrs)
        target, status = a.get("target"), a.get("status", "open")
        if target not in targets or target == eid:
            continue
        row = rows.get(target)
        if row is None:
            row = rows[target] = [target, eid, status, at, None]
        row[1], row[2] = eid, status
        row[4] = None if status == "open" else at
    return rows


@dataclass
class Plan:
    """What an incremental run scores (``redo``: the new, requeued and rewound events),
    and what it replaces in the stored version."""

    combined: Any = None  # the scoring input: subjects, events and stored state by component
    info: dict[str, Any] = field(default_factory=dict)  # what every partition is told
    redone: Any = None  # ids of the stored events scored again (DataFrame ``event``)
    requeued: set[str] = field(default_factory=set)
    drop_rejects: set[str] = field(default_factory=set)  # their scoring rejects go
    rewind: bool = False
    first: tuple[int, str] | None = None
    last: tuple[int, str] | None = None
    objections: dict[str, list] | None = None  # the stored objections after a rewind


def _key_ge(first: tuple[int, str]) -> Any:
    from pyspark.sql import functions as F

    at, eid = first
    return (F.col("at") > at) | ((F.col("at") == at) & (F.col("id") >= eid))


def prepare(
    spark: Any, scheme: Any, compiled: Any, prev: Stored, accepted: Any, subjects_df: Any,
    fi_base: int,
) -> Plan:  # fmt: skip
    """The events to score and the partitions' input (see the module docstring).

    ``accepted``: the new accepted events (``fi`` their file's index among the new
    events files; ``fi_base`` + ``fi`` is the index among every batch's files);
    ``subjects_df``: every subject after this run's subjects files."""
    from pyspark.sql import functions as F

    from .partition import Components

    plan = Plan()
    v = prev.version
    ostart = open_start(scheme, prev.closed)
    stored_ev = store.table(spark, v, "events")
    new_ev = None
    if accepted is not None:
        new_ev = accepted.select(
            "id", "type", "subject", "at", "attrs", "amends",
            (F.col("fi") + fi_base).cast("int").alias("fi"), "line",
        )  # fmt: skip
    every_ev = stored_ev.select("id", "subject", "at")
    if new_ev is not None:
        every_ev = every_ev.unionByName(new_ev.select("id", "subject", "at"))

    # events that waited for a subject or an event that has come (Engine._requeue_waiting)
    waiting = (
        store.table(spark, v, "rejects")
        .filter("batch = 0 AND waits IS NOT NULL")
        .select("record_id", "waits")
        .join(stored_ev.select(F.col("id").alias("record_id"), "subject", "at"), "record_id")
        .collect()
    )
    requeued_keys = []
    if waiting:
        ids = sorted({w.waits for w in waiting if not w.waits.startswith("event:")}
                     | {w.subject for w in waiting})  # fmt: skip
        known_subjects = {
            r[0] for r in subjects_df.filter(F.col("id").isin(ids)).select("id").collect()
        }
        evs = sorted({w.waits[6:] for w in waiting if w.waits.startswith("event:")})
        known_events = (
            {r[0] for r in every_ev.filter(F.col("id").isin(evs)).select("id").collect()}
            if evs else set()
        )  # fmt: skip
        for w in waiting:
            if w.waits.startswith("event:"):
                ok = w.waits[6:] in known_events and w.at >= ostart
            else:
                ok = w.waits in known_subjects and (w.waits == w.subject or w.at >= ostart)
            if ok:
                plan.requeued.add(w.record_id)
                requeued_keys.append((w.at, w.record_id))
                if w.subject in known_subjects:
                    plan.drop_rejects.add(w.record_id)
    firsts = list(requeued_keys)
    lasts = list(requeued_keys)
    if new_ev is not None:
        lo, hi = new_ev.agg(F.min(F.struct("at", "id")), F.max(F.struct("at", "id"))).first()
        if lo is not None:
            firsts.append((lo[0], lo[1]))
            lasts.append((hi[0], hi[1]))
    plan.first = min(firsts) if firsts else None
    plan.last = max(lasts) if lasts else None
    last = prev.last_key
    plan.rewind = bool(plan.first and last and plan.first <= last and last[0] >= ostart)

    redo_stored = stored_ev.filter(F.col("id").isin(sorted(plan.requeued)))
    if plan.rewind:
        assert plan.first is not None
        redo_stored = redo_stored.unionByName(
            stored_ev.filter(_key_ge(plan.first) & (F.col("at") >= ostart))
        ).distinct()
    redo_stored = redo_stored.select(
        "id", "type", "subject", "at", "attrs", "amends", (F.col("batch") - 1).cast("int").alias("fi"),
        "line",
    ).persist()  # fmt: skip
    plan.redone = redo_stored.select(F.col("id").alias("event"))
    redo = redo_stored if new_ev is None else new_ev.unionByName(redo_stored)

    # --- components: links, corrections (with the stored amendment chains), stock ---
    comps = Components()
    for sid, links in subjects_df.filter("links != '{}'").select("id", "links").collect():
        for target in orjson.loads(links).values():
            comps.union(sid, target)
    amending = stored_ev.filter("amends IS NOT NULL").select("id", "at", "amends", "subject")
    if new_ev is not None:
        amending = amending.unionByName(
            new_ev.filter("amends IS NOT NULL").select("id", "at", "amends", "subject")
        )
    amendments = amending.collect()  # corrections are few
    versions: dict[str, list[tuple[str, str]]] = {}
    for a in amendments:
        versions.setdefault(a.amends, []).append((a.id, a.subject))
    corr = redo.filter("amends IS NOT NULL OR type IN ('withdraw', 'objection')").select(
        "subject", "type", "attrs", "amends"
    ).collect()  # fmt: skip
    wanted: dict[str, list[str]] = {}  # target → the correcting subjects
    for r in corr:
        for t in correction_targets(r.attrs, r.type, r.amends):
            todo, seen = [t], {t}
            while todo:  # the target and its versions (Scorer._versions)
                x = todo.pop()
                wanted.setdefault(x, []).append(r.subject)
                for aid, _ in versions.get(x, ()):
                    if aid not in seen:
                        seen.add(aid)
                        todo.append(aid)
    known: set[str] = set()
    if wanted:
        names = sorted(wanted)
        for eid, subj in every_ev.filter(F.col("id").isin(names)).select("id", "subject").collect():
            for s in wanted[eid]:
                comps.union(s, subj)
        known = {r[0] for r in stored_ev.filter(F.col("id").isin(names)).select("id").collect()}
    stocked = sorted(i for i, it in scheme.catalog.items() if it.stock is not None)
    stock: dict[str, int] = {}
    if stocked:
        comps.union_all(
            r[0]
            for r in redo.filter(
                (F.col("type") == "redeem") & F.get_json_object("attrs", "$.item").isin(stocked)
            )
            .select("subject")
            .distinct()
            .orderBy("subject")
            .collect()
        )
    mapping = comps.mapping()

    # --- the stored state of the touched components' subjects ----------------------
    comp_df = spark.createDataFrame(mapping, "m_subject string, comp string")
    redo_c = redo.join(comp_df, redo.subject == comp_df.m_subject, "left").select(
        F.coalesce("comp", "subject").alias("comp"), *redo.columns
    )  # fmt: skip
    touched = redo_c.select("comp").distinct()
    subj_c = subjects_df.join(comp_df, subjects_df.id == comp_df.m_subject, "left").withColumn(
        "comp", F.coalesce("comp", "id")
    ).join(touched, "comp", "left_semi")  # fmt: skip
    who = subj_c.select(F.col("id").alias("subject"), "comp")
    entries = store.table(spark, v, "entries").join(plan.redone, "event", "left_anti")
    trial = store.table(spark, v, "trial_entries").join(plan.redone, "event", "left_anti")
    redeemed = store.table(spark, v, "redemptions").join(plan.redone, "event", "left_anti")
    if stocked:
        stock = {
            item: int(n)
            for item, n in redeemed.filter(
                (F.col("outcome") == "granted") & F.col("item").isin(stocked)
            )
            .groupBy("item")
            .agg(F.sum("quantity"))
            .collect()
        }
    rules = state_rules(compiled)
    targets = sorted(wanted)
    relevant = (
        F.col("rule").isin(sorted(rules))
        | F.col("expires_at").isNotNull()
        | F.col("grade").isNotNull()
        | F.col("ref").isNotNull()
        | F.col("event").isin(targets)
    )
    mine = entries.join(who, "subject")
    null = F.lit(None)

    def rows(df: Any, kind: int, cols: list[str]) -> Any:
        return df.select(
            "comp", F.lit(kind).alias("kind"), null.cast("string").alias("id"),
            null.cast("string").alias("subject"), null.cast("long").alias("at"),
            F.to_json(F.struct(*cols)).alias("key"),
            *[null.cast(t).alias(c) for c, t in (
                ("amends", "string"), ("fi", "int"), ("line", "long"), ("skind", "string"),
                ("grid", "string"), ("tags", "string"), ("links", "string"),
                ("groups", "string"))],
        )  # fmt: skip

    ecols = ["id", *_ENTRY_COLS]
    sums = mine.groupBy("comp", "subject", "grp").agg(
        F.sum(F.when(F.col("expires_at").isNull(), F.col("points")).otherwise(0)).alias("fixed"),
        F.sum("wallet").alias("wallet"),
    )
    prior_in = (
        rows(mine.filter(relevant), P_ENTRY, ecols)
        .unionByName(rows(trial.join(who, "subject"), P_TRIAL, ecols))
        .unionByName(rows(sums, P_SUM, ["subject", "grp", "fixed", "wallet"]))
        .unionByName(
            rows(
                redeemed.filter("outcome = 'granted'").join(who, "subject"),
                P_REDEEMED,
                ["event", "item", "subject", "quantity", "at", "outcome"],
            )  # fmt: skip
        )
    )
    subj_in = subj_c.select(
        "comp", F.lit(0).alias("kind"), "id", null.cast("string").alias("subject"),
        null.cast("long").alias("at"), null.cast("string").alias("key"),
        null.cast("string").alias("amends"), null.cast("int").alias("fi"),
        null.cast("long").alias("line"), F.col("kind").alias("skind"), "grid", "tags", "links",
        "groups",
    )  # fmt: skip
    ev_in = redo_c.select(
        "comp", F.lit(1).alias("kind"), "id", "subject", "at",
        F.concat("type", F.lit("\x1f"), "attrs").alias("key"), "amends", "fi", "line",
        *[null.cast("string").alias(c) for c in ("skind", "grid", "tags", "links", "groups")],
    )  # fmt: skip
    plan.combined = subj_in.unionByName(ev_in).unionByName(prior_in)
    plan.info = {
        "since": plan.first[0] if plan.first else 0,
        "closed": sorted(prev.closed),
        "stock": stock,
        "known": sorted(known),
        "amendments": [(a.id, a.at, a.amends) for a in amendments],
    }
    if plan.rewind:
        plan.objections = _objections_after_rewind(spark, v, plan.redone, stored_ev)
    return plan


def state_rules(compiled: Any) -> set[str]:
    """The rules whose stored entries a run reads back beyond the sums: capped,
    escalating, running-total and credit-repaired ones."""
    out = {
        c.id for c in compiled.rules
        if c.cap_per or c.esc_steps or c.esc_factor or c.total is not None
    }  # fmt: skip
    for c in compiled.rules:
        if c.repair:
            out.update(c.repair.get("rules", []))
    return out


def _objections_after_rewind(spark: Any, v: Path, redone: Any, stored_ev: Any) -> dict[str, list]:
    """The stored objections with those whose latest event is scored again set back
    (:func:`rewound_objections`); objections and their events are few."""
    from pyspark.sql import functions as F

    objections = [tuple(r) for r in store.table(spark, v, "objections").collect()]
    redo = {r[0] for r in redone.join(
        spark.createDataFrame([(o[1],) for o in objections] or [("",)], "event string"), "event"
    ).collect()}  # fmt: skip
    if not redo:
        return {o[0]: list(o) for o in objections}
    events = [
        tuple(r)
        for r in stored_ev.filter(F.col("type") == OBJECTION).select("id", "at", "attrs").collect()
    ]
    rejected = {
        r[0]
        for r in store.table(spark, v, "rejects").filter("batch = 0").select("record_id").collect()
    }
    return rewound_objections(objections, redo, events, rejected)


def kept_max(spark: Any, prev: Stored, plan: Plan, name: str) -> int:
    """The largest id of a stored table's entries that the run keeps (after a rewind,
    the entries of the events scored again are replaced: SQLite numbers the new
    ones after ``MAX(id)`` of what is left)."""
    from pyspark.sql import functions as F

    top = prev.max_id if name == "entries" else prev.max_trial_id
    if not plan.rewind:
        return top
    df = store.table(spark, prev.version, name).join(plan.redone, "event", "left_anti")
    return df.agg(F.max("id")).first()[0] or 0


def _columns(name: str) -> list[str]:
    return [c.split()[0] for c in store.SCHEMAS[name].split(",")]


def _by_month(
    spark: Any, src: Path, dst: Path, name: str, new: Any, removed: Any = None,
    update: Any = None,
) -> None:  # fmt: skip
    """Write table ``name`` of ``dst``: the stored rows (less those of ``removed``
    events, ``update`` applied) and ``new``, rewriting only the months that change;
    the other month folders are hard-linked from ``src``."""
    from pyspark.sql import functions as F

    cols = _columns(name)
    stored = store.table(spark, src, name)
    changed = {r[0] for r in new.select("period").distinct().collect()}
    if removed is not None:
        gone = stored.join(removed, "event", "left_semi")
        changed |= {r[0] for r in gone.select("period").distinct().collect()}
        stored = stored.join(removed, "event", "left_anti")
    if update is not None:
        hit, fn = update
        changed |= {r[0] for r in stored.join(hit, "event", "left_semi").select("period")
                    .distinct().collect()}  # fmt: skip
        stored = fn(stored, hit)
    if not changed:
        store.carry(src, dst, name)
        return
    keep = stored.filter(F.col("period").isin(sorted(changed))).select(*cols)
    keep.unionByName(new.select(*cols)).write.partitionBy("period").parquet(str(dst / name))
    root = src / name
    for d in sorted(root.iterdir()) if root.exists() else ():
        if d.is_dir() and d.name.startswith("period=") and d.name[7:] not in changed:
            store.carry(root, dst / name, d.name)


def write_version(
    spark: Any, prev: Stored, plan: Plan, dst: Path, *, entries: Any, trial: Any, out: Any,
    rejects: Any, events: Any, subjects: Any | None,
) -> dict[str, Any]:  # fmt: skip
    """Write the new version ``dst`` from the stored one and this run's outputs
    (``out``: the partitions' table); unchanged tables and months are carried.
    Returns what ``meta.json`` adds: the late events by month."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from .partition import OBJECTION_FIELDS, REDEMPTION_FIELDS

    src = prev.version
    # a rewind replaces the entries of the events scored again (requeued events
    # outside a rewind have none: they waited for their own subject)
    removed = plan.redone if plan.rewind else None
    _by_month(spark, src, dst, "entries", entries, removed)
    _by_month(spark, src, dst, "trial_entries", trial, removed)
    withdrawn = out.filter("tbl = 'withdrawn'").select("event").distinct()

    def give_back(df: Any, hit: Any) -> Any:
        flag = hit.withColumn("w", F.lit(True))
        o = F.when(F.col("w"), F.lit("withdrawn"))
        return (
            df.join(flag, "event", "left")
            .withColumn("outcome", o.otherwise(F.col("outcome")))
            .withColumn("reason_code", o.otherwise(F.col("reason_code")))
            .drop("w")
        )

    _by_month(
        spark, src, dst, "redemptions",
        out.filter("tbl = 'redemptions'").select(*REDEMPTION_FIELDS), removed,
        (withdrawn, give_back),
    )  # fmt: skip
    _by_month(spark, src, dst, "events", events)

    # objections: upserts by target onto the stored rows (ON CONFLICT keeps opened_at)
    new_obj = out.filter("tbl = 'objections'").select(*OBJECTION_FIELDS)
    if plan.objections is not None or new_obj.limit(1).count():
        if plan.objections is not None:
            base = spark.createDataFrame(
                [tuple(r) for r in plan.objections.values()], store.SCHEMAS["objections"]
            )
        else:
            base = store.table(spark, src, "objections")
        b = base.select(*[F.col(c).alias("b_" + c) for c in OBJECTION_FIELDS])
        n = new_obj.select(*[F.col(c).alias("n_" + c) for c in OBJECTION_FIELDS])
        has_n = F.col("n_target").isNotNull()
        merged = b.join(n, b.b_target == n.n_target, "full").select(
            F.coalesce("n_target", "b_target").alias("target"),
            F.when(has_n, F.col("n_event")).otherwise(F.col("b_event")).alias("event"),
            F.when(has_n, F.col("n_status")).otherwise(F.col("b_status")).alias("status"),
            F.when(F.col("b_target").isNotNull(), F.col("b_opened_at"))
            .otherwise(F.col("n_opened_at")).alias("opened_at"),
            F.when(has_n, F.col("n_decided_at")).otherwise(F.col("b_decided_at"))
            .alias("decided_at"),
        )  # fmt: skip
        merged.write.parquet(str(dst / "objections"))
    else:
        store.carry(src, dst, "objections")

    # rejects: the stored ones less the scoring rejects of the events scored again
    old = store.table(spark, src, "rejects")
    drop = F.col("record_id").isin(sorted(plan.drop_rejects))
    if plan.rewind:
        gone = plan.redone.select(F.col("event").alias("record_id"), F.lit(True).alias("g"))
        old = old.join(gone, "record_id", "left").filter(
            ~((F.col("batch") == 0) & (drop | F.col("g").isNotNull()))
        ).drop("g")  # fmt: skip
    else:
        old = old.filter(~((F.col("batch") == 0) & drop))
    cols = _columns("rejects")
    old.select(*cols).unionByName(rejects.select(*cols)).write.parquet(str(dst / "rejects"))

    if subjects is None:
        store.carry(src, dst, "subjects")
        store.carry(src, dst, "memberships")
    else:
        subjects.drop("groups").write.parquet(str(dst / "subjects"))
        subjects.select(
            F.col("id").alias("subject"),
            F.explode(F.from_json("groups", T.ArrayType(T.StringType()))).alias("grp"),
        ).write.parquet(str(dst / "memberships"))

    # late events, counted against the month they post to (Engine: periods.late_events)
    late: dict[str, int] = {}
    for month, n in out.filter("tbl = 'late'").select("period", "points").collect():
        late[month] = late.get(month, 0) + n
    if late:
        rows = {r[0]: list(r) for r in prev.periods}
        for month, n in late.items():
            row = rows.setdefault(month, [month, 0, None, 0, None])
            row[3] = (row[3] or 0) + n
        spark.createDataFrame(
            [tuple(r) for _, r in sorted(rows.items())], store.SCHEMAS["periods"]
        ).coalesce(1).write.parquet(str(dst / "periods"))
    # what close, assess and the rest wrote: carried as they are
    for d in sorted(src.iterdir()):
        if d.is_dir() and not (dst / d.name).exists():
            store.carry(src, dst, d.name)
    return {"late_by_month": late}


# --- ingest against the stored version -----------------------------------------------


def stored_subjects(spark: Any, prev: Stored, ddl: str) -> Any:
    """The stored subjects with their groups (a JSON list), as rows of ``ddl``:
    ``run.SUBJECT_COLUMNS``, or ``ingest.PARSED_SUBJECTS`` records of file -1 that the
    subject fold takes as the database's row (a new file's same content is then a
    duplicate, other content an update)."""
    from pyspark.sql import functions as F

    groups = (
        store.table(spark, prev.version, "memberships")
        .groupBy("subject")
        .agg(F.to_json(F.sort_array(F.collect_list("grp"))).alias("groups"))
    )
    df = store.table(spark, prev.version, "subjects")
    df = df.join(groups, df.id == groups.subject, "left").withColumn(
        "groups", F.coalesce("groups", F.lit("[]"))
    )
    null = F.lit(None).cast("string")
    names = [c.split()[0] for c in ddl.split(",")]
    if "skind" not in names:
        return df.select(*names)
    given = {
        "kind": F.lit("row"), "fi": F.lit(-1), "line": F.lit(0).cast("long"),
        "block": F.lit(0).cast("long"), "skind": F.col("kind"), "raw": null, "reason": null,
    }  # fmt: skip
    return df.select(*[given.get(n, F.col(n)).alias(n) for n in names])


def stored_winners(spark: Any, prev: Stored, winners: Any, n_new: int) -> tuple[Any, Any]:
    """``winners`` (the first new record of each id, columns ``w_*``) with the stored
    event of the same id in its place where there is one (``w_fi``: ``n_new`` + its
    batch - 1), and the condition that a record is accepted: the first of its id and
    not stored (``Engine``: ingest compares a new record with the stored event)."""
    from pyspark.sql import functions as F

    content = ("type", "subject", "at", "attrs", "amends")
    st = store.table(spark, prev.version, "events").select(
        F.col("id").alias("s_id"), *[F.col(c).alias("s_" + c) for c in content],
        (F.col("batch") - 1 + n_new).cast("int").alias("s_fi"), F.col("line").alias("s_line"),
        F.lit(True).alias("w_stored"),
    )  # fmt: skip
    joined = winners.join(st, winners.id == st.s_id, "left")
    found = F.col("w_stored").isNotNull()
    out = joined.select(
        "id",
        *[
            F.when(found, F.col("s_" + c)).otherwise(F.col("w_" + c)).alias("w_" + c)
            for c in (*content, "fi", "line")
        ],
        F.coalesce("w_stored", F.lit(False)).alias("w_stored"),
    )
    return out, (F.col("rn") == 1) & ~F.col("w_stored")
