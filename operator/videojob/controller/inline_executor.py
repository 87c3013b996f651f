"""The inline executor (VIDEOJOB_EXECUTOR=inline, the default): VideoJob generations run as
asyncio tasks in the operator process (`inline_run.InlineRun`).

At most VIDEOJOB_MAX_CONCURRENT_JOBS run at once; the rest wait in creation order. A run for a
newer content generation replaces (cancels) the older one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from videojob.controller.executor import RunEnvironment, RunRegistry, RunRequest
from videojob.controller.inline_run import QUEUED_WRITES_AT_ONCE, InlineRun


class InlineExecutor(RunRegistry[InlineRun]):
    def __init__(self, env: RunEnvironment):
        super().__init__()
        self.env = env
        # Shared by every run waiting for a slot: their Pending writes go out a few at a time.
        self.queued_writes = asyncio.Semaphore(QUEUED_WRITES_AT_ONCE)

    def new_run(self, request: RunRequest) -> InlineRun:
        return InlineRun(request, self.env, self.queued_writes)

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
