"""Every gridcredit hook, grouped by pipeline stage.

Each docstring is the hook's user documentation. Hooks are called with
keyword arguments; an implementation takes only the arguments it needs.
``register_*`` hooks return a list; every plugin's list is used. Hooks run
once per scheme load, rule compilation or batch, never once per event per
rule.

Write a plugin as a module with functions decorated ``@hookimpl``::

    from scoring import hookimpl

    @hookimpl
    def register_operators():
        return [Operator("starts_with", types=("string",), compile=lambda v: lambda x: x.startswith(v))]

Put it in the scheme's ``plugins/`` folder, or publish it with an entry point
in the group ``gridcredit``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("gridcredit")
hookimpl = pluggy.HookimplMarker("gridcredit")


# --- load -----------------------------------------------------------------


@hookspec
def scheme_loaded(scheme):
    """Called once after the rules folder is loaded and validated.

    ``scheme`` is a :class:`scoring.model.Scheme`. Use it to check
    plugin-specific settings. Return value is ignored.
    """


# --- compile --------------------------------------------------------------


@hookspec
def register_operators():
    """Return a list of :class:`scoring.conditions.Operator` for rule conditions.

    An operator has a ``name`` (the key in ``when``), the attribute ``types`` it
    accepts (used by ``validate``) and ``compile(value) -> test``, called once
    per rule when rules are compiled; ``test(x) -> bool`` runs per event. The
    built-in operators (``eq ne in not_in gt gte lt lte between exists contains
    matches``) are registered this way.
    """


@hookspec
def register_points_forms():
    """Return a list of :class:`scoring.compile.PointsForm`.

    A points form has a ``key`` (the mapping key that selects it in a rule's
    ``points``, e.g. ``per`` or ``by``) and ``compile(spec) -> fn``, called once
    per rule; ``fn(attrs) -> int | None`` runs per matching event (``None``:
    no match). Integers need no form.
    """


# --- ingest ---------------------------------------------------------------


@hookspec
def register_input_formats():
    """Return a list of :class:`scoring.ingest.InputFormat` readers.

    A reader has a ``name``, the file ``suffixes`` it reads, and
    ``read(path) -> iterator of (line_number, record | Exception)`` where a
    record is a dict. Built-ins: JSON Lines (``.jsonl``, ``.ndjson``) and CSV.
    """


@hookspec
def before_ingest(db, files):
    """Called once before ``gridcredit ingest`` reads ``files`` (list of paths)."""


@hookspec
def after_ingest(db, batches):
    """Called once after ingest with the list of batch summaries (dicts with
    ``file, read, accepted, duplicates, conflicting, rejected``)."""


# --- evaluate -------------------------------------------------------------


@hookspec
def before_score(db, scheme):
    """Called once before a ``score`` run evaluates unscored events."""


@hookspec
def after_score(db, scheme, summary):
    """Called once after a ``score`` run; ``summary`` has ``events``, ``entries``,
    ``trial_entries``, ``redemptions``, ``seconds``."""


# --- periods, rankings, assessments ----------------------------------------


@hookspec
def register_metrics():
    """Return a list of :class:`scoring.assess.Metric` for assessments.

    A metric has a ``name`` (the key in an assessment's ``metric``) and
    ``compute(ctx, spec) -> {scope_id: value}``, called once per assessment
    run. Built-ins: ``mean sum count median`` of ``score`` or ``points``,
    ``survey`` and ``weighted``.
    """


# --- publish --------------------------------------------------------------


@hookspec(firstresult=True)
def mask_name(name, kind):
    """Return the public form of a subject's name, or ``None`` to pass.

    ``kind`` is ``person`` or ``organization``. The first non-None result
    wins. Built-in: persons as 张*明 (first and last character kept),
    organisations unchanged.
    """


@hookspec
def register_publishers():
    """Return a list of :class:`scoring.publish.Publisher`.

    A publisher has a ``name`` and ``write(month, data, site_dir) -> list of
    paths`` and is called once per ``publish MONTH`` after the built-in pages,
    with the month's :class:`scoring.publish.MonthData`. Use it for local
    pages (e.g. screen-time allocation for merchants). Paths must stay inside
    ``site_dir``.
    """


@hookspec
def after_publish(month, site_dir, paths):
    """Called once after ``publish MONTH`` wrote ``paths`` into ``site_dir``."""
