"""The ``gridcredit`` command line end to end: exit codes (0 ok, 1 invalid input
or failed scenarios, 2 usage), messages with locations, no tracebacks.

Read-only commands run on the repository itself; anything that changes rules
or writes a ledger runs on a tmp copy (``scheme_copy``) and a tmp database.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scoring.cli import cli
from scoring.plugins import PluginError, build_plugins

ROOT = Path(__file__).parent.parent
VOLUNTEER = "    points: {per: hours, value: 2, round: floor}\n"  # res-volunteer, residents.yaml

SUBJECTS = """\
{"id": "R2", "groups": ["residents"], "name": "李四", "grid": "S01C01G01"}
{"id": "R1", "groups": ["residents"], "name": "张三丰", "grid": "S01C01G01"}
{"id": "M1", "groups": ["merchants"], "name": "鑫源超市", "grid": "S01C01G02"}
"""
EVENTS = """\
{"id": "e1", "type": "volunteer_service", "subject": "R1", "at": "2024-03-02T09:00:00", "attrs": {"hours": 2}}
{"id": "e2", "type": "volunteer_service", "subject": "R2", "at": "2024-03-03T09:00:00", "attrs": {"hours": 1.5}}
{"id": "e3", "type": "volunteer_service", "subject": "R1", "at": "2024-03-04T09:00:00", "attrs": {"hours":
{"id": "e4", "type": "volunteer_service", "subject": "R2", "at": "2024-03-05T09:00:00", "attrs": {"hours": 3}}
"""  # line 3 is cut off: one reject


@pytest.fixture
def scheme_copy(tmp_path) -> Path:
    """A scheme repository in tmp: the reference rules/, plugins/ and tests/scenarios/."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "rules", repo / "rules")
    shutil.copytree(ROOT / "plugins", repo / "plugins")
    shutil.copytree(ROOT / "tests" / "scenarios", repo / "tests" / "scenarios")
    return repo


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    subjects, events = tmp_path / "subjects.jsonl", tmp_path / "events.jsonl"
    subjects.write_text(SUBJECTS, encoding="utf-8")
    events.write_text(EVENTS, encoding="utf-8")
    return subjects, events


def run(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    # a user mistake never ends in a traceback
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` once in ``path``; return the 1-based line it was on."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found exactly once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def triple_volunteer_points(repo: Path) -> int:
    """res-volunteer: 3 points an hour instead of 2."""
    pack = repo / "rules" / "packs" / "residents.yaml"
    return edit(pack, VOLUNTEER, VOLUNTEER.replace("value: 2", "value: 3"))


# --------------------------------------------------------------------------- validate


def test_validate_reference_scheme_is_ok():
    result = run("--scheme", ROOT, "validate")
    assert result.exit_code == 0, result.output
    assert re.match(r"ok: .+: 8 groups, \d+ rules \(\d+ versions\) in 8 packs", result.stdout), (
        result.stdout
    )


def test_validate_broken_copy_reports_file_line_col(scheme_copy):
    pack = scheme_copy / "rules" / "packs" / "residents.yaml"
    line = edit(pack, VOLUNTEER, VOLUNTEER.replace("points:", "pionts:"))
    result = run("--scheme", scheme_copy, "validate")
    assert result.exit_code == 1
    assert (
        f"{pack}:{line}:5: unknown key 'pionts' in rule 'res-volunteer'; did you mean 'points'?"
        in result.stderr
    ), result.stderr
    assert "fix them and run `gridcredit validate` again" in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- test


def test_test_passes_on_the_reference_scenarios():
    result = run("--scheme", ROOT, "test", "--min-coverage", "100")
    assert result.exit_code == 0, result.output
    assert re.search(r"^\d+ scenarios: (\d+) passed, 0 failed", result.stdout, re.MULTILINE), (
        result.stdout
    )
    assert "rule coverage: 100.0%" in result.stdout


def test_test_fails_readably_on_a_changed_rule(scheme_copy):
    triple_volunteer_points(scheme_copy)
    result = run("--scheme", scheme_copy, "test")
    assert result.exit_code == 1
    scenarios = scheme_copy / "tests" / "scenarios"
    # the table row for 1.9 hours: floor(1.9 * 3) = 5 instead of 3
    assert re.search(
        rf"^{re.escape(str(scenarios / 'residents.yaml'))}:\d+: 志愿服务按小时计分.*"
        r"\[row 3: hours=1\.9\]: expected points 3, got 5 from rule res-volunteer \(参加志愿服务\)\."
        r" Check the points the rule gives \(\S+/rules/packs/residents\.yaml:18\), or correct the row$",
        result.stdout,
        re.MULTILINE,
    ), result.stdout
    assert re.search(r"^\d+ scenarios: \d+ passed, [1-9]\d* failed", result.stdout, re.MULTILINE)


def test_test_runs_named_paths_and_selects_with_k(scheme_copy):
    path = scheme_copy / "tests" / "scenarios" / "residents.yaml"
    result = run("--scheme", scheme_copy, "test", path, "-k", "res-volunteer")
    assert result.exit_code == 0, result.output
    # the volunteer table has 6 rows; every other scenario in the file is deselected
    assert re.search(
        r"^6 scenarios: 6 passed, 0 failed, [1-9]\d* deselected", result.stdout, re.MULTILINE
    )


def test_test_below_min_coverage_fails(scheme_copy):
    path = scheme_copy / "tests" / "scenarios" / "residents.yaml"
    result = run("--scheme", scheme_copy, "test", path, "--min-coverage", "100")
    assert result.exit_code == 1
    assert "0 failed" in result.stdout
    assert re.search(r"coverage \d+\.\d% is below the required 100%", result.stdout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["test", "--min-coverage", "101"], "101.0 is not in the range 0<=x<=100"),
        (["test", "--min-coverage", "all"], "'all' is not a valid float"),
        (["test", "no-such-scenarios.yaml"], "'no-such-scenarios.yaml' does not exist"),
        (["test", "-k", "res-volunteer and"], "-k 'res-volunteer and'"),
        (["diff"], "Missing option '--base'"),
        (["diff", "--base", "HEAD", "--format", "html"], "'html' is not one of"),
        (["diff", "--base", "HEAD", "--period", "2024-13"], "--period '2024-13': write a month"),
        (["balances", "--format", "xml"], "'xml' is not one of"),
        (["balances", "--group", "aliens"], "unknown group 'aliens'; groups: residents"),
        (["balances", "--as-of", "31.03.2024"], "write a date as YYYY-MM-DD"),
        # found in review: these were tracebacks (exit 1)
        (["balances", "--as-of", "9999-12-31"], "the year must be 1970 to 2099"),
        (["explain", "R1", "--as-of", "9999-12-31"], "the year must be 1970 to 2099"),
        (["lists", "--as-of", "0001-01-01"], "the year must be 1970 to 2099"),
        (["assess", "2024-13"], "the month must be 01 to 12"),
        (["assess", "9999-Q4"], "the year must be 1970 to 2099"),
        (["assess", "2024-W60"], "2024 has no week 60"),
        (["close", "2024-00"], "month '2024-00': the month must be 01 to 12"),
        (["close", "0000-01"], "the year must be 1970 to 2099"),
        (["publish", "2024-13"], "the month must be 01 to 12"),
        (["redemptions", "--month", "2024-99"], "the month must be 01 to 12"),
        (["ingest"], "Missing argument 'FILES...'"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    result = run("--scheme", ROOT, "--db", tmp_path / "ledger.db", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


def test_no_scheme_here_is_a_clean_error(tmp_path):
    result = run("--scheme", tmp_path, "test")
    assert result.exit_code == 2  # a usage error: the command was pointed at no scheme
    assert (
        f"no scheme.yaml in {tmp_path.resolve()} or in {tmp_path.resolve() / 'rules'}"
        in result.stderr
    )
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- ingest, score, balances


def test_ingest_accounts_for_a_malformed_line(tmp_path, inputs):
    db = tmp_path / "ledger.db"
    result = run("--scheme", ROOT, "--db", db, "ingest", "-q", *inputs)
    assert result.exit_code == 0, result.output
    assert "subjects.jsonl: read 3 = accepted 3 + duplicates 0 + rejected 0" in result.stdout
    assert "events.jsonl: read 4 = accepted 3 + duplicates 0 + rejected 1" in result.stdout
    assert "1 records rejected" in result.stderr
    rejects = run("--scheme", ROOT, "--db", db, "rejects")
    assert rejects.exit_code == 0
    assert re.search(rf"^{re.escape(str(inputs[1]))}:3: invalid JSON", rejects.stdout, re.MULTILINE)


def test_a_disk_full_in_an_ingest_worker_is_a_message_not_a_traceback(
    tmp_path, inputs, monkeypatch
):
    """The workers stage rows through APSW, whose errors are not ``sqlite3``'s: a
    full disk there is told like one under the ledger, and nothing is stored."""
    import apsw

    from scoring import ingest

    def full(path, **kw):
        raise apsw.FullError("database or disk is full")

    monkeypatch.setattr(ingest.parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest.parallel, "default_workers", lambda: 2)
    monkeypatch.setattr(ingest.parallel, "child_connection", full)  # the forked workers inherit it
    db = tmp_path / "ledger.db"
    result = run("--scheme", ROOT, "--db", db, "ingest", "-q", inputs[1])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: a database failed: database or disk is full.")
    assert "free disk space" in result.stderr


def test_ingest_missing_file_is_a_usage_error(tmp_path, inputs):
    db = tmp_path / "ledger.db"
    result = run("--scheme", ROOT, "--db", db, "ingest", inputs[0], tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert "nope.jsonl' does not exist" in result.stderr
    assert not db.exists()  # nothing was read: the good file neither


def test_balances_json_keys_and_order(tmp_path, inputs):
    db = tmp_path / "ledger.db"
    assert run("--scheme", ROOT, "--db", db, "ingest", "-q", *inputs).exit_code == 0
    scored = run("--scheme", ROOT, "--db", db, "score")
    assert scored.exit_code == 0, scored.output
    assert scored.stdout.startswith("scored 3 events → 3 entries")
    result = run("--scheme", ROOT, "--db", db, "balances", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert all(list(r) == ["subject", "group", "score", "wallet", "tier"] for r in rows)
    assert [(r["group"], r["subject"]) for r in rows] == sorted(
        (r["group"], r["subject"]) for r in rows
    )
    # 2 points an hour, rounded down: R1 2h → 4; R2 1.5h + 3h → 3 + 6; base score 1000
    assert [(r["subject"], r["group"], r["score"], r["wallet"]) for r in rows] == [
        ("M1", "merchants", 1000, 0),
        ("R1", "residents", 1004, 4),
        ("R2", "residents", 1009, 9),
    ]
    csv = run("--scheme", ROOT, "--db", db, "balances", "--format", "csv", "--group", "residents")
    assert csv.stdout.splitlines()[:2] == [
        "subject,group,score,wallet,tier",
        "R1,residents,1004,4,A",
    ]


# --------------------------------------------------------------------------- diff

DIFF_KEYS = {
    "period", "as_of", "base", "new", "events", "subjects", "seconds",
    "groups", "changes", "lists", "trial", "rules",
}  # fmt: skip


def test_diff_json_against_a_rules_folder(scheme_copy, inputs):
    triple_volunteer_points(scheme_copy)
    result = run(
        "--scheme", scheme_copy, "diff", "--base", ROOT / "rules", "--period", "2024-03",
        "--format", "json", *inputs,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == DIFF_KEYS
    assert (report["period"], report["as_of"], report["events"], report["subjects"]) == (
        "2024-03", "2024-03-31", 3, 3,
    )  # fmt: skip
    assert report["base"] == str(ROOT / "rules")
    assert report["rules"] == [
        {"rule": "res-volunteer", "title": "参加志愿服务", "change": "changed"}
    ]
    # R1 2h: 4 → 6; R2 1.5h + 3h: 3 + 6 → 4 + 9
    moved = {c["subject"]: (c["base_score"], c["new_score"], c["delta"]) for c in report["changes"]}
    assert moved == {"R1": (1004, 1006, 2), "R2": (1009, 1013, 4)}
    residents = next(g for g in report["groups"] if g["group"] == "residents")
    assert (residents["accounts"], residents["changed"], residents["points_up"]) == (2, 2, 6)


def test_diff_reads_the_ledger_without_input_files(scheme_copy, tmp_path, inputs):
    db = tmp_path / "ledger.db"
    assert run("--scheme", scheme_copy, "--db", db, "ingest", "-q", *inputs).exit_code == 0
    triple_volunteer_points(scheme_copy)
    result = run(
        "--scheme", scheme_copy, "--db", db, "diff", "--base", ROOT, "--format", "markdown"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### 规则改动影响（gridcredit diff）\n")
    assert "- 修改 `res-volunteer` 参加志愿服务" in result.stdout
    assert "| R2 | residents | 1009 | 1013 | +4 |" in result.stdout


def test_diff_without_inputs_or_ledger_is_a_usage_error(tmp_path):
    result = run("--scheme", ROOT, "--db", tmp_path / "none.db", "diff", "--base", ROOT)
    assert result.exit_code == 2
    assert f"no ledger database at {tmp_path / 'none.db'}; pass the subjects and events files" in (
        result.stderr
    )
    assert not (tmp_path / "none.db").exists()


def test_diff_unknown_git_revision_is_a_usage_error(inputs):
    result = run("--scheme", ROOT, "diff", "--base", "no-such-revision-xyz", *inputs)
    assert result.exit_code == 2
    assert "cannot read rules/ at git revision 'no-such-revision-xyz'" in result.stderr


def test_diff_base_folder_without_rules_is_a_usage_error(tmp_path, inputs):
    result = run("--scheme", ROOT, "diff", "--base", tmp_path, *inputs)
    assert result.exit_code == 2
    assert "holds neither scheme.yaml nor rules/scheme.yaml" in result.stderr


# --------------------------------------------------------------------------- broken entry-point plugins


class _Dist:
    """An installed distribution as importlib.metadata reports it."""

    def __init__(self, name: str, *eps: importlib.metadata.EntryPoint):
        self.entry_points = list(eps)
        self.metadata = {"name": name}


def _install(monkeypatch, tmp_path, module: str, source: str) -> Path:
    """Put ``module`` on sys.path and announce it as entry point ``flaky`` of ``gridcredit-flaky``."""
    site = tmp_path / "site-packages"
    site.mkdir(exist_ok=True)
    file = site / f"{module}.py"
    file.write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    ep = importlib.metadata.EntryPoint(name="flaky", value=module, group="gridcredit")
    real = importlib.metadata.distributions
    monkeypatch.setattr(
        importlib.metadata, "distributions",
        lambda **kw: [*real(**kw), _Dist("gridcredit-flaky", ep)],
    )  # fmt: skip
    return file


def test_broken_entry_point_is_reported_by_name_module_and_file(monkeypatch, tmp_path):
    file = _install(monkeypatch, tmp_path, "gridcredit_flaky", "import no_such_dependency_xyz\n")
    with pytest.raises(PluginError) as e:
        build_plugins(tmp_path / "plugins")
    assert str(e.value) == (
        f"plugin 'flaky' (module gridcredit_flaky, {file}) from entry point group 'gridcredit'"
        " failed to load: No module named 'no_such_dependency_xyz' (ModuleNotFoundError)."
        " Fix the plugin, or remove it: pip uninstall gridcredit-flaky"
    )


def test_entry_point_with_a_wrong_hook_is_reported(monkeypatch, tmp_path):
    source = "from scoring import hookimpl\n\n@hookimpl\ndef after_score(db, totals):\n    pass\n"
    _install(monkeypatch, tmp_path, "gridcredit_wrong", source)
    with pytest.raises(PluginError) as e:
        build_plugins(tmp_path / "plugins")
    msg = str(e.value)
    assert msg.startswith("plugin 'flaky' (module gridcredit_wrong, ")
    assert "failed to load" in msg and "totals" in msg and "(PluginValidationError)" in msg


def test_broken_entry_point_stops_a_command_cleanly(monkeypatch, tmp_path, scheme_copy):
    _install(monkeypatch, tmp_path, "gridcredit_flaky", "raise RuntimeError('config missing')\n")
    result = run("--scheme", scheme_copy, "plugins")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: plugin 'flaky' (module gridcredit_flaky, ")
    assert "failed to load: config missing (RuntimeError)" in result.stderr
    assert "pip uninstall gridcredit-flaky" in result.stderr


def test_unusable_database_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    for db, words in (
        (bad, "not a gridcredit ledger"),
        (tmp_path / "no" / "x.db", "does not exist"),
    ):
        result = run("--scheme", ROOT, "--db", db, "score")
        assert result.exit_code == 1
        assert "cannot open the ledger database" in result.stderr and words in result.stderr
        assert "Traceback" not in result.output


def test_a_published_month_is_not_rewritten(tmp_path):
    db, site = tmp_path / "l.db", tmp_path / "site"
    subjects = tmp_path / "subjects.jsonl"
    subjects.write_text(
        '{"id": "R1", "groups": ["residents"], "name": "张三", "grid": "S01C01G01"}\n'
    )
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "type": "volunteer_service", "subject": "R1", "at": "2024-03-02T09:00:00",'
        ' "attrs": {"hours": 2, "activity": "清扫楼道"}}\n'
    )
    assert run("--scheme", ROOT, "--db", db, "ingest", "-q", subjects, events).exit_code == 0
    first = run("--scheme", ROOT, "--db", db, "publish", "2024-03", "--site", site)
    assert first.exit_code == 0, first.output
    again = run("--scheme", ROOT, "--db", db, "publish", "2024-03", "--site", site)
    assert again.exit_code == 1
    assert "published already" in again.stderr and "--force" in again.stderr
    assert (
        run("--scheme", ROOT, "--db", db, "publish", "2024-03", "--site", site, "--force").exit_code
        == 0
    )


def test_absurd_numbers_and_years_are_rejected_not_crashing(tmp_path):
    """Found in review: 1e308 or year 1 used to crash ingest or every later score."""
    db, f = tmp_path / "l.db", tmp_path / "e.jsonl"
    base = '"type": "volunteer_service", "subject": "R1", "attrs": {"hours": %s}, "at": "%s"'
    lines = [
        "{" + '"id": "a", ' + base % ("1e308", "2024-03-01T10:00:00") + "}",
        "{" + '"id": "b", ' + base % ("1", "0001-01-01T00:00:00+08:00") + "}",
        "{" + '"id": "c", ' + base % ("2", "2024-03-01T10:00:00") + "}",
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("--scheme", ROOT, "--db", db, "ingest", "-q", f)
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert "read 3 = accepted 1 + duplicates 0 + rejected 2" in result.output
    rejects = run("--scheme", ROOT, "--db", db, "rejects").output
    assert (
        "e.jsonl:1: attribute 'hours' of 'volunteer_service'" in rejects and "too large" in rejects
    )
    assert "e.jsonl:2: cannot read time '0001-01-01T00:00:00+08:00'" in rejects
    assert run("--scheme", ROOT, "--db", db, "score").exit_code == 0


def test_lists_default_to_the_latest_day_and_assess_without_data_selects_nothing(tmp_path):
    db = tmp_path / "l.db"
    assert run("--scheme", ROOT, "--db", db, "lists").exit_code == 0
    result = run("--scheme", ROOT, "--db", db, "assess", "2023-Q1")
    assert result.exit_code == 0 and "nothing assessed for 2023-Q1" in result.output


def test_an_interrupt_says_what_was_kept(tmp_path, monkeypatch):
    """Found in review: an interrupted multi-file ingest said the database was as
    before the command, although each file finished before it was committed."""
    import scoring.evaluate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring.evaluate, "score", interrupted)
    result = run("--scheme", ROOT, "--db", tmp_path / "l.db", "score")
    assert result.exit_code == 130
    assert "the steps finished before it (each file ingested, each score run) are kept" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_explain_shows_rule_titles_running_score_and_where_a_late_entry_posted(tmp_path, inputs):
    """Found in review: `balances --as-of 2024-02-29` counted a late February event
    that February's published figures, closed before it came, did not; explain
    did not say where the entry posted, so staff could not reconcile the two."""
    subjects, events = inputs
    db = tmp_path / "l.db"
    assert run("--scheme", ROOT, "--db", db, "ingest", "-q", subjects, events).exit_code == 0
    feb = tmp_path / "feb.jsonl"
    feb.write_text(
        '{"id": "f1", "type": "volunteer_service", "subject": "R1", "at": "2024-02-10T09:00:00",'
        ' "attrs": {"hours": 1}}\n'
        '{"id": "f2", "type": "volunteer_service", "subject": "R2", "at": "2024-02-11T09:00:00",'
        ' "attrs": {"hours": 1}}\n',
        encoding="utf-8",
    )
    for step in (["ingest", "-q", feb], ["score"], ["close", "2024-02"]):
        assert run("--scheme", ROOT, "--db", db, *step).exit_code == 0
    late = tmp_path / "late.jsonl"
    late.write_text(
        '{"id": "f3", "type": "volunteer_service", "subject": "R1", "at": "2024-02-20T09:00:00",'
        ' "attrs": {"hours": 3}}\n',
        encoding="utf-8",
    )
    for step in (["ingest", "-q", late], ["score"]):
        assert run("--scheme", ROOT, "--db", db, *step).exit_code == 0
    result = run("--scheme", ROOT, "--db", db, "explain", "R1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "R1 · 居民 (residents) as of 2024-03-05: score 1012, wallet 12, tier A"
    assert "  2024-02-10     +2     +2   1002  参加志愿服务 (res-volunteer)" in lines
    assert (
        "  2024-02-20     +6     +6   1008  参加志愿服务 (res-volunteer)  [posted to 2024-03]"
        in lines
    )
    assert "  2024-03-02     +4     +4   1012  参加志愿服务 (res-volunteer)" in lines


def test_rejects_lists_rejects_not_warnings_and_says_how_many_more(tmp_path):
    """Found in review: warnings about accepted records were listed as rejects, and
    the list stopped at 50 without saying more were kept."""
    db, f = tmp_path / "l.db", tmp_path / "s.jsonl"
    good = '{"id": "R%d", "groups": ["residents"], "name": "张三", "grid": "S01C01G01"}'
    warned = '{"id": "M1", "groups": ["merchants"], "name": "店", "grid": "S01C01G01", "code": "91370321MA3C000000"}'
    bad = '{"id": "X%d", "groups": ["aliens"], "name": "某", "grid": "S01C01G01"}'
    f.write_text(
        "\n".join([good % 1, warned] + [bad % i for i in range(3)]) + "\n", encoding="utf-8"
    )
    assert run("--scheme", ROOT, "--db", db, "ingest", "-q", f).exit_code == 0
    listed = run("--scheme", ROOT, "--db", db, "rejects", "--limit", "2").stdout.splitlines()
    assert len(listed) == 3 and all("aliens" in x for x in listed[:2]), listed
    assert listed[2] == "… and 1 more: `gridcredit rejects --limit 0` lists all"
    everything = run("--scheme", ROOT, "--db", db, "rejects", "--warnings", "--limit", "0").stdout
    assert "warning: " in everything and everything.count("aliens") == 3, everything


def test_a_read_only_ledger_says_so(tmp_path, monkeypatch):
    """Found in review: a read-only ledger was told to wait for another command."""
    import sqlite3

    import scoring.evaluate

    def read_only(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(scoring.evaluate, "score", read_only)
    result = run("--scheme", ROOT, "--db", tmp_path / "l.db", "score")
    assert result.exit_code == 1
    assert "cannot be written" in result.stderr and "may write the file and its folder" in (
        result.stderr
    )
    assert "another gridcredit command" not in result.stderr


def test_test_selects_by_the_rule_a_scenario_exercises_and_refuses_an_empty_selection():
    """Found in review: -k res-fire-lane selected nothing (only table rules were
    keywords), and an empty selection passed."""
    result = run("--scheme", ROOT, "test", "-k", "res-fire-lane")
    assert result.exit_code == 0, result.output
    assert re.search(r"^[1-9]\d* scenarios: \d+ passed, 0 failed", result.stdout, re.M), (
        result.stdout
    )
    empty = run("--scheme", ROOT, "test", "-k", "no-such-rule")
    assert empty.exit_code == 2
    assert "-k 'no-such-rule' selects no scenario" in empty.stderr


def test_the_command_line_loads_neither_pandas_nor_numpy(tmp_path):
    """sqlite-utils would import pandas and numpy when the Spark extra has installed
    them (half a second on every command); the command line imports it without them,
    and they stay importable afterwards."""
    code = f"""
import importlib.util, sys
from scoring.cli import main
sys.argv = ["gridcredit", "--scheme", {str(ROOT)!r}, "--db", {str(tmp_path / "g.db")!r}, "rules"]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
import sqlite_utils.db
print(sorted(m for m in ("pandas", "numpy") if m in sys.modules), sqlite_utils.db.pd is None)
if importlib.util.find_spec("pandas"):
    import pandas  # still importable for plugins
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[] True"
