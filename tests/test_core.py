"""The pure scoring core without a database: hand-computed cases, and the same
entries whatever batches the events come in (scoring.evaluate.core)."""

from __future__ import annotations

import sys

import orjson
from conftest import PEOPLE, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import RULES, streams, to_events

from scoring.evaluate import NoPrior, Scorer
from scoring.evaluate.memory import ListSink, MemoryPrior, event_rows, plan_for
from scoring.evaluate.outputs import REDEMPTIONS

VOLUNTEER = {
    "id": "vol", "title": "志愿服务", "on": "volunteer",
    "points": {"per": "hours", "value": 2, "round": "floor"},
    "limit": {"max_points": 40, "per": "month"},
}  # fmt: skip
PARKING = {
    "id": "park", "title": "违规停车", "on": "parking",
    "escalate": {"within": "365d", "steps": [-5, -10, -20]},
}  # fmt: skip
DONATE = {"id": "donate", "title": "献血", "on": "volunteer", "points": 10,
          "expires": {"after": "12 months"}}  # fmt: skip


def make(scheme, prior=None, first_id=1):
    sink = ListSink()
    core = Scorer(scheme, emit=sink.emit, prior=prior, first_id=first_id)
    core.load_subjects(
        {},
        [(p["id"], g) for p in PEOPLE for g in p["groups"]],
        [
            (p["id"], None, p["grid"], None, orjson.dumps(p["links"]).decode() if "links" in p else None)
            for p in PEOPLE
        ],
    )  # fmt: skip
    core.link_accounts()
    return core, sink


def run(scheme, events, sizes=None, prior=None, first_id=1):
    """Score ``events`` in one pass, in batches of ``sizes`` (cycled; one batch if None)."""
    rows = event_rows(events, scheme.clock)
    if prior is None:
        prior = NoPrior(r[0] for r in rows)
    core, sink = make(scheme, prior, first_id)
    core.plan(*plan_for(rows))
    i = k = 0
    while i < len(rows):
        n = sizes[k % len(sizes)] if sizes else len(rows)
        core.score_rows(rows[i : i + n])
        i, k = i + n, k + 1
    core.finish()
    return core, sink


def brief(sink, core):
    """(id, subject, rule, points, wallet, reason, ref) of each entry."""
    return [(i, r[0], r[5], r[3], r[4], r[10], r[11]) for i, r in sink.entries(core)]


def test_the_core_imports_no_database_or_process_module():
    """Importing ``scoring.evaluate.core`` runs the package's ``__init__`` (the
    runner): the core's modules' own imports are read instead."""
    import ast
    from pathlib import Path

    here = Path(sys.modules["scoring.evaluate.core"].__file__).parent
    for name in ("core", "redemptions", "outputs", "memory"):
        tree = ast.parse((here / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                found = [("." * node.level) + (node.module or "")]
            else:
                continue
            for mod in found:
                top = mod.lstrip(".").split(".")[0]
                assert top not in ("sqlite3", "sqlite_utils", "apsw", "multiprocessing"), (
                    name,
                    mod,
                )
                assert top not in ("ledger", "publish", "cli", "runner", "periods"), (name, mod)


def test_an_award_with_a_cap(engine_scheme):
    s = engine_scheme(residents=[VOLUNTEER])
    core, sink = run(s, [
        ev("e1", "volunteer", "P1", "2024-03-01T09:00", hours=19),  # 38
        ev("e2", "volunteer", "P1", "2024-03-02T09:00", hours=3),   # 6, but 2 remain → 2
        ev("e3", "volunteer", "P1", "2024-03-03T09:00", hours=1),   # nothing left: capped, 0
        ev("e4", "volunteer", "P1", "2024-04-01T09:00", hours=1),   # new month: 2
    ])  # fmt: skip
    assert brief(sink, core) == [
        (1, "P1", "vol", 38, 38, "match", None),
        (2, "P1", "vol", 2, 2, "match", None),
        (3, "P1", "vol", 0, 0, "capped", None),
        (4, "P1", "vol", 2, 2, "match", None),
    ]
    assert sink.entries(core)[1][1][15] == "cut from 6 to 2 by max_points 40 per month"
    assert core.acct[("P1", "residents")] == [42, 42]  # the new state: fixed score, wallet
    assert core.subjects["P1"].caps == {"vol": ["2024-04", 2, 1]}
    assert core.summary.events == 4 and core.summary.capped == 1 and core.summary.entries == 4


def test_escalation_within_the_window(engine_scheme):
    s = engine_scheme(residents=[PARKING])
    core, sink = run(s, [
        ev("p1", "parking", "P1", "2024-01-10T09:00"),  # -5
        ev("p2", "parking", "P1", "2024-06-10T09:00"),  # second within 365 days: -10
        ev("p3", "parking", "P1", "2024-12-10T09:00"),  # third: -20
        ev("p4", "parking", "P1", "2025-12-20T09:00"),  # the others over a year ago: -5
    ])  # fmt: skip
    assert [(b[3], b[4], b[5]) for b in brief(sink, core)] == [
        (-5, 0, "match"), (-10, 0, "match"), (-20, 0, "match"), (-5, 0, "match"),
    ]  # fmt: skip
    assert core.acct[("P1", "residents")] == [-40, 0]


def test_points_that_expire_are_kept_apart(engine_scheme):
    s = engine_scheme(residents=[DONATE])
    core, sink = run(s, [ev("d1", "volunteer", "P1", "2024-03-15T10:00", hours=1)])
    ((_, row),) = sink.entries(core)
    assert row[3:5] == (10, 10) and row[12] == s.clock.parse_time("2025-03-15T10:00")
    assert core.acct[("P1", "residents")] == [0, 10]  # the wallet does not expire
    assert core.expiring[("P1", "residents")] == [(row[12], 10)]
    assert core._score_at("P1", "residents", row[12] - 1)[0] == 1010
    assert core._score_at("P1", "residents", row[12])[0] == 1000


def test_a_withdrawal_reverses_an_entry_of_the_same_pass(engine_scheme):
    s = engine_scheme(residents=[VOLUNTEER])
    core, sink = run(s, [
        ev("e1", "volunteer", "P1", "2024-03-01T09:00", hours=19),  # 38
        ev("w", "withdraw", "P1", "2024-03-03T09:00", target="e1"),  # reverses it
        ev("e2", "volunteer", "P1", "2024-03-04T09:00", hours=5),  # the cap room is back: 10
    ])  # fmt: skip
    assert brief(sink, core) == [
        (1, "P1", "vol", 38, 38, "match", None),
        (2, "P1", "vol", -38, -38, "reversal", 1),
        (3, "P1", "vol", 10, 10, "match", None),
    ]
    assert sink.entries(core)[1][1][15] == "reverses entry 1 of event e1"
    assert core.summary.reversals == 1 and core.acct[("P1", "residents")] == [10, 10]


def test_a_withdrawal_reverses_an_entry_of_an_earlier_pass(engine_scheme):
    s = engine_scheme(residents=[VOLUNTEER])
    first, sink = run(s, [ev("e1", "volunteer", "P1", "2024-03-01T09:00", hours=4)])
    prior = MemoryPrior(events=["e1", "w"], entries=sink.entries(first))
    core, sink = run(
        s, [ev("w", "withdraw", "P1", "2024-03-03T09:00", target="e1")], prior=prior, first_id=2
    )
    assert brief(sink, core) == [(2, "P1", "vol", -8, 0, "reversal", 1)]  # the wallet was empty


def test_a_redemption_spends_the_wallet_and_a_second_finds_too_few_points(engine_scheme):
    s = engine_scheme(residents=[VOLUNTEER])
    core, sink = run(s, [
        ev("e1", "volunteer", "P1", "2024-03-01T09:00", hours=19),  # 38 in the wallet
        ev("r1", "redeem", "P1", "2024-03-02T09:00", item="oil"),  # costs 30: granted
        ev("r2", "redeem", "P1", "2024-03-03T09:00", item="oil"),  # 8 left: rejected
    ])  # fmt: skip
    assert brief(sink, core)[1] == (2, "P1", "oil", 0, -30, "redeem", None)
    assert [(r[0], r[5], r[6], r[7]) for r in sink.rows(REDEMPTIONS)] == [
        ("r1", 30, "granted", None),
        ("r2", 30, "rejected", "insufficient_points"),
    ]
    assert core.acct[("P1", "residents")] == [38, 8]
    assert core.summary.redemptions_granted == 1 and core.summary.redemptions_rejected == 1


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stream=streams, sizes=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=4)
)
def test_any_batch_split_gives_the_entries_of_one_run(engine_scheme, stream, sizes):
    trial = {"id": "pet", "title": "文明养犬", "on": "noise", "points": -4, "status": "trial"}
    s = engine_scheme(residents=[*RULES, DONATE, trial])
    events = to_events(stream)
    one, one_sink = run(s, events)
    split, split_sink = run(s, events, sizes)
    assert split_sink.entries(split) == one_sink.entries(one)
    assert split_sink.entries(split, trial=True) == one_sink.entries(one, trial=True)
    for op in ("redemptions", "withdrawn", "objections", "rejects"):
        assert split_sink.rows(op) == one_sink.rows(op)
    assert split.summary == one.summary
    assert split.acct == one.acct
