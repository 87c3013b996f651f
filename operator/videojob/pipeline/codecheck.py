"""Static checks on untrusted Manim code, before it is ever executed.

This is the first of two fences (the second is the audit hook in `sandbox_child`): it rejects
imports outside an allowlist and the handful of builtins and attributes that classic Python
sandbox escapes rely on. The allowlist admits what ordinary Manim scenes use, judged by the
examples in Manim's documentation: manim itself, numpy, scipy, networkx, PIL and the harmless
parts of the standard library.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

# Top-level packages whose import is allowed (submodules included).
ALLOWED_MODULES = frozenset(
    {
        "manim", "manimpango", "numpy", "scipy", "networkx", "PIL", "colour", "mapbox_earcut",
        "__future__", "math", "cmath", "random", "itertools", "functools", "collections", "typing",
        "typing_extensions", "dataclasses", "enum", "string", "fractions", "decimal", "statistics",
        "operator", "copy", "re", "textwrap", "abc", "numbers", "bisect", "heapq", "time",
        "datetime", "calendar", "colorsys", "json", "unicodedata", "contextlib", "types", "array",
    }
)

# Builtins that read files, run arbitrary code or reach interpreter internals.
FORBIDDEN_NAMES = frozenset(
    {
        "__import__", "eval", "exec", "compile", "open", "input", "breakpoint", "globals",
        "locals", "vars", "memoryview", "__builtins__", "__loader__", "__spec__", "help", "exit", "quit",
    }
)

# Attributes used to climb from an ordinary object to `os`, frames or code objects.
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "__bases__",
        "__base__", "__mro__", "__dict__", "__getattribute__", "__reduce__", "__reduce_ex__",
        "__loader__", "__spec__", "__import__", "f_globals", "f_locals", "f_builtins", "f_back",
        "gi_frame", "gi_code", "cr_frame", "tb_frame", "co_code", "func_globals", "system",
        "popen", "spawn", "fork", "execv", "execve", "environ", "modules",
    }
)


@dataclass(frozen=True)
class Violation:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def check_code(code: str) -> list[Violation]:
    """Problems that forbid running `code`; empty when it may run in the sandbox."""
    try:
        tree = ast.parse(code, filename="scene.py")
    except SyntaxError as exc:
        return [Violation(exc.lineno or 0, f"syntax error: {exc.msg}")]
    problems: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_MODULES:
                    problems.append(Violation(node.lineno, f"import of {alias.name!r} is not allowed"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(Violation(node.lineno, "relative imports are not allowed"))
            elif (node.module or "").split(".")[0] not in ALLOWED_MODULES:
                problems.append(Violation(node.lineno, f"import from {node.module!r} is not allowed"))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(Violation(node.lineno, f"use of {node.id!r} is not allowed"))
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            problems.append(Violation(node.lineno, f"access to attribute {node.attr!r} is not allowed"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FORBIDDEN_ATTRIBUTES | {"__import__"}:
            # getattr(obj, "__globals__") spelled with a string.
            problems.append(Violation(node.lineno, f"string {node.value!r} is not allowed"))
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
