"""Plugins: the local screen-time plugin, loading errors, entry points, the
``plugins`` command, and the lifecycle hooks fired by the pipeline."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoring import hookimpl, ledger
from scoring import plugins as plugins_mod
from scoring.cli import cli
from scoring.plugins import PluginError, build_plugins
from scoring.publish import GroupInfo, MonthData, SubjectRank, TierInfo
from scoring.publish import write_month_site as publish_pages

ROOT = Path(__file__).parent.parent
LOCAL = "plugins/screen_time.py"
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def screen():
    """The screen-time plugin module as the plugin manager loaded it from plugins/."""
    pm = build_plugins(ROOT / "plugins").pm
    module = pm.get_plugin(LOCAL)
    assert module is not None, [n for n, _ in pm.list_name_plugin()]
    return module


# --------------------------------------------------------------------------
# allocate(): hand-computed numbers


def test_allocate_proportional_to_points_above_the_floor(screen):
    # weights 1050-960+1 = 91, 960-960+1 = 1, 1029-960+1 = 70; total 162
    # 600*91/162 = 337 r 6, 600*1/162 = 3 r 114, 600*70/162 = 259 r 42 -> 599, 1 left
    # the leftover minute goes to the largest remainder (y, 114)
    got = screen.allocate([("x", 1050, "AAA"), ("y", 960, "A"), ("z", 1029, "A")], 600)
    assert got == {"x": 337, "y": 4, "z": 259}


def test_allocate_ineligible_tiers_get_nothing(screen):
    got = screen.allocate(
        [("a", 1040, "AA"), ("b", 959, "B"), ("c", 700, "C"), ("d", 1000, "A"), ("e", 100, "D")],
        600,
    )
    # weights 81 and 41 (total 122): 600*81/122 = 398 r 44, 600*41/122 = 201 r 76 -> d gets the 1 left
    assert got == {"a": 398, "b": 0, "c": 0, "d": 202, "e": 0}


def test_allocate_equal_scores_split_by_id_order(screen):
    # 100/3 = 33 r 1 each; the one leftover minute goes to the smallest id
    got = screen.allocate([("m3", 1000, "A"), ("m1", 1000, "A"), ("m2", 1000, "A")], 100)
    assert got == {"m1": 34, "m2": 33, "m3": 33}


def test_allocate_equal_remainders_prefer_the_higher_weight(screen):
    # weights 1 and 3 of total 4: 2*1/4 = 0 r 2 and 2*3/4 = 1 r 2 (equal remainders);
    # the minute goes to the higher weight although "a" < "b"
    assert screen.allocate([("a", 960, "A"), ("b", 962, "A")], 2) == {"a": 0, "b": 2}


def test_allocate_nobody_eligible_gives_zeros(screen):
    assert screen.allocate([("a", 900, "B"), ("b", 500, "D")], 600) == {"a": 0, "b": 0}
    assert screen.allocate([], 600) == {}


def test_allocate_honours_floor_and_tier_set(screen):
    got = screen.allocate([("a", 1012, "A"), ("b", 1000, "B")], 10, eligible=("A",), floor=1010)
    assert got == {"a": 10, "b": 0}


def test_allocate_rejects_duplicates_and_negative_totals(screen):
    with pytest.raises(ValueError, match="appears twice"):
        screen.allocate([("a", 1000, "A"), ("a", 1001, "A")], 600)
    with pytest.raises(ValueError, match="total_minutes"):
        screen.allocate([("a", 1000, "A")], -1)


def test_allocate_sums_exactly_and_ignores_input_order(screen):
    rng = random.Random(4)
    tiers = [(1050, "AAA"), (1030, "AA"), (960, "A"), (850, "B"), (0, "D")]
    for _ in range(200):
        merchants = []
        for i in range(rng.randint(1, 30)):
            low, tier = rng.choice(tiers)
            merchants.append((f"M{i:03d}", low + rng.randint(0, 19), tier))
        total = rng.randint(0, 900)
        got = screen.allocate(merchants, total)
        eligible = [m for m in merchants if m[2] in ("AAA", "AA", "A")]
        assert sum(got.values()) == (total if eligible else 0)
        assert all(got[m[0]] == 0 for m in merchants if m not in eligible)
        # largest remainder: every share is within one minute of its exact quota
        weights = {m[0]: m[1] - 959 for m in eligible}
        for mid, w in weights.items():
            assert abs(got[mid] - total * w / sum(weights.values())) < 1
        rng.shuffle(merchants)
        assert screen.allocate(merchants, total) == got


# --------------------------------------------------------------------------
# the publisher


def merchant_data(month: str = "2024-03") -> MonthData:
    tiers = [
        TierInfo("AAA", "诚信模范", 1050),
        TierInfo("AA", "诚信先进", 1030, 1049),
        TierInfo("A", "诚信", 960, 1029),
        TierInfo("B", "基本诚信", 850, 959),
        TierInfo("C", "诚信警示", 600, 849),
        TierInfo("D", "失信", None, 599),
    ]
    rows = [
        SubjectRank(
            "M1", "鑫源超市", "G1", 1050, "AAA", 1, kind="organization", code="91370321MA3C000011"
        ),
        SubjectRank("M2", "*星光* <b>饭店</b>", "G1", 960, "A", 3, kind="organization"),
        SubjectRank("M3", "老王烧烤", "G1", 1029, "A", 2, kind="organization"),
        SubjectRank("M4", "平价药房", "G1", 900, "B", 4, kind="organization"),
        SubjectRank("M5", "张三丰", "G1", 1030, "AA", 5, kind="person"),  # 个体工商户 as a person
    ]
    return MonthData(
        title="桓台县城市社区网格化治理信用积分",
        month=month,
        groups=[
            GroupInfo("residents", "居民", "person", tiers),
            GroupInfo("merchants", "市场主体", "organization", tiers),
        ],
        grids=[],
        rankings={"merchants": rows, "residents": []},
    )


def test_local_plugin_is_loaded_from_the_plugins_folder(screen):
    plugins = build_plugins(ROOT / "plugins")
    pm = plugins.pm
    assert Path(screen.__file__).resolve() == (ROOT / LOCAL).resolve()
    [impl] = [i for i in pm.hook.register_publishers.get_hookimpls() if i.plugin_name == LOCAL]
    assert impl.plugin is pm.get_plugin(LOCAL)
    assert Path(impl.plugin.__file__).resolve() == (ROOT / LOCAL).resolve()
    names = [p.name for p in plugins.publishers]
    assert "screen-time" in names


def test_publisher_writes_page_and_csv(screen, tmp_path):
    [pub] = screen.register_publishers(build_plugins())
    site = tmp_path / "site"
    paths = pub.write("2024-03", merchant_data(), site)
    page = site / "months" / "2024-03" / "screen-time.md"
    data = site / "data" / "2024-03" / "screen-time.csv"
    assert paths == [page, data]
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# 2024年3月商户大屏展示时长分配\n")
    # weights: M1 91, M5 71, M3 70, M2 1 (total 233); 600*w/233 -> 234 r78, 182 r198, 180 r60, 2 r134
    # 598 given, the 2 left go to the remainders 198 (M5) and 134 (M2)
    assert "| 鑫源超市 | AAA（诚信模范） | 1050 | 234 | 39.0% |" in text
    assert "| 张&#42;丰 | AA（诚信先进） | 1030 | 183 | 30.5% |" in text  # persons masked
    assert "| 老王烧烤 | A（诚信） | 1029 | 180 | 30.0% |" in text
    assert "&#42;星光&#42; &#60;b&#62;饭店&#60;/b&#62; | A（诚信） | 960 | 3 | 0.5% |" in text
    assert "<b>" not in text and "平价药房" not in text  # escaped; tier B not shown
    assert "参加分配 4 户，未达等级 1 户" in text
    assert "M1" not in text and "91370321" not in text  # no ids, no credit codes
    raw = data.read_bytes()
    assert raw.startswith(BOM)
    lines = raw[len(BOM) :].decode("utf-8").splitlines()
    assert lines == [
        "月份,名称,等级,信用积分,每日展示分钟数,占比",
        "2024-03,鑫源超市,AAA,1050,234,39.0%",
        "2024-03,张*丰,AA,1030,183,30.5%",
        "2024-03,老王烧烤,A,1029,180,30.0%",
        "2024-03,*星光* <b>饭店</b>,A,960,3,0.5%",
    ]


def test_screen_time_csv_cells_never_become_formulas(screen, tmp_path):
    """A merchant named like a spreadsheet formula stays text in the open data."""
    [pub] = screen.register_publishers(build_plugins())
    data = merchant_data()
    row = data.rankings["merchants"][0]
    data.rankings["merchants"][0] = dataclasses.replace(
        row, name='=HYPERLINK("http://x.example/","领奖")'
    )
    _, csv_path = pub.write("2024-03", data, tmp_path)
    text = csv_path.read_text(encoding="utf-8-sig")
    assert '\'=HYPERLINK(""http://x.example/"",""领奖"")' in text, text
    assert "\n=" not in text and ",=" not in text


def test_publisher_output_is_byte_identical(screen, tmp_path):
    [pub] = screen.register_publishers(build_plugins())
    data = merchant_data()
    a = pub.write("2024-03", data, tmp_path / "a")
    data.rankings["merchants"].reverse()  # input order must not matter
    b = pub.write("2024-03", data, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_publisher_uses_the_schemes_tier_set(screen, tmp_path):
    tiers = [
        TierInfo("A", "优", 1010),
        TierInfo("B", "良", 990, 1009),
        TierInfo("C", "差", None, 989),
    ]
    data = MonthData(
        "t", "2024-03", [GroupInfo("merchants", "商户", "organization", tiers)], [],
        {"merchants": [SubjectRank("M1", "甲店", "G1", 1012, "A", 1, kind="organization"),
                       SubjectRank("M2", "乙店", "G1", 1009, "B", 2, kind="organization")]},
    )  # fmt: skip
    [pub] = screen.register_publishers(build_plugins())
    [page, _] = pub.write("2024-03", data, tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "| 甲店 | A（优） | 1012 | 600 | 100.0% |" in text
    assert "每户权重 = 月末信用积分 − 1010 + 1" in text


def test_publisher_without_merchants_group_writes_nothing(screen, tmp_path):
    [pub] = screen.register_publishers(build_plugins())
    data = MonthData("t", "2024-03", [GroupInfo("residents", "居民")], [], {"residents": []})
    assert pub.write("2024-03", data, tmp_path) == []
    assert not any(tmp_path.iterdir())


def test_publisher_with_nobody_eligible(screen, tmp_path):
    data = merchant_data()
    data.rankings["merchants"] = [r for r in data.rankings["merchants"] if r.tier == "B"]
    [pub] = screen.register_publishers(build_plugins())
    [page, csv_path] = pub.write("2024-03", data, tmp_path)
    assert "本月没有信用等级达到要求的商户" in page.read_text(encoding="utf-8")
    assert csv_path.read_bytes() == BOM + "月份,名称,等级,信用积分,每日展示分钟数,占比\n".encode()


def test_publisher_refuses_a_month_that_is_a_path(screen, tmp_path):
    from scoring.errors import InputError

    [pub] = screen.register_publishers(build_plugins())
    with pytest.raises(InputError, match="not of the form YYYY-MM"):
        pub.write("../../etc", merchant_data(), tmp_path)


def test_publisher_runs_after_the_built_in_pages(screen, tmp_path):
    paths = publish_pages(
        "2024-03", merchant_data(), tmp_path, secret=b"k" * 32, iterations=1000,
        publishers=screen.register_publishers(build_plugins()),
    )  # fmt: skip
    assert tmp_path / "months" / "2024-03" / "screen-time.md" in paths
    assert tmp_path / "data" / "2024-03" / "screen-time.csv" in paths
    assert (tmp_path / "months" / "2024-03" / "index.md").exists()


# --------------------------------------------------------------------------
# loading errors and third-party plugins


def test_broken_local_plugin_is_reported_by_file(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "good.py").write_text("x = 1\n", encoding="utf-8")
    (folder / "broken.py").write_text("def register_publishers(:\n    pass\n", encoding="utf-8")
    with pytest.raises(PluginError) as e:
        build_plugins(folder)
    msg = str(e.value)
    assert str(folder / "broken.py") in msg
    assert "local plugin 'broken' failed to load: SyntaxError" in msg
    assert "Fix the plugin or move it out of plugins/" in msg


def test_local_plugin_with_an_unknown_hook_argument_is_reported(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "wrong.py").write_text(
        "from scoring import hookimpl\n\n@hookimpl\ndef after_publish(month, pages):\n    pass\n",
        encoding="utf-8",
    )
    with pytest.raises(
        PluginError, match=r"(?s)wrong\.py: local plugin 'wrong' failed to load.*pages"
    ):
        build_plugins(folder)


def test_underscore_files_in_plugins_are_not_loaded(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "_helpers.py").write_text(
        "raise RuntimeError('must not be imported')\n", encoding="utf-8"
    )
    pm = build_plugins(folder).pm
    assert not any(str(n).startswith("plugins/") for n, _ in pm.list_name_plugin())


class _FakeDist:
    """A distribution as importlib.metadata reports it: only ``entry_points`` is read."""

    def __init__(self, *eps: importlib.metadata.EntryPoint):
        self.entry_points = list(eps)
        self.metadata = {"name": "gridcredit-shout"}


def _entry_point(monkeypatch, tmp_path, module: str, source: str) -> None:
    """Install ``module`` in a tmp site-packages and announce it as entry point ``shout``."""
    pkg = tmp_path / "site-packages"
    pkg.mkdir()
    (pkg / f"{module}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(pkg))
    ep = importlib.metadata.EntryPoint(name="shout", value=module, group="gridcredit")
    other = importlib.metadata.EntryPoint(name="x", value="no_such_module", group="not-gridcredit")
    real = importlib.metadata.distributions
    monkeypatch.setattr(
        importlib.metadata, "distributions", lambda **kw: [*real(**kw), _FakeDist(ep, other)]
    )


def test_entry_point_plugin_is_registered_and_wins_mask_name(monkeypatch, tmp_path):
    _entry_point(
        monkeypatch, tmp_path, "gridcredit_shout",
        "from scoring import hookimpl\n\n"
        "@hookimpl\ndef mask_name(name, kind):\n    return '某某' if kind == 'person' else None\n",
    )  # fmt: skip
    folder = tmp_path / "plugins"  # a fresh folder: a fresh plugin manager
    pm = build_plugins(folder).pm
    assert pm.has_plugin("shout")
    assert pm.hook.mask_name(name="张三丰", kind="person") == "某某"
    # None passes on to the built-in masking
    assert pm.hook.mask_name(name="鑫源超市", kind="organization") == "鑫源超市"
    described = {p["name"]: p for p in plugins_mod.describe_plugins(pm)}
    assert described["shout"]["hooks"] == ["mask_name"]
    assert described["shout"]["file"].endswith("gridcredit_shout.py")


def test_broken_entry_point_plugin_is_a_plugin_error(monkeypatch, tmp_path):
    _entry_point(monkeypatch, tmp_path, "gridcredit_broken", "raise ImportError('needs libfoo')\n")
    with pytest.raises(
        PluginError, match="entry point group 'gridcredit' failed to load: needs libfoo"
    ):
        build_plugins(tmp_path / "plugins")


# --------------------------------------------------------------------------
# the plugins command


def test_plugins_command_lists_built_ins_local_plugin_and_hooks():
    result = CliRunner().invoke(cli, ["--scheme", str(ROOT), "plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    listed = {ln.split(": ")[0]: ln.split(": ")[1] for ln in lines if not ln.startswith(" ")}
    assert listed[LOCAL] == "register_publishers"
    assert f"    {(ROOT / LOCAL).resolve()}" in [
        f"    {Path(ln.strip()).resolve()}" for ln in lines if ln.startswith("    ")
    ]
    assert listed["scoring.builtin.operators"] == "register_operators"
    assert listed["scoring.builtin.points"] == "register_points_forms"
    assert listed["scoring.builtin.formats"] == "register_input_formats"
    assert listed["scoring.builtin.masking"] == "mask_name"
    assert listed["scoring.builtin.metrics"] == "register_metrics"


# --------------------------------------------------------------------------
# lifecycle hooks fired by the pipeline (the hooks no built-in implements)


class Recorder:
    """Records every lifecycle hook call with its keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    @hookimpl
    def scheme_loaded(self, scheme):
        self.calls.append(("scheme_loaded", {"scheme": scheme.id}))

    @hookimpl
    def before_ingest(self, db, files):
        self.calls.append(("before_ingest", {"files": [Path(f).name for f in files]}))

    @hookimpl
    def after_ingest(self, batches):  # opt-in: takes only what it needs
        self.calls.append(("after_ingest", {"accepted": [b["accepted"] for b in batches]}))

    @hookimpl
    def before_score(self, scheme):
        self.calls.append(("before_score", {"scheme": scheme.id}))

    @hookimpl
    def after_score(self, db, scheme, summary):
        self.calls.append(("after_score", {"entries": summary.entries}))

    @hookimpl
    def after_publish(self, month, site_dir, paths):
        names = sorted(p.name for p in paths if p.parent.name == month)
        self.calls.append(("after_publish", {"month": month, "screen": "screen-time.md" in names}))


def test_lifecycle_hooks_are_fired_once_per_stage(engine_scheme, tmp_path, screen):
    from scoring.ingest import ingest_files
    from scoring.periods import close_month
    from scoring.pipeline import publish_month

    rec = Recorder()
    scheme = engine_scheme(
        merchants=[{"id": "m-sort", "title": "垃圾分类", "on": "sorting", "points": 15}],
        plugins=build_plugins(None, extra=[rec, screen]),
    )
    subjects = tmp_path / "subjects.jsonl"
    subjects.write_text(
        json.dumps({"id": "M1", "groups": ["merchants"], "name": "鑫源超市", "grid": "G1"},
                   ensure_ascii=False) + "\n", encoding="utf-8",
    )  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(json.dumps({"id": f"E{i}", "type": "sorting", "subject": "M1",
                            "at": f"2024-03-0{i}T10:00:00"}) + "\n" for i in (1, 2)),
        encoding="utf-8",
    )  # fmt: skip
    db = ledger.connect(tmp_path / "ledger.db")
    ingest_files(db, scheme, [subjects], progress=False)
    ingest_files(db, scheme, [events], progress=False)
    from scoring.evaluate import score

    score(db, scheme)
    close_month(db, scheme, "2024-03")
    publish_month(db, scheme, "2024-03", tmp_path / "site")

    assert rec.calls == [
        ("scheme_loaded", {"scheme": "t"}),
        ("before_ingest", {"files": ["subjects.jsonl"]}),
        ("after_ingest", {"accepted": [1]}),
        ("before_ingest", {"files": ["events.jsonl"]}),
        ("after_ingest", {"accepted": [2]}),
        ("before_score", {"scheme": "t"}),
        ("after_score", {"entries": 2}),
        ("after_publish", {"month": "2024-03", "screen": True}),
    ]
    # the publisher saw the scheme's own tier set (A from 1010) through the pipeline
    page = (tmp_path / "site" / "months" / "2024-03" / "screen-time.md").read_text(encoding="utf-8")
    assert "| 鑫源超市 | A（优） | 1030 | 600 | 100.0% |" in page


# --------------------------------------------------------------------------
# one plugin manager per scheme: a scheme's own operator works everywhere

EVEN_PLUGIN = """
from scoring import Operator, hookimpl


def _even(value):
    want = bool(value)
    return lambda x: (int(x) % 2 == 0) == want


@hookimpl
def register_operators():
    return [Operator("even_hours", _even, types=("number", "integer"), description="为偶数")]
"""

EVEN_SCENARIO = """
defaults: {groups: [residents], grid: G1}
scenarios:
  - name: 偶数小时的志愿服务加5分
    subjects: [P1]
    events:
      - {type: volunteer, at: 2024-03-01T10:00, hours: 2}
      - {type: volunteer, at: 2024-03-02T10:00, hours: 3}
    expect:
      entries:
        - {subject: P1, rule: res-even, points: 5, count: 1}
      balances:
        - {subject: P1, score: 1005}
"""


@pytest.fixture
def even_repo(tmp_path) -> Path:
    """A scheme repository whose residents rule uses its own operator ``even_hours``
    (plugins/even.py), with a scenario for it."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).parent / "fixtures" / "engine", repo)
    (repo / "rules" / "packs" / "residents.yaml").write_text(
        "pack: residents\nversion: '1'\ngroup: residents\nrules:\n"
        "  - id: res-even\n    title: 偶数时长\n    on: volunteer\n"
        "    when: {attrs.hours: {even_hours: true}}\n    points: 5\n",
        encoding="utf-8",
    )
    (repo / "plugins").mkdir()
    (repo / "plugins" / "even.py").write_text(EVEN_PLUGIN, encoding="utf-8")
    (repo / "tests" / "scenarios").mkdir(parents=True)
    (repo / "tests" / "scenarios" / "even.yaml").write_text(EVEN_SCENARIO, encoding="utf-8")
    return repo


def test_scheme_operator_is_known_to_validate(even_repo):
    from scoring.validate import validate_scheme

    problems = validate_scheme(even_repo)
    assert [str(p) for p in problems if p.severity == "error"] == []
    assert not [p for p in problems if "even_hours" in p.message or "packs" in p.file]
    result = CliRunner().invoke(cli, ["--scheme", str(even_repo), "validate"])
    assert result.exit_code == 0, result.output
    assert "even_hours" not in result.output


def test_scheme_operator_works_in_gridcredit_test(even_repo):
    result = CliRunner().invoke(cli, ["--scheme", str(even_repo), "test"])
    assert result.exit_code == 0, result.output
    assert "1 passed" in result.output or "passed" in result.output


def test_scheme_operator_works_in_score(even_repo, tmp_path):
    people = tmp_path / "subjects.jsonl"
    people.write_text(
        json.dumps({"id": "P1", "groups": ["residents"], "name": "张三丰", "grid": "G1"}) + "\n",
        encoding="utf-8",
    )
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps({"id": f"E{h}", "type": "volunteer", "subject": "P1",
                        "at": f"2024-03-0{h}T10:00:00", "attrs": {"hours": h}}) + "\n"
            for h in (2, 3)
        ),
        encoding="utf-8",
    )  # fmt: skip
    db = tmp_path / "ledger.db"
    base = ["--scheme", str(even_repo), "--db", str(db)]
    for args in (["ingest", str(people), str(events)], ["score"]):
        result = CliRunner().invoke(cli, [*base, *args])
        assert result.exit_code == 0, result.output
    rows = ledger.connect(db).execute("SELECT event, rule, points FROM entries").fetchall()
    assert rows == [("E2", "res-even", 5)]


def test_scheme_operator_works_in_plain_pytest(even_repo):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/scenarios"],
        cwd=even_repo, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_two_schemes_in_one_process_have_their_own_plugins(even_repo):
    from scoring.loader import load_scheme

    mine = load_scheme(even_repo)
    other = load_scheme(Path(__file__).parent / "fixtures" / "engine")
    assert "even_hours" in mine.plugins.operators
    assert "even_hours" not in other.plugins.operators
    assert mine.plugins.pm is not other.plugins.pm


WORDED_PLUGIN = EVEN_PLUGIN.replace(
    'description="为偶数")',
    'description="为偶数",\n'
    '                     render=lambda w, v: f"{w.title}为偶数{w.unit}" if v else f"{w.title}为奇数")',
)


def test_scheme_operator_words_itself_in_gridcredit_rules(even_repo):
    """The rule book words a plugin operator as the operator says (``Operator.render``),
    with the field's title from events.yaml, as it does the built-ins."""
    (even_repo / "plugins" / "even.py").write_text(WORDED_PLUGIN, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--scheme", str(even_repo), "rules"])
    assert result.exit_code == 0, result.output
    assert "- 条件：时长为偶数\n" in result.output


def test_scheme_operator_without_wording_reads_with_its_description(even_repo):
    result = CliRunner().invoke(cli, ["--scheme", str(even_repo), "rules"])
    assert result.exit_code == 0, result.output
    assert "- 条件：时长为偶数“True”\n" in result.output


# --------------------------------------------------------------------------
# one registry: a name registered twice is refused, naming both plugins


def _local(tmp_path, **files: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    for name, source in files.items():
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
    return folder


EQ_PLUGIN = (
    "from scoring import Operator, hookimpl\n\n"
    "@hookimpl\ndef register_operators():\n"
    "    return [Operator('eq', lambda v: lambda x: str(x) == str(v))]\n"
)


def test_plugin_re_registering_eq_is_refused(tmp_path):
    from scoring.plugins import PluginConflict

    folder = _local(tmp_path, myeq=EQ_PLUGIN)
    with pytest.raises(PluginConflict) as e:
        build_plugins(folder)
    builtin = Path(__file__).parent.parent / "scoring" / "builtin" / "operators.py"
    assert str(e.value) == (
        f"operator 'eq' is registered twice: by plugin 'scoring.builtin.operators'"
        f" ({builtin.resolve()}) and by plugin 'plugins/myeq.py' ({folder / 'myeq.py'})."
        " A name may be registered once; rename the operator in plugin 'plugins/myeq.py'"
        f" ({folder / 'myeq.py'}) (pick another name, e.g. 'eq_myeq') and use that name"
        " in the rules"
    )


def test_re_registered_eq_is_a_clean_cli_error(even_repo):
    (even_repo / "plugins" / "myeq.py").write_text(EQ_PLUGIN, encoding="utf-8")
    for command in (["validate"], ["test"], ["plugins"]):
        result = CliRunner().invoke(cli, ["--scheme", str(even_repo), *command])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error: operator 'eq' is registered twice"), result.output
        assert "plugins/myeq.py" in result.output and "Traceback" not in result.output


def test_two_plugins_registering_one_metric_are_refused(tmp_path):
    from scoring.plugins import PluginConflict

    metric = (
        "from scoring import Metric, hookimpl\n\n"
        "@hookimpl\ndef register_metrics():\n"
        "    return [Metric('share', lambda ctx, spec: {})]\n"
    )
    folder = _local(tmp_path, alpha=metric, beta=metric)
    with pytest.raises(PluginConflict) as e:
        build_plugins(folder)
    msg = str(e.value)
    assert msg.startswith("metric 'share' is registered twice: by plugin 'plugins/alpha.py'")
    assert f"({folder / 'alpha.py'})" in msg and f"({folder / 'beta.py'})" in msg
    assert "rename the metric in plugin 'plugins/beta.py'" in msg


def test_plugin_metric_named_like_a_built_in_is_refused(tmp_path):
    """It used to replace the built-in ``mean`` silently."""
    from scoring.plugins import PluginConflict

    folder = _local(
        tmp_path,
        mymean="from scoring import Metric, hookimpl\n\n@hookimpl\ndef register_metrics():\n"
        "    return [Metric('mean', lambda ctx, spec: {})]\n",
    )
    with pytest.raises(PluginConflict, match="metric 'mean' is registered twice: by plugin"
                       " 'scoring.builtin.metrics'.* and by plugin 'plugins/mymean.py'"):  # fmt: skip
        build_plugins(folder)


# --------------------------------------------------------------------------
# check_pending: a misspelled hook is refused


def test_misspelled_hook_is_refused_naming_the_file(tmp_path):
    folder = _local(
        tmp_path,
        typo="from scoring import hookimpl\n\n@hookimpl\ndef register_operater():\n    return []\n",
    )
    with pytest.raises(PluginError) as e:
        build_plugins(folder)
    assert str(e.value) == (
        f"plugin 'plugins/typo.py' ({folder / 'typo.py'}) implements 'register_operater',"
        " which is not a gridcredit hook; did you mean 'register_operators'?"
        " Rename the function (or drop its @hookimpl)"
    )


# --------------------------------------------------------------------------
# no module-level plugin manager; built-ins found through the registry only


def test_no_module_level_plugin_manager():
    import pluggy

    import scoring
    from scoring import plugins as plugins_module

    assert not hasattr(plugins_module, "get_plugin_manager")
    assert not hasattr(plugins_module, "set_default_plugins_dir")
    assert not hasattr(plugins_module, "_managers")
    scoring_dir = Path(scoring.__file__).parent
    for path in sorted(scoring_dir.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "get_plugin_manager" not in text and "set_default_plugins_dir" not in text, path
    import importlib

    for path in sorted(scoring_dir.rglob("*.py")):
        name = ".".join(path.relative_to(scoring_dir.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        if name.endswith("__main__") or name == "scoring.testing.pytest_plugin":
            continue
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            assert not isinstance(value, (pluggy.PluginManager, plugins_module.Plugins)), (
                f"{name}.{attr} is a module-level plugin manager"
            )


def test_core_finds_built_ins_through_the_registry_only():
    import scoring

    scoring_dir = Path(scoring.__file__).parent
    for path in [scoring_dir / "conditions.py", *sorted((scoring_dir / "ingest").glob("*.py"))]:
        import ast

        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        ]
        assert not [m for m in imported if "builtin" in m], path  # no import cycle either
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & {"JSONL", "CSV", "BUILTIN_FORMATS", "BUILTIN_OPERATORS"}, path


def test_public_plugin_api():
    import scoring
    from scoring.assess import Metric
    from scoring.compile import PointsForm
    from scoring.conditions import Operator
    from scoring.ingest import InputFormat
    from scoring.publish import Publisher

    assert (scoring.Operator, scoring.PointsForm, scoring.InputFormat) == (
        Operator, PointsForm, InputFormat,
    )  # fmt: skip
    assert (scoring.Metric, scoring.Publisher) == (Metric, Publisher)
    assert scoring.hookimpl is hookimpl
    source = (ROOT / LOCAL).read_text(encoding="utf-8")
    assert "mask_name(" in source and "import mask_name" not in source.replace(" ", " ")
    assert (
        "from scoring.publish import" not in source
        or "mask_name" not in source.split("from scoring.publish import")[1].split("\n")[0]
    )
