"""Early, friendly checks on scene code before a render is spent on it. NOT a security fence.

The fence is the operating system's (`videojob.pipeline.sandbox`): scene code runs in a sandbox
with no credentials, no network and a read-only view of the system, whatever it contains. So
this check refuses only what can never render, and says why in words a person or an LLM can act
on: syntax errors, relative imports (a scene is a single file) and imports of modules that are
not installed where scenes render. It never refuses names or strings (`Text("fork")`, a variable
called `input`) or ordinary standard-library imports (`os.path`, `pathlib`, `itertools`).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _installed(module: str) -> bool:
    top = module.split(".")[0]
    if top in sys.builtin_module_names or top in sys.stdlib_module_names:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def check_code(code: str) -> list[Violation]:
    """Problems that mean `code` cannot render; empty when it is worth a render."""
    try:
        tree = ast.parse(code, filename="scene.py")
    except SyntaxError as exc:
        return [Violation(exc.lineno or 0, f"syntax error: {exc.msg}")]
    problems: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _installed(alias.name):
                    problems.append(Violation(node.lineno, f"module {alias.name!r} is not installed where scenes render"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(Violation(node.lineno, "relative imports cannot work: a scene is a single file"))
            elif node.module and not _installed(node.module):
                problems.append(Violation(node.lineno, f"module {node.module!r} is not installed where scenes render"))
    return problems


SCENE_BASES = frozenset(
    {
        "Scene", "MovingCameraScene", "ThreeDScene", "ZoomedScene", "VectorScene",
        "LinearTransformationScene", "SpecialThreeDScene",
    }
)


def scene_classes(code: str) -> list[str]:
    """Names of the Scene subclasses `code` defines at top level, in order, leaving out classes
    that only serve as bases for other scenes in the same file."""
    tree = ast.parse(code)
    scenes: list[str] = []
    used_as_base: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
        if bases & (SCENE_BASES | set(scenes)):
            used_as_base |= bases & set(scenes)
            scenes.append(node.name)
    return [name for name in scenes if name not in used_as_base]
