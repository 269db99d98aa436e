"""What ``gridcredit test`` says when a scenario fails, for a clerk who must act on it:
what was expected, what came out, for which subject, rule and event, and what to check.
Found in review: a missing entry read "…with points +2, got 0" (0 entries, not 0 points),
and no message said where to look. The reference scheme, rules/packs/residents.yaml:
res-volunteer (line 13; points on line 18) gives 2 points an hour from half an hour."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.testing.scenarios import run_scenarios

ROOT = Path(__file__).resolve().parent.parent
RULE = "rule res-volunteer (参加志愿服务)"
WHEN = "the rule's on, when and effective dates (rules/packs/residents.yaml:13)"

HEAD = """\
defaults: {groups: [residents], grid: S01C01G01}
scenarios:
  - name: 场景
    subjects: [R1]
    events:
      - {id: v1, type: volunteer_service, at: 2024-03-01T09:00, hours: HOURS}
    expect:
"""


def messages(tmp_path: Path, hours: float, expect: str) -> list[str]:
    f = tmp_path / "s.yaml"
    f.write_text(HEAD.replace("HOURS", str(hours)) + expect, encoding="utf-8")
    report = run_scenarios([f], ROOT)
    assert not report.ok
    return [str(x).split(": 场景: ", 1)[1] for x in report.failures]


def test_an_expected_entry_that_is_missing(tmp_path) -> None:
    got = messages(tmp_path, 0.2, "      entries:\n"
                   "        - {subject: R1, rule: res-volunteer, event: v1, points: 2}\n")  # fmt: skip
    assert got == [
        f"expected an entry for R1 from {RULE} on event v1 with points +2, but none was written:"
        f" {RULE} wrote no entries for R1 on event v1. Check event v1 (volunteer_service at"
        f" 2024-03-01 09:00, hours 0.2) against {WHEN}"
    ]
    assert "got 0" not in got[0]


def test_a_missing_zero_point_entry_says_a_zero_match_writes_nothing(tmp_path) -> None:
    (got,) = messages(tmp_path, 0.2, "      entries:\n"
                      "        - {subject: R1, rule: res-volunteer, points: 0}\n")  # fmt: skip
    assert got.startswith(
        f"expected an entry for R1 from {RULE} with points 0, but none was written: {RULE} wrote"
        f" no entries for R1. Check R1's events against {WHEN}; a match worth 0 points writes no"
        " entry: to expect that the rule gives nothing here, write count: 0"
    ), got


def test_an_unexpected_entry(tmp_path) -> None:
    got = messages(tmp_path, 2, "      entries:\n"
                   "        - {subject: R1, rule: res-volunteer, count: 0}\n")  # fmt: skip
    assert got == [
        f"expected no entry for R1 from {RULE}, but 1 was written: +4 match on v1 in 2024-03."
        f" Check R1's events against {WHEN}, or expect count: 1"
    ]


def test_a_wrong_points_value(tmp_path) -> None:
    got = messages(tmp_path, 2, "      entries:\n"
                   "        - {subject: R1, rule: res-volunteer, event: v1, points: 5}\n")  # fmt: skip
    assert got == [
        f"expected an entry for R1 from {RULE} on event v1 with points +5, but the entry written"
        " differs: +4 match on v1 in 2024-03. Check the points rule res-volunteer gives and its"
        " cap (rules/packs/residents.yaml:18), or correct the expected values"
    ]


def test_a_wrong_points_value_without_a_rule_names_the_rule_that_wrote_it(tmp_path) -> None:
    (got,) = messages(tmp_path, 2, "      entries:\n"
                      "        - {subject: R1, event: v1, points: 5}\n")  # fmt: skip
    assert got == (
        "expected an entry for R1 on event v1 with points +5, but the entry written differs:"
        " +4 match on v1 in 2024-03 by res-volunteer. Check the points rule res-volunteer gives"
        " and its cap (rules/packs/residents.yaml:18), or correct the expected values"
    )


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("score: 1005", "expected R1 (residents) score 1005, got 1004 (base 1000) — {rule} gave +4"
         " in 2024-03 (cap 40 points/month). Check these rules' points, caps and validity, or the"
         " expected score"),
        ("wallet: 5", "expected R1 (residents) wallet 5, got 4 — {rule} gave +4 in 2024-03 (cap 40"
         " points/month). Check which rules move the wallet (wallet:) and any redemptions, or the"
         " expected wallet"),
        ("tier: AA", "expected R1 (residents) tier AA, got A (score 1004; AA is 1030–1049) — {rule}"
         " gave +4 in 2024-03 (cap 40 points/month). Check the score against the tiers of"
         " residents in scheme.yaml, or the expected tier"),
    ],
)  # fmt: skip
def test_a_wrong_balance(tmp_path, expect: str, message: str) -> None:
    got = messages(tmp_path, 2, f"      balances:\n        - {{subject: R1, {expect}}}\n")
    assert got == [message.format(rule=RULE)]


def test_a_balance_without_entries_says_only_the_base_counts(tmp_path) -> None:
    (got,) = messages(tmp_path, 0.2, "      balances:\n        - {subject: R1, score: 1002}\n")
    assert got == (
        "expected R1 (residents) score 1002, got 1000 (base 1000) — no entries count for R1 in"
        " residents at that date, only the base 1000. Check these rules' points, caps and"
        " validity, or the expected score"
    )


TABLE = """\
defaults: {groups: [residents], grid: S01C01G01}
name: 表格
table:
  rule: res-volunteer
  columns: [hours, points]
  rows:
    - ROW
"""


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("[0.2, 1]", "expected {rule} to give 1 points, but it did not match this row's event: no"
         " entry was written. Check the row's values against {when}, or write null to expect no"
         " match"),
        ("[2, 5]", "expected points 5, got 4 from {rule}. Check the points the rule gives"
         " (rules/packs/residents.yaml:18), or correct the row"),
        ("[3, null]", "expected {rule} not to match this row's event, but it gave +6. Check the"
         " rule's when and effective dates (rules/packs/residents.yaml:13), or write the points"
         " it should give"),
    ],
)  # fmt: skip
def test_table_rows(tmp_path, row: str, message: str) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(TABLE.replace("ROW", row), encoding="utf-8")
    report = run_scenarios([f], ROOT)
    (failure,) = report.failures
    assert failure.message == message.format(rule=RULE, when=WHEN)
