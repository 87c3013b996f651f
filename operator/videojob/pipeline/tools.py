"""Tools the code-generating model may call before it answers.

- `manim_docs(name)`: the signature and docstring of a Manim class, function or method, read from
  the installed package (so the model writes against the version that will render the code).
- `check_code(code)`: the early check (syntax, relative imports, modules not installed), plus
  whether the code defines a Scene class: the model can fix such problems before a render is spent.

Both only read; neither runs model-written code.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from functools import lru_cache

from langchain_core.tools import tool

from videojob.pipeline import codecheck

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_MAX_DOC = 3000


@lru_cache(maxsize=1)
def _manim():
    return importlib.import_module("manim")


def _lookup(name: str):
    """The object `name` refers to: `Circle`, `Axes.plot`, `manim.Circle`; public names only."""
    parts = name.split(".")
    if parts[0] == "manim":
        parts = parts[1:]
    obj = _manim()
    for part in parts:
        obj = getattr(obj, part)
    return obj


def describe_manim(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        return f"{name!r} is not a Manim name: give a class, function or Class.method, e.g. 'Circle' or 'Axes.plot'."
    try:
        obj = _lookup(name)
    except AttributeError:
        candidates = [n for n in dir(_manim()) if not n.startswith("_")]
        close = difflib.get_close_matches(name.split(".")[-1], candidates, n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return f"manim has no {name!r}.{hint}"
    qualified = getattr(obj, "__qualname__", name)
    try:
        target = obj.__init__ if inspect.isclass(obj) else obj
        signature = str(inspect.signature(target)).replace("(self, ", "(").replace("(self)", "()")
    except (TypeError, ValueError):
        signature = "(...)"
    kind = "class" if inspect.isclass(obj) else ("function" if callable(obj) else "constant")
    if kind == "constant":
        return f"{name} = {obj!r}"[:_MAX_DOC]
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        init_doc = inspect.getdoc(obj.__init__) or ""
        if init_doc and init_doc not in doc and not init_doc.startswith("Initialize self"):
            doc += "\n\n" + init_doc
        bases = ", ".join(b.__name__ for b in obj.__mro__[1:4])
        header = f"class {qualified}{signature}  (bases: {bases})"
    else:
        header = f"def {qualified}{signature}"
    doc = doc.strip() or "(no docstring)"
    if len(doc) > _MAX_DOC:
        doc = doc[:_MAX_DOC] + "\n[...]"
    return f"{header}\n\n{doc}"


def check_scene_code(code: str) -> str:
    violations = codecheck.check_code(code or "")
    if violations:
        return "REFUSED by the sandbox check:\n" + "\n".join(f"- {v}" for v in violations)
    scenes = codecheck.scene_classes(code)
    if not scenes:
        return "PROBLEM: the code defines no Scene subclass (class MyScene(Scene): def construct(self): ...)."
    return f"OK: passes the sandbox check; Scene classes: {', '.join(scenes)}."


@tool("manim_docs")
def manim_docs(name: str) -> str:
    """Look up the signature and docstring of a Manim class, function or method in the installed
    Manim version. `name` is e.g. 'Circle', 'Axes.plot', 'Text' or 'FadeIn'."""
    return describe_manim(name)


@tool("check_code")
def check_code(code: str) -> str:
    """Check complete scene code before answering: syntax, imports of modules that are not
    installed, and that it defines a Scene class. Returns OK or the problems found."""
    return check_scene_code(code)


CODEGEN_TOOLS = [manim_docs, check_code]
