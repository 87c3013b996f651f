"""The inline executor: runs VideoJob generations as asyncio tasks in the operator process.

At most VIDEOJOB_MAX_CONCURRENT_JOBS run at once; the rest wait in creation order. One live run
per VideoJob (by uid): a run for a newer content generation replaces (cancels) the older one.
"""

from __future__ import annotations

import asyncio
import logging

from videojob.controller.jobrun import JobRun, RunEnvironment, RunHandle, RunRequest

log = logging.getLogger(__name__)


class RunRegistry:
    """The live run of each VideoJob, by uid; shared by the inline and the Job executor."""

    def __init__(self) -> None:
        self.runs: dict[str, RunHandle] = {}

    def live(self, uid: str) -> RunHandle | None:
        run = self.runs.get(uid)
        return run if run is not None and not run.done else None

    def _track(self, uid: str, run: RunHandle) -> RunHandle:
        """Start `run` as the VideoJob's live run; it is forgotten when its task ends."""
        self.runs[uid] = run
        run.start().add_done_callback(lambda _task, uid=uid, run=run: self._forget(uid, run))
        return run

    def _forget(self, uid: str, run: RunHandle) -> None:
        if self.runs.get(uid) is run:
            del self.runs[uid]


class InlineExecutor(RunRegistry):
    def __init__(self, env: RunEnvironment):
        super().__init__()
        self.env = env

    async def submit(self, request: RunRequest) -> JobRun:
        """Start (or keep) the run for this request's content generation."""
        current = self.live(request.uid)
        if current is not None and current.content_generation == request.content_generation:
            current.observe(request.generation, request.job.spec.suspend)
            return current
        if current is not None:
            log.info("%s/%s: spec changed, stopping the run of generation %s",
                     request.namespace, request.name, current.content_generation)
            await current.cancel()
        return self._track(request.uid, JobRun(request, self.env))

    async def cancel(self, uid: str) -> bool:
        """Stop the VideoJob's run, if any (deletion). True if one was running."""
        run = self.runs.pop(uid, None)
        if run is None:
            return False
        await run.cancel()
        return True

    async def shutdown(self) -> None:
        runs = list(self.runs.values())
        self.runs.clear()
        await asyncio.gather(*(run.cancel() for run in runs), return_exceptions=True)
