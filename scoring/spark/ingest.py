"""Subjects and events files read by Spark, with the SQLite path's checks and accounting.

Spark lists and reads the files (local, HDFS, S3 paths alike; :func:`read_sources`):
a JSON Lines file in line-aligned chunks, many tasks per file (each chunk numbers
its lines from 1; the run adds the earlier chunks' lines, so line numbers are the
file's); a CSV or plugin format file whole by one task (``binaryFile``, the
scheme's own reader: a record may span lines); a Parquet file's rows as records.
Records are checked by the ingest package's record checks themselves
(``_EventIngest.prepare``, ``_SubjectIngest._record``), imported, not copied, so the
reasons of the rejects are the same words. Then, across files, in the order they were given:

- events: the first record of an id (by file, then line) is accepted; a later one
  with the same content is a duplicate, with other content conflicting (the
  reason names the accepted one's file and line, as ``_EventIngest._judge`` words
  it: it is called for it);
- subjects: master data, folded per id in file and line order: the same id twice
  in one file with other content is conflicting, a later file's other content
  updates the subject.

So ``read = accepted + duplicates + rejected`` holds per file, as in ``batches``.
Limits: a CSV file is parsed by one task (split it by day, or give JSON Lines or
Parquet); jurisdictions files are not read (grids come from the scheme's
``jurisdictions.yaml``). Over 600 lines: the readers of three sources for two
kinds of record, and the driver's side of them, belong together.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from ..errors import GridcreditError, InputError, UsageError
from ..ingest.batch import _raw_text
from ..ingest.encoding import NOT_UTF8
from ..ingest.events import _EventIngest
from ..ingest.master import _SubjectIngest
from ..ingest.records import _SORT, CHUNK, BatchSummary, _Bad, _dumps, _show, uscc_problem

_SCHEMES: dict[str, Any] = {}


def scheme_of(scheme_dir: str) -> Any:
    """The scheme of ``scheme_dir`` and its compiled rules, loaded once per Python
    process (driver or worker). On a cluster's executors, where the driver's folder
    does not exist, the copy :func:`scoring.spark.run.score` shipped (``addFile``)."""
    found = _SCHEMES.get(scheme_dir)
    if found is None:
        from ..compile import compile_scheme
        from ..loader import load_scheme

        where = scheme_dir
        if not os.path.isdir(where):  # a cluster's executor: the copy the run shipped
            from pyspark import SparkFiles

            where = SparkFiles.get(os.path.basename(scheme_dir.rstrip("/")))
        scheme = load_scheme(where)
        found = _SCHEMES[scheme_dir] = (scheme, compile_scheme(scheme))
    return found


# what a parse task gives back: one table for records, rejects and file counts
PARSED_EVENTS = (
    "kind string, fi int, line long, block long, id string, type string, subject string, at long,"
    " attrs string, amends string, raw string, reason string"
)
PARSED_SUBJECTS = (
    "kind string, fi int, line long, block long, id string, groups string, skind string, name string,"
    " grid string, tags string, code string, links string, hash string, raw string,"
    " reason string"
)


@dataclass
class Files:
    """The files of one kind, in the order given: display names by index."""

    names: list[str] = field(default_factory=list)
    uris: dict[str, int] = field(default_factory=dict)  # Spark's path of a file -> index
    sizes: list[int] = field(default_factory=list)  # bytes, by index
    plain: dict[str, int] | None = None  # unescaped paths, made when first needed

    def index(self, uri: str) -> int:
        """The index of a file as a source names it (the ``text`` and ``parquet``
        sources' ``_metadata.file_path`` may escape what the listing did not)."""
        found = self.uris.get(uri)
        if found is None:
            from urllib.parse import unquote

            if self.plain is None:
                self.plain = {unquote(u): i for u, i in self.uris.items()}
            for key in (unquote(uri), uri):  # escaped here, or escaped in the listing
                found = self.uris.get(key, self.plain.get(key))
                if found is not None:
                    return found
            raise KeyError(uri)
        return found


def list_files(spark: Any, paths: list[str]) -> Files:
    """The files of ``paths`` (files, folders or globs) and their indexes: in the
    order given, a folder's or glob's files by name (Spark's listing: local, HDFS
    and S3 paths alike; names starting with ``_`` or ``.`` left out, as Spark does)."""
    files = Files()
    for given in paths:
        try:
            df = spark.read.format("binaryFile").load(given)
            found = sorted((r.path, r.length) for r in df.select("path", "length").collect())
        except Exception as e:  # Spark's AnalysisException: no such path
            if "PATH_NOT_FOUND" in str(e) or "does not exist" in str(e):
                raise InputError(f"{given}: no such file; check the path") from None
            raise
        if not found:
            raise InputError(f"{given}: no files found; check the path")
        for uri, size in found:
            if uri in files.uris:
                continue
            files.uris[uri] = len(files.names)
            local = uri[5:] if uri.startswith("file:") else uri
            single = len(found) == 1 and os.path.basename(local) == os.path.basename(given)
            files.names.append(given if single else local)
            files.sizes.append(size)
    return files


def source_of(scheme: Any, name: str) -> str:
    """How a file is read: ``parquet`` (by name), ``text`` (the built-in JSON Lines
    format, read in line-aligned chunks by many tasks) or ``whole`` (any other
    format, e.g. CSV, whose records may span lines: one task reads the file)."""
    from ..builtin.formats import parse_jsonl_lines
    from ..ingest.files import format_for
    from ..plugins import plugins_of

    if name.lower().endswith(".parquet"):
        return "parquet"
    try:
        fmt = format_for(Path(name), plugins_of(scheme).input_formats)
    except InputError:
        return "whole"  # the task says why, as a file refused whole
    return "text" if fmt.parse_lines is parse_jsonl_lines else "whole"


def read_sources(spark: Any, scheme: Any, files: Files, only: set[int] | None = None,
                 whole: bool = False) -> list[tuple[str, Any]]:  # fmt: skip
    """``(source, DataFrame)`` of the files (those of ``only``, if given) by how each
    is read (:func:`source_of`; ``whole``: every text file whole). A ``text``
    frame has a file's lines as bytes, split at LF only (as ``readlines``), with
    the block each came from; a ``parquet`` frame the rows with their index in
    their file; a ``whole`` frame (``binaryFile``) one row per file."""
    from pyspark.sql import functions as F

    by: dict[str, list[str]] = {"text": [], "parquet": [], "whole": []}
    for uri, fi in files.uris.items():
        if only is None or fi in only:
            how = source_of(scheme, files.names[fi])
            by["whole" if whole and how == "text" else how].append(uri)
    out: list[tuple[str, Any]] = []
    if by["text"]:
        meta = F.col("_metadata")
        df = spark.read.option("lineSep", "\n").text(by["text"])
        out.append(("text", df.select(
            meta.file_path.alias("path"),
            meta.file_block_start.alias("block"),
            (meta.file_block_start + meta.file_block_length >= meta.file_size).alias("last"),
            F.col("value").cast("binary").alias("value"),
        )))  # fmt: skip
    if by["parquet"]:
        df = spark.read.option("mergeSchema", "true").parquet(*by["parquet"])
        out.append(("parquet", df.select(
            "*", F.col("_metadata.file_path").alias("path"),
            F.col("_metadata.row_index").alias("row"),
        )))  # fmt: skip
    if by["whole"]:
        df = spark.read.format("binaryFile").load(by["whole"])
        out.append(("whole", df.select("path", "content").repartition(len(by["whole"]))))
    return out


# bytes per text chunk, at least and at most (tests lower the least to split small files)
MIN_SPLIT, MAX_SPLIT = 1 << 20, 64 << 20


def split_size(spark: Any, files: Files) -> int:
    """Bytes per text chunk: about four tasks per core over the files (so a last
    uneven task is short), 1-64 MB."""
    cores = max(1, spark.sparkContext.defaultParallelism)
    return max(MIN_SPLIT, min(MAX_SPLIT, sum(files.sizes) // (4 * cores) + 1))


@dataclass
class Parsed:
    """The checked rows of one kind's files (line numbers final) and their accounting."""

    df: Any  # kind row | reject, with fi, line, ...
    cached: Any
    read: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)


def parse_files(spark: Any, scheme_dir: str, files: Files, kind: str) -> Parsed:
    """Read and check every file of ``kind`` (``events`` or ``subjects``); a file
    refused whole raises :class:`InputError` (nothing is written)."""
    from pyspark.sql import functions as F

    scheme, _ = scheme_of(scheme_dir)
    parse, ddl = (parse_events, PARSED_EVENTS) if kind == "events" else (
        parse_subjects, PARSED_SUBJECTS)  # fmt: skip

    def parsed_of(sources: list[tuple[str, Any]]) -> Any:
        frames = [df.mapInArrow(parse(scheme_dir, files, how), ddl) for how, df in sources]
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other)
        return df

    conf = spark.conf
    old = conf.get("spark.sql.files.maxPartitionBytes")
    conf.set("spark.sql.files.maxPartitionBytes", str(split_size(spark, files)))
    try:
        cached = parsed_of(read_sources(spark, scheme, files)).persist()
        # reads, file errors and rejects are few: one job brings them
        small = cached.filter("kind != 'row'").select("kind", "fi", "line", "block").collect()
        redo = {r.fi for r in small if r.kind == "redo"}
        if redo:  # read whole as the SQLite path does: it refuses or words these
            kept = cached.filter(~F.col("fi").isin(sorted(redo)))
            again = parsed_of(read_sources(spark, scheme, files, only=redo, whole=True))
            fresh = kept.unionByName(again).persist()
            small = fresh.filter("kind != 'row'").select("kind", "fi", "line", "block").collect()
            cached.unpersist()
            cached = fresh
    finally:
        conf.set("spark.sql.files.maxPartitionBytes", old)
    if any(r.kind == "error" for r in small):
        errors = cached.filter("kind = 'error'").select("fi", "reason").collect()
        raise_file_errors(sorted((r.fi, r.reason) for r in errors), files.names)
    out = Parsed(cached, cached)
    chunks: dict[int, Counter] = {}
    for r in small:
        if r.kind == "read":
            out.read[r.fi] += r.line
        elif r.kind == "reject":
            out.rejected[r.fi] += 1
        elif r.kind == "lines":  # a block's lines, in one or more pieces
            chunks.setdefault(r.fi, Counter())[r.block] += r.line
    # a block's lines are numbered from 1: add the lines of the file's earlier blocks
    offsets: list[Any] = []
    for fi, blocks in chunks.items():
        before = 0
        for block, n in sorted(blocks.items()):
            if before:
                offsets += [F.lit(fi * _BLOCKS + block), F.lit(before)]
            before += n
    df = cached.filter("kind IN ('row', 'reject')")
    if offsets:
        key = F.col("fi").cast("long") * _BLOCKS + F.col("block")
        shift = F.coalesce(F.try_element_at(F.create_map(*offsets), key), F.lit(0))
        df = df.withColumn("line", F.col("line") + shift)
    out.df = df
    return out


_BLOCKS = 1 << 42  # a (file, block) key: file index * _BLOCKS + the block's byte offset


def _items(scheme: Any, name: str, data: bytes) -> Any:
    """The (line, record | error, raw) items of a file, read by the scheme's input
    format for its suffix from a scratch copy (the readers take a path)."""
    from ..ingest.files import format_for
    from ..plugins import plugins_of

    fmt = format_for(Path(name), plugins_of(scheme).input_formats)
    scratch = tempfile.mkdtemp(prefix="gridcredit-spark-")
    path = Path(scratch) / Path(name).name
    path.write_bytes(data)
    try:
        try:
            if fmt.read_raw is not None:
                yield fmt.text_values, fmt.read_raw(path)
            else:
                yield fmt.text_values, ((n, rec, None) for n, rec in fmt.read(path))
        except (GridcreditError, OSError) as e:
            # a file refused whole: its message names the scratch copy, say the file
            raise InputError(str(e).replace(str(path), name)) from None
    finally:
        path.unlink(missing_ok=True)
        os.rmdir(scratch)


def _chunk_items(fmt_lines: Any, batch: Any, files: Files, done: dict) -> Any:
    """The line-aligned chunks of a ``text`` batch (see :func:`read_sources`): per
    (file, block) ``(fi, block, items, lines, redo)``, the items numbered from 1
    within the block (the run adds the earlier blocks' lines; ``done`` counts the
    lines of a block that earlier batches of this task held: one block may come
    in several batches), ``redo`` when the file must be read whole instead (a BOM
    or non-UTF-8 head, a line that is not UTF-8: the whole-file reader refuses or
    words those; a bad line at the end of the file's last block, whose newline
    the chunk cannot know)."""
    paths = batch.column("path").to_pylist()
    blocks = batch.column("block").to_pylist()
    ends = batch.column("last").to_pylist()
    values = batch.column("value").to_pylist()
    start = 0
    n = len(paths)
    while start < n:
        stop = start + 1
        while stop < n and paths[stop] == paths[start] and blocks[stop] == blocks[start]:
            stop += 1
        fi = files.index(paths[start])
        key = (fi, blocks[start])
        n0 = done.get(key, 0) + 1
        lines = [v + b"\n" for v in values[start:stop]]
        done[key] = n0 - 1 + len(lines)
        redo = blocks[start] == 0 and n0 == 1 and bool(lines) and not lines[0][:4].isascii()
        items = [] if redo else fmt_lines(lines, n0)
        if items and not redo:
            if (
                ends[start]
                and items[-1][0] == n0 - 1 + len(lines)
                and isinstance(items[-1][1], Exception)
            ):
                redo = True
            elif any(isinstance(r, Exception) and str(r).startswith(NOT_UTF8) for _, r, _ in items):
                redo = True
        yield fi, blocks[start], items, len(lines), redo
        start = stop


def _parquet_items(batch: Any, fields: list[str]) -> list[tuple[int, Any, Any]]:
    """(row number, record, None) of a Parquet batch: a row's non-null columns as
    the record's fields (a struct or map is an object, nulls inside left out as
    absent fields), numbered from 1 in its file."""
    rows = batch.select(fields).to_pylist()
    return [
        (r + 1, _no_nulls(rec), None)
        for r, rec in zip(batch.column("row").to_pylist(), rows, strict=True)
    ]


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and isinstance(value[0], tuple):  # a map column: (key, value) pairs
            return {k: _no_nulls(v) for k, v in value if v is not None}
        return [_no_nulls(v) for v in value]
    return value


def parse_events(scheme_dir: str, files: Files, source: str = "whole") -> Any:
    """A ``mapInArrow`` function: rows of a source (:func:`read_sources`) → checked
    event rows (``PARSED_EVENTS``)."""

    def run(batches: Any) -> Any:
        import pyarrow as pa

        from ..builtin.formats import parse_jsonl_lines
        from .partition import arrow_schema

        scheme, _ = scheme_of(scheme_dir)
        schema = arrow_schema(PARSED_EVENTS)
        cols = [c.split()[0] for c in PARSED_EVENTS.split(",")]
        plain = _EventIngest(scheme, False)
        done: dict[tuple[int, int], int] = {}  # lines of a block seen so far in this task

        def new() -> dict[str, list]:
            return {c: [] for c in cols}

        def add(out: dict, kind: str, fi: int, line: int, row: tuple = (None,) * 6,
                raw: Any = None, reason: Any = None, rid: Any = None,
                block: Any = None) -> None:  # fmt: skip
            out["kind"].append(kind)
            out["fi"].append(fi)
            out["line"].append(line)
            out["block"].append(block)
            eid, typ, subj, at, attrs, amends = row
            out["id"].append(eid if rid is None else rid)
            out["type"].append(typ)
            out["subject"].append(subj)
            out["at"].append(at)
            out["attrs"].append(attrs)
            out["amends"].append(amends)
            out["raw"].append(raw)
            out["reason"].append(reason)

        def check(out: dict, fi: int, check: Any, items: Any, block: Any = None) -> int:
            read = 0
            while chunk := list(islice(items, CHUNK)):
                read += len(chunk)
                raws = {ln: rw for ln, _, rw in chunk}
                recs = {ln: rec for ln, rec, _ in chunk}
                rows, repeats, rejects = check.prepare(chunk, fi + 1)
                for r in (*rows, *repeats):
                    add(out, "row", fi, r[7], r[:6], _raw_text(raws[r[7]], recs[r[7]]),
                        block=block)  # fmt: skip
                for line, rid, reason, raw, _col in rejects:
                    rid = None if rid is None else str(rid)
                    add(out, "reject", fi, line, raw=raw, reason=reason, rid=rid, block=block)
            return read

        for batch in batches:
            if source == "text":
                out = new()
                for fi, block, items, lines, redo in _chunk_items(
                    parse_jsonl_lines, batch, files, done
                ):  # fmt: skip
                    if redo:
                        add(out, "redo", fi, 0, block=block)
                        continue
                    read = check(out, fi, plain, iter(items), block)
                    add(out, "read", fi, read, block=block)
                    add(out, "lines", fi, lines, block=block)
                yield pa.RecordBatch.from_pydict(out, schema=schema)
            elif source == "parquet":
                out = new()
                fields = [f for f in batch.schema.names if f not in ("path", "row")]
                paths = batch.column("path").to_pylist()
                for fi in sorted({files.index(p) for p in paths}):
                    mine = batch.filter(pa.array([files.index(p) == fi for p in paths]))
                    read = check(out, fi, plain, iter(_parquet_items(mine, fields)))
                    add(out, "read", fi, read)
                yield pa.RecordBatch.from_pydict(out, schema=schema)
            else:
                for uri, content in zip(
                    batch.column("path").to_pylist(), batch.column("content").to_pylist(),
                    strict=True,
                ):  # fmt: skip
                    fi = files.uris[uri]
                    out = new()
                    read = 0
                    try:
                        for text, items in _items(scheme, files.names[fi], content):
                            read += check(out, fi, _EventIngest(scheme, text), items)
                    except (GridcreditError, OSError) as e:
                        add(out, "error", fi, 0, reason=str(e))
                    add(out, "read", fi, read)
                    yield pa.RecordBatch.from_pydict(out, schema=schema)

    return run


def parse_subjects(scheme_dir: str, files: Files, source: str = "whole") -> Any:
    """A ``mapInArrow`` function: rows of a source (:func:`read_sources`) → checked
    subject rows (``PARSED_SUBJECTS``)."""

    def run(batches: Any) -> Any:
        import pyarrow as pa

        from ..builtin.formats import parse_jsonl_lines
        from .partition import arrow_schema

        scheme, _ = scheme_of(scheme_dir)
        schema = arrow_schema(PARSED_SUBJECTS)
        # the record check of the SQLite path, without its connection (grids: the scheme's)
        check = _SubjectIngest.__new__(_SubjectIngest)
        check.scheme, check.grids, check.seen = scheme, set(scheme.grids), {}
        cols = [c.split()[0] for c in PARSED_SUBJECTS.split(",")]
        done: dict[tuple[int, int], int] = {}  # lines of a block seen so far in this task

        def new() -> dict[str, list]:
            return {c: [] for c in cols}

        def add(out: dict, kind: str, fi: int, line: int, vals: dict, block: Any = None) -> None:
            for c in cols:
                out[c].append(vals.get(c))
            out["kind"][-1], out["fi"][-1], out["line"][-1] = kind, fi, line
            out["block"][-1] = block

        def take(out: dict, fi: int, items: Any, block: Any = None) -> int:
            read = 0
            for line, rec, raw in items:
                read += 1
                if rec.__class__ is not dict:
                    reason = (
                        str(rec) if isinstance(rec, Exception)
                        else f"a subject record must be an object, got {_show(rec)}"
                    )  # fmt: skip
                    add(out, "reject", fi, line, {"raw": _raw_text(raw, rec), "reason": reason},
                        block)  # fmt: skip
                    continue
                try:
                    sid, groups, kind, name, grid, tags, code, links, h = check._record(rec)
                except _Bad as e:
                    rid = rec.get("id")
                    add(out, "reject", fi, line, {
                        "id": str(rid) if isinstance(rid, (str, int)) else None,
                        "raw": _raw_text(raw, rec), "reason": str(e),
                    }, block)  # fmt: skip
                    continue
                add(out, "row", fi, line, {
                    "id": sid, "groups": _dumps(groups).decode(), "skind": kind,
                    "name": name, "grid": grid, "tags": _dumps(tags).decode(),
                    "code": code, "links": _dumps(links, option=_SORT).decode(),
                    "hash": h, "raw": _raw_text(raw, rec),
                }, block)  # fmt: skip
            return read

        for batch in batches:
            out = new()
            if source == "text":
                for fi, block, items, lines, redo in _chunk_items(
                    parse_jsonl_lines, batch, files, done
                ):  # fmt: skip
                    if redo:
                        add(out, "redo", fi, 0, {}, block)
                        continue
                    add(out, "read", fi, take(out, fi, items, block), {}, block)
                    add(out, "lines", fi, lines, {}, block)
            elif source == "parquet":
                fields = [f for f in batch.schema.names if f not in ("path", "row")]
                paths = batch.column("path").to_pylist()
                for fi in sorted({files.index(p) for p in paths}):
                    mine = batch.filter(pa.array([files.index(p) == fi for p in paths]))
                    add(out, "read", fi, take(out, fi, _parquet_items(mine, fields)), {})
            else:
                for uri, content in zip(
                    batch.column("path").to_pylist(), batch.column("content").to_pylist(),
                    strict=True,
                ):  # fmt: skip
                    fi = files.uris[uri]
                    read = 0
                    try:
                        for _text, items in _items(scheme, files.names[fi], content):
                            read += take(out, fi, items)
                    except (GridcreditError, OSError) as e:
                        add(out, "error", fi, 0, {"reason": str(e)})
                    add(out, "read", fi, read, {})
            yield pa.RecordBatch.from_pydict(out, schema=schema)

    return run


def fold_subject(names: list[str]) -> Any:
    """A function of one subject id's records (sorted by file, line) → the SQLite
    path's outcome of ingesting them file by file (see ``_SubjectIngest.process``):
    ``("final", row)``, ``("count", fi, what)`` and ``("reject", row)`` items."""

    def fold(recs: list[Any]) -> list[tuple]:
        out: list[tuple] = []
        stored = None
        final = None
        seen: dict[int, tuple[str, int]] = {}
        for r in sorted(recs, key=lambda r: (r.fi, r.line)):
            prev = seen.get(r.fi)
            if prev is not None:
                if prev[0] == r.hash:
                    out.append(("count", r.fi, "duplicates"))
                else:
                    out.append(("count", r.fi, "conflicting"))
                    out.append(("reject", r.fi, r.line, r.id, (
                        f"conflicts with subject '{r.id}' at {names[r.fi]}:{prev[1]}: same id,"
                        " different content in one file. Keep one of the two records"
                    ), r.raw))  # fmt: skip
                continue
            seen[r.fi] = (r.hash, r.line)
            if stored == r.hash:
                out.append(("count", r.fi, "duplicates"))
                continue
            if stored is not None:
                out.append(("count", r.fi, "updated"))
            out.append(("count", r.fi, "accepted"))
            if r.code is not None and r.skind == "organization":
                why = uscc_problem(r.code)
                if why:
                    out.append(("count", r.fi, "warnings"))
                    out.append(("reject", r.fi, r.line, r.id, "warning: " + why, r.raw))
            stored, final = r.hash, r
        if final is not None:
            out.append(("final", final))
        return out

    return fold


class _Judge:
    """What ``_EventIngest._judge`` needs of a batch, to word a conflict as it does."""

    def __init__(self, name: str) -> None:
        self.s = BatchSummary(name, "events")
        self.rejects: list[tuple] = []

    def conflict(self, line: int, record_id: str, reason: str, raw: Any, rec: Any = None) -> None:
        self.rejects.append((line, record_id, reason, raw))


def conflict_reason(names: list[str], row: Any) -> tuple:
    """(fi, line, id, reason, raw) of a later record of an accepted event's id whose
    content differs (the accepted one's columns prefixed ``w_``)."""
    judge = _Judge(names[row.fi])
    mine = (row.id, row.type, row.subject, row.at, row.attrs, row.amends, row.fi + 1, row.line)
    earlier = ((row.w_type, row.w_subject, row.w_at, row.w_attrs, row.w_amends),
               names[row.w_fi], row.w_line)  # fmt: skip
    _EventIngest._judge(None, judge, mine, earlier, lambda line: row.raw)  # type: ignore[arg-type]
    if not judge.rejects:  # same content after all: a duplicate
        return (row.fi, row.line, row.id, None, None)
    line, rid, reason, raw = judge.rejects[0]
    return (row.fi, line, rid, reason, raw)


def summaries(names: list[str], kind: str) -> list[BatchSummary]:
    return [BatchSummary(n, kind, batch=i + 1) for i, n in enumerate(names)]


def raise_file_errors(errors: list[tuple[int, str]], names: list[str]) -> None:
    """A file refused whole (not UTF-8, unreadable): the run stops, nothing is written."""
    if errors:
        fi, reason = errors[0]
        raise InputError(f"{names[fi]}: {reason}" if names[fi] not in reason else reason)


def check_paths(kind: str, paths: list[str]) -> None:
    for p in paths:
        if not p:
            raise UsageError(f"--{kind}: an empty path")


def json_list(text: str | None) -> list:
    return orjson.loads(text) if text else []
