"""The public entry points: ingest files and in-memory records, sync grids."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import GridcreditError, InputError
from ..model import Scheme
from ..plugins import Plugins, plugins_of
from . import parallel
from .batch import _Transaction
from .parallel import _new_pool, _Staged
from .records import BatchSummary, InputFormat
from .run import _conn, _run


class FilesRefused(InputError):
    """Files refused as a whole (not UTF-8, not found, ...); every other file of the
    call was read and stored, its accounting in ``summaries``."""

    def __init__(self, errors: list[InputError], summaries: list[BatchSummary]):
        self.errors = errors
        self.summaries = summaries
        super().__init__("\n".join(str(e) for e in errors))


def ingest_records(
    db: Any,
    scheme: Scheme,
    records: Iterable[dict[str, Any]],
    *,
    file: str = "<records>",
    kind: str | None = None,
    text_values: bool = False,
) -> BatchSummary:
    """Ingest in-memory records (scenarios, tests) as one batch; line numbers count from 1."""
    items = ((n, rec, None) for n, rec in enumerate(records, 1))
    return _run(
        _conn(db), scheme, items, BatchSummary(file, kind or ""), kind=kind, text=text_values
    )


def input_formats(plugins: Plugins) -> list[InputFormat]:
    """Every input format in the plugins' registry, plugins' first, the built-ins last."""
    return plugins.input_formats


def format_for(path: Path, formats: Sequence[InputFormat]) -> InputFormat:
    name = path.name.lower()
    for f in formats:
        if any(name.endswith(s.lower()) for s in f.suffixes):
            return f
    known = sorted({s for f in formats for s in f.suffixes})
    raise InputError(
        f"{path}: cannot tell the format from the file name; name it with one of {', '.join(known)}"
    )


def ingest_file(
    db: Any,
    scheme: Scheme,
    path: str | Path,
    *,
    kind: str | None = None,
    progress: bool | None = None,
    formats: Sequence[InputFormat] | None = None,
    workers: int | None = None,
) -> BatchSummary:
    """Ingest one file as one batch in one transaction; see the module docstring.

    ``workers``: processes that check a large JSON Lines events file while
    this one writes (``None``: :func:`default_workers` for files of at least
    ``PARALLEL_MIN_BYTES``; ``0``: never). The result is the same either way.
    """
    path = Path(path)
    fmt = format_for(path, formats if formats is not None else plugins_of(scheme).input_formats)
    pool = None
    try:
        n = parallel._workers_for(path, fmt, kind, workers) if path.is_file() else 0
        staged = None
        if n:
            pool = _new_pool(scheme, n)
            staged = _Staged(_conn(db), path, fmt.parse_lines).submit(pool)
        return _ingest(db, scheme, path, fmt, kind, progress, staged)
    finally:
        if pool is not None:
            parallel.close_pool(pool)


def _ingest(
    db: Any, scheme: Scheme, path: Path, fmt: InputFormat, kind: str | None,
    progress: bool | None, staged: _Staged | None,
) -> BatchSummary:  # fmt: skip
    """One file's batch; ``staged``: its chunks handed to workers already."""
    if not path.is_file():
        if staged is not None:
            staged.close()
        raise InputError(f"{path}: no such file; check the path")
    summary = BatchSummary(str(path), kind or "")
    raw_reader = fmt.read_raw is not None
    items: Iterator[tuple[int, Any, Any]]
    if raw_reader:
        items = fmt.read_raw(path)  # type: ignore[misc]
    else:
        items = ((n, rec, None) for n, rec in fmt.read(path))
    bar = None
    if progress is not False:
        from tqdm import tqdm

        bar = tqdm(
            total=path.stat().st_size if raw_reader else None,
            unit="B" if raw_reader else "rec",
            unit_scale=True,
            desc=path.name,
            disable=None if progress is None else False,
            delay=0.5,
            leave=False,
            file=sys.stderr,
        )
        if bar.disable:
            bar = None
    try:
        return _run(
            _conn(db), scheme, items, summary, kind=kind, text=fmt.text_values, bar=bar,
            staged=staged,
        )  # fmt: skip
    except OSError as e:
        raise InputError(f"{path}: cannot read file: {e.strerror or e}") from e
    finally:
        if bar is not None:
            bar.close()


def ingest_files(
    db: Any,
    scheme: Scheme,
    paths: Iterable[str | Path],
    *,
    kind: str | None = None,
    progress: bool | None = None,
    plugins: Plugins | None = None,
    workers: int | None = None,
    on_batch: Callable[[BatchSummary], Any] | None = None,
) -> list[BatchSummary]:
    """Ingest files, one batch each, and return their accounting.

    A file refused as a whole (an ``InputError``: not found, not UTF-8, no usable
    header) does not stop the others: every file is read, and then
    :class:`FilesRefused` is raised with the refusals and the stored files'
    accounting. ``on_batch`` is called with each file's accounting once its batch
    is committed, so a caller can report it even if a later file fails.

    ``kind`` forces ``events``, ``subjects`` or ``jurisdictions`` (default:
    told from the first record's keys). ``progress``: ``None`` shows a bar
    for long files when stderr is a terminal, ``True`` always, ``False``
    never. ``plugins``: the scheme's plugins (default ``scheme.plugins``); their
    input formats are used and ``before_ingest``/``after_ingest`` fired.

    With workers, the next file's chunks are handed to them before this
    process stores a file, so checking one file and storing another overlap;
    each file is still its own batch, stored in order.
    """
    pm = plugins if plugins is not None else plugins_of(scheme)
    files = [Path(p) for p in paths]
    formats = pm.input_formats
    fmts = [format_for(f, formats) for f in files]  # fail on names before touching the database
    pm.hook.before_ingest(db=db, files=[str(f) for f in files])
    pool: Any = None
    cores = functools.cache(parallel.default_workers)  # the load average read once, for the pool
    staged: dict[int, _Staged] = {}

    def submit(i: int) -> None:
        nonlocal pool
        if i >= len(files) or i in staged:
            return
        try:
            n = (
                parallel._workers_for(files[i], fmts[i], kind, workers, cores)
                if files[i].is_file()
                else 0
            )
        except (OSError, GridcreditError):
            return  # reported when the file's turn comes
        if not n:
            return
        if pool is None:
            pool = _new_pool(scheme, n)
        staged[i] = _Staged(_conn(db), files[i], fmts[i].parse_lines).submit(pool)

    out = []
    refused: list[InputError] = []
    try:
        for i, f in enumerate(files):
            submit(i)
            submit(i + 1)  # checked by the workers while this one is stored
            try:
                s = _ingest(db, scheme, f, fmts[i], kind, progress, staged.pop(i, None))
            except InputError as e:  # this file only: its batch rolled back, go on
                refused.append(e)
                continue
            out.append(s)
            if on_batch is not None:
                on_batch(s)
    finally:
        if pool is not None:
            parallel.close_pool(pool)
        for rest in staged.values():
            rest.close()
    pm.hook.after_ingest(db=db, batches=[b.as_dict() for b in out])
    if refused:
        raise FilesRefused(refused, out)
    return out


def sync_grids(db: Any, scheme: Scheme) -> int:
    """Write the scheme's grids (``jurisdictions.yaml``) into ``grids``; return how many."""
    conn = _conn(db)
    rows = [
        (g.id, g.name, g.community, g.community_name, g.street, g.street_name)
        for g in scheme.grids.values()
    ]
    with _Transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO grids (id, name, community, community_name, street, street_name)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)
