"""Sphinx configuration of cyprop's documentation: ``sphinx-build -W -b html docs docs/_build/html``.

``api.rst`` is written here, at every build, from the ``__all__`` of each
public module, so that the API reference lists every public name and never
goes stale.
"""
import importlib
import inspect
import os

import cyprop

project = "cyprop"
author = "the cyprop developers"
release = version = cyprop.__version__
copyright = "2026, the cyprop developers"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.mathjax",
              "numpydoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/*.md"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
templates_path = ["_templates"]   # classes with their own members, not sklearn's inherited ones
html_title = f"cyprop {release}"
autosummary_generate = True
autodoc_default_options = {"members": False}
# the numpydoc sections give each parameter's type; signatures stay as NumPy's docs show them
# (the annotations are for type checkers: py.typed, see the README's "Types")
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# the public modules, in the order a reader meets them
MODULES = ["cyprop", "cyprop.functional", "cyprop.reference", "cyprop.nn", "cyprop.optim",
           "cyprop.optim.lr_scheduler", "cyprop.hessian", "cyprop.diagnostics",
           "cyprop.sklearn", "cyprop.distributed"]


def _write_api():
    lines = ["API reference", "=============", "",
             "Every public name, module by module (generated from each module's ``__all__``).", ""]
    for name in MODULES:
        mod = importlib.import_module(name)
        public = [n for n in mod.__all__ if n != "__version__"
                  and not type(getattr(mod, n)).__name__ == "module"]
        lines += [f"``{name}``", "-" * (len(name) + 4), "", f".. automodule:: {name}",
                  "   :no-members:", "", f".. currentmodule:: {name}", "",
                  ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {n}" for n in public] + [""]
    text = "\n".join(lines)
    path = os.path.join(os.path.dirname(__file__), "api.rst")
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


_write_api()


def _class_signature(app, what, name, obj, options, signature, return_annotation):
    """A layer's or loss's signature is its ``__init__``'s: their base's ``__new__``
    (the thread guard, ``nn._module._Guarded``) takes ``*args, **kwargs``."""
    if what != "class" or signature != "(*args, **kwargs)" or "__init__" not in dir(obj):
        return None
    sig = inspect.signature(obj.__init__)
    params = [p.replace(annotation=inspect.Parameter.empty)
              for p in list(sig.parameters.values())[1:]]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty)), None


def setup(app):
    app.connect("autodoc-process-signature", _class_signature)
