"""The inline executor (VIDEOJOB_EXECUTOR=inline, the default): VideoJob generations run as
asyncio tasks in the operator process (`inline_run.InlineRun`).

At most VIDEOJOB_MAX_CONCURRENT_JOBS run at once; the rest wait in creation order. A run for a
newer content generation replaces (cancels) the older one. A VideoJob suspended before its run
ever started is kept as a record (`ParkedRun`), not a waiting task, until it is resumed.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable

from videojob.controller.executor import RunEnvironment, RunHandle, RunRegistry, RunRequest
from videojob.controller.inline_run import QUEUED_WRITES_AT_ONCE, InlineRun, Parked


class ParkedRun(RunHandle):
    """The live 'run' of a VideoJob suspended before it ever started: no task. Any spec event for
    its content generation (resume, or a generation bump while still suspended) turns it back into
    the `InlineRun` it was, which then does what that run would have done."""

    def __init__(self, parked: Parked, revive: Callable[["ParkedRun"], InlineRun]):
        self.request = parked.request
        self.parked = parked
        self._revive = revive

    def start(self) -> asyncio.Task:
        raise RuntimeError("a parked run is revived, not started")

    def observe(self, generation: int, suspend: bool) -> None:
        self._revive(self).observe(generation, suspend)

    async def cancel(self) -> None:
        """Nothing runs, nothing is written."""


class InlineExecutor(RunRegistry[RunHandle]):
    def __init__(self, env: RunEnvironment):
        super().__init__()
        self.env = env
        # Shared by every run waiting for a slot: their Pending writes go out a few at a time.
        self.queued_writes = asyncio.Semaphore(QUEUED_WRITES_AT_ONCE)

    def new_run(self, request: RunRequest) -> InlineRun:
        return InlineRun(request, self.env, self.queued_writes)

    def _revive(self, parked: ParkedRun) -> InlineRun:
        run = InlineRun(parked.request, self.env, self.queued_writes, parked=parked.parked)
        self.runs[parked.request.uid] = run
        run.start().add_done_callback(functools.partial(self._forget, parked.request.uid, run))
        return run

    def _forget(self, uid: str, run: Any, _task: Any = None) -> None:
        if isinstance(run, InlineRun) and run.parked is not None and self.runs.get(uid) is run:
            self.runs[uid] = ParkedRun(run.parked, self._revive)
            return
        super()._forget(uid, run, _task)

    async def cancel(self, uid: str) -> bool:
        run = self.runs.pop(uid, None)
        if run is None:
            return False
        await run.cancel()
        return True

    async def shutdown(self) -> None:
        """Stop every run now (their render children die with them); the next operator resumes them."""
        runs = list(self.runs.values())
        self.runs.clear()
        await asyncio.gather(*(run.cancel() for run in runs), return_exceptions=True)

    def register(self, registry: Any) -> None:
        """Nothing to watch besides VideoJobs."""
