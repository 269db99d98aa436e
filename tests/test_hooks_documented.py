"""Every hook is documented, implemented or exercised, and called with keywords
(after datasette's ``test_docs.py`` / ``test_plugins.py``)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from scoring import hookspecs
from scoring.plugins import DEFAULT_PLUGINS, REGISTER_HOOKS, build_plugins

ROOT = Path(__file__).parent.parent
SCORING = ROOT / "scoring"

HOOKS = sorted(
    name for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "gridcredit_spec")
)

# Hooks no built-in or local plugin implements, and the test that implements
# them and checks that the pipeline fires them.
EXERCISED_BY = {
    "scheme_loaded": "tests/test_plugins.py::test_lifecycle_hooks_are_fired_once_per_stage",
    "before_ingest": "tests/test_plugins.py::test_lifecycle_hooks_are_fired_once_per_stage",
    "after_ingest": "tests/test_plugins.py::test_lifecycle_hooks_are_fired_once_per_stage",
    "before_score": "tests/test_plugins.py::test_lifecycle_hooks_are_fired_once_per_stage",
    "after_score": "tests/test_plugins.py::test_lifecycle_hooks_are_fired_once_per_stage",
    "after_publish": "tests/test_plugins.py::test_lifecycle_hooks_are_fired_once_per_stage",
}


def spec_args(name: str) -> list[str]:
    return list(inspect.signature(getattr(hookspecs, name)).parameters)


def hook_calls() -> dict[str, list[tuple[str, ast.Call]]]:
    """Every ``<x>.hook.<name>(...)`` call in scoring/, by hook name."""
    calls: dict[str, list[tuple[str, ast.Call]]] = {}
    for path in sorted(SCORING.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "hook"
            ):
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                calls.setdefault(node.func.attr, []).append((where, node))
    return calls


def test_hookspecs_found():
    assert len(HOOKS) >= 10
    assert {"register_publishers", "mask_name", "after_publish"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented(name):
    doc = " ".join((inspect.getdoc(getattr(hookspecs, name)) or "").split())
    assert len(doc) >= 40, (
        f"hook {name} needs a docstring: what it is for, its arguments, its return"
    )
    missing = [a for a in spec_args(name) if not re.search(rf"``{a}``|\b{a}\b", doc)]
    assert not missing, (
        f"hook {name}: docstring does not describe {missing} (write them as ``name``)"
    )
    if name.startswith("register_"):
        assert re.search(r"Return a list", doc), f"hook {name}: say it returns a list"
    elif name == "mask_name":
        assert "first non-None result wins" in doc
    else:
        assert re.search(r"Called once", doc), f"hook {name}: say when it is called"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_implemented_or_exercised(name):
    pm = build_plugins(ROOT / "plugins").pm
    impls = {i.plugin_name for i in getattr(pm.hook, name).get_hookimpls()}
    shipped = impls & (set(DEFAULT_PLUGINS) | {n for n in impls if n.startswith("plugins/")})
    if shipped:
        assert name not in EXERCISED_BY, (
            f"{name} is implemented by {shipped}; drop it from EXERCISED_BY"
        )
        return
    assert name in EXERCISED_BY, (
        f"hook {name}: no built-in or local plugin implements it and no test exercises it"
    )
    file, test = EXERCISED_BY[name].split("::")
    source = (ROOT / file).read_text(encoding="utf-8")
    assert f"def {test}(" in source, f"{EXERCISED_BY[name]} does not exist"
    assert re.search(rf"def {name}\(", source), f"{file} does not implement {name}"


def test_exercised_by_lists_only_real_hooks():
    assert set(EXERCISED_BY) <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_called_with_keyword_arguments(name):
    if name in REGISTER_HOOKS:
        # the registry calls each implementation once at start-up (to name the plugin
        # that registered each item), with the arguments it opts into
        source = (SCORING / "plugins.py").read_text(encoding="utf-8")
        assert "impl.function(**kwargs)" in source
        assert f'"{name}"' in source
        return
    calls = hook_calls().get(name)
    assert calls, f"hook {name} is specified but never called in scoring/"
    for where, call in calls:
        assert not call.args, f"{where}: call hook.{name} with keyword arguments only"
        assert sorted(k.arg for k in call.keywords) == sorted(spec_args(name)), (
            f"{where}: hook.{name} must be called with {spec_args(name)}"
        )


def test_no_call_to_an_unspecified_hook():
    assert set(hook_calls()) <= set(HOOKS)


def test_every_register_hook_feeds_the_registry():
    assert sorted(REGISTER_HOOKS) == [h for h in HOOKS if h.startswith("register_")]
    # none is called through the manager as well: the registry is the one place
    assert not set(hook_calls()) & set(REGISTER_HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_firstresult_only_for_mask_name(name):
    pm = build_plugins(ROOT / "plugins").pm
    firstresult = bool(getattr(pm.hook, name).spec.opts.get("firstresult"))
    assert firstresult == (name == "mask_name")


@pytest.mark.parametrize("name", [h for h in HOOKS if h.startswith("register_")])
def test_register_hooks_take_only_the_plugins_and_return_lists(name):
    assert spec_args(name) in ([], ["plugins"])
    plugins = build_plugins(ROOT / "plugins")
    impls = getattr(plugins.pm.hook, name).get_hookimpls()
    assert impls
    for impl in impls:
        result = impl.function(**({"plugins": plugins} if "plugins" in impl.argnames else {}))
        assert isinstance(result, list), impl.plugin_name


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_listed_in_the_design_doc(name):
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert "\n## Plugins" in text, "docs/design.md has no § Plugins"
    section = text.split("\n## Plugins", 1)[1].split("\n## ", 1)[0]
    assert f"`{name}`" in section, f"docs/design.md § Plugins does not list hook {name}"
