"""The plugin manager: built-ins, entry-point plugins and the scheme's ``plugins/`` folder.

Built-in behaviour is itself a set of plugins (``DEFAULT_PLUGINS``), so a
third-party plugin extends gridcredit the same way the core does.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pluggy

from . import hookspecs
from .errors import GridcreditError

DEFAULT_PLUGINS = (
    "scoring.builtin.operators",
    "scoring.builtin.points",
    "scoring.builtin.formats",
    "scoring.builtin.masking",
    "scoring.builtin.metrics",
)

ENTRY_POINT_GROUP = "gridcredit"

_managers: dict[str, pluggy.PluginManager] = {}


class PluginError(GridcreditError):
    """A plugin could not be loaded; names the plugin and its file."""


def get_plugin_manager(plugins_dir: str | Path | None = None) -> pluggy.PluginManager:
    """The plugin manager for a scheme repository, built once per plugins folder.

    ``plugins_dir`` is the scheme's ``plugins/`` folder (``None``: built-ins
    and entry points only).
    """
    key = str(Path(plugins_dir).resolve()) if plugins_dir else ""
    pm = _managers.get(key)
    if pm is None:
        pm = _managers[key] = _build(Path(plugins_dir) if plugins_dir else None)
    return pm


def set_default_plugins_dir(plugins_dir: str | Path | None) -> None:
    """Make ``get_plugin_manager()`` without arguments use this scheme's plugins."""
    _managers[""] = get_plugin_manager(plugins_dir) if plugins_dir else _build(None)


def _build(plugins_dir: Path | None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("gridcredit")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    _load_entry_points(pm)
    if plugins_dir and plugins_dir.is_dir():
        for path in sorted(plugins_dir.glob("*.py")):
            if path.name.startswith("_"):
                continue
            name = f"gridcredit_local_{path.stem}"
            try:
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
                pm.register(module, name=f"plugins/{path.name}")
            except Exception as e:
                raise PluginError(
                    f"{path}: local plugin '{path.stem}' failed to load: {type(e).__name__}: {e}."
                    " Fix the plugin or move it out of plugins/"
                ) from e
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register the installed packages' plugins (entry point group ``gridcredit``).

    Loaded one by one rather than with pluggy's ``load_setuptools_entrypoints``
    so that a broken plugin is reported by name, module, file and package
    instead of as a bare exception from somewhere inside it.
    """
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as e:
                raise PluginError(_entry_point_problem(ep, dist, e)) from e


def _entry_point_problem(ep: importlib.metadata.EntryPoint, dist: object, error: Exception) -> str:
    module = ep.value.split(":", 1)[0].strip()
    try:  # where the module lives, without running it again
        spec = importlib.util.find_spec(module)
        file = spec.origin if spec else None
    except (ImportError, ValueError, AttributeError):  # its parent package is broken too
        file = None
    try:
        package = dist.metadata["name"]  # type: ignore[attr-defined]
    except (KeyError, AttributeError, TypeError):
        package = None
    where = f"module {ep.value}" + (f", {file}" if file else "")
    what = str(error).strip() or type(error).__name__
    fix = f"pip uninstall {package}" if package else "uninstall the package that provides it"
    return (
        f"plugin '{ep.name}' ({where}) from entry point group '{ENTRY_POINT_GROUP}'"
        f" failed to load: {what} ({type(error).__name__})."
        f" Fix the plugin, or remove it: {fix}"
    )


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, object]]:
    """Name, origin and implemented hooks of every registered plugin."""
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda kv: str(kv[0])):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        origin = getattr(plugin, "__file__", "") or ""
        out.append({"name": name, "file": origin, "hooks": hooks})
    return out
