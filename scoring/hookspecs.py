"""Every gridcredit hook, grouped by pipeline stage.

Each docstring is the hook's user documentation. Hooks are called with
keyword arguments; an implementation takes only the arguments it needs.
``register_*`` hooks return a list; every plugin's list is used. Hooks run
once per scheme load, rule compilation or batch, never once per event per
rule.

Write a plugin as a module with functions decorated ``@hookimpl``, importing
only from ``scoring`` itself (``hookimpl``, ``Operator``, ``PointsForm``,
``InputFormat``, ``Metric``, ``Publisher``)::

    from scoring import Operator, hookimpl

    @hookimpl
    def register_operators():
        return [Operator("starts_with", types=("string",), compile=lambda v: lambda x: x.startswith(v))]

Put it in the scheme's ``plugins/`` folder, or publish it with an entry point
in the group ``gridcredit``. Each loaded scheme has its own plugin manager
(``scheme.plugins``, see :mod:`scoring.plugins`). A function decorated
``@hookimpl`` whose name is not a hook below is refused at start-up, and so is
a name that two plugins register (an operator ``eq`` besides the built-in one,
say).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

# mypy: disable-error-code="empty-body"

if TYPE_CHECKING:
    import sqlite_utils

    from .assess import Metric
    from .compile import PointsForm
    from .conditions import Operator
    from .evaluate import ScoreSummary
    from .ingest import InputFormat
    from .model import Scheme
    from .plugins import Plugins
    from .publish import Publisher

hookspec = pluggy.HookspecMarker("gridcredit")
hookimpl = pluggy.HookimplMarker("gridcredit")


# --- load -----------------------------------------------------------------


@hookspec
def scheme_loaded(scheme: Scheme) -> None:
    """Called once after the rules folder is loaded and validated.

    ``scheme`` is a :class:`scoring.model.Scheme`. Use it to check
    plugin-specific settings. Return value is ignored.
    """


# --- compile --------------------------------------------------------------


@hookspec
def register_operators() -> list[Operator]:
    """Return a list of :class:`scoring.Operator` for rule conditions.

    An operator has a ``name`` (the key in ``when``), the attribute ``types`` it
    accepts (used by ``validate``) and ``compile(value) -> test``, called once
    per rule when rules are compiled; ``test(x) -> bool`` runs per event. The
    built-in operators (``eq ne in not_in gt gte lt lte between exists contains
    matches``) are registered this way; a name already registered is refused.
    An operator may carry ``fast(key, value)``: a closure for the whole test
    ``attrs.<key>: {name: value}`` that skips the general path (``None``: use it).
    """


@hookspec
def register_points_forms() -> list[PointsForm]:
    """Return a list of :class:`scoring.PointsForm`.

    A points form has a ``key`` (the mapping key that selects it in a rule's
    ``points``, e.g. ``per`` or ``by``) and ``compile(spec) -> fn``, called once
    per rule; ``fn(attrs) -> int | None`` runs per matching event (``None``:
    no match). Integers need no form.
    """


# --- ingest ---------------------------------------------------------------


@hookspec
def register_input_formats() -> list[InputFormat]:
    """Return a list of :class:`scoring.InputFormat` readers.

    A reader has a ``name``, the file ``suffixes`` it reads, and
    ``read(path) -> iterator of (line_number, record | Exception)`` where a
    record is a dict. Built-ins: JSON Lines (``.jsonl``, ``.ndjson``) and CSV.
    A line-based format may give ``parse_lines(lines, n0)``; then a large
    events file is split at line ends and checked by worker processes.
    """


@hookspec
def before_ingest(db: sqlite_utils.Database, files: list[str]) -> None:
    """Called once per ``ingest`` run, before any file is read.

    ``db`` is the ledger (a ``sqlite_utils.Database``), ``files`` the list of
    input paths (strings) in the order they will be read; every file name has
    already been matched to an input format. Return value is ignored. Raise a
    :class:`scoring.errors.GridcreditError` to refuse the run.
    """


@hookspec
def after_ingest(db: sqlite_utils.Database, batches: list[dict[str, Any]]) -> None:
    """Called once per ``ingest`` run, after every file is read and written to the ledger.

    ``db`` is the ledger (a ``sqlite_utils.Database``); ``batches`` is the list
    of batch summaries, one per file in reading order, each a dict with
    ``file, kind, batch, read, accepted, duplicates, conflicting, rejected,
    updated, warnings, seconds`` and ``problems`` (the first rejects and
    warnings as ``file:line:col: message`` strings). Return value is ignored.
    """


# --- evaluate -------------------------------------------------------------


@hookspec
def before_score(db: sqlite_utils.Database, scheme: Scheme) -> None:
    """Called once per ``score`` run, before the unscored events are evaluated.

    ``db`` is the ledger (a ``sqlite_utils.Database``), ``scheme`` the
    :class:`scoring.model.Scheme` the events will be scored under. Return
    value is ignored.
    """


@hookspec
def after_score(db: sqlite_utils.Database, scheme: Scheme, summary: ScoreSummary) -> None:
    """Called once per ``score`` run, after the new entries are written to the ledger.

    ``db`` is the ledger (a ``sqlite_utils.Database``), ``scheme`` the
    :class:`scoring.model.Scheme` the events were scored under; ``summary`` is
    the run's :class:`scoring.evaluate.ScoreSummary` (``events``, ``entries``,
    ``trial_entries``, ``capped``, ``reversals``, ``redemptions_granted``,
    ``redemptions_rejected``, ``late``, ``seconds`` …). Return value is
    ignored.
    """


# --- periods, rankings, assessments ----------------------------------------


@hookspec
def register_metrics() -> list[Metric]:
    """Return a list of :class:`scoring.Metric` for assessments.

    A metric has a ``name`` (the key in an assessment's ``metric``) and
    ``compute(ctx, spec) -> {scope_id: value}``, called once per assessment
    run. Built-ins: ``mean sum count median`` of ``score`` or ``points``,
    ``survey`` and ``weighted``.
    """


# --- publish --------------------------------------------------------------


@hookspec(firstresult=True)
def mask_name(name: str, kind: str) -> str | None:
    """Return the public form of a subject's name, or ``None`` to pass.

    ``kind`` is ``person`` or ``organization``. The first non-None result
    wins. Built-in: persons as 张*明 (first and last character kept),
    organisations unchanged.
    """


@hookspec
def register_publishers(plugins: Plugins) -> list[Publisher]:
    """Return a list of :class:`scoring.Publisher`.

    A publisher has a ``name`` and ``write(month, data, site_dir) -> list of
    paths`` and is called once per ``publish MONTH`` after the built-in pages,
    with the month's :class:`scoring.publish.MonthData`. Use it for local
    pages (e.g. screen-time allocation for merchants). Paths must stay inside
    ``site_dir``. ``plugins`` (optional) is the scheme's
    :class:`scoring.Plugins`: a publisher that shows names masks them with
    ``plugins.mask_name(name, kind)`` (the ``mask_name`` hook).
    """


@hookspec
def after_publish(month: str, site_dir: Path, paths: list[Path]) -> None:
    """Called once per ``publish MONTH``, after every page is written.

    ``month`` is the published month (``YYYY-MM``), ``site_dir`` the MkDocs
    ``docs_dir`` (a ``Path``), ``paths`` the list of files written into it,
    publishers' pages included. Return value is ignored.
    """
