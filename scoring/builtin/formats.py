"""Built-in input formats: JSON Lines and CSV (UTF-8, a leading BOM is tolerated).

Both readers work line by line on bytes, so a file of any size is read in
bounded memory. Besides the ``read`` of the hook contract they have a
``read_raw`` that also yields the raw text of each record, which ingest keeps
with every reject.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ..hookspecs import hookimpl
from ..ingest import InputFormat, RecordError

BOM = b"\xef\xbb\xbf"
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def json_error(e: orjson.JSONDecodeError) -> RecordError:
    return RecordError(f"invalid JSON at column {e.colno}: {e.msg}", e.colno)


def not_utf8(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first bytes) is UTF-16 or UTF-32
    text (Excel's "Unicode text", Notepad's "Unicode"): a byte-order mark of
    those, or two printable ASCII characters in UTF-16 (``{\\0"\\0``,
    ``\\0{\\0"``) or one in UTF-32. A first line of garbage with NULs in it is
    not that: the line is rejected on its own, like any bad record."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # never the start of UTF-8 text
    if len(head) < 4:
        return False
    # each byte: NUL (0), printable ASCII (1), or other (2)
    kinds = tuple(0 if b == 0 else 1 if 0x20 <= b < 0x7F else 2 for b in head[:4])
    return kinds in (
        (1, 0, 1, 0),  # UTF-16 LE
        (0, 1, 0, 1),  # UTF-16 BE
        (1, 0, 0, 0),  # UTF-32 LE
        (0, 0, 0, 1),  # UTF-32 BE
    )


def _check_utf8(path: str | Path, f: io.BufferedReader) -> None:
    """Refuse a UTF-16 or UTF-32 file as a whole: read as UTF-8, every line of it
    would be rejected with a message that does not say why."""
    if not_utf8(f.peek(4)[:4]):
        from ..errors import InputError

        raise InputError(
            f"{path}:1: the file is UTF-16 or UTF-32 text, not UTF-8; nothing was read."
            ' Save it as UTF-8 (Excel: "CSV UTF-8"; Notepad: encoding "UTF-8")'
            " and ingest it again"
        )


def read_jsonl_raw(path: str | Path) -> Iterator[tuple[int, dict | Exception, bytes]]:
    """Yield ``(line, record | RecordError, raw line)``; blank lines are skipped."""
    with open(path, "rb") as f:
        _check_utf8(path, f)
        if f.peek(3)[:3] == BOM:
            f.read(3)
        for n, line in enumerate(f, 1):
            try:
                rec = _loads(line)
            except _JSONDecodeError as e:
                if not line.strip():
                    continue
                rec = json_error(e)
            yield n, rec, line


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict | Exception]]:
    for n, rec, _raw in read_jsonl_raw(path):
        yield n, rec


class _CsvLines:
    """The lines of a CSV file as text for ``csv.reader``, each kept with its number
    and, if its bytes are not UTF-8, why; lines handed back are read again."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.n = 0
        self.taken: list[tuple[int, str, str | None]] = []  # read since the last take()
        self.pending: deque[tuple[int, str, str | None]] = deque()

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        if self.pending:
            line = self.pending.popleft()
        else:
            b = self.f.readline()
            if not b:
                raise StopIteration
            self.n += 1
            if self.n == 1 and b.startswith(BOM):
                b = b[3:]
            why = None
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError as e:
                text = b.decode("utf-8", "replace")
                why = f"not UTF-8 text at line {self.n}, byte {e.start + 1}: save the file as UTF-8"
            line = (self.n, text, why)
        self.taken.append(line)
        return line[1]

    def take(self) -> list[tuple[int, str, str | None]]:
        """The lines read since the last call: those of one row."""
        taken, self.taken = self.taken, []
        return taken

    def again(self, lines: list[tuple[int, str, str | None]]) -> None:
        self.pending.extendleft(reversed(lines))


def read_csv_raw(path: str | Path) -> Iterator[tuple[int, dict | Exception, str]]:
    """Yield ``(first line of the row, record | RecordError, raw text)``.

    The first non-blank row is the header. Values are strings; an empty cell
    is an absent value. A row whose field count differs from the header's is
    rejected, as is a row with bytes that are not UTF-8.

    A quoted value may hold line breaks, so a row can run on over several
    lines. When such a row is bad (its field count is wrong, or it cannot be
    read), the cause is a quote that is never closed: only the row's first
    line is rejected, and reading goes on from the line after it, so one stray
    quote cannot swallow the records that follow.
    """
    with open(path, "rb") as f:
        _check_utf8(path, f)
        lines = _CsvLines(f)
        reader = csv.reader(lines)
        header: list[str] | None = None
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
            width = None if header is None else len(header)
            if width is not None and len(taken) > 1 and (error is not None or len(row) != width):
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
                yield start, RecordError(f"cannot read CSV row: {error}"), raw
                continue
            why = next((w for _, _, w in taken if w), None)
            if why:
                yield start, RecordError(why), raw
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [h.strip() for h in row]
                seen: set[str] = set()
                for h in header:
                    if h in seen:
                        from ..errors import InputError

                        raise InputError(
                            f"{path}:{start}: column '{h}' appears twice in the header;"
                            " give every column a distinct name"
                        )
                    seen.add(h)
                continue
            if len(row) != len(header):
                yield (
                    start,
                    RecordError(
                        f"row has {len(row)} fields but the header has {len(header)};"
                        " quote values that contain commas"
                    ),
                    raw,
                )
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
