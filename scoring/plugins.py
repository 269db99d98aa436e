"""The plugins of one loaded scheme: built-ins, entry-point plugins and the scheme's ``plugins/`` folder.

:func:`build_plugins` is the one place a plugin manager is made. The loader
calls it once per scheme load and keeps the result on the scheme
(``scheme.plugins``); every stage reads it from there, so ``validate``,
``test``, ``score``, ``publish``, the pytest plugin and library calls all see
the same plugins (pytest's ``config.pluginmanager``). There is no module-level
manager.

Built-in behaviour is itself a set of plugins (``DEFAULT_PLUGINS``), so a
third-party plugin extends gridcredit the same way the core does. Everything
the ``register_*`` hooks return goes into one :class:`Registry`, built at
start-up: a name registered twice is an error naming both plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import GridcreditError

if TYPE_CHECKING:
    from .assess import Metric
    from .compile import PointsForm
    from .conditions import Operator
    from .ingest import InputFormat
    from .publish import Publisher

DEFAULT_PLUGINS = (
    "scoring.builtin.operators",
    "scoring.builtin.points",
    "scoring.builtin.formats",
    "scoring.builtin.masking",
    "scoring.builtin.metrics",
)

ENTRY_POINT_GROUP = "gridcredit"

# register_* hook -> (what it registers, in messages; the attribute naming each item)
REGISTER_HOOKS: dict[str, tuple[str, str]] = {
    "register_operators": ("operator", "name"),
    "register_points_forms": ("points form", "key"),
    "register_input_formats": ("input format", "name"),
    "register_metrics": ("metric", "name"),
    "register_publishers": ("publisher", "name"),
}


class PluginError(GridcreditError):
    """A plugin could not be loaded; names the plugin and its file."""


class PluginConflict(PluginError):
    """Two plugins registered the same name; names both plugins and the name."""


@dataclass(frozen=True)
class Origin:
    """Which plugin registered an item: its name and file."""

    name: str
    file: str

    def __str__(self) -> str:
        return f"'{self.name}' ({self.file})" if self.file else f"'{self.name}'"


@dataclass
class Registry:
    """Everything the ``register_*`` hooks returned, by kind and name.

    Each kind maps a name to its item, in hook call order (the last
    registered plugin first, the built-ins last). ``origins`` tells which
    plugin registered each (kind, name).
    """

    operators: dict[str, Operator] = field(default_factory=dict)
    points_forms: dict[str, PointsForm] = field(default_factory=dict)
    input_formats: dict[str, InputFormat] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    publishers: dict[str, Publisher] = field(default_factory=dict)
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)

    def table(self, hook: str) -> dict[str, Any]:
        return getattr(self, hook.removeprefix("register_"))  # type: ignore[no-any-return]

    def add(self, hook: str, item: Any, origin: Origin) -> None:
        what, attr = REGISTER_HOOKS[hook]
        name = getattr(item, attr, None)
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"plugin {origin}: {hook} returned {item!r}, which has no {attr};"
                f" give every {what} a {attr} (a non-empty string)"
            )
        table = self.table(hook)
        first = self.origins.get((hook, name))
        if first is not None:
            # name the earlier-registered plugin first (built-ins before plugins)
            a, b = (origin, first) if _rank(origin) <= _rank(first) else (first, origin)
            raise PluginConflict(
                f"{what} '{name}' is registered twice: by plugin {a} and by plugin {b}."
                f" A name may be registered once; rename the {what} in plugin {b}"
                f" (pick another name, e.g. '{name}_{_stem(b)}') and use that name in the rules"
            )
        table[name] = item
        self.origins[(hook, name)] = origin


def _rank(origin: Origin) -> int:
    return (
        0 if origin.name in DEFAULT_PLUGINS else 1 if not origin.name.startswith("plugins/") else 2
    )


def _stem(origin: Origin) -> str:
    return Path(origin.name).stem.replace("-", "_").split(".")[-1]


class Plugins:
    """The plugins of one scheme: the pluggy manager ``pm`` and the ``registry``.

    Made by :func:`build_plugins`; reach it as ``scheme.plugins``. Call hooks
    as ``plugins.hook.<name>(...)`` with keyword arguments.
    """

    def __init__(self, pm: pluggy.PluginManager, plugins_dir: Path | None = None):
        self.pm = pm
        self.plugins_dir = plugins_dir
        self.registry = Registry()

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def operators(self) -> dict[str, Operator]:
        return self.registry.operators

    @property
    def points_forms(self) -> dict[str, PointsForm]:
        return self.registry.points_forms

    @property
    def input_formats(self) -> list[InputFormat]:
        """Plugins' formats first, the built-ins last (the first whose suffix fits reads a file)."""
        return list(self.registry.input_formats.values())

    @property
    def metrics(self) -> dict[str, Metric]:
        return self.registry.metrics

    @property
    def publishers(self) -> list[Publisher]:
        return list(self.registry.publishers.values())

    def mask_name(self, name: str, kind: str) -> str:
        """A subject's public name, through the ``mask_name`` hook."""
        return self.pm.hook.mask_name(name=name, kind=kind)  # type: ignore[no-any-return]

    def describe(self) -> list[dict[str, object]]:
        """Name, origin and implemented hooks of every registered plugin."""
        return describe_plugins(self.pm)

    def _collect(self) -> None:
        """Fill the registry from every ``register_*`` implementation, refusing clashes."""
        for hook in REGISTER_HOOKS:
            caller = getattr(self.pm.hook, hook)
            # pluggy's call order: the last registered first, the built-ins last
            for impl in reversed(caller.get_hookimpls()):
                kwargs = {"plugins": self} if "plugins" in impl.argnames else {}
                items = impl.function(**kwargs)
                origin = Origin(impl.plugin_name, _plugin_file(impl.plugin))
                for item in items or []:
                    self.registry.add(hook, item, origin)


def build_plugins(plugins_dir: str | Path | None = None, extra: Iterable[object] = ()) -> Plugins:
    """The plugins of a scheme: built-ins, entry points (group ``gridcredit``), then
    the scheme's ``plugins/*.py`` (``plugins_dir``; ``None``: none), then the
    ``extra`` plugin objects (modules or instances: tests, notebooks).

    Checks every hook implementation against the specifications
    (``check_pending``) and builds the registry; raises :class:`PluginError`
    naming the plugin and its file when a plugin does not load, implements a
    hook that does not exist, or registers a name already taken.
    """
    folder = Path(plugins_dir) if plugins_dir else None
    pm = pluggy.PluginManager("gridcredit")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    _load_entry_points(pm)
    if folder and folder.is_dir():
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _load_local(pm, path)
    for plugin in extra:
        pm.register(plugin)
    _check_pending(pm)
    plugins = Plugins(pm, folder)
    plugins._collect()
    return plugins


def _load_local(pm: pluggy.PluginManager, path: Path) -> None:
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


def _check_pending(pm: pluggy.PluginManager) -> None:
    """A hook implementation without a specification is a misspelled hook: refuse it."""
    for name, hook in vars(pm.hook).items():
        if name.startswith("_") or hook.has_spec():
            continue
        for impl in hook.get_hookimpls():
            if impl.optionalhook:
                continue
            known = sorted(
                n for n, h in vars(pm.hook).items() if not n.startswith("_") and h.has_spec()
            )
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known hooks: {', '.join(known)}"
            raise PluginError(
                f"plugin {Origin(impl.plugin_name, _plugin_file(impl.plugin))} implements"
                f" '{name}', which is not a gridcredit hook; {hint}"
                " Rename the function (or drop its @hookimpl)"
            )
    pm.check_pending()  # the same check by pluggy itself, should ours ever miss a case


def _plugin_file(plugin: object) -> str:
    file = getattr(plugin, "__file__", None)
    if not file:
        try:
            file = inspect.getfile(plugin if inspect.isclass(plugin) else type(plugin))
        except TypeError:
            file = ""
    return str(file or "")


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


def describe_plugins(pm: pluggy.PluginManager | Plugins) -> list[dict[str, object]]:
    """Name, origin and implemented hooks of every registered plugin."""
    if isinstance(pm, Plugins):
        pm = pm.pm
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda kv: str(kv[0])):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        origin = getattr(plugin, "__file__", "") or ""
        out.append({"name": name, "file": origin, "hooks": hooks})
    return out


def plugins_dir_of(path: str | Path) -> Path:
    """The ``plugins/`` folder of the scheme repository holding ``path`` (a scheme
    repository, or its ``rules/`` folder)."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    return (p.parent if p.name == "rules" else p) / "plugins"


def plugins_of(scheme: Any) -> Plugins:
    """The scheme's plugins (``scheme.plugins``); a scheme built without the loader
    gets them built from its repository once, and keeps them."""
    plugins = getattr(scheme, "plugins", None)
    if plugins is None:
        root = getattr(scheme, "root", "") or ""
        plugins = build_plugins(plugins_dir_of(root) if root else None)
        scheme.plugins = plugins
    return plugins  # type: ignore[no-any-return]
