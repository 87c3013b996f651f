"""Render one scene of untrusted code in a child process with limits.

Fences, in order: `codecheck.check_code` (static allowlist), a child process with a scrubbed
environment (no AWS or LLM credentials, no tokens: only an allowlist of variables passes),
its own scratch directory as HOME and cwd, rlimits on address space, CPU time and file size,
a wall-clock timeout enforced by killing its process group, and an audit hook inside it.

Children are forked from a zygote that has imported Manim once (`sandbox_child.serve`), so a
scene costs its render, not another second of imports; the zygote starts ahead of need
(`prewarm`), hiding that import behind the parent's own start-up and planning. The zygote
itself never runs user code, and every child is a fresh fork that runs one scene.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from videojob.pipeline.codecheck import check_code

# Variables the child may see. Everything else — AWS_*, *_API_KEY, *_TOKEN, *_SECRET*,
# KUBERNETES_* — stays out because it is not on this list.
_ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SOURCE_DATE_EPOCH")


@dataclass(frozen=True)
class SandboxLimits:
    timeout_seconds: float = 300
    memory_mb: int = 3072
    max_output_mb: int = 2048

    @property
    def cpu_seconds(self) -> int:
        # CPU time counts every thread; the encoder uses a few. The wall clock is the tighter bound.
        return int(self.timeout_seconds * 2) + 10


@dataclass
class RenderOutcome:
    ok: bool
    movie: Path | None = None
    error: str | None = None
    kind: str | None = None  # exception class, or Timeout / CPULimit / MemoryLimit / OutputLimit / Killed


def child_environment(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOWLIST}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        # One thread per render: scenes already run in parallel, and BLAS thread pools do not
        # survive fork() well.
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        HOME=str(scratch),
        TMPDIR=str(scratch),
        XDG_CACHE_HOME=str(scratch / ".cache"),
        XDG_CONFIG_HOME=str(scratch / ".config"),
        MPLCONFIGDIR=str(scratch / ".cache"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class _Zygote:
    """The render zygote process (`sandbox_child.serve`) and a thread reading its replies."""

    def __init__(self, root: Path):
        # Its own directory: Manim writes a text cache into the working directory, and two
        # zygotes (two `videojob run`s on one output dir) must not share one.
        self.home = root / f"zygote-{uuid.uuid4().hex[:12]}"
        self.home.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "videojob.pipeline.sandbox_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.home,
            env=child_environment(self.home),
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self._pending: dict[str, dict] = {}  # request id -> {"pid": Event + value, "status": ...}
        self._reader = threading.Thread(target=self._read, name="render-zygote", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._lock:
                slot = self._pending.get(msg.get("id"))
            if slot is None:
                continue
            if "pid" in msg:
                slot["pid"] = msg["pid"]
                slot["started"].set()
            if "status" in msg:
                slot["status"] = msg["status"]
                slot["started"].set()
                slot["ended"].set()
        # The zygote is gone: nothing pending will ever finish.
        with self._lock:
            pending = list(self._pending.values())
        for slot in pending:
            slot.setdefault("status", None)
            slot["started"].set()
            slot["ended"].set()

    def submit(self, request: dict) -> dict:
        slot = {"started": threading.Event(), "ended": threading.Event()}
        with self._lock:
            self._pending[request["id"]] = slot
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        return slot

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def close(self) -> None:
        """Stop the zygote and any child still rendering, and remove its directory."""
        with self._lock:
            pids = [slot.get("pid") for slot in self._pending.values()]
        for pid in pids:
            _kill_group(pid)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.kill()  # idle, or still importing Manim for nothing: no need to wait for it
        self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def _discard_early(future: concurrent.futures.Future) -> None:
    if not future.cancelled() and future.exception() is None and future.result().movie:
        Path(future.result().movie).unlink(missing_ok=True)


def _kill_group(pid: int | None) -> None:
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Sandbox:
    """Runs scene code in forked render children. Thread- and task-safe; one zygote per Sandbox."""

    def __init__(self, workdir: Path, limits: SandboxLimits | None = None):
        self.root = Path(workdir) / "sandbox"
        self.limits = limits or SandboxLimits()
        self._zygote: _Zygote | None = None
        self._lock = threading.Lock()
        # Renders started before anyone asked (start_early), by (code, class, quality).
        self._early: dict[tuple[str, str, str], concurrent.futures.Future] = {}

    def prewarm(self, count: int = 1) -> None:
        """Start the zygote now so the first render skips Manim's import time."""
        if count > 0:
            self._ensure_zygote()

    def _ensure_zygote(self) -> _Zygote:
        with self._lock:
            if self._zygote is None or not self._zygote.alive:
                self.root.mkdir(parents=True, exist_ok=True)
                self._zygote = _Zygote(self.root)
            return self._zygote

    def close(self) -> None:
        with self._lock:
            zygote, self._zygote = self._zygote, None
            early, self._early = list(self._early.values()), {}
        for future in early:  # started early, never claimed: drop the video
            future.add_done_callback(_discard_early)
        if zygote is not None:
            zygote.close()

    def start_early(
        self, code: str, scene_class: str, quality: str, limits: SandboxLimits | None = None
    ) -> concurrent.futures.Future | None:
        """Begin rendering a scene whose code is already known (a code or storyboard source) while
        the caller is still starting up; a later `render()` of the same scene takes the result.
        Returns the future of that render (None when the code would be refused anyway)."""
        if check_code(code):
            return None  # render() reports the problem in its place
        key = (code, scene_class, quality)
        with self._lock:
            if key in self._early:
                return self._early[key]
            self._early[key] = future = concurrent.futures.Future()
        out = self.root / f"early-{uuid.uuid4().hex[:12]}.mp4"

        def work() -> None:
            try:
                future.set_result(self._render_sync(code, scene_class, quality, out, limits or self.limits, {}))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever claims the render
                future.set_exception(exc)

        threading.Thread(target=work, name="early-render", daemon=True).start()
        return future

    async def render(
        self, code: str, scene_class: str, quality: str, out_path: Path, limits: SandboxLimits | None = None
    ) -> RenderOutcome:
        """Render `scene_class` from `code` to `out_path`. Never raises for problems in the code."""
        violations = check_code(code)
        if violations:
            return RenderOutcome(False, error="code refused: " + "; ".join(map(str, violations)), kind="Refused")
        with self._lock:
            early = self._early.pop((code, scene_class, quality), None)
        if early is not None:
            outcome = await asyncio.wrap_future(early)
            if outcome.ok:
                Path(out_path).parent.mkdir(parents=True, exist_ok=True)
                os.replace(outcome.movie, out_path)
                outcome = RenderOutcome(True, movie=Path(out_path))
            return outcome
        limits = limits or self.limits
        state: dict = {}
        try:
            return await asyncio.to_thread(self._render_sync, code, scene_class, quality, Path(out_path), limits, state)
        except asyncio.CancelledError:
            _kill_group(state.get("pid"))
            raise

    def _render_sync(
        self, code: str, scene_class: str, quality: str, out_path: Path, limits: SandboxLimits, state: dict
    ) -> RenderOutcome:
        scratch = self.root / f"scene-{uuid.uuid4().hex[:12]}"
        scratch.mkdir(parents=True)
        try:
            return self._run(scratch, code, scene_class, quality, out_path, limits, state)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(
        self, scratch: Path, code: str, scene_class: str, quality: str, out_path: Path, limits: SandboxLimits,
        state: dict,
    ) -> RenderOutcome:
        (scratch / "scene.py").write_text(code, encoding="utf-8")
        request = {
            "id": scratch.name,
            "scratch": str(scratch),
            "scene_class": scene_class,
            "quality": quality,
            "memory_bytes": limits.memory_mb * 1024 * 1024,
            "cpu_seconds": limits.cpu_seconds,
            "max_output_bytes": limits.max_output_mb * 1024 * 1024,
        }
        zygote = self._ensure_zygote()
        slot = zygote.submit(request)
        try:
            # Manim's import may still be under way in a fresh zygote: that is not the scene's time.
            slot["started"].wait()
            state["pid"] = slot.get("pid")
            if not slot["ended"].wait(limits.timeout_seconds):
                _kill_group(state["pid"])
                slot["ended"].wait(10)
                return RenderOutcome(False, error=f"timed out after {limits.timeout_seconds:g} s", kind="Timeout")
        finally:
            zygote.forget(request["id"])
        status = slot.get("status")
        result_file = scratch / "result.json"
        result = json.loads(result_file.read_text()) if result_file.is_file() else None
        if result is None:
            if status is None:
                return RenderOutcome(False, error="the render service stopped unexpectedly", kind="Crashed")
            returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            log = scratch / "render.log"
            stderr = log.read_bytes()[-4000:] if log.is_file() else b""
            return RenderOutcome(False, error=_describe_death(returncode, stderr), kind=_death_kind(returncode))
        if not result.get("ok"):
            kind = "MemoryLimit" if result.get("kind") == "memory" else result.get("kind")
            return RenderOutcome(False, error=result.get("error", "unknown error"), kind=kind)
        movie = Path(result["movie"])
        if not movie.is_file() or not movie.resolve().is_relative_to(scratch.resolve()):
            return RenderOutcome(False, error="the render produced no video file", kind="NoOutput")
        if movie.stat().st_size > limits.max_output_mb * 1024 * 1024:
            return RenderOutcome(False, error="the video exceeds the output size limit", kind="OutputLimit")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:8]}")
        shutil.move(str(movie), tmp)
        os.replace(tmp, out_path)
        return RenderOutcome(True, movie=out_path)


def _death_kind(returncode: int) -> str:
    return {
        -signal.SIGXCPU: "CPULimit",
        -signal.SIGXFSZ: "OutputLimit",
        -signal.SIGKILL: "Killed",
        -signal.SIGSEGV: "Crashed",
    }.get(returncode, "Crashed")


def _describe_death(returncode: int, stderr: bytes) -> str:
    kind = _death_kind(returncode)
    what = {
        "CPULimit": "exceeded the CPU-time limit",
        "OutputLimit": "exceeded the output file size limit",
        "Killed": "was killed (out of memory?)",
    }.get(kind, f"exited with code {returncode}")
    tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    return f"the render process {what}" + (": " + " | ".join(tail) if tail and kind == "Crashed" else "")
