"""The zygote: one per sandbox instance, started by a runner, imports Manim once and then forks one
child per scene (`execute.fork_execute`), strictly one scene at a time.

    python -I -m videojob.pipeline.sandbox.zygote ROOT [--own-pid-namespace]

Protocol (one JSON object a line): in, {"id", "dir"} where dir names a prepared scratch directory
under ROOT; out, {"ready": true} once Manim is imported, {"id", "pid"} when a scene's child
started and {"id", "status"} (a wait status) when it ended AND nothing it started is left.

Between scenes the zygote leaves no process of the previous scene behind: it is a child
subreaper (orphans, `setsid` daemons included, are re-parented to it and killed), and with
--own-pid-namespace (bubblewrap) it kills every process in the namespace but itself and init.
So a scene never sees, or touches the files of, another scene's still-running code; the parent
reads a scene's outputs only after the sweep. The zygote is not dumpable, so scene code cannot
read or write its memory or descriptors through /proc. It never runs scene code itself.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl failed")


def _own_children() -> set[int]:
    pids: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            continue
    return pids


def _namespace_processes() -> set[int]:
    me = os.getpid()
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)}


def _kill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reap() -> list[tuple[int, int]]:
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, status))


def _run_scene(scratch: str, own_namespace: bool, started) -> int:
    """Fork the scene's child, wait for it while killing anything else that appears, sweep;
    returns the child's wait status."""
    from videojob.pipeline.sandbox.execute import fork_execute

    pid = fork_execute(scratch)
    started(pid)
    status = None
    while status is None:
        for ended, st in _reap():
            if ended == pid:
                status = st
        strays = _own_children() - {pid}  # orphans re-parented to us: never legitimate
        _kill(strays)
        if status is None:
            time.sleep(0.01)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = (_namespace_processes() if own_namespace else set()) | _own_children()
        if not left:
            break
        _kill(left)
        _reap()
        time.sleep(0.005)
    return status


def serve(root: str, own_namespace: bool) -> int:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # Manim prints; keep the protocol channel clean
    _prctl(_PR_SET_DUMPABLE, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)

    def out(message: dict) -> None:
        proto.write(json.dumps(message) + "\n")

    import manim  # noqa: F401  (the point of the zygote: import once, fork many)
    from manim import Text

    # Load fonts and Pango once too; forked children share them copy-on-write. Only a speed-up.
    try:
        Text("warm-up")
    except Exception:  # noqa: BLE001
        pass
    out({"ready": True})
    for line in sys.stdin:
        try:
            request = json.loads(line)
            name = request["dir"]
            if "/" in name or name in ("", ".", ".."):
                raise ValueError(name)
        except (ValueError, KeyError, TypeError):
            continue
        rid = str(request.get("id"))
        status = _run_scene(os.path.join(root, name), own_namespace, lambda pid: out({"id": rid, "pid": pid}))
        out({"id": rid, "status": status})
    return 0


def main(argv: list[str]) -> int:
    root = argv[0]
    return serve(root, "--own-pid-namespace" in argv[1:])


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (Manim's modules, atexit hooks)
