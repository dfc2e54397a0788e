"""The typed API: PEP 561 marker, stubs of the compiled modules, mypy --strict on a user's file.

``tests/typing/public_api.py`` uses every public name the way a typed
program would, with ``assert_type`` on what each returns; mypy checks it
against the installed package (its ``py.typed``, annotations and ``.pyi``
stubs), so a wheel without them fails here.
"""
import ast
import importlib
import importlib.machinery
import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import cyprop
from cyprop import functional, reference

PACKAGE = Path(cyprop.__file__).parent
USAGE = Path(__file__).parent / "typing" / "public_api.py"
PUBLIC_MODULES = ["cyprop", "cyprop.functional", "cyprop.reference", "cyprop.nn", "cyprop.optim",
                  "cyprop.optim.lr_scheduler", "cyprop.hessian", "cyprop.diagnostics",
                  "cyprop.sklearn", "cyprop.distributed"]


def _compiled_modules():
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(p.name.split(".")[0] for p in PACKAGE.iterdir() if p.name.endswith(suffixes))


def _stub_names(tree):
    """Top-level names a stub defines (functions, classes, variables), and each class's members."""
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.ClassDef):
            members[node.name] = {n.name for n in node.body
                                  if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")}
    return names, members


def _exported(module):
    """What a compiled module defines: its names, less dunders and the modules it imports."""
    return {name for name, value in vars(module).items()
            if not name.startswith("__") and not isinstance(value, types.ModuleType)}


def test_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_every_compiled_module_has_a_stub_and_no_stub_is_stale():
    compiled = _compiled_modules()
    assert len(compiled) >= 10, compiled
    stubs = sorted(p.stem for p in PACKAGE.glob("*.pyi"))
    assert stubs == compiled


@pytest.mark.parametrize("name", _compiled_modules())
def test_stub_lists_exactly_what_the_module_exports(name):
    module = importlib.import_module(f"cyprop.{name}")
    names, members = _stub_names(ast.parse((PACKAGE / f"{name}.pyi").read_text()))
    assert names == _exported(module), f"cyprop/{name}.pyi"
    for cls, methods in members.items():
        runtime = {m for m in vars(getattr(module, cls)) if not m.startswith("__")}
        assert methods == runtime, f"{name}.{cls}"


@pytest.mark.parametrize("name", functional.__all__)
def test_reference_has_the_signatures_of_functional(name):
    assert inspect.signature(getattr(reference, name)) == inspect.signature(getattr(functional, name))
    assert reference.__all__ == functional.__all__


def _uses(tree):
    """(module, name) pairs the usage file touches: ``alias.name`` and ``from module import name``."""
    aliases, uses = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cyprop"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full
                uses.add((node.module, a.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                parts = [aliases[base.id]] + chain[::-1]
                for k in range(1, len(parts)):
                    uses.add((".".join(parts[:k]), parts[k]))
    return uses


def _public_names(mod):
    """``mod.__all__``; () for a module whose optional dependency is not installed
    (cyprop.sklearn without scikit-learn, cyprop.distributed without dask)."""
    try:
        return importlib.import_module(mod).__all__
    except ImportError:
        if mod in ("cyprop.sklearn", "cyprop.distributed"):
            return ()
        raise


def test_usage_file_uses_every_public_name():
    uses = _uses(ast.parse(USAGE.read_text()))
    missing = [f"{mod}.{name}" for mod in PUBLIC_MODULES
               for name in _public_names(mod) if (mod, name) not in uses]
    assert not missing, f"tests/typing/public_api.py does not use {missing}"


def test_usage_file_runs(tmp_path):
    pytest.importorskip("sklearn")   # the file uses the estimators too
    # what mypy checks is real code: every call in it is one the API accepts
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(USAGE)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_mypy_strict_on_the_public_api(tmp_path):
    pytest.importorskip("mypy")
    # the installed cyprop, as a user's project sees it (from outside the source tree)
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--cache-dir", str(tmp_path / "cache"), "--python-version",
                           f"{sys.version_info[0]}.{sys.version_info[1]}", str(USAGE)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout
