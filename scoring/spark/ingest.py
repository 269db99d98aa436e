"""Subjects and events files read by Spark, with the SQLite path's checks and accounting.

Each file is read whole by one task (Spark's ``binaryFile`` source: local, HDFS,
S3 paths alike) and parsed by the scheme's own input format (the same JSON Lines
and CSV readers as ``gridcredit ingest``). Its records are checked by the ingest
package's record checks themselves (``_EventIngest.prepare``,
``_SubjectIngest._record``), imported, not copied, so the reasons of the rejects
are the same words. Then, across files, in the order they were given:

- events: the first record of an id (by file, then line) is accepted; a later one
  with the same content is a duplicate, with other content conflicting (the
  reason names the accepted one's file and line, as ``_EventIngest._judge`` words
  it: it is called for it);
- subjects: master data, folded per id in file and line order: the same id twice
  in one file with other content is conflicting, a later file's other content
  updates the subject.

So ``read = accepted + duplicates + rejected`` holds per file, as in ``batches``.
Limits: a file is parsed by one task (many files parallelise, one huge file does
not; split it by day); jurisdictions files are not read (grids come from the
scheme's ``jurisdictions.yaml``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from ..errors import GridcreditError, InputError, UsageError
from ..ingest.batch import _raw_text
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
    "kind string, fi int, line long, id string, type string, subject string, at long,"
    " attrs string, amends string, raw string, reason string"
)
PARSED_SUBJECTS = (
    "kind string, fi int, line long, id string, groups string, skind string, name string,"
    " grid string, tags string, code string, links string, hash string, raw string,"
    " reason string"
)


@dataclass
class Files:
    """The files of one kind, in the order given: display names by index."""

    names: list[str] = field(default_factory=list)
    uris: dict[str, int] = field(default_factory=dict)  # Spark's path of a file -> index


def list_files(spark: Any, paths: list[str]) -> tuple[Any, Files]:
    """The ``binaryFile`` DataFrame of ``paths`` (files, folders or globs) and their
    indexes: in the order given, a folder's or glob's files by name."""
    files = Files()
    if not paths:
        return None, files
    frames = []
    for given in paths:
        try:
            df = spark.read.format("binaryFile").load(given)
            found = sorted(r.path for r in df.select("path").collect())
        except Exception as e:  # Spark's AnalysisException: no such path
            if "PATH_NOT_FOUND" in str(e) or "does not exist" in str(e):
                raise InputError(f"{given}: no such file; check the path") from None
            raise
        if not found:
            raise InputError(f"{given}: no files found; check the path")
        for uri in found:
            if uri in files.uris:
                continue
            files.uris[uri] = len(files.names)
            local = uri[5:] if uri.startswith("file:") else uri
            single = len(found) == 1 and os.path.basename(local) == os.path.basename(given)
            files.names.append(given if single else local)
        frames.append(df)
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    return df.dropDuplicates(["path"]).repartition(max(1, len(files.names))), files


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


def parse_events(scheme_dir: str, files: Files) -> Any:
    """A ``mapInArrow`` function: binaryFile rows → checked event rows (``PARSED_EVENTS``)."""

    def run(batches: Any) -> Any:
        import pyarrow as pa

        from .partition import arrow_schema

        scheme, _ = scheme_of(scheme_dir)
        cols = [c.split()[0] for c in PARSED_EVENTS.split(",")]
        for batch in batches:
            for uri, content in zip(
                batch.column("path").to_pylist(), batch.column("content").to_pylist(), strict=True
            ):
                fi = files.uris[uri]
                name = files.names[fi]
                out: dict[str, list] = {c: [] for c in cols}

                def add(kind: str, line: int, row: tuple = (None,) * 6, raw: Any = None,
                        reason: Any = None, rid: Any = None, out: dict = out,
                        fi: int = fi) -> None:  # fmt: skip
                    out["kind"].append(kind)
                    out["fi"].append(fi)
                    out["line"].append(line)
                    eid, typ, subj, at, attrs, amends = row
                    out["id"].append(eid if rid is None else rid)
                    out["type"].append(typ)
                    out["subject"].append(subj)
                    out["at"].append(at)
                    out["attrs"].append(attrs)
                    out["amends"].append(amends)
                    out["raw"].append(raw)
                    out["reason"].append(reason)

                read = 0
                try:
                    for text, items in _items(scheme, name, content):
                        check = _EventIngest(scheme, text)
                        while chunk := list(islice(items, CHUNK)):
                            read += len(chunk)
                            raws = {ln: rw for ln, _, rw in chunk}
                            recs = {ln: rec for ln, rec, _ in chunk}
                            rows, repeats, rejects = check.prepare(chunk, fi + 1)
                            for r in (*rows, *repeats):
                                add("row", r[7], r[:6], _raw_text(raws[r[7]], recs[r[7]]))
                            for line, rid, reason, raw, _col in rejects:
                                rid = None if rid is None else str(rid)
                                add("reject", line, raw=raw, reason=reason, rid=rid)
                except (GridcreditError, OSError) as e:
                    add("error", 0, reason=str(e))
                add("read", read)
                yield pa.RecordBatch.from_pydict(out, schema=arrow_schema(PARSED_EVENTS))

    return run


def parse_subjects(scheme_dir: str, files: Files) -> Any:
    """A ``mapInArrow`` function: binaryFile rows → checked subject rows (``PARSED_SUBJECTS``)."""

    def run(batches: Any) -> Any:
        import pyarrow as pa

        from .partition import arrow_schema

        scheme, _ = scheme_of(scheme_dir)
        # the record check of the SQLite path, without its connection (grids: the scheme's)
        check = _SubjectIngest.__new__(_SubjectIngest)
        check.scheme, check.grids, check.seen = scheme, set(scheme.grids), {}
        cols = [c.split()[0] for c in PARSED_SUBJECTS.split(",")]
        for batch in batches:
            for uri, content in zip(
                batch.column("path").to_pylist(), batch.column("content").to_pylist(), strict=True
            ):
                fi = files.uris[uri]
                out: dict[str, list] = {c: [] for c in cols}

                def add(kind: str, line: int, vals: dict, out: dict = out, fi: int = fi) -> None:
                    for c in cols:
                        out[c].append(vals.get(c))
                    out["kind"][-1], out["fi"][-1], out["line"][-1] = kind, fi, line

                read = 0
                try:
                    for _text, items in _items(scheme, files.names[fi], content):
                        for line, rec, raw in items:
                            read += 1
                            if rec.__class__ is not dict:
                                reason = (
                                    str(rec) if isinstance(rec, Exception)
                                    else f"a subject record must be an object, got {_show(rec)}"
                                )  # fmt: skip
                                add("reject", line, {"raw": _raw_text(raw, rec), "reason": reason})
                                continue
                            try:
                                sid, groups, kind, name, grid, tags, code, links, h = check._record(
                                    rec
                                )
                            except _Bad as e:
                                rid = rec.get("id")
                                add("reject", line, {
                                    "id": str(rid) if isinstance(rid, (str, int)) else None,
                                    "raw": _raw_text(raw, rec), "reason": str(e),
                                })  # fmt: skip
                                continue
                            add("row", line, {
                                "id": sid, "groups": _dumps(groups).decode(), "skind": kind,
                                "name": name, "grid": grid, "tags": _dumps(tags).decode(),
                                "code": code, "links": _dumps(links, option=_SORT).decode(),
                                "hash": h, "raw": _raw_text(raw, rec),
                            })  # fmt: skip
                except (GridcreditError, OSError) as e:
                    add("error", 0, {"reason": str(e)})
                add("read", read, {})
                yield pa.RecordBatch.from_pydict(out, schema=arrow_schema(PARSED_SUBJECTS))

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
