"""Render one scene of untrusted code in a child process with limits.

Fences, in order: `codecheck.check_code` (static allowlist), a child process with a scrubbed
environment (no AWS or LLM credentials, no tokens: only an allowlist of variables passes),
its own scratch directory as HOME and cwd, rlimits on address space, CPU time and file size,
a wall-clock timeout enforced by killing its process group, and an audit hook inside it.

Children are started ahead of need (`prewarm`): importing Manim takes most of a second, and a
warm child hides that behind the parent's own start-up and code generation.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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
        HOME=str(scratch),
        TMPDIR=str(scratch),
        XDG_CACHE_HOME=str(scratch / ".cache"),
        XDG_CONFIG_HOME=str(scratch / ".config"),
        MPLCONFIGDIR=str(scratch / ".cache"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class _Child:
    """One started render child, warm or not."""

    def __init__(self, root: Path):
        self.scratch = root / f"scene-{uuid.uuid4().hex[:12]}"
        self.scratch.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "videojob.pipeline.sandbox_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.scratch,
            env=child_environment(self.scratch),
            start_new_session=True,  # its own process group, so a timeout kills grandchildren too
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def discard(self) -> None:
        """An unused warm child: closing stdin makes it exit on its own."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        shutil.rmtree(self.scratch, ignore_errors=True)


class Sandbox:
    """Starts render children and runs scene code in them. Thread- and task-safe."""

    def __init__(self, workdir: Path, limits: SandboxLimits | None = None):
        self.root = Path(workdir) / "sandbox"
        self.limits = limits or SandboxLimits()
        self._warm: list[_Child] = []
        self._lock = threading.Lock()

    def prewarm(self, count: int) -> None:
        """Start children now so later renders skip Manim's import time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            missing = count - len(self._warm)
            for _ in range(max(0, missing)):
                self._warm.append(_Child(self.root))

    def _take(self) -> _Child:
        with self._lock:
            if self._warm:
                return self._warm.pop(0)
        self.root.mkdir(parents=True, exist_ok=True)
        return _Child(self.root)

    def close(self) -> None:
        with self._lock:
            warm, self._warm = self._warm, []
        for child in warm:
            child.discard()

    async def render(
        self, code: str, scene_class: str, quality: str, out_path: Path, limits: SandboxLimits | None = None
    ) -> RenderOutcome:
        """Render `scene_class` from `code` to `out_path`. Never raises for problems in the code."""
        violations = check_code(code)
        if violations:
            return RenderOutcome(False, error="code refused: " + "; ".join(map(str, violations)), kind="Refused")
        limits = limits or self.limits
        child = self._take()
        try:
            return await asyncio.to_thread(self._run, child, code, scene_class, quality, Path(out_path), limits)
        except asyncio.CancelledError:
            child.kill()
            raise
        finally:
            shutil.rmtree(child.scratch, ignore_errors=True)

    def _run(
        self, child: _Child, code: str, scene_class: str, quality: str, out_path: Path, limits: SandboxLimits
    ) -> RenderOutcome:
        (child.scratch / "scene.py").write_text(code, encoding="utf-8")
        request = {
            "scratch": str(child.scratch),
            "scene_class": scene_class,
            "quality": quality,
            "memory_bytes": limits.memory_mb * 1024 * 1024,
            "cpu_seconds": limits.cpu_seconds,
            "max_output_bytes": limits.max_output_mb * 1024 * 1024,
        }
        timed_out = False
        try:
            stdout, stderr = child.proc.communicate((json.dumps(request) + "\n").encode(), timeout=limits.timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            child.kill()
            stdout, stderr = child.proc.communicate()
        except BaseException:
            child.kill()
            raise
        if timed_out:
            return RenderOutcome(False, error=f"timed out after {limits.timeout_seconds:g} s", kind="Timeout")
        result = _last_json_line(stdout)
        if result is None:
            return RenderOutcome(False, error=_describe_death(child.proc.returncode, stderr), kind=_death_kind(child.proc.returncode))
        if not result.get("ok"):
            kind = "MemoryLimit" if result.get("kind") == "memory" else result.get("kind")
            return RenderOutcome(False, error=result.get("error", "unknown error"), kind=kind)
        movie = Path(result["movie"])
        if not movie.is_file() or not movie.resolve().is_relative_to(child.scratch.resolve()):
            return RenderOutcome(False, error="the render produced no video file", kind="NoOutput")
        if movie.stat().st_size > limits.max_output_mb * 1024 * 1024:
            return RenderOutcome(False, error="the video exceeds the output size limit", kind="OutputLimit")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:8]}")
        shutil.move(str(movie), tmp)
        os.replace(tmp, out_path)
        return RenderOutcome(True, movie=out_path)


def _last_json_line(stdout: bytes) -> dict | None:
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


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


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "videojob"
