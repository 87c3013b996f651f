"""The `pod` runner: scenes render in the Job pod's render container, not in the worker.

In a cluster the fence around scene code is a container of its own (see docs/deployment.md,
"What each layer stops"): no service-account token, no cloud or LLM credentials, a restricted
security context, a NetworkPolicy. The worker and that container share one emptyDir, the spool,
and nothing else. `videojob render-server` (`spool_server.py`) runs in the render container;
this module is the worker's side of the spool:

    SPOOL/.server                 written by the render server once it serves (not trusted)
    SPOOL/i-<id>/                 one runner instance (one job's), made and owned by the worker
    SPOOL/i-<id>/.closed          the worker let the instance go: the server stops its zygote
    SPOOL/i-<id>/scene-<id>/      a scene's scratch directory (the `scratch.py` contract)
        .submit                   {"timeout_seconds"}: the worker asks for execution
        .done                     {"ended", "wait_status", "detail"}: the server finished

The render container may run anything, so the worker trusts nothing it finds there: the instance
directory is used through a descriptor taken when the worker made it (renaming or replacing its
name in the spool changes nothing), the scratch directory is read back by `scratch.read_outcome`,
and `.done` is read with O_NOFOLLOW and a size cap. A render container that stops answering costs
the scene its timeout, never the worker its safety.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from videojob.pipeline.sandbox.protocol import Execution, Isolation, SandboxUnavailable
from videojob.pipeline.sandbox.runners import _PooledRunner
from videojob.pipeline.sandbox.scratch import read_json_object

# The Job sets it on the worker container; the worker then renders with this runner.
SPOOL_ENV = "VIDEOJOB_RENDER_SPOOL"
SERVER_MARKER = ".server"
CLOSED_MARKER = ".closed"
SUBMIT = ".submit"
DONE = ".done"
INSTANCE_PREFIX = "i-"
_DONE_MAX_BYTES = 4096
# Beyond the scene's own timeout: a fresh zygote imports Manim first (the server's clock for the
# scene starts only once it runs), and the server needs a moment to notice and to answer.
ANSWER_SLACK_SECONDS = 150.0
_POLL = 0.05


def write_json_atomically(dir_fd: int, name: str, payload: dict) -> None:
    """`name` inside `dir_fd` appears whole or not at all (written aside, then renamed)."""
    tmp = f".{name.lstrip('.')}.{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def read_small_json(dir_fd: int, name: str, cap: int = _DONE_MAX_BYTES) -> dict | None:
    """A small JSON object from a regular file (no symlink, FIFO or device), or None."""
    return read_json_object(dir_fd, name, cap)


def _execution_from(done: dict) -> Execution:
    ended = done.get("ended")
    if ended not in ("exited", "timeout", "lost"):
        return Execution("lost", detail="the render container answered nonsense")
    status = done.get("wait_status")
    status = status if isinstance(status, int) and not isinstance(status, bool) and 0 <= status < 1 << 16 else None
    detail = done.get("detail")
    detail = "".join(c for c in detail[:200] if c.isprintable()) if isinstance(detail, str) else ""
    return Execution(ended, wait_status=status if ended == "exited" else None, detail=detail)


class PodInstance:
    """One job's share of the render container: a worker-owned directory in the spool."""

    def __init__(self, spool: Path):
        self.name = f"{INSTANCE_PREFIX}{uuid.uuid4().hex[:16]}"
        # mkdir refuses an existing name (or a planted symlink); from then on only the descriptor
        # counts, and `root` reaches the directory through it, whatever happens to the name.
        os.mkdir(spool / self.name, 0o755)
        self._fd = os.open(spool / self.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self.root = Path(f"/proc/self/fd/{self._fd}")
        self.ready = threading.Event()
        self.ready.set()  # the server starts a zygote when it sees the directory
        self._closed = threading.Event()
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return not self._closed.is_set()

    def execute(self, scratch: Path, timeout_seconds: float) -> Execution:
        if not self.alive:
            return Execution("lost", detail="the instance was closed")
        try:
            dir_fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            return Execution("lost", detail=f"no scratch directory: {exc.strerror}")
        try:
            # The render container runs as its own user: it may write into this scene's
            # directory (results, the movie), and nowhere else of ours.
            os.fchmod(dir_fd, 0o777)
            write_json_atomically(dir_fd, SUBMIT, {"timeout_seconds": float(timeout_seconds)})
            deadline = time.monotonic() + float(timeout_seconds) + ANSWER_SLACK_SECONDS
            while time.monotonic() < deadline:
                done = read_small_json(dir_fd, DONE)
                if done is not None:
                    return _execution_from(done)
                if self._closed.wait(_POLL):
                    return Execution("lost", detail="the instance was closed")
            self.close()
            return Execution("lost", detail=f"the render container did not answer within {timeout_seconds:g} s "
                                            f"(+{ANSWER_SLACK_SECONDS:g} s); is `videojob render-server` running?")
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        try:
            write_json_atomically(self._fd, CLOSED_MARKER, {})
        except OSError:
            pass
        # Files the render container made in subdirectories are its own; the server removes those.
        for entry in os.listdir(self._fd):
            if entry != CLOSED_MARKER:
                shutil.rmtree(self.root / entry, ignore_errors=True)
        os.close(self._fd)


class PodRunner(_PooledRunner):
    """Executes scratch directories through the spool shared with the render container."""

    isolation: Isolation = "pod"

    def __init__(self, spool: Path, pool_size: int = 0, server_timeout: float = 120.0):
        super().__init__(Path(spool), pool_size)
        self.spool = Path(spool)
        self.server_timeout = server_timeout
        self._server_seen = False

    def check(self) -> None:
        if not self.spool.is_dir():
            raise SandboxUnavailable(
                f"{SPOOL_ENV}={self.spool} is not a directory: the Job pod's render container shares its "
                "spool through an emptyDir mounted there (unset the variable to use bubblewrap instead)"
            )
        if self._server_seen:
            return
        # The render container is a native sidecar: it starts before the worker, but may still be
        # importing. Wait for it once; afterwards each scene's own timeout covers a hang.
        deadline = time.monotonic() + self.server_timeout
        while not (self.spool / SERVER_MARKER).is_file():
            if time.monotonic() > deadline:
                raise SandboxUnavailable(
                    f"the render container (`videojob render-server --spool {self.spool}`) did not start within "
                    f"{self.server_timeout:g} s: check the pod's `render` container (kubectl logs POD -c render)"
                )
            time.sleep(0.1)
        self._server_seen = True

    def _start(self) -> PodInstance:
        return PodInstance(self.spool)

    def wait_warm(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not (self.spool / SERVER_MARKER).is_file():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def pod_runner_from_environment(environ: dict[str, str] | None = None) -> PodRunner | None:
    """The pod runner when the Job pod set VIDEOJOB_RENDER_SPOOL, else None."""
    spool = (os.environ if environ is None else environ).get(SPOOL_ENV, "").strip()
    return PodRunner(Path(spool)) if spool else None
