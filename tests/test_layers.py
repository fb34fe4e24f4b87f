"""The layout's rules, read from the code: imports go one way, and files stay small enough to read."""

from __future__ import annotations

import ast

import pytest

from controlnet_demo.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "controlnet_demo"
MAX_LINES = 420  # about 400; the condition table is a table


def _imports(path) -> set[str]:
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def _files(*layers: str):
    return [p for layer in layers for p in sorted((PACKAGE / layer).rglob("*.py"))]


@pytest.mark.parametrize("layer", ["models", "engine", "conditions", "service", "serving", "ui"])
def test_the_product_never_imports_the_lab(layer):
    offenders = {p.name for p in _files(layer) if any(m.startswith("controlnet_demo.lab") for m in _imports(p))}
    assert not offenders, f"{layer}/ imports controlnet_demo.lab: {offenders}"


def test_only_the_clis_lab_commands_and_the_apps_train_tab_import_the_lab():
    outside = [p for p in PACKAGE.rglob("*.py") if "lab" not in p.relative_to(PACKAGE).parts]
    importers = {
        p.relative_to(PACKAGE).as_posix()
        for p in outside
        if any(m.startswith("controlnet_demo.lab") for m in _imports(p))
    }
    assert importers == {"cli/train.py", "cli/evaluate.py"}
    app = (REPO_ROOT / "app.py").read_text()  # the composition root: the Train tab's trainer, made for the UI
    assert "controlnet_demo.lab.training.job import Trainer" in app


def test_the_engine_imports_no_presets_settings_or_gradio():
    banned = ("controlnet_demo.models", "controlnet_demo.settings", "controlnet_demo.service", "gradio")
    for path in _files("engine"):
        bad = {m for m in _imports(path) if m.startswith(banned)}
        assert not bad, f"engine/{path.name} imports {bad}"


@pytest.mark.parametrize("layer", ["models", "engine", "conditions", "service", "serving", "lab"])
def test_nothing_below_the_ui_imports_gradio(layer):
    offenders = {p.name for p in _files(layer) if any(m.split(".")[0] == "gradio" for m in _imports(p))}
    assert not offenders, offenders


def test_ray_is_imported_by_serving_only():
    importers = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if any(m.split(".")[0] == "ray" for m in _imports(p))
    }
    assert importers <= {"serving/ray_serve.py"}, importers


def test_only_settings_reads_the_environment():
    readers = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if "os.environ" in p.read_text()}
    assert readers == {"settings.py"}


def test_no_module_is_much_over_400_lines():
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES and p.name != "table.py"
    }
    assert not long, long


def test_the_console_script_runs_the_cli():
    import importlib
    import tomllib

    target = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]["controlnet-demo"]
    module, _, name = target.partition(":")
    from controlnet_demo.cli import main

    assert getattr(importlib.import_module(module), name) is main
