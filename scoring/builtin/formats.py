"""Built-in input formats: JSON Lines and CSV (UTF-8, a leading BOM is tolerated).

Both readers work line by line on bytes, so a file of any size is read in
bounded memory. Besides the ``read`` of the hook contract they have a
``read_raw`` that also yields the raw text of each record, which ingest keeps
with every reject.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import orjson

from ..hookspecs import hookimpl
from ..ingest import InputFormat, RecordError

BOM = b"\xef\xbb\xbf"
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def json_error(e: orjson.JSONDecodeError) -> RecordError:
    return RecordError(f"invalid JSON at column {e.colno}: {e.msg}", e.colno)


def read_jsonl_raw(path: str | Path) -> Iterator[tuple[int, dict | Exception, bytes]]:
    """Yield ``(line, record | RecordError, raw line)``; blank lines are skipped."""
    with open(path, "rb") as f:
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


def read_csv_raw(path: str | Path) -> Iterator[tuple[int, dict | Exception, str]]:
    """Yield ``(first line of the row, record | RecordError, raw text)``.

    The first non-blank row is the header. Values are strings; an empty cell
    is an absent value. A row whose field count differs from the header's is
    rejected, as is a row with bytes that are not UTF-8.
    """
    consumed: list[str] = []
    bad: list[str] = []

    with open(path, "rb") as f:

        def lines() -> Iterator[str]:
            for n, b in enumerate(f, 1):
                if n == 1 and b.startswith(BOM):
                    b = b[3:]
                try:
                    s = b.decode("utf-8")
                except UnicodeDecodeError as e:
                    s = b.decode("utf-8", "replace")
                    bad.append(
                        f"not UTF-8 text at line {n}, byte {e.start + 1}: save the file as UTF-8"
                    )
                consumed.append(s)
                yield s

        reader = csv.reader(lines())
        header: list[str] | None = None
        while True:
            before = reader.line_num
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raw = "".join(consumed)
                consumed.clear()
                bad.clear()
                if reader.line_num == before:
                    break
                yield before + 1, RecordError(f"cannot read CSV row: {e}"), raw.rstrip("\r\n")
                continue
            raw = "".join(consumed)
            consumed.clear()
            start = before + 1
            if bad:
                msg = bad[0]
                bad.clear()
                yield start, RecordError(msg), raw.rstrip("\r\n")
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
                    raw.rstrip("\r\n"),
                )
                continue
            yield start, dict(zip(header, row)), raw.rstrip("\r\n")


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
