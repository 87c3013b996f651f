"""Runners: bubblewrap (the default fence) and none (explicit opt-out for trusted code).

Both keep a small pool of pre-warmed, single-use instances: a zygote that has imported Manim,
waiting for its first scene. An instance is handed to one job and discarded afterwards.
A pod runner (the Job executor's render container) implements the same `Runner` protocol.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from videojob.pipeline.sandbox.instance import ZygoteInstance
from videojob.pipeline.sandbox.protocol import Isolation, SandboxUnavailable

log = logging.getLogger(__name__)

INNER_ROOT = "/sandbox"  # where an instance's directory appears inside bubblewrap
_ZYGOTE = ["-I", "-m", "videojob.pipeline.sandbox.zygote"]
_OPT_OUT = "or set VIDEOJOB_SANDBOX=none (videojob run --sandbox none) to run code you trust without one"
# Variables passed through from the parent; everything else (AWS_*, *_API_KEY, KUBERNETES_*,
# tokens) stays out because it is not on this list.
_ENV_PASSED = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "SOURCE_DATE_EPOCH")


def sandbox_environment(home: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _ENV_PASSED if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    bin_dirs = dict.fromkeys([os.path.join(sys.prefix, "bin"), os.path.join(sys.base_prefix, "bin"),
                              "/usr/local/bin", "/usr/bin", "/bin"])
    env.update(
        PATH=":".join(bin_dirs),
        HOME=home,
        TMPDIR=home,
        # One thread per render: scenes already run in parallel, and BLAS thread pools do not
        # survive fork() well.
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class _PooledRunner:
    """The warm pool shared by both runners; subclasses say how an instance starts."""

    isolation: Isolation

    def __init__(self, root: Path, pool_size: int = 0):
        self.root = Path(root)
        self.pool_size = pool_size  # instances kept warm after each job (0: only what prewarm asks)
        self._warm: list[ZygoteInstance] = []
        self._lock = threading.Lock()

    def _start(self) -> ZygoteInstance:  # pragma: no cover - abstract
        raise NotImplementedError

    def _new_root(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"sbx-{uuid.uuid4().hex[:12]}"
        path.mkdir(mode=0o700)
        return path

    def prewarm(self, count: int) -> None:
        self.check()
        with self._lock:
            self._warm = [i for i in self._warm if i.alive]
            while len(self._warm) < count:
                self._warm.append(self._start())

    def replenish(self) -> None:
        """Bring the pool back to `pool_size` (called when a job lets its instances go)."""
        if self.pool_size:
            self.prewarm(self.pool_size)

    def acquire(self) -> ZygoteInstance:
        self.check()
        with self._lock:
            while self._warm:
                instance = self._warm.pop(0)
                if instance.alive:
                    return instance
                instance.close()
            return self._start()

    def wait_warm(self, timeout: float) -> bool:
        """True once every pooled instance has imported Manim (benchmarks and tests)."""
        with self._lock:
            warm = list(self._warm)
        return all(i.ready.wait(timeout) for i in warm)

    def close(self) -> None:
        with self._lock:
            warm, self._warm = self._warm, []
        for instance in warm:
            instance.close()


class BubblewrapRunner(_PooledRunner):
    """Each instance: `bwrap` with new user, pid, net (loopback only), ipc, uts and cgroup
    namespaces, a read-only view of what rendering needs, the instance directory as the only
    writable mount, a fresh /proc and minimal /dev, no capabilities, the seccomp filter
    (`seccomp.py`), killed with its parent."""

    isolation: Isolation = "bubblewrap"
    _checked: dict[str, str | None] = {}  # bwrap path -> problem (None: works); once per process

    def check(self) -> None:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(
                "no OS sandbox for untrusted scene code: bubblewrap is not installed "
                f"(apt-get install bubblewrap), {_OPT_OUT}"
            )
        if bwrap not in self._checked:
            self._checked[bwrap] = self._probe(bwrap)
        problem = self._checked[bwrap]
        if problem:
            raise SandboxUnavailable(
                f"no OS sandbox for untrusted scene code: bubblewrap cannot make one here ({problem}); "
                f"allow unprivileged user namespaces (or use the Job executor, whose pod is the boundary), {_OPT_OUT}"
            )

    def _probe(self, bwrap: str) -> str | None:
        try:
            from videojob.pipeline.sandbox.seccomp import filter_fd

            fd = filter_fd()
        except (ImportError, OSError) as exc:
            return f"the seccomp filter cannot be built: {exc}"
        try:
            proc = subprocess.run(
                [bwrap, *self._namespace_args(fd), "--ro-bind", "/usr", "/usr", *self._usr_links(), "--proc", "/proc",
                 "--dev", "/dev", "true"],
                pass_fds=(fd,), capture_output=True, timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        finally:
            os.close(fd)
        if proc.returncode:
            return (proc.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return None

    @staticmethod
    def _namespace_args(seccomp_fd: int) -> list[str]:
        return ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "videojob-sandbox", "--seccomp", str(seccomp_fd)]

    @staticmethod
    def _usr_links() -> list[str]:
        """Merged-/usr systems have /bin -> usr/bin etc.; repeat those links, bind real dirs."""
        args: list[str] = []
        for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(name):
                args += ["--symlink", os.readlink(name), name]
            elif os.path.isdir(name):
                args += ["--ro-bind", name, name]
        return args

    @staticmethod
    def read_only_paths() -> list[str]:
        """What rendering needs, nothing else: the interpreter and its packages, system libraries
        and fonts, TeX. Never a home directory, /run, /var/run/secrets or the output store."""
        import importlib.util

        import videojob

        manim_spec = importlib.util.find_spec("manim")  # where it is, without importing it here
        wanted = [
            "/usr",
            sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
            str(Path(videojob.__file__).resolve().parent.parent),  # the package (editable installs)
            *([str(Path(manim_spec.origin).resolve().parent.parent)] if manim_spec and manim_spec.origin else []),
            "/etc/fonts", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
            "/etc/texmf", "/var/lib/texmf", "/var/cache/fontconfig", "/etc/localtime",
        ]
        chosen: list[str] = []
        for path in sorted({os.path.realpath(p) for p in wanted if os.path.exists(p)}, key=len):
            if not any(path == c or path.startswith(c.rstrip("/") + "/") for c in chosen):
                chosen.append(path)
        # sys.prefix may itself be reached through a symlink (a venv's python): bind both names.
        for path in (sys.prefix, sys.base_prefix):
            if os.path.realpath(path) != path and os.path.exists(path):
                chosen.append(path)
        return chosen

    def _start(self) -> ZygoteInstance:
        from videojob.pipeline.sandbox.seccomp import filter_fd

        root = self._new_root()
        fd = filter_fd()
        try:
            binds: list[str] = []
            for path in self.read_only_paths():
                binds += ["--ro-bind", os.path.realpath(path), path]
            env = sandbox_environment(INNER_ROOT)
            setenv = [arg for k, v in env.items() for arg in ("--setenv", k, v)]
            argv = [
                shutil.which("bwrap"), *self._namespace_args(fd), "--clearenv", *setenv,
                *binds, *self._usr_links(), "--proc", "/proc", "--dev", "/dev",
                "--bind", str(root), INNER_ROOT, "--remount-ro", "/", "--chdir", INNER_ROOT,
                sys.executable, *_ZYGOTE, INNER_ROOT, "--own-pid-namespace",
            ]
            return ZygoteInstance(root, argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, pass_fds=(fd,))
        finally:
            os.close(fd)


class UnconfinedRunner(_PooledRunner):
    """VIDEOJOB_SANDBOX=none: the zygote as a plain child process with a scrubbed environment and
    rlimits, nothing more. Scene code can read whatever this user can read. Trusted code only."""

    isolation: Isolation = "none"
    _warned = False

    def check(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("VIDEOJOB_SANDBOX=none: scene code runs WITHOUT an OS sandbox; use this only for code you trust")

    def _start(self) -> ZygoteInstance:
        root = self._new_root()
        argv = [sys.executable, *_ZYGOTE, str(root)]
        return ZygoteInstance(root, argv, sandbox_environment(str(root)), kill_scene_groups=True)
