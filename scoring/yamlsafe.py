"""Safe YAML loading that remembers where every value came from.

Rules are data, written by people: the loader only builds plain mappings,
lists and scalars (PyYAML's safe constructors), refuses tags that would build
objects, refuses alias bombs, deep nesting and huge files before they cost
anything, reads only regular files (a symlink to ``/dev/zero`` or a FIFO in a
merge request must not fill memory or hang CI), and keeps each node's line and column so a later check can say
``rules/packs/residents.yaml:12:7: ...``.

Booleans follow YAML 1.2 (only ``true``/``false``): in YAML 1.1 the rule key
``on`` would silently become ``True``. Numbers are decimal only (``-020`` is
-20, not octal -16; ``1:00`` and ``0x14`` stay text). Dates stay strings.
Control characters and full-width punctuation where YAML needs ``:`` or
``,`` are named at their line and column.

Where PyYAML has libyaml, files are parsed by it (about 4x faster, which every
command pays on start-up) and built by the same constructor. Anything it does
not read cleanly, and anything nested deeper than ``MAX_DEPTH``, goes through
the pure-Python loader, whose error messages and limits are the ones reported.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from .errors import Problem

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 50
MAX_DIGITS = 30  # a number written with more digits is refused as it is read
MAX_NODES = 200_000  # after expanding aliases


class PosDict(dict):
    """A mapping that knows the position of itself, its keys and its values."""

    pos: tuple[int, int] = (0, 0)
    key_pos: dict[Any, tuple[int, int]]
    val_pos: dict[Any, tuple[int, int]]


class PosList(list):
    pos: tuple[int, int] = (0, 0)
    item_pos: list[tuple[int, int]]


class _Resolver(Resolver):
    pass


# YAML 1.2 core booleans only.
_Resolver.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# Numbers as people write them, in decimal only: YAML 1.1 reads ``-020`` as -16 (octal),
# ``1:00`` as 60 (base 60) and ``0x14``, ``2_0``, ``.inf`` as numbers too. Here those stay
# text, which the schema then refuses where a number is needed, at its line and column.
_Resolver.yaml_implicit_resolvers = {
    k: [
        (tag, rx)
        for tag, rx in v
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for k, v in _Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


class _TooBig(Exception):
    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.mark = mark


class _Composer(Composer):
    depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooBig(
                    f"nested more than {MAX_DEPTH} levels deep; rule files never need that,"
                    " check for a runaway indentation or bracket",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Constructor(SafeConstructor):
    def construct_yaml_timestamp(self, node: ScalarNode) -> str:  # type: ignore[override]
        return str(node.value)

    def construct_yaml_int(self, node: ScalarNode) -> int:  # type: ignore[override]
        digits = len(node.value.strip().lstrip("+-"))
        if digits > MAX_DIGITS:  # Python refuses to convert > 4300 digits; no rule needs 20
            raise ConstructorError(None, None, _too_big(node.value), node.start_mark)
        try:
            return int(node.value, 10)  # decimal: a leading zero is not octal
        except ValueError:  # only through an explicit !!int tag
            raise ConstructorError(
                None, None, f"{node.value!r} is not a whole number", node.start_mark
            ) from None

    def construct_yaml_float(self, node: ScalarNode) -> float:  # type: ignore[override]
        try:
            x = float(node.value)
        except ValueError:
            raise ConstructorError(
                None, None, f"{node.value!r} is not a number", node.start_mark
            ) from None
        if not math.isfinite(x):  # 1e999 reads as infinity, which no arithmetic survives
            raise ConstructorError(None, None, _too_big(node.value), node.start_mark)
        return x

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> PosDict:  # type: ignore[override]
        out = PosDict()
        out.pos = _pos(node)
        out.key_pos, out.val_pos = {}, {}
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if key in out:
                raise ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in this mapping (first at line {out.key_pos[key][0]})",
                    key_node.start_mark,
                )
            out[key] = self.construct_object(value_node, deep=True)
            out.key_pos[key] = _pos(key_node)
            out.val_pos[key] = _pos(value_node)
        return out

    def construct_sequence(self, node: SequenceNode, deep: bool = False) -> PosList:  # type: ignore[override]
        out = PosList(self.construct_object(child, deep=True) for child in node.value)
        out.pos = _pos(node)
        out.item_pos = [_pos(child) for child in node.value]
        return out

    def construct_yaml_map(self, node: MappingNode):  # type: ignore[override]
        yield self.construct_mapping(node)

    def construct_yaml_seq(self, node: SequenceNode):  # type: ignore[override]
        yield self.construct_sequence(node)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)
_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)
_Constructor.add_constructor("tag:yaml.org,2002:float", _Constructor.construct_yaml_float)
_Constructor.add_constructor("tag:yaml.org,2002:map", _Constructor.construct_yaml_map)
_Constructor.add_constructor("tag:yaml.org,2002:seq", _Constructor.construct_yaml_seq)


try:
    from yaml.cyaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    CParser = None


class _Loader(Reader, Scanner, Parser, _Composer, _Constructor, _Resolver):
    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


if CParser is not None:

    class _CLoader(CParser, _Constructor, _Resolver):
        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


_BRACKETS = re.compile(r"[\[\]{}]")
_SLOW = object()  # what _load_fast returns for text the pure-Python loader must read


def _load_fast(text: str) -> Any:
    """``text`` loaded through libyaml, or ``_SLOW``: no libyaml, a parse or build
    error (the pure-Python loader then says what and where), or nesting or aliases
    beyond the limits. Deep flow nesting never reaches libyaml's recursive composer."""
    if CParser is None:
        return _SLOW
    depth = 0
    for b in _BRACKETS.findall(text):  # quoted brackets count too: only ever stricter
        depth += 1 if b in "[{" else -1
        if depth > MAX_DEPTH:
            return _SLOW
    loader = _CLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_NODES or _deeper_than(node, MAX_DEPTH):
            return _SLOW
        return loader.construct_document(node)
    except Exception:
        return _SLOW
    finally:
        loader.dispose()


def _deeper_than(root: Node, limit: int) -> bool:
    """Whether any path from ``root`` (through aliases too) is over ``limit`` nodes
    long; each node is looked at once per depth, so cycles and alias fan-out end."""
    stack: list[tuple[Node, int]] = [(root, 1)]
    seen: set[tuple[int, int]] = set()
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if (id(node), depth) in seen:
            continue
        seen.add((id(node), depth))
        if isinstance(node, SequenceNode):
            stack.extend((c, depth + 1) for c in node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
    return False


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _expanded_size(root: Node) -> int:
    """Node count with every alias expanded, computed on the DAG without expanding it."""
    memo: dict[int, int] = {}

    def size(node: Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # cycles (recursive aliases) count once
        if isinstance(node, SequenceNode):
            n = 1 + sum(size(c) for c in node.value)
        elif isinstance(node, MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            n = 1
        memo[key] = min(n, MAX_NODES + 1)
        return memo[key]

    return size(root)


def _blowup(root: Node) -> Node:
    """The innermost node that is over the limit by itself (its children are not):
    where the aliases multiply, which is where to look, not the top of the file."""
    node = root
    seen = {id(root)}
    while True:
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for kv in node.value for n in kv]
        else:
            return node
        big = next(
            (c for c in children if id(c) not in seen and _expanded_size(c) > MAX_NODES), None
        )
        if big is None:  # none, or only itself or an ancestor (a recursive alias)
            return node
        seen.add(id(big))
        node = big


def _size_mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _too_big(text: str) -> str:
    shown = text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
    return (
        f"the number {shown} is too large to use (a rule's points, values and caps are at"
        " most 1,000,000); write the number it should be"
    )


# What YAML refuses to read (its reader's set): control characters, which come
# invisibly with text pasted from a word processor or a chat app.
_UNREADABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# Full-width punctuation that a Chinese input method types where YAML needs ASCII,
# looked for only where YAML reads structure (inside text it is fine Chinese).
_FULL_WIDTH = re.compile(
    r"^([ \t]*\u3000)"  # indentation
    r"|^[ \t]*(?:-[ \t]+)?[A-Za-z_][\w-]*[ \t]*(：)"  # key：
    r"|^[ \t]*(－)[ \t]"  # － item
    r"|(?::|^[ \t]*-)[ \t]+([｛［【])"  # ｛ or ［ starting a value
    r"|[{\[][^}\]]*?(，)[ \t]*[A-Za-z_][\w-]*[ \t]*:"  # {a: 1，b: 2}
)
_ASCII = {"\u3000": "a space", "：": "':'", "－": "'-'", "｛": "'{'", "［": "'['", "【": "'['",
          "，": "','"}  # fmt: skip


def _unreadable(text: str, file: str) -> Problem | None:
    m = _UNREADABLE.search(text)
    if m is None:
        return None
    i = m.start()
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return Problem(
        file,
        line,
        col,
        f"invisible control character U+{ord(m.group()):04X}; delete it (it often comes with"
        " text pasted from a word processor or a chat app)",
    )


def _indent(line: str) -> int:
    """Where a line's content starts (after the '- ' of a list item)."""
    body = line.lstrip(" ")
    while body.startswith("- "):
        body = body[2:].lstrip(" ")
    return len(line) - len(body)


def _layout_problem(problem: str, mark: Any, lines: list[str]) -> str | None:
    """The parser's words for a Tab or a line indented wrongly, in a clerk's words."""
    here = lines[mark.line] if mark.line < len(lines) else ""
    if "'\t'" in problem or here[mark.column : mark.column + 1] == "\t":
        return "a Tab character; replace the Tab at this column with spaces (YAML indents with spaces only)"
    indent_msg = (
        "this line's indentation does not match the lines above; indent it like its siblings"
        " (use spaces)"
    )
    starts = mark.column == len(here) - len(here.lstrip(" "))
    if problem.startswith("expected <block end>") and starts:
        # a key or item where the block above had ended: indented less (or more) than
        # its siblings; mid-line it is something else (e.g. text starting with '[')
        return indent_msg
    if problem == "mapping values are not allowed here":
        # 'key: value' then a line indented deeper: YAML reads it as more of the value
        above = next((ln for ln in reversed(lines[: mark.line]) if ln.strip()), "")
        if _indent(here) > _indent(above) and above.partition(": ")[2].strip():
            return indent_msg
    return None


def _syntax_problem(file: str, text: str, e: yaml.MarkedYAMLError) -> Problem:
    """A syntax error with the position and the advice a person needs: full-width
    punctuation, a quote never closed, text that starts like a list."""
    mark = e.problem_mark or e.context_mark
    problem = (e.problem or "invalid YAML").strip()
    context = (e.context or "").strip()
    lines = text.split("\n")
    if "quoted scalar" in context and e.context_mark is not None:
        quote = lines[e.context_mark.line][e.context_mark.column : e.context_mark.column + 1]
        return _problem(
            file,
            e.context_mark,
            f"YAML syntax error: the quote {quote} that starts here is never closed;"
            f" add the closing {quote} at the end of the text",
        )
    if mark is None:
        return Problem(file, 1, 1, f"YAML syntax error: {problem}")
    first = e.context_mark.line if e.context_mark is not None else mark.line
    for n in range(max(0, min(first, mark.line) - 1), min(mark.line + 1, len(lines))):
        m = _FULL_WIDTH.search(lines[n])
        if m is not None:
            group = next(g for g in range(1, 6) if m.group(g) is not None)
            ch = m.group(group)
            return Problem(
                file,
                n + 1,
                m.end(group),
                f"YAML syntax error: full-width '{ch}' where YAML needs {_ASCII[ch]}; switch the"
                " input method to half-width (English) punctuation and type it again",
            )
    clerk = _layout_problem(problem, mark, lines)
    if clerk is not None:
        return _problem(file, mark, f"YAML syntax error: {clerk}")
    msg = f"{problem} ({context})" if context else problem
    if mark.line < len(lines):
        value = lines[mark.line].partition(": ")[2].lstrip()
        if value[:1] in ("[", "{") and not value.rstrip().endswith(("]", "}")):
            msg += (
                f"; a value that starts with '{value[0]}' is read as a list or mapping:"
                " if it is text, put it in quotes"
            )
    return _problem(file, mark, f"YAML syntax error: {msg}")


def load_yaml_text(text: str, file: str = "<string>") -> Any:
    """Parse YAML text safely; raise ``YamlProblem`` with the position on any failure."""
    bad = _unreadable(text, file)
    if bad is not None:
        raise YamlProblem(bad)
    loaded = _load_fast(text)
    if loaded is not _SLOW:
        return loaded
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_NODES:
            raise _TooBig(
                f"expands to more than {MAX_NODES:,} values through aliases (&anchor/*alias);"
                " write the values out or use fewer aliases",
                _blowup(node).start_mark,
            )
        return loader.construct_document(node)
    except _TooBig as e:
        raise YamlProblem(_problem(file, e.mark, str(e))) from None
    except ConstructorError as e:
        mark = e.problem_mark or e.context_mark
        msg = e.problem or "cannot build this value"
        if "could not determine a constructor" in msg:
            tag = msg.split("the tag", 1)[-1].strip(" '")
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            msg = (
                f"the tag '{tag}' is not allowed: rule files hold plain text, numbers, lists"
                " and mappings only, never objects or code; remove the tag"
            )
        raise YamlProblem(_problem(file, mark, msg)) from None
    except yaml.MarkedYAMLError as e:
        raise YamlProblem(_syntax_problem(file, text, e)) from None
    except yaml.YAMLError as e:  # reader errors: bad characters
        raise YamlProblem(Problem(file, 1, 1, f"not readable as YAML text: {e}")) from None
    except RecursionError:
        raise YamlProblem(Problem(file, 1, 1, "nested too deeply to read")) from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path, display: str | None = None) -> Any:
    """Load one YAML file safely: a regular file of at most ``MAX_FILE_BYTES`` only."""
    file = display or str(path)
    return load_yaml_bytes(read_rules_file(path, file), file)


def load_yaml_bytes(data: bytes, file: str) -> Any:
    """Parse the bytes of a YAML file (as ``read_rules_file`` returns them)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YamlProblem(
            Problem(file, 1, 1, f"not UTF-8 text (byte {e.start}); save the file as UTF-8")
        ) from None
    return load_yaml_text(text, file)


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO), which can make a reader wait forever"),
    (stat.S_ISCHR, "a device file"),
    (stat.S_ISBLK, "a device file"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: Path, file: str, mode: int) -> YamlProblem:
    kind = next((word for test, word in _KINDS if test(mode)), "not a regular file")
    link = ""
    if path.is_symlink():
        link = f" (a symbolic link to {os.readlink(path)})"
    return YamlProblem(
        Problem(
            file,
            1,
            1,
            f"not a regular file{link}: it is {kind}; gridcredit reads rules and scenarios"
            " from regular files only. Replace it with the file itself, or remove it",
        )
    )


def read_rules_file(
    path: str | Path, file: str, *, inside: Path | None = None, limit: int = MAX_FILE_BYTES
) -> bytes:
    """The bytes of a rules or scenario file, refused as a ``YamlProblem`` at ``file:1:1``
    unless it is a regular file (a symlink to one is fine; with ``inside``, only when it
    points inside that folder) of at most ``limit`` bytes, checked while reading: a
    symlink to ``/dev/zero`` or a FIFO, which git carries, must not fill memory or hang."""
    path = Path(path)

    def cannot(e: OSError) -> YamlProblem:
        return YamlProblem(Problem(file, 1, 1, f"cannot read file: {e.strerror}"))

    try:
        st = os.stat(path)  # follows symlinks: the file that would be read
    except OSError as e:
        raise cannot(e) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, file, st.st_mode)
    if inside is not None and path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(inside.resolve()):
            raise YamlProblem(
                Problem(
                    file,
                    1,
                    1,
                    f"a symbolic link to {os.readlink(path)}, outside the scheme repository"
                    " (the folder holding rules/); rules files must live in the repository:"
                    " copy the file in instead of linking to it",
                )
            )
    too_big = f"rule files are limited to {_size_mb(limit)}. Split it or remove the oversized value"
    if st.st_size > limit:
        raise YamlProblem(Problem(file, 1, 1, f"file is {_size_mb(st.st_size)}; {too_big}"))
    # O_NONBLOCK: should a FIFO be swapped in after the check, opening it does not wait
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise cannot(e) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, file, mode)
        chunks: list[bytes] = []
        total = 0
        while True:  # the limit holds while reading, whatever stat said
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise YamlProblem(Problem(file, 1, 1, f"file is over {_size_mb(limit)}; {too_big}"))
    except OSError as e:
        raise cannot(e) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


class YamlProblem(Exception):
    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _problem(file: str, mark: Any, message: str) -> Problem:
    if mark is None:
        return Problem(file, 1, 1, message)
    return Problem(file, mark.line + 1, mark.column + 1, message)


def position(data: Any, path: list[Any] | tuple[Any, ...]) -> tuple[int, int]:
    """Line and column of the node at ``path`` (keys and indices) inside loaded data.

    Falls back to the nearest enclosing node that has a position.
    """
    best = getattr(data, "pos", (1, 1))
    node = data
    for step in path:
        if isinstance(node, PosDict) and step in node:
            best = node.val_pos.get(step, best)
            node = node[step]
        elif isinstance(node, PosList) and isinstance(step, int) and 0 <= step < len(node):
            best = node.item_pos[step]
            node = node[step]
        else:
            break
    return best


def key_position(data: Any, path: list[Any] | tuple[Any, ...], key: Any) -> tuple[int, int]:
    """Line and column of ``key`` itself in the mapping at ``path``."""
    node = data
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return position(data, path)
    if isinstance(node, PosDict) and key in node.key_pos:
        return node.key_pos[key]
    return position(data, path)
