"""Streaming ingest of subjects, jurisdictions and events, with full accounting.

Every record read is accounted for (SPEC §5)::

    read = accepted + duplicates + rejected        (rejected includes conflicting)

* **accepted**: stored.
* **duplicate**: same id and same content as a record already stored (or
  earlier in the same file): ignored. Content is compared by a hash of the
  canonical record, not its formatting, so a JSON Lines event and the same
  event as a CSV row are duplicates.
* **conflicting**: same id, different content: rejected; the reason names
  the earlier record's file and line.
* **rejected**: stored in ``rejects`` with file, line, the raw line and a
  reason a person can act on.

One bad record never stops a file; each file is one batch in one transaction.

Subjects and jurisdictions are master data: a record whose id is already
stored from an *earlier batch* with different content **updates** it (counted
under accepted and reported as ``updated``). The same id twice with
different content *within one file* is conflicting, since the file
contradicts itself. Events are never updated: a changed event needs a new id
(and ``amends``).

An event's subject need not be known yet (subjects may arrive later; the
scorer handles unknown subjects). A subject's grid must be known (from the
scheme's ``jurisdictions.yaml`` or an ingested jurisdictions file).

A unified social credit code that fails its GB 32100 check character is a
warning, not a reject (some early codes fail it). Warnings are stored in
``rejects`` with a reason starting ``warning:``; they are not counted as
rejected.

The package, in reading order: :mod:`.records` (input formats, batch
summaries, the attribute checks and the time parser, compiled once per
scheme), :mod:`.encoding` (UTF-8 only: UTF-16/32 and GBK files refused whole),
:mod:`.batch` (the accounting and rejects of one batch), :mod:`.events` and
:mod:`.master` (the record kinds), :mod:`.run` (one file's batch in one
transaction), :mod:`.parallel` (large line-based events files checked by
worker processes) and :mod:`.files` (the public entry points). The readers
themselves are plugins (``scoring.builtin.formats``), found through the
scheme's registry like any other input format.
"""

from __future__ import annotations

from .files import (
    FilesRefused,
    format_for,
    ingest_file,
    ingest_files,
    ingest_records,
    input_formats,
    sync_grids,
)
from .parallel import PARALLEL_MIN_BYTES, default_workers
from .records import (
    CHUNK,
    EVENT_FIELDS,
    JURISDICTION_FIELDS,
    KINDS,
    MAX_PROBLEMS,
    SUBJECT_FIELDS,
    TIME_HINT,
    TIME_RANGE,
    BatchSummary,
    InputFormat,
    RecordError,
    TimeParser,
    compile_validator,
    summary_line,
    time_parser,
    time_problem,
    uscc_problem,
)
from .run import detect_kind, header_columns

__all__ = [
    "CHUNK",
    "EVENT_FIELDS",
    "JURISDICTION_FIELDS",
    "KINDS",
    "MAX_PROBLEMS",
    "PARALLEL_MIN_BYTES",
    "SUBJECT_FIELDS",
    "TIME_HINT",
    "TIME_RANGE",
    "BatchSummary",
    "FilesRefused",
    "InputFormat",
    "RecordError",
    "TimeParser",
    "compile_validator",
    "default_workers",
    "detect_kind",
    "format_for",
    "header_columns",
    "ingest_file",
    "ingest_files",
    "ingest_records",
    "input_formats",
    "summary_line",
    "sync_grids",
    "time_parser",
    "time_problem",
    "uscc_problem",
]
