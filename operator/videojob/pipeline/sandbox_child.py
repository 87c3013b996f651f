"""The render child: runs untrusted scene code under limits. Started by `sandbox.py`, never imported.

Protocol: the process starts, imports Manim (the slow part, done while the parent is still busy),
then reads one JSON request line from stdin. It applies resource limits, installs an audit hook
(second fence after the static check: no process spawning, no sockets, no files outside the
scratch directory and the read-only library trees), executes the code, renders one Scene class
and writes one JSON result line to stdout. It never serves a second request.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback

# Executables Manim itself may start (LaTeX for MathTex/Tex). Anything else is refused.
_ALLOWED_EXECUTABLES = {"latex", "xelatex", "lualatex", "pdflatex", "dvisvgm"}

_QUALITY = {
    "low": "low_quality",
    "medium": "medium_quality",
    "high": "high_quality",
    "production": "production_quality",
}


def _apply_limits(req: dict) -> None:
    mem = req["memory_bytes"]
    cpu = req["cpu_seconds"]
    fsize = req["max_output_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _install_audit_hook(scratch: str) -> None:
    scratch = os.path.realpath(scratch)
    readable = tuple(
        os.path.realpath(p) + os.sep
        for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, *[p for p in sys.path if p]}
        | {"/usr/share", "/usr/lib", "/usr/local/lib", "/usr/local/share", "/etc/fonts",
           "/var/cache/fontconfig", "/usr/bin", "/usr/local/bin", "/dev/null", "/dev/urandom"}
    ) + ("/proc/self/",)

    def allowed_path(path, writing: bool) -> bool:
        if isinstance(path, int):  # already-open descriptors
            return True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        full = os.path.realpath(os.path.join(scratch, str(path)))
        if full == scratch or full.startswith(scratch + os.sep):
            return True
        if writing:
            return full == "/dev/null"
        return full in ("/dev/null", "/dev/urandom") or full.startswith(readable)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode and any(c in str(mode) for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if path is not None and not allowed_path(path, bool(writing)):
                raise PermissionError(f"sandbox: access to {path!r} is not allowed")
        elif event == "subprocess.Popen":
            executable, argv = args[0], args[1]
            name = os.path.basename(str(executable or (argv[0] if argv else "")))
            if name not in _ALLOWED_EXECUTABLES:
                raise PermissionError(f"sandbox: starting {name!r} is not allowed")
        elif event in ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                       "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit", "sys.setprofile",
                       "sys.settrace", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.addressof",
                       "socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo",
                       "socket.gethostbyname", "webbrowser.open", "sys.addaudithook", "os.putenv"):
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event in ("os.remove", "os.unlink", "os.rmdir", "os.rename", "os.chmod", "os.chown",
                       "os.symlink", "os.link", "os.truncate", "shutil.rmtree", "os.mkdir"):
            paths = [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
            if not all(allowed_path(os.fspath(p), True) for p in paths):
                raise PermissionError(f"sandbox: {event} outside the scratch directory is not allowed")

    sys.addaudithook(hook)


def _user_traceback(exc: BaseException, code_file: str) -> str:
    """The traceback frames in the user's code, plus the final error line: what a fixer needs."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code_file]
    lines = [f'  line {f.lineno}, in {f.name}: {(f.line or "").strip()}' for f in frames[-5:]]
    last = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return "\n".join(lines + [last]) if lines else last


def main() -> int:
    out = sys.stdout
    # Manim and user code print freely; keep our protocol channel clean.
    sys.stdout = sys.stderr
    import manim  # noqa: F401  (import before the request arrives: this is the warm-up)
    from manim import tempconfig

    line = sys.stdin.readline()
    if not line:
        return 0  # the parent did not need this warm child after all
    req = json.loads(line)
    result: dict = {"ok": False}
    code_file = os.path.join(req["scratch"], "scene.py")
    try:
        os.chdir(req["scratch"])
        _apply_limits(req)
        with open(code_file, encoding="utf-8") as f:
            code = f.read()
        _install_audit_hook(req["scratch"])
        namespace: dict = {"__name__": "videojob_scene"}
        exec(compile(code, code_file, "exec"), namespace)  # noqa: S102 - checked code, sandboxed process
        scene_cls = namespace.get(req["scene_class"])
        if scene_cls is None:
            raise LookupError(f"class {req['scene_class']!r} not found in the code")
        with tempconfig(
            {
                "quality": _QUALITY[req["quality"]],
                "media_dir": os.path.join(req["scratch"], "media"),
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
            movie = str(scene.renderer.file_writer.movie_file_path)
        result = {"ok": True, "movie": movie}
    except MemoryError:
        result = {"ok": False, "error": "MemoryError: the scene exceeded the sandbox memory limit", "kind": "memory"}
    except BaseException as exc:  # noqa: BLE001 - everything the user code does is reported, not raised
        result = {"ok": False, "error": _user_traceback(exc, code_file), "kind": type(exc).__name__}
    out.write(json.dumps(result) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Skip interpreter teardown (Manim's modules, atexit hooks): the parent waits for our exit.
    os._exit(code)
