"""The validator: one bad rules folder per check, exact messages and locations.

Each folder in ``tests/bad/<case>/`` holds only what differs from the small
valid scheme in ``tests/fixtures/mini/rules/``: files to lay over it (same
relative paths; a new pack is simply added), an optional ``DELETE`` listing
files to remove, an optional ``SPECIAL`` making what git cannot carry or a copy
would follow (``fifo PATH``, ``symlink PATH TARGET``, ``folder PATH``; ``#``
comments), and ``expected.txt`` with every problem ``validate`` must
report, one per line, as ``path-inside-rules:line:col: message``.

To add a case: create the folder with the bad file(s), run
``GRIDCREDIT_REGEN=1 pytest tests/test_validate.py -k <case>``, and read the
generated ``expected.txt`` carefully before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scoring.errors import Problem
from scoring.loader import read_scheme
from scoring.validate import check_scheme, validate_scheme

# A shared 2-core CI machine can stall any process for a moment; the limit is
# "within a second" on an idle machine, scaled when GRIDCREDIT_SLOW is set.
SLOW_MACHINE = float(os.environ.get("GRIDCREDIT_SLOW", "3"))

HERE = Path(__file__).parent
MINI = HERE / "fixtures" / "mini" / "rules"
BAD = HERE / "bad"
REFERENCE = HERE.parent / "rules"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


@pytest.fixture
def scheme_dir(tmp_path: Path) -> Path:
    """A copy of the mini scheme as ``tmp_path/rules``."""
    rules = tmp_path / "rules"
    shutil.copytree(MINI, rules)
    return rules


def build_case(case: str, rules: Path) -> None:
    src = BAD / case
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or rel.name in ("expected.txt", "DELETE", "SPECIAL"):
            continue
        target = rules / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    delete = src / "DELETE"
    if delete.is_file():
        for name in delete.read_text(encoding="utf-8").split():
            (rules / name).unlink()
    special = src / "SPECIAL"
    if special.is_file():
        for line in special.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            kind, name, *target = line.split()
            path = rules / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() or path.is_symlink():
                path.unlink()
            if kind == "fifo":
                os.mkfifo(path)
            elif kind == "symlink":
                path.symlink_to(target[0])
            elif kind == "folder":
                path.mkdir()
            else:
                raise ValueError(f"{special}: unknown kind {kind!r}")


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail, rather than hang, when validate waits on a FIFO or reads a device forever."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"validate still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def shown(problems: list[Problem], rules: Path) -> list[str]:
    """Problems as the CLI prints them, with paths relative to the rules folder (also
    where a message cites another place: it uses the same form as the line prefix)."""
    out = []
    for p in problems:
        text = str(p)
        for prefix in (str(rules.resolve()) + os.sep, str(rules) + os.sep):
            text = text.replace(prefix, "")
        out.append(text)
    return out


def test_mini_scheme_is_valid(scheme_dir: Path) -> None:
    assert shown(validate_scheme(scheme_dir.parent), scheme_dir) == []


def test_reference_scheme_is_valid() -> None:
    problems = validate_scheme(REFERENCE.parent)
    assert [str(p) for p in problems] == []


def test_cases_exist() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_bad_case(case: str, scheme_dir: Path) -> None:
    build_case(case, scheme_dir)
    with deadline(30 * SLOW_MACHINE):
        got = shown(validate_scheme(scheme_dir.parent), scheme_dir)
    expected_file = BAD / case / "expected.txt"
    if os.environ.get("GRIDCREDIT_REGEN"):
        expected_file.write_text("".join(line + "\n" for line in got), encoding="utf-8")
    expected = [
        line
        for line in expected_file.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert expected, f"{expected_file} lists no problem: a bad case must report one"
    assert got == expected


def test_check_scheme_collects_all_files(scheme_dir: Path) -> None:
    """Errors in several files come back together, sorted by file and line."""
    build_case("unknown-key", scheme_dir)
    build_case("tier-gap", scheme_dir)
    build_case("catalog-unknown-names", scheme_dir)
    problems = check_scheme(read_scheme(scheme_dir))
    files = [Path(p.file).name for p in problems]
    assert files == sorted(files)
    assert {"catalog.yaml", "extra.yaml", "scheme.yaml"} <= set(files)
    assert problems == sorted(problems)


def test_semantic_checks_skip_files_that_fail_the_schema(scheme_dir: Path) -> None:
    # a schema error and a semantic error in the same pack: only the schema error shows
    (scheme_dir / "packs" / "extra.yaml").write_text(
        'pack: extra\nversion: "1"\ngroup: residents\nrules:\n'
        "  - {id: res-a, title: a, on: volunter_service, points: 1}\n"
        "  - {id: res-b, title: b, on: volunteer_service, points: 1, colour: red}\n",
        encoding="utf-8",
    )
    got = shown(validate_scheme(scheme_dir), scheme_dir)
    assert got == [
        (
            "packs/extra.yaml:6:61: unknown key 'colour' in rule 'res-b'; allowed keys here:"
            " adopted, also, effective, escalate, expires, family, grade, groups, id, limit,"
            " no_defaults, note, on, points, repair, severity, status, title, wallet, when, withhold"
        )
    ]


def test_validate_scheme_without_scheme_file(tmp_path: Path) -> None:
    from scoring.errors import UsageError

    # not a scheme at all: a usage error (exit 2), not a problem in some file
    with pytest.raises(
        UsageError, match="no scheme.yaml in .* run gridcredit in a scheme repository"
    ):
        validate_scheme(tmp_path)


# ---- hostile YAML is refused quickly, with a clear message -----------------


def _hostile(scheme_dir: Path, text: str) -> list[str]:
    validate_scheme(scheme_dir)  # warm up: schemas and plugins load once per process
    (scheme_dir / "packs" / "extra.yaml").write_text(text, encoding="utf-8")
    start = time.perf_counter()
    got = shown(validate_scheme(scheme_dir), scheme_dir)
    assert time.perf_counter() - start < 1.0 * SLOW_MACHINE
    return got


def test_alias_bomb_is_refused(scheme_dir: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    got = _hostile(scheme_dir, "\n".join(lines) + "\n")
    assert len(got) == 1
    # at the list where the aliases pass the limit (a5: 10^6 values), not the file's top
    assert got[0].startswith("packs/extra.yaml:6:5: expands to more than 200,000 values")


def test_python_object_tag_is_refused(scheme_dir: Path) -> None:
    got = _hostile(
        scheme_dir,
        'pack: extra\nversion: "1"\ngroup: residents\nrules:\n'
        "  - !!python/object/apply:os.system [echo pwned]\n",
    )
    assert got == [
        (
            "packs/extra.yaml:5:5: the tag '!!python/object/apply:os.system' is not allowed: rule"
            " files hold plain text, numbers, lists and mappings only, never objects or code;"
            " remove the tag"
        )
    ]


def test_deep_nesting_is_refused(scheme_dir: Path) -> None:
    got = _hostile(scheme_dir, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert len(got) == 1
    assert "nested more than 50 levels deep" in got[0]
    assert got[0].startswith("packs/extra.yaml:1:")


def test_deep_block_nesting_is_refused_the_same_way(scheme_dir: Path) -> None:
    """Nesting by indentation reaches libyaml (brackets never do beyond the limit);
    the depth check then sends it to the pure-Python loader, which says where."""
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(60)) + "  " * 60 + "v: 1\n"
    got = _hostile(scheme_dir, text)
    assert len(got) == 1
    assert "nested more than 50 levels deep" in got[0]
    assert got[0].startswith("packs/extra.yaml:50:")


_YAML_SNIPPETS = [
    "a: {title: 志愿服务志愿服务, points: 2}\nb: [志愿, 服务, x]\n",
    "\ufeffpack: p\r\nversion: '1'\r\nrules:\r\n  - id: a\r\n    on: yes\r\n",
    "base: &b {points: 2, per: month}\nrules:\n  - <<: *b\n    id: x\n  - *b\n",
    "t: |\n  第一行\n  second\nu: >-\n  folded\n  text\nd: 2024-03-01\nn: ~\nf: 1.5e3\n",
    "on: true\noff: False\nlist:\n- 1\n- '2'\n- -3\n# a comment\nk: 0o17\n",
    "",
    "# only a comment\n",
    "a: &x [1, *x]\n",  # a recursive list: refused by both
]


def _same(a, b) -> None:
    from scoring.yamlsafe import PosDict, PosList

    assert type(a) is type(b) and a == b or (a is b)
    if isinstance(a, PosDict):
        assert (a.pos, a.key_pos, a.val_pos) == (b.pos, b.key_pos, b.val_pos)
        for k in a:
            if a[k] is not a:
                _same(a[k], b[k])
    elif isinstance(a, PosList):
        assert (a.pos, a.item_pos) == (b.pos, b.item_pos)
        for x, y in zip(a, b, strict=True):
            if x is not a:
                _same(x, y)


def _both(text: str, monkeypatch: pytest.MonkeyPatch):
    from scoring import yamlsafe

    if yamlsafe.CParser is None:
        pytest.skip(
            "this PyYAML was built without libyaml (`python -c 'import yaml;"
            " print(yaml.__with_libyaml__)'` prints False), so only the pure-Python loader"
            " runs and there is nothing to compare; PyPI's PyYAML wheels, which CI installs,"
            " include libyaml"
        )
    fast = yamlsafe._load_fast(text)
    with monkeypatch.context() as m:
        m.setattr(yamlsafe, "_load_fast", lambda text: yamlsafe._SLOW)
        slow = yamlsafe.load_yaml_text(text)
    return fast, slow


@pytest.mark.parametrize("text", _YAML_SNIPPETS)
def test_libyaml_reads_what_the_pure_python_loader_reads(text, monkeypatch) -> None:
    """Same values, same types, same line and column of every key and value."""
    from scoring import yamlsafe

    if text.startswith("a: &x"):
        assert yamlsafe._load_fast(text) is yamlsafe._SLOW
        with pytest.raises(yamlsafe.YamlProblem, match="1:4: found unconstructable recursive node"):
            yamlsafe.load_yaml_text(text)
        return
    fast, slow = _both(text, monkeypatch)
    _same(fast, slow)


def test_the_reference_rules_are_read_by_libyaml_as_by_the_pure_python_loader(
    monkeypatch,
) -> None:
    root = Path(__file__).parent.parent / "rules"
    files = sorted(root.rglob("*.yaml"))
    assert len(files) >= 10
    for f in files:
        fast, slow = _both(f.read_text(encoding="utf-8"), monkeypatch)
        from scoring import yamlsafe

        assert fast is not yamlsafe._SLOW, f
        _same(fast, slow)


def test_huge_file_is_refused(scheme_dir: Path) -> None:
    validate_scheme(scheme_dir)  # warm up: schemas and plugins load once per process
    big = scheme_dir / "packs" / "extra.yaml"
    with big.open("w", encoding="utf-8") as fh:
        fh.write("pack: extra\nnote: '")
        chunk = "x" * (1024 * 1024)
        for _ in range(50):
            fh.write(chunk)
        fh.write("'\n")
    start = time.perf_counter()
    got = shown(validate_scheme(scheme_dir), scheme_dir)
    assert time.perf_counter() - start < 1.0 * SLOW_MACHINE
    assert got == [
        (
            "packs/extra.yaml:1:1: file is 50.0 MB; rule files are limited to 2.0 MB."
            " Split it or remove the oversized value"
        )
    ]


def test_yaml_11_booleans_stay_text(scheme_dir: Path) -> None:
    """``on: yes`` must not turn into True: the key 'on' and the value stay text."""
    got = _hostile(
        scheme_dir,
        'pack: extra\nversion: "1"\ngroup: residents\nrules:\n'
        "  - {id: res-a, title: a, on: yes, points: 1}\n",
    )
    assert got == [
        (
            "packs/extra.yaml:5:31: rule 'res-a' scores events of type 'yes', which events.yaml"
            " does not declare; declare it in events.yaml"
        )
    ]


def test_numbers_are_read_in_decimal_only() -> None:
    """YAML 1.1 reads -020 as -16 (octal) and 1:00 as 60 (base 60): a rule writer
    means -20 and a typo. Only decimal numbers are numbers; the rest stays text,
    which the schema then refuses where a number is needed (tests/bad/number-forms)."""
    from scoring.yamlsafe import load_yaml_text

    got = load_yaml_text("a: -020\nb: 010\nc: 1:00\nd: 0x14\ne: 2_0\nf: 0.5\ng: .inf\nh: +3\n")
    assert got == {"a": -20, "b": 10, "c": "1:00", "d": "0x14", "e": "2_0", "f": 0.5,
                   "g": ".inf", "h": 3}  # fmt: skip


@pytest.mark.parametrize(
    ("line", "where", "words"),
    [
        ("    title: 参加\x0b培训\n", (8, 14), "invisible control character U+000B"),
        ("    title: 参加\x1f培训\n", (8, 14), "invisible control character U+001F"),
        ("    title：参加培训\n", (8, 10), "full-width '：' where YAML needs ':'"),
        ("    points: ｛per: hours, value: 2}\n", (8, 13), "full-width '｛' where YAML needs '{'"),
        ("    points: {per: hours，value: 2}\n", (8, 24), "full-width '，' where YAML needs ','"),
    ],
)
def test_pasted_characters_are_named_at_their_place(
    scheme_dir: Path, line: str, where: tuple[int, int], words: str
) -> None:
    """Text pasted from a chat app or typed with a Chinese input method: the
    character itself is named, at its line and column, never a traceback."""
    text = (
        'pack: extra\nversion: "1"\ngroup: residents\ntitle: t\nrules:\n'
        "  - id: res-a\n    on: volunteer_service\n" + line + "    title2: x\n"
    )
    got = _hostile(scheme_dir, text)
    assert len(got) == 1 and got[0].startswith(f"packs/extra.yaml:{where[0]}:{where[1]}: "), got
    assert words in got[0], got


def test_full_width_punctuation_inside_text_is_fine_chinese(scheme_dir: Path) -> None:
    from scoring.yamlsafe import load_yaml_text

    assert load_yaml_text("title: 参加，志愿：服务（每小时）\n") == {
        "title": "参加，志愿：服务（每小时）"
    }


def test_a_backtracking_pattern_cannot_stall_scoring() -> None:
    """'^(a+)+$' takes Python's re about 2^n steps on n a's and a b; the 'matches'
    operator must answer at once (RE2, linear time). Run in a child so that a
    backtracking engine fails the test by its timeout instead of hanging it."""
    import subprocess
    import sys

    code = (
        "from scoring.builtin.operators import _matches\n"
        "test = _matches('^(a+)+$')\n"
        "print(test('a' * 60 + 'b'), test('a' * 60))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "True"]


def test_a_recursive_alias_over_the_limit_is_refused_at_once(scheme_dir: Path) -> None:
    """Found in review: a list holding its own anchor sent the search for where
    the aliases multiply round in a circle."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 6):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    lines.append("r: &r [*r, *a5, *a5, *a5]")
    got = _hostile(scheme_dir, "\n".join(lines) + "\n")
    assert len(got) == 1 and "expands to more than 200,000 values" in got[0], got


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^\w+$", "清扫楼道", True),  # Python's \w is Unicode; RE2's alone is ASCII
        (r"\d", "５号楼", True),  # a full-width digit is a digit
        (r"^[\w-]+$", "楼-道", True),
        (r"^\s+$", "\u3000", True),  # the ideographic space is a space
        (r"\W", "清扫", False),
        (r"[^\d]", "5", False),
        (r"\p{Han}", "清", True),
        (r"[]a]", "]", True),
    ],
)
def test_matches_reads_classes_as_python_does(pattern, text, matches) -> None:
    """Found in review: through RE2, \\w, \\d and \\s had become ASCII only, so a
    rule like '^\\w+$' stopped matching Chinese text without a word."""
    from scoring.builtin.operators import _matches

    assert _matches(pattern)(text) is matches


@pytest.mark.parametrize(
    ("pattern", "words"),
    [(r"\b清扫", "\\b (a word boundary) is not supported"), (r"[\W]", "\\W inside [...]")],
)
def test_what_re2_cannot_say_in_unicode_is_refused(pattern, words) -> None:
    from scoring.builtin.operators import _matches

    with pytest.raises(ValueError, match=re.escape(f"pattern {pattern!r} cannot be used: {words}")):
        _matches(pattern)
