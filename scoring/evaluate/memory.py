"""In-memory inputs and outputs for the pure core (:mod:`scoring.evaluate.core`):
what the SQLite runner reads from and writes to the ledger, as Python lists.

For tests and for runners without SQLite (a Spark partition): :class:`ListSink`
collects what the core emits, :class:`MemoryPrior` answers the core's questions
about an earlier ledger held in lists, and :func:`event_rows` / :func:`plan_for`
turn event records into the core's rows and its corrections plan, as the
runner's queries do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .core import OBJECTION, WITHDRAW, NoPrior, Scorer
from .outputs import ENTRIES, TRIAL


class ListSink:
    """An ``emit`` that keeps every op in order (``ops``)."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, list]] = []

    def emit(self, op: str, rows: list) -> None:
        self.ops.append((op, list(rows)))

    def rows(self, op: str) -> list:
        """Every row emitted under ``op``, in order."""
        return [r for o, rows in self.ops if o == op for r in rows]

    def entries(self, scorer: Scorer, trial: bool = False) -> list[tuple[int, tuple]]:
        """(id, row in ``ENTRY_COLUMNS`` order) of every entry emitted, compact rows
        in full (entries of a scorer's pass are numbered from its first ids)."""
        if trial:
            return list(enumerate(self.rows(TRIAL), scorer.first_trial_id))
        return [(i, scorer.full(r)) for i, r in enumerate(self.rows(ENTRIES), scorer.first_id)]


class MemoryPrior(NoPrior):
    """A :class:`~scoring.evaluate.core.PriorState` over an earlier ledger held in
    lists: ``entries`` and ``trial_entries`` as (id, row in ``ENTRY_COLUMNS``
    order), ``redemptions`` as {event: (item, subject, quantity, at, outcome)}."""

    def __init__(
        self,
        events: Iterable[str] = (),
        entries: Iterable[tuple[int, tuple]] = (),
        trial_entries: Iterable[tuple[int, tuple]] = (),
        redemptions: dict[str, tuple] | None = None,
    ):
        super().__init__(events)
        self.entries = sorted(entries)
        self.trial_entries = sorted(trial_entries)
        self.redemptions = dict(redemptions or {})

    @staticmethod
    def _refs(rows: list[tuple[int, tuple]], reasons: tuple[str, ...] | None) -> set[int]:
        return {r[11] for _, r in rows if r[11] is not None and (not reasons or r[10] in reasons)}

    def _live(self, keep: Any) -> list[tuple]:
        reversed_ = self._refs(self.entries, ("reversal",))
        return [
            (i, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[8], r[12], r[10])
            for i, r in self.entries
            if keep(r) and i not in reversed_
        ]

    def live_entries(self, event_id: str) -> list[tuple]:
        return self._live(lambda r: r[7] == event_id)

    def live_repairs(self, entry_id: int) -> list[tuple]:
        return self._live(lambda r: r[11] == entry_id and r[10] == "repair")

    def live_trial_entries(self, event_id: str) -> list[tuple[int, tuple]]:
        reversed_ = self._refs(self.trial_entries, ("reversal",))
        return [
            (i, r)
            for i, r in self.trial_entries
            if r[7] == event_id and r[10] in ("match", "linked", "repair") and i not in reversed_
        ]

    def penalties(
        self, subject: str, grp: str, rules: list[str], since: int, until: int
    ) -> list[tuple]:
        referred = self._refs(self.entries, None)
        return [
            (i, r[3], r[5], r[6], r[8], r[12])
            for i, r in self.entries
            if r[0] == subject and r[1] == grp and r[5] in rules and (r[3] < 0 or r[13] is not None)
            and r[10] in ("match", "linked") and since <= r[8] <= until and i not in referred
        ]  # fmt: skip

    def granted_redemption(self, event_id: str) -> tuple | None:
        found = self.redemptions.get(event_id)
        return tuple(found[:4]) if found and found[4] == "granted" else None


def event_rows(events: Iterable[dict[str, Any]], clock: Any) -> list[tuple]:
    """The core's event rows ``(id, subject, at, "type\\x1fattributes JSON", amends)``
    of records ``{id, type, subject, at, attrs, amends}`` (``at``: epoch seconds or
    local ISO time), in (time, id) order."""
    rows = []
    for e in events:
        at = e["at"] if isinstance(e["at"], int) else clock.parse_time(e["at"])
        key = f"{e['type']}\x1f{orjson.dumps(e.get('attrs') or {}).decode()}"
        rows.append((e["id"], e["subject"], at, key, e.get("amends")))
    rows.sort(key=lambda r: (r[2], r[0]))
    return rows


def plan_for(
    rows: list[tuple], earlier: Iterable[tuple] = ()
) -> tuple[set[str], list[tuple[str, str, int]], list[str]]:
    """``Scorer.plan``'s arguments for a pass over ``rows`` (event rows as
    :func:`event_rows` makes), ``earlier`` being the rows of events scored before:
    the targets of its corrections, the amendments across both, and the events of
    the pass amended by one that sorts before them."""
    targets: set[str] = set()
    for _, _, _, key, amends in rows:
        if amends:
            targets.add(amends)
        etype, _, attrs = key.partition("\x1f")
        if etype in (WITHDRAW, OBJECTION):
            t = orjson.loads(attrs).get("target")
            if t and isinstance(t, str):
                targets.add(t)
    every = [*earlier, *rows]
    amendments = [(r[4], r[0], r[2]) for r in every if r[4]]
    mine = {r[0]: (r[2], r[0]) for r in rows}
    skip = [a for a, aid, aat in amendments if a in mine and (aat, aid) < mine[a]]
    return targets, amendments, skip
