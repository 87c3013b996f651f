"""The scratch-directory contract, executor side: render one prepared directory in this process.

`execute_scratch(path)` is what runs INSIDE the fence: in a bubblewrap sandbox (forked from the
zygote, `zygote.py`), or in a render container that shares the directory with the worker
(`videojob render-server`). It reads scene.py and request.json, applies the request's limits as
rlimits to this process, executes the code, renders the Scene class, and writes result.json.
It consumes the process: the caller runs it in a fresh child and exits afterwards.

Nothing here is a security boundary: the code it runs can undo anything done in this process.
The boundary is around the process (namespaces, seccomp, read-only mounts, the pod).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
import types
from pathlib import Path

_QUALITY = {
    "low": "low_quality",
    "medium": "medium_quality",
    "high": "high_quality",
    "production": "production_quality",
}


def apply_limits(limits: dict) -> None:
    """rlimits from request.json's "limits" (see SandboxLimits.as_request)."""
    for which, key in (
        (resource.RLIMIT_AS, "memory_bytes"),
        (resource.RLIMIT_CPU, "cpu_seconds"),
        (resource.RLIMIT_FSIZE, "max_output_bytes"),
        (resource.RLIMIT_NOFILE, "max_open_files"),
        (resource.RLIMIT_NPROC, "max_processes"),
    ):
        value = int(limits[key])
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def scene_environment(scratch: str) -> dict[str, str]:
    """Variables for the scene: its scratch directory is HOME, TMPDIR and every cache."""
    return {
        "HOME": scratch,
        "TMPDIR": scratch,
        "XDG_CACHE_HOME": os.path.join(scratch, ".cache"),
        "XDG_CONFIG_HOME": os.path.join(scratch, ".config"),
        "MPLCONFIGDIR": os.path.join(scratch, ".cache"),
    }


def _user_traceback(exc: BaseException, code_file: str) -> str:
    """The traceback frames in the user's code, plus the final error line: what a fixer needs."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code_file]
    lines = [f'  line {f.lineno}, in {f.name}: {(f.line or "").strip()}' for f in frames[-5:]]
    last = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return "\n".join(lines + [last]) if lines else last


def _layout_warnings(scene) -> list[str]:
    """What the scene's layout check recorded (`layout.check_layout`), a few short strings (the
    parent caps them again: this process runs the scene's code and proves nothing)."""
    found = getattr(scene, "layout_warnings", None)
    if not isinstance(found, list):
        return []
    return [w[:300] for w in found[:20] if isinstance(w, str)]


def render_scene(scratch: str, request: dict) -> dict:
    """Execute scene.py and render request["scene_class"]; the result.json dict."""
    from manim import tempconfig

    code_file = os.path.join(scratch, "scene.py")
    try:
        with open(code_file, encoding="utf-8") as f:
            code = f.read()
        # A real module, registered: dataclasses, pickling and typing look classes up by module.
        module = types.ModuleType("videojob_scene")
        module.__file__ = code_file
        sys.modules[module.__name__] = module
        exec(compile(code, code_file, "exec"), module.__dict__)  # noqa: S102 - the point; fenced from outside
        scene_cls = getattr(module, request["scene_class"], None)
        if scene_cls is None:
            raise LookupError(f"class {request['scene_class']!r} not found in the code")
        with tempconfig(
            {
                "quality": _QUALITY[request["quality"]],
                "media_dir": os.path.join(scratch, "media"),
                "disable_caching": True,
                "output_file": "scene",
                "progress_bar": "none",
                "verbosity": "WARNING",
                "preview": False,
                "write_to_movie": True,
            }
        ):
            scene = scene_cls()
            scene.render()
            movie = Path(scene.renderer.file_writer.movie_file_path)
        return {"ok": True, "movie": os.path.relpath(movie, scratch), "warnings": _layout_warnings(scene)}
    except MemoryError:
        return {"ok": False, "error": "MemoryError: the scene exceeded the sandbox memory limit", "kind": "memory"}
    except BaseException as exc:  # noqa: BLE001 - everything the scene does is reported, not raised
        error = _user_traceback(exc, code_file)
        if len(error) > 8000:  # the parent caps it too; keep result.json well under its limit
            error = error[:2000] + " ... " + error[-6000:]
        return {"ok": False, "error": error, "kind": type(exc).__name__}


def execute_scratch(scratch: str | os.PathLike) -> None:
    """Render the prepared scratch directory `scratch` in this process and write result.json.

    Call it in a fresh child process (it changes directory, environment and rlimits, and runs
    untrusted code); stdout/stderr should already point at scratch/render.log."""
    scratch = os.path.abspath(scratch)
    os.chdir(scratch)
    with open("request.json", encoding="utf-8") as f:
        request = json.load(f)
    os.environ.update(scene_environment(scratch))
    # A fork inherits the zygote's random state: reseed, as a fresh process would be.
    import random

    import numpy

    random.seed()
    numpy.random.seed()
    apply_limits(request["limits"])
    result = render_scene(scratch, request)
    tmp = os.path.join(scratch, ".result.json")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, os.path.join(scratch, "result.json"))


def fork_execute(scratch: str | os.PathLike) -> int:
    """Fork a child that executes `scratch` with its output in scratch/render.log; returns its
    pid. The child has its own session and never returns."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        log = os.open(os.path.join(scratch, "render.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        execute_scratch(scratch)
        code = 0
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
