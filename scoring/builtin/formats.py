"""Built-in input formats: JSON Lines and CSV (UTF-8, a leading BOM is tolerated).

Both readers work line by line on bytes, so a file of any size is read in
bounded memory. Besides the ``read`` of the hook contract they have a
``read_raw`` that also yields the raw text of each record, which ingest keeps
with every reject.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ..errors import InputError
from ..hookspecs import hookimpl
from ..ingest.encoding import BOM, NOT_UTF8, check_utf8, gbk_refusal, not_utf8
from ..ingest.records import InputFormat, RecordError
from ..ingest.run import header_columns

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

# The longest CSV value read (Python's default is 131,072 characters); a JSON Lines
# record may be as long as memory allows.
CSV_FIELD_LIMIT = 50_000_000
csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


def json_error(e: orjson.JSONDecodeError, line: bytes | None = None) -> RecordError:
    """The reject of a line that is not JSON, with the column where reading failed.

    orjson says "line 2 column 1" when the line ends too soon (the newline read as
    part of the record): that is the column after the line's last character. A
    line that is not UTF-8 gets the byte and column of the first bad byte."""
    msg, col = e.msg, e.colno
    if line is not None:
        if msg.startswith("str is not valid UTF-8"):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as u:
                col = len(line[: u.start].decode("utf-8", "replace")) + 1
                return RecordError(
                    f"{NOT_UTF8} at byte {u.start + 1} (column {col}): save the file as UTF-8",
                    col,
                )
        else:
            body = line.rstrip(b"\r\n")
            end = len(body.decode("utf-8", "replace")) + 1  # the column after the last character
            if e.lineno > 1 or (col == end and (body != line or msg == "unexpected end of data")):
                col = end  # the record ran into the line's end (inside a string, say)
                msg = "the line ends before the record does (is it cut short?)"
    return RecordError(f"invalid JSON at column {col}: {msg}", col)


def parse_jsonl_lines(lines: list[bytes], n0: int) -> list[tuple[int, dict | Exception, bytes]]:
    """``(line, record | RecordError, raw line)`` of whole JSON Lines, the first
    numbered ``n0``; blank lines are skipped. The one JSON Lines parser: the
    reader below and the ingest workers (``InputFormat.parse_lines``) use it."""
    loads = _loads
    items: list[tuple[int, dict | Exception, bytes]] = []
    for n, line in enumerate(lines, n0):
        try:
            rec = loads(line)
        except _JSONDecodeError as e:
            if not line.strip():
                continue
            if b"\r" in line and len(parts := _LONE_CR.split(line)) > 1:
                # records that a lone CR (old Mac line end) joined: each one on its own,
                # at the line's number (found in review: 5 records counted 4 read)
                items.extend((n, _one(p), p) for p in parts if p.strip())
                continue
            rec = json_error(e, line)
        items.append((n, rec, line))
    return items


def _one(part: bytes) -> dict | Exception:
    try:
        return _loads(part)
    except _JSONDecodeError as e:
        return json_error(e, part)


_READ_HINT = 1 << 20  # bytes of whole lines parsed at a time: bounded memory, few calls


def read_jsonl_raw(path: str | Path) -> Iterator[tuple[int, dict | Exception, bytes]]:
    """Yield ``(line, record | RecordError, raw line)``; blank lines are skipped."""
    with open(path, "rb") as f:
        check_utf8(path, f)
        if f.peek(3)[:3] == BOM:
            f.read(3)
        gbk_checked = False
        n0 = 1
        while lines := f.readlines(_READ_HINT):
            items = parse_jsonl_lines(lines, n0)
            n0 += len(lines)
            if not gbk_checked and any(
                r.__class__ is RecordError and str(r).startswith(NOT_UTF8) for _, r, _ in items
            ):
                gbk_checked = True
                refusal = gbk_refusal(path)
                if refusal is not None:
                    raise refusal from None
            yield from items


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict | Exception]]:
    for n, rec, _raw in read_jsonl_raw(path):
        yield n, rec


# a CR that is not followed by LF ends a line too (old Excel for Mac writes those)
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


class _CsvLines:
    """The lines of a CSV file as text for ``csv.reader``, each kept with its number
    and, if its bytes are not UTF-8, why; lines handed back are read again.

    A line ends at LF, CR LF or a lone CR. The first line that is not UTF-8 has
    the whole file looked at: a GBK file is refused (:func:`gbk_refusal`)."""

    def __init__(self, f: BinaryIO, path: str | Path):
        self.f = f
        self.path = path
        self.n = 0
        self.taken: list[tuple[int, str, str | None]] = []  # read since the last take()
        self.pending: deque[tuple[int, str, str | None]] = deque()
        self.cut: deque[bytes] = deque()  # the rest of a line cut at lone CRs
        self.gbk_checked = False

    def __iter__(self) -> _CsvLines:
        return self

    def _bytes(self) -> bytes:
        if self.cut:
            return self.cut.popleft()
        b = self.f.readline()
        if b.endswith(b"\r\r\n"):  # CR CR LF (text-mode output on Windows): one line end
            b = b.rstrip(b"\r\n") + b"\r\n"
        if b.count(b"\r") > (b[-2:] == b"\r\n"):
            parts = [p for p in _LONE_CR.split(b) if p]
            b = parts[0]
            self.cut.extend(parts[1:])
        return b

    def __next__(self) -> str:
        if self.pending:
            line = self.pending.popleft()
        else:
            b = self._bytes()
            if not b:
                raise StopIteration
            self.n += 1
            if self.n == 1 and b.startswith(BOM):
                b = b[3:]
            why = None
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError as e:
                if not self.gbk_checked:
                    self.gbk_checked = True
                    refusal = gbk_refusal(self.path)
                    if refusal is not None:
                        raise refusal from None
                text = b.decode("utf-8", "replace")
                why = f"{NOT_UTF8} at line {self.n}, byte {e.start + 1}: save the file as UTF-8"
            line = (self.n, text, why)
        self.taken.append(line)
        return line[1]

    def take(self) -> list[tuple[int, str, str | None]]:
        """The lines read since the last call: those of one row."""
        taken, self.taken = self.taken, []
        return taken

    def again(self, lines: list[tuple[int, str, str | None]]) -> None:
        self.pending.extendleft(reversed(lines))


def _well_quoted(lines: list[tuple[int, str, str | None]]) -> bool:
    """Whether the lines of a row that ran on are one row whose quotes all close
    where a value ends (at a comma or the end of a line), as a quoted value with
    line breaks in it does. A quote that is never closed is not: the reader took
    the next quote it met, an opening one, for its end (``,"清扫`` and the like)."""
    text = "".join(t for _, t, _ in lines)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return False
    return len(rows) == 1


def _csv_error(e: csv.Error) -> str:
    if "field larger than field limit" in str(e):
        return (
            f"a value in this row is longer than {CSV_FIELD_LIMIT:,} characters;"
            " split it, or check for a quote that is never closed"
        )
    return f"cannot read CSV row: {e}"


def _header(path: str | Path, line: int, row: list[str], raw: str) -> list[str]:
    """The column names of a header row; refuses (``InputError``) a header that
    cannot be the header of any kind of file, or is not comma-separated.

    Names are trimmed; one that spells a known column in other letter case
    (``ID``, ``Type``) is that column; empty names at the end (Excel's trailing
    commas) are dropped; an empty name elsewhere is kept as ``""``: that column
    is ignored where it is empty."""
    names = [h.strip() for h in row]
    while names and not names[-1]:
        names.pop()
    for sep, what in ((";", "';' (semicolons)"), ("\t", "tabs")):
        if raw.count(sep) > raw.count(","):
            raise InputError(
                f"{path}:{line}: the header uses {what} as separator, not commas; save the"
                ' file as comma-separated (Excel: "CSV UTF-8 (Comma delimited)") and ingest'
                " it again"
            )
    names, problem = header_columns(names)
    seen: dict[str, str] = {}
    for h, given in zip(names, row):
        if h and h in seen:
            also = f" (as '{given.strip()}')" if given.strip() != h else ""
            raise InputError(
                f"{path}:{line}: column '{h}' appears twice in the header{also};"
                " give every column a distinct name"
            )
        seen[h] = given
    if problem:
        raise InputError(f"{path}:{line}: {problem}")
    return names


def read_csv_raw(path: str | Path) -> Iterator[tuple[int, dict | Exception, str]]:
    """Yield ``(first line of the row, record | RecordError, raw text)``.

    The first non-blank row is the header (see :func:`_header`). Values are
    strings; an empty cell is an absent value. A row whose field count differs
    from the header's is rejected (empty cells past the header's last column
    are dropped first), as is a row with bytes that are not UTF-8. Rows with
    nothing in any cell are skipped, as blank lines are: they are no records.

    A quoted value may hold line breaks, so a row can run on over several
    lines. When such a row cannot be read, or its field count is wrong and a
    quote in it does not close where a value ends, the cause is a quote that is
    never closed: only the row's first line is rejected, and reading goes on
    from the line after it, so one stray quote cannot swallow the records that
    follow. A row whose quoted values all close properly is one row, rejected
    as a whole when its field count is wrong.
    """
    with open(path, "rb") as f:
        check_utf8(path, f)
        lines = _CsvLines(f, path)
        reader = csv.reader(lines)
        header: list[str] | None = None
        unnamed: list[int] = []  # columns with no name in the header
        width = 0
        while True:
            error = None
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                error, row = e, []
            taken = lines.take()
            if not taken:
                break
            start = taken[0][0]
            if header is not None and len(row) > width and not any(c.strip() for c in row[width:]):
                del row[width:]  # empty cells past the last column (Excel's trailing commas)
            if (
                header is not None and len(taken) > 1
                and (error is not None or (len(row) != width and not _well_quoted(taken)))
            ):  # fmt: skip
                lines.again(taken[1:])  # read them again, as rows of their own
                yield (
                    start,
                    RecordError(
                        "a quote opened in this row is never closed on its line (the row ran on"
                        f" to line {taken[-1][0]}); close the quote or remove it"
                    ),
                    taken[0][1].rstrip("\r\n"),
                )
                continue
            raw = "".join(t for _, t, _ in taken).rstrip("\r\n")
            if error is not None:
                yield start, RecordError(_csv_error(error)), raw
                continue
            why = next((w for _, _, w in taken if w), None)
            if why:
                yield start, RecordError(why), raw
                continue
            if not row or (not row[0].strip() and not any(c.strip() for c in row)):
                continue  # a blank line, or a row of empty cells: no record
            if header is None:
                header = _header(path, start, row, raw)
                width = len(header)
                unnamed = [i for i, h in enumerate(header) if not h]
                continue
            if len(row) != width:
                yield (
                    start,
                    RecordError(
                        f"row has {len(row)} fields but the header has {width};"
                        " quote values that contain commas"
                    ),
                    raw,
                )
                continue
            if unnamed:
                filled = next((i for i in unnamed if row[i].strip()), None)
                if filled is not None:
                    yield (
                        start,
                        RecordError(
                            f"column {filled + 1} has no name in the header, but this row has"
                            f" {row[filled]!r} in it; name the column or clear the value"
                        ),
                        raw,
                    )
                    continue
                yield start, {h: v for h, v in zip(header, row) if h}, raw
                continue
            yield start, dict(zip(header, row)), raw


def read_csv(path: str | Path) -> Iterator[tuple[int, dict | Exception]]:
    for n, rec, _raw in read_csv_raw(path):
        yield n, rec


JSONL = InputFormat(
    name="jsonl",
    suffixes=(".jsonl", ".ndjson", ".jsonlines"),
    read=read_jsonl,
    read_raw=read_jsonl_raw,
    parse_lines=parse_jsonl_lines,
)
CSV = InputFormat(
    name="csv",
    suffixes=(".csv",),
    read=read_csv,
    read_raw=read_csv_raw,
    text_values=True,
)
BUILTIN_FORMATS = (JSONL, CSV)


@hookimpl
def register_input_formats() -> list[InputFormat]:
    return list(BUILTIN_FORMATS)


__all__ = ["BOM", "NOT_UTF8", "gbk_refusal", "not_utf8"]  # re-exported from scoring.ingest.encoding
