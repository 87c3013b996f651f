"""The render zygote and its children: untrusted scene code under limits. Started by `sandbox.py`.

The zygote imports Manim once (most of a second), then forks one child per scene. A child runs
exactly one scene and exits: it applies resource limits, installs an audit hook (the second fence
after the static check: no process spawning, no sockets, no files outside its scratch directory
and the read-only library trees), executes the code and renders one Scene class, writing
`result.json` and `render.log` into its scratch directory. The zygote never runs user code.
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


def render_one(req: dict) -> dict:
    """Render one scene in this (already forked, not yet fenced) process; the result as a dict."""
    from manim import tempconfig

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
        return {"ok": True, "movie": movie}
    except MemoryError:
        return {"ok": False, "error": "MemoryError: the scene exceeded the sandbox memory limit", "kind": "memory"}
    except BaseException as exc:  # noqa: BLE001 - everything the user code does is reported, not raised
        return {"ok": False, "error": _user_traceback(exc, code_file), "kind": type(exc).__name__}


def _fork_render(req: dict) -> int:
    """Fork a child for one request. The child gets its own session (so the parent can kill its
    whole process group), writes its output to files in its scratch directory, never returns."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        log = os.open(os.path.join(req["scratch"], "render.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(0)
        scratch = req["scratch"]
        # A fork inherits the zygote's random state: reseed, as a fresh process would be.
        import random

        import numpy

        random.seed()
        numpy.random.seed()
        os.environ.update(HOME=scratch, TMPDIR=scratch, XDG_CACHE_HOME=os.path.join(scratch, ".cache"),
                          XDG_CONFIG_HOME=os.path.join(scratch, ".config"), MPLCONFIGDIR=os.path.join(scratch, ".cache"))
        result = render_one(req)
        tmp = os.path.join(scratch, ".result.json")
        with open(tmp, "w") as f:  # the audit hook allows writes inside scratch
            json.dump(result, f)
        os.replace(tmp, os.path.join(scratch, "result.json"))
        code = 0
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> int:
    """The zygote: import Manim once, then fork one child per request line on stdin.

    Protocol (one JSON object a line): in, a render request with an "id"; out,
    {"id", "pid"} when its child started and {"id", "status"} when it ended (a wait status).
    A single thread does everything (fork from a threaded process is unsafe): select on stdin,
    reap children between requests. On stdin EOF it kills what is still running and exits.
    """
    import select

    out = sys.stdout
    sys.stdout = sys.stderr  # Manim prints; keep the protocol channel clean
    import manim  # noqa: F401  (the point of the zygote: import once, fork many)
    from manim import Text

    # Load fonts and Pango once too; forked children share it copy-on-write. Only a speed-up:
    # a failure here must not stop the zygote.
    try:
        Text("warm-up")
    except Exception:  # noqa: BLE001
        pass
    running: dict[int, str] = {}
    buffer = b""
    stdin = sys.stdin.fileno()
    eof = False
    while not eof or running:
        if not eof:
            ready, _, _ = select.select([stdin], [], [], 0.02)
            if ready:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    eof = True
                    for pid in running:
                        try:
                            os.killpg(pid, 9)
                        except ProcessLookupError:
                            pass
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        req = json.loads(line)
                        pid = _fork_render(req)
                        running[pid] = req["id"]
                        out.write(json.dumps({"id": req["id"], "pid": pid}) + "\n")
                        out.flush()
        else:
            select.select([], [], [], 0.02)
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                running.clear()
                break
            if pid == 0:
                break
            rid = running.pop(pid, None)
            if rid is not None:
                out.write(json.dumps({"id": rid, "status": status}) + "\n")
                out.flush()
    return 0


if __name__ == "__main__":
    code = serve()
    sys.stderr.flush()
    # Skip interpreter teardown (Manim's modules, atexit hooks): nothing is left to flush.
    os._exit(code)
