"""What the scoring core emits (``emit(op, rows)``: the op names) and counts
(:class:`ScoreSummary`); see :mod:`scoring.evaluate.core`."""

from __future__ import annotations

from dataclasses import dataclass, field

# the op names of ``emit(op, rows)``, in the order of the module docstring of core
ENTRIES, KINDS, TRIAL = "entries", "kinds", "trial_entries"
REDEMPTIONS, WITHDRAWN, OBJECTIONS, REJECTS = "redemptions", "withdrawn", "objections", "rejects"


@dataclass
class ScoreSummary:
    events: int = 0
    entries: int = 0
    trial_entries: int = 0
    capped: int = 0
    withheld: int = 0  # bonuses not counted while a ``withhold`` condition held (art. 17)
    reversals: int = 0
    redemptions_granted: int = 0
    redemptions_rejected: int = 0
    late: int = 0
    unknown_subject: int = 0
    waited: int = 0  # events that waited for their subject, scored now it is known
    orphan_corrections: int = 0  # withdrawals, amendments, objections naming no event
    rewound_from: str | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        s = (
            f"scored {self.events:,} events → {self.entries:,} entries"
            f" ({self.capped:,} capped,"
            + (f" {self.withheld:,} withheld," if self.withheld else "")
            + f" {self.reversals:,} reversals),"
            f" {self.trial_entries:,} trial entries,"
            f" redemptions {self.redemptions_granted:,} granted / {self.redemptions_rejected:,} rejected"
        )
        if self.late:
            s += f", {self.late:,} late events posted to the first open month"
        if self.waited:
            s += f", {self.waited:,} events that waited for their subject"
        if self.orphan_corrections:
            s += (
                f"; {self.orphan_corrections:,} corrections name no other event and reversed"
                " nothing (see `gridcredit rejects`)"
            )
        if self.unknown_subject:
            s += (
                f"; {self.unknown_subject:,} events name no known subject: they wait, and are"
                " scored once the subject is ingested (see `gridcredit rejects`)"
            )
        return s
