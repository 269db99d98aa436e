"""Which subjects are scored together, and the scoring of one Spark partition.

The pure core (:class:`~scoring.evaluate.core.Scorer`) gives a subject's entries
from the events of the subjects it interacts with, and nothing else. What crosses
subjects (see the core's docstring) decides the *components*, the sets of
subjects that must land in one partition:

- linked scoring (a rule's ``also``): a subject and the subjects it links to;
- corrections: a withdrawal, amendment or objection and the subject of the
  event it names;
- catalog stock: every subject that asks for an item with ``stock`` (first come,
  first served across subjects, in (time, id) order).

Components are found on the driver (union-find over these edges, which are few:
links, corrections and stocked redemptions, not the events); every other subject
is its own component. A partition holds whole components and runs one core over
all their events in (time, id) order, which gives each subject the entries of a
run over the whole county: the core keeps no state across subjects but these.

A partition's events are held in memory while it is scored (the core needs the
partition's corrections before its first event); size partitions to that
(docs/spark.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

# the one table a scoring task gives back: entries, trial entries, redemptions,
# objections and the scoring's rejects, told apart by ``tbl``; ``part`` and ``id``
# number the entries of a partition (``ref`` points within the partition)
OUT_COLUMNS = (
    ("tbl", "string"), ("part", "int"), ("id", "long"),
    ("subject", "string"), ("grp", "string"), ("account", "string"), ("points", "long"),
    ("wallet", "long"), ("rule", "string"), ("pack_hash", "string"), ("event", "string"),
    ("at", "long"), ("period", "string"), ("reason", "string"), ("ref", "long"),
    ("expires_at", "long"), ("grade", "string"), ("grade_until", "long"), ("note", "string"),
    ("item", "string"), ("quantity", "long"), ("cost", "long"), ("outcome", "string"),
    ("reason_code", "string"), ("partner", "string"),
    ("target", "string"), ("status", "string"), ("opened_at", "long"), ("decided_at", "long"),
    ("file", "string"), ("line", "long"), ("waits", "string"),
)  # fmt: skip
OUT_SCHEMA = ", ".join(f"{n} {t}" for n, t in OUT_COLUMNS)
ENTRY_FIELDS = (
    "subject", "grp", "account", "points", "wallet", "rule", "pack_hash", "event", "at",
    "period", "reason", "ref", "expires_at", "grade", "grade_until", "note",
)  # fmt: skip
REDEMPTION_FIELDS = (
    "event", "subject", "grp", "item", "quantity", "cost", "outcome", "reason_code", "at",
    "period", "partner",
)  # fmt: skip
# the counts of ``ScoreSummary`` a run adds up over its partitions
SUMMED = (
    "events", "entries", "trial_entries", "capped", "reversals", "redemptions_granted",
    "redemptions_rejected", "late", "unknown_subject", "orphan_corrections",
)  # fmt: skip
OBJECTION_FIELDS = ("target", "event", "status", "opened_at", "decided_at")
# the marker row of a request the stock refuses (graph.py); prior.P_* are 2-5
OUT_OF_STOCK = 9
# the combined input of a scoring task: subjects (kind 0) and events (kind 1)
IN_SCHEMA = (
    "comp string, kind int, id string, subject string, at long, key string, amends string,"
    " fi int, line long, skind string, grid string, tags string, links string, groups string"
)


class Components:
    """Union-find over subject ids; the representative of a set is its least id
    (so the grouping does not depend on the order edges come in)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent.get(x, x)
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo
            self.parent.setdefault(lo, lo)

    def union_all(self, ids: Iterable[str]) -> None:
        first = None
        for s in ids:
            if first is None:
                first = s
                self.parent.setdefault(s, s)
            else:
                self.union(first, s)

    def mapping(self) -> list[tuple[str, str]]:
        """(subject, component) of every subject in a set of more than itself."""
        return sorted((s, r) for s in list(self.parent) if (r := self.find(s)) != s)


def score_partition(
    scheme_dir: str, event_files: list[str], mode: str = "plain", part_offset: int = 0,
    incr: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """A ``mapInArrow`` function over ``IN_SCHEMA`` rows of whole components → ``OUT_SCHEMA``.

    ``mode``: ``plain``; or, for components with stocked requests (see
    :mod:`.graph`), ``facts`` (what the requests need from stock, as
    ``graph.FACT_SCHEMA``) and ``final`` (the output), each request taking the stock
    answer given by the marker rows (kind ``OUT_OF_STOCK``: the event's request is
    out of stock). ``part_offset`` keeps the ``part`` numbers of two scoring jobs
    apart. ``incr``: an incremental run's facts (see :mod:`.prior`); the partition's
    rows then also carry its subjects' stored state (kinds ``prior.P_*``)."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa
        from pyspark import TaskContext

        from ..evaluate.core import NoPrior, Scorer
        from ..evaluate.memory import plan_for
        from ..evaluate.outputs import (
            ENTRIES,
            OBJECTIONS,
            REDEMPTIONS,
            REJECTS,
            TRIAL,
            WITHDRAWN,
        )
        from .ingest import scheme_of

        ctx = TaskContext.get()
        part = part_offset + (ctx.partitionId() if ctx is not None else 0)
        facts = mode == "facts"
        oos: set[str] = set()
        comp_of: dict[str, str] = {}
        subjects: list[tuple] = []
        memberships: list[tuple[str, str]] = []
        rows: list[tuple] = []
        where: dict[str, tuple[int, int]] = {}
        prior_rows: list[tuple[int, str]] = []
        for b in batches:
            d = b.to_pydict()
            if facts:
                comp_of.update(
                    (i, c) for k, i, c in zip(d["kind"], d["id"], d["comp"], strict=True) if k == 0
                )
            for kind, eid, subj, at, key, amends, fi, line, skind, grid, tags, links, groups in zip(
                d["kind"], d["id"], d["subject"], d["at"], d["key"], d["amends"], d["fi"],
                d["line"], d["skind"], d["grid"], d["tags"], d["links"], d["groups"], strict=True,
            ):  # fmt: skip
                if kind == 0:
                    subjects.append((eid, skind, grid, tags, links))
                    memberships.extend((eid, g) for g in orjson.loads(groups))
                elif kind == 1:
                    rows.append((eid, subj, at, key, amends))
                    where[eid] = (fi, line)
                elif kind == OUT_OF_STOCK:
                    oos.add(eid)
                else:  # an incremental run's stored state (prior.P_*)
                    prior_rows.append((kind, key))
        if not rows and not subjects:
            return
        rows.sort(key=lambda r: (r[2], r[0]))
        scheme, compiled = scheme_of(scheme_dir)
        entries: list[tuple] = []
        trial: list[tuple] = []
        redemptions: dict[str, list] = {}
        objections: dict[str, list] = {}
        rejects: list[tuple] = []
        withdrawn: list[str] = []  # stored redemptions given back
        core: Any = None

        def emit(op: str, out: list) -> None:
            if op == ENTRIES:
                entries.extend(core.full(r) for r in out)
            elif op == TRIAL:
                trial.extend(out)
            elif op == REDEMPTIONS:
                for r in out:  # INSERT OR REPLACE by event
                    redemptions[r[0]] = list(r)
            elif op == WITHDRAWN:
                for (ev,) in out:
                    if ev in redemptions:
                        redemptions[ev][6] = redemptions[ev][7] = "withdrawn"
                    else:
                        withdrawn.append(ev)
            elif op == OBJECTIONS:
                for target, ev, status, opened, decided in out:
                    old = objections.get(target)
                    if old is None:
                        objections[target] = [target, ev, status, opened, decided]
                    else:  # ON CONFLICT(target): event, status and decided_at move on
                        old[1], old[2], old[4] = ev, status, decided
            elif op == REJECTS:
                rejects.extend(out)

        if mode == "plain":
            core = Scorer(scheme, compiled, emit=emit, prior=NoPrior(r[0] for r in rows))
        else:
            from .graph import StockCore

            core = StockCore(
                scheme,
                compiled,
                emit=_discard if facts else emit,
                prior=NoPrior(r[0] for r in rows),
            )
            core.stock_setup(oos)
        grids = {gid: (g.community, g.street) for gid, g in scheme.grids.items()}
        core.load_subjects(grids, memberships, subjects)
        if incr is None:
            core.link_accounts()
            core.plan(*plan_for(rows))
        else:
            from . import prior

            prior.start(core, incr, {r[0] for r in rows}, prior_rows)
            core.plan(*prior.plan_args(rows, incr))
        step = 20_000
        for i in range(0, len(rows), step):
            core.score_rows(rows[i : i + step])
            core.flush()
        core.finish()
        if facts:
            yield stock_facts(core.stock_facts, comp_of)
            return

        cols: dict[str, list] = {n: [] for n, _ in OUT_COLUMNS}
        width = len(OUT_COLUMNS)

        def put(tbl: str, values: dict[str, Any], n: int | None = None) -> None:
            for c in cols:
                cols[c].append(values.get(c))
            cols["tbl"][-1], cols["part"][-1], cols["id"][-1] = tbl, part, n

        for tbl, rows_, first in (("entries", entries, core.first_id),
                                  ("trial_entries", trial, core.first_trial_id)):  # fmt: skip
            for n, r in enumerate(rows_, first):
                put(tbl, dict(zip(ENTRY_FIELDS, r, strict=True)), n)
        for red in redemptions.values():
            put("redemptions", dict(zip(REDEMPTION_FIELDS, red, strict=True)))
        for obj in objections.values():
            put("objections", dict(zip(OBJECTION_FIELDS, obj, strict=True)))
        for reason, waits, ev in rejects:
            fi, line = where.get(ev, (None, 0))
            put("rejects", {
                "event": ev, "reason": reason, "waits": waits, "line": line,
                "file": "score" if fi is None else event_files[fi],
            })  # fmt: skip
        for ev in withdrawn:
            put("withdrawn", {"event": ev})
        for month, n in core.late_by_month.items():
            put("late", {"period": month, "points": n})
        assert len(cols) == width
        summary = core.summary
        counts = {k: getattr(summary, k) for k in SUMMED}
        put("summary", {"note": orjson.dumps(counts).decode()})
        yield pa.RecordBatch.from_pydict(cols, schema=_arrow_schema())

    return run


def _discard(op: str, rows: list) -> None:
    """The emit of a ``facts`` run: only the stock facts are kept."""


def stock_facts(found: list[tuple], comp_of: dict[str, str]) -> Any:
    """The stock facts of a ``facts`` run as one Arrow batch of ``graph.FACT_SCHEMA``."""
    import pyarrow as pa

    from .graph import FACT_SCHEMA

    names = [c.split()[0] for c in FACT_SCHEMA.split(",")]
    cols: dict[str, list] = {n: [] for n in names}
    for sid, item, at, ev, seq, qty, need in found:
        for n, v in zip(names, (comp_of[sid], item, at, ev, seq, qty, need), strict=True):
            cols[n].append(v)
    return pa.RecordBatch.from_pydict(cols, schema=arrow_schema(FACT_SCHEMA))


def _arrow_schema() -> Any:
    return arrow_schema(OUT_SCHEMA)


def arrow_schema(ddl: str) -> Any:
    """The Arrow schema of a DDL of string, int and long columns (``mapInArrow``
    must give exactly the types Spark was told)."""
    import pyarrow as pa

    kinds = {"string": pa.string(), "int": pa.int32(), "long": pa.int64()}
    return pa.schema([(n, kinds[t]) for n, t in (c.split() for c in ddl.split(","))])
