"""`Sandbox`: what the pipeline holds (one per process), and `JobSandbox`: the sandboxes of ONE job.

A job's scenes run in instances taken from the runner only for that job (at most its scene
parallelism at once; scenes of the job run one at a time in each). Instances are discarded when
the job's render round ends, and after a scene timed out in one. Two jobs never share one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

from videojob.pipeline.codecheck import check_code
from videojob.pipeline.sandbox.protocol import (
    Isolation,
    RenderOutcome,
    Runner,
    RunnerInstance,
    SandboxLimits,
    SandboxUnavailable,
)
from videojob.pipeline.sandbox.scratch import prepare_scratch, read_outcome

SANDBOX_MODES = ("auto", "bubblewrap", "none")


def _bubblewrap(root: Path, pool_size: int) -> Runner:
    from videojob.pipeline.sandbox.runners import BubblewrapRunner

    return BubblewrapRunner(root, pool_size)


def _none(root: Path, pool_size: int) -> Runner:
    from videojob.pipeline.sandbox.runners import UnconfinedRunner

    return UnconfinedRunner(root, pool_size)


# VIDEOJOB_SANDBOX value -> runner factory(root, pool_size). The Job executor registers "pod".
RUNNERS: dict[str, Callable[[Path, int], Runner]] = {"bubblewrap": _bubblewrap, "none": _none}


def register_runner(mode: str, factory: Callable[[Path, int], Runner]) -> None:
    RUNNERS[mode] = factory


def make_runner(mode: str | None, root: Path, pool_size: int = 0) -> Runner:
    """The runner for a VIDEOJOB_SANDBOX value (None: read the variable; `auto` is bubblewrap)."""
    mode = (mode or os.environ.get("VIDEOJOB_SANDBOX") or "auto").strip().lower()
    if mode == "auto":
        mode = "bubblewrap"
    factory = RUNNERS.get(mode)
    if factory is None:
        raise SandboxUnavailable(f"VIDEOJOB_SANDBOX={mode!r} is not one of: {', '.join(['auto', *RUNNERS])}")
    return factory(Path(root), pool_size)


def isolation_report(mode: str | None = None, root: Path | None = None) -> tuple[Isolation | None, str]:
    """Which isolation scene code gets here, as (status.sandbox value or None, one line to log).
    None means untrusted code will be refused; the line then names the fix."""
    try:
        runner = make_runner(mode, root or Path("/nonexistent"))
        runner.check()
    except SandboxUnavailable as exc:
        return None, str(exc)
    if runner.isolation == "bubblewrap":
        return "bubblewrap", (
            "scene code renders in bubblewrap sandboxes: new user, pid, net (loopback only), ipc, uts and cgroup "
            "namespaces; read-only system view; seccomp; rlimits (no cgroup memory/pids limit: none is delegated)"
        )
    if runner.isolation == "none":
        return "none", "VIDEOJOB_SANDBOX=none: scene code runs WITHOUT an OS sandbox (trusted code only)"
    return runner.isolation, f"scene code renders in isolation {runner.isolation!r}"


class JobSandbox:
    """Sandbox instances of one job. Use as `async with sandbox.job(n) as job: await job.render(...)`."""

    def __init__(self, sandbox: "Sandbox", parallelism: int):
        self._sandbox = sandbox
        self._parallelism = max(1, parallelism)
        self._idle: asyncio.Queue[RunnerInstance] = asyncio.Queue()
        self._all: list[RunnerInstance] = []

    @property
    def isolation(self) -> Isolation:
        return self._sandbox.isolation

    async def __aenter__(self) -> "JobSandbox":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _take(self) -> RunnerInstance:
        if self._idle.empty() and len(self._all) < self._parallelism:
            instance = await asyncio.to_thread(self._sandbox.runner.acquire)
            self._all.append(instance)
            return instance
        return await self._idle.get()

    def _give_back(self, instance: RunnerInstance, usable: bool) -> None:
        if usable:
            self._idle.put_nowait(instance)
            return
        instance.close()
        self._all.remove(instance)

    async def render(
        self, code: str, scene_class: str, quality: str, out_path: Path, limits: SandboxLimits | None = None
    ) -> RenderOutcome:
        """Render `scene_class` from `code` into `out_path`. Never raises for anything the code
        does; raises SandboxUnavailable when no sandbox can be made (fail closed)."""
        problems = check_code(code)
        if problems:
            return RenderOutcome(False, error="; ".join(map(str, problems)), kind="Refused")
        limits = limits or self._sandbox.limits
        instance = await self._take()
        usable = False
        scratch = instance.root / f"scene-{uuid.uuid4().hex[:12]}"
        dir_fd = None
        try:
            dir_fd = prepare_scratch(scratch, code, scene_class, quality, limits)
            execution = await asyncio.to_thread(instance.execute, scratch, limits.timeout_seconds)
            outcome = await asyncio.to_thread(read_outcome, dir_fd, Path(out_path), limits, execution)
            usable = execution.ended == "exited"
            return outcome
        except asyncio.CancelledError:
            instance.close()
            raise
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
            shutil.rmtree(scratch, ignore_errors=True)
            self._give_back(instance, usable)

    async def aclose(self) -> None:
        instances, self._all = self._all, []
        for instance in instances:
            await asyncio.to_thread(instance.close)
        if instances:
            await asyncio.to_thread(self._sandbox.replenish)


class Sandbox:
    """The process's way to render untrusted scene code. Thread- and task-safe.

    `mode`: a VIDEOJOB_SANDBOX value (None: read the variable). `pool_size`: instances kept warm
    between jobs (the operator); `prewarm(n)` starts instances ahead of a known need (the CLI)."""

    def __init__(self, workdir: Path, limits: SandboxLimits | None = None, *, mode: str | None = None,
                 pool_size: int = 0, runner: Runner | None = None):
        self.root = Path(workdir) / "sandbox"
        self.limits = limits or SandboxLimits()
        self._mode = mode
        self._pool_size = pool_size
        self._runner = runner

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = make_runner(self._mode, self.root, self._pool_size)
        return self._runner

    @property
    def isolation(self) -> Isolation:
        return self.runner.isolation

    def check(self) -> None:
        """Raise SandboxUnavailable (one line naming the fix) when untrusted code would be refused."""
        self.runner.check()

    def prewarm(self, count: int = 1) -> None:
        """Start `count` instances now so the first scenes skip Manim's import. Quietly does
        nothing when no sandbox can be made: the render reports that."""
        if count > 0:
            try:
                self.runner.prewarm(count)
            except SandboxUnavailable:
                pass

    def replenish(self) -> None:
        try:
            self.runner.replenish()
        except SandboxUnavailable:
            pass

    def wait_warm(self, timeout: float = 60) -> bool:
        return self.runner.wait_warm(timeout)

    def job(self, parallelism: int = 1) -> JobSandbox:
        return JobSandbox(self, parallelism)

    async def render(
        self, code: str, scene_class: str, quality: str, out_path: Path, limits: SandboxLimits | None = None
    ) -> RenderOutcome:
        """One scene as a job of its own (its own instance, discarded afterwards)."""
        async with self.job(1) as job:
            return await job.render(code, scene_class, quality, out_path, limits)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
