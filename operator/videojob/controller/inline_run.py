"""One VideoJob generation from queue to result, inside the operator (the inline executor).

An `InlineRun` owns an asyncio task that waits for a slot (phase Pending, stage Queued), runs
`run_videojob`, retries transient errors with backoff, enforces `activeDeadlineSeconds`, pauses
at stage boundaries while `spec.suspend` is true (giving its slot back), and reports through a
`StatusReporter` (throttled writes, an Event at every phase change). Cancelling the task (spec
edit, deletion, operator shutdown) stops the pipeline and kills its render children; a cancelled
run writes nothing more, so a restarted operator finds the status as the run left it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from videojob import metrics
from videojob.api import conditions as C
from videojob.api.models import Stage, VideoJobStatus
from videojob.controller import decisions, reporter as rules
from videojob.controller.credentials import read_credentials
from videojob.controller.executor import RunEnvironment, RunHandle, RunRequest
from videojob.controller.reporter import StatusReporter
from videojob.logs import job_context
from videojob.pipeline.errors import PipelineError, TransientError
from videojob.pipeline.progress import ProgressEvent
from videojob.pipeline.status import StatusTracker
from videojob.run import run_videojob

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0  # status.lastHeartbeatTime moves at least this often while Running
# API requests (the Pending status write and its Event) that waiting runs have in flight at once.
# A burst of creates queues hundreds of runs; their announcements go out a few at a time, so a run
# that was just granted a slot finds its Running write ahead of all but these.
QUEUED_WRITES_AT_ONCE = 2


@dataclass
class Parked:
    """A VideoJob suspended with nothing under way (see `InlineRun._park`): its request, status
    as written (JSON) and submission time. A few KB instead of a waiting task with its tracker,
    reporter and events (~30 KB); `InlineRun(..., parked=...)` continues from it as it was."""

    request: RunRequest
    status: str
    submitted: float


class InlineRun(RunHandle):
    def __init__(self, request: RunRequest, env: RunEnvironment, queued_writes: asyncio.Semaphore | None = None,
                 parked: Parked | None = None):
        self.request = request
        self.env = env
        self.queued_writes = queued_writes or asyncio.Semaphore(QUEUED_WRITES_AT_ONCE)
        self._announcement: asyncio.Task | None = None  # the Pending write of a run in line
        self._announcing = False  # that write has gone out (it is then awaited, never cut short)
        self.job = request.job
        previous = VideoJobStatus.from_object(request.previous_status)
        shown: str | None = None  # the phase the object shows for this run
        written = json.loads(parked.status) if parked is not None else None
        if written is not None:  # the status this run had when it was parked, as it was
            self.tracker = StatusTracker.continuing(VideoJobStatus.from_object(written), request.generation,
                                                    attempt=written.get("attempt") or 1)
            shown = written.get("phase")
        elif request.restarting and previous is not None:  # the same run, in a new operator process
            self.tracker = StatusTracker.resuming(previous, request.generation)
            shown = previous.phase
        else:
            self.tracker = StatusTracker(request.generation, attempt=1, previous=previous)
        self.reporter = StatusReporter(
            env.kube, env.events, request.ref, self._snapshot, phase=shown,
            previous=request.previous_status if written is None else written, min_interval=env.min_write_interval,
        )
        self._resume = asyncio.Event()  # set while not suspended
        self._pause = asyncio.Event()  # set while suspended
        self._set_suspended(self.job.spec.suspend or parked is not None)
        self._changed = asyncio.Event()  # wakes the deadline supervisor
        self._holding_slot = False
        self._keep_slot = False
        self._cancelled = False
        self._submitted = parked.submitted if parked is not None else time.monotonic()
        self.parked: Parked | None = None  # set when this run ends to wait as a record (`_park`)
        self._started: float | None = None
        self._clock_start: float | None = None  # monotonic start of the deadline clock
        self._waited = False
        self.task: asyncio.Task | None = None

    # ------------------------------------------------------------------------------ control

    def start(self) -> asyncio.Task:
        with job_context(self.request.namespace, self.request.name, self.request.generation):  # every log line of the run
            self.task = asyncio.create_task(self._main(), name=f"videojob:{self.request.namespace}/{self.request.name}")
        return self.task

    def observe(self, generation: int, suspend: bool) -> None:
        """A spec change that does not change the content: a new generation, maybe (un)suspend."""
        self.tracker.observe_generation(generation)
        self._set_suspended(suspend)
        self._changed.set()
        self.reporter.progress(important=True)

    async def cancel(self) -> None:
        """Stop the run (its render children die with it); nothing more is written."""
        self._cancelled = True  # from here on nothing is written, whatever the pipeline returns
        await self._stop_task()
        await self.reporter.close(flush=False)

    def _set_suspended(self, suspended: bool) -> None:
        if suspended:
            self._resume.clear()
            self._pause.set()
        else:
            self._pause.clear()
            self._resume.set()

    # -------------------------------------------------------------------------------- main

    async def _main(self) -> None:
        try:
            await self._supervise()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not leave the job Running forever
            log.exception("run of %s/%s failed", self.request.namespace, self.request.name)
            self.tracker.failed("InternalError", f"operator error: {type(exc).__name__}: {exc}", stalled=False)
            await self._publish()
        finally:
            self._release_slot()
            if self._announcement is not None:
                self._announcement.cancel()
        await self.reporter.close(flush=True)

    async def _supervise(self) -> None:
        """Run the attempts; fail with DeadlineExceeded when activeDeadlineSeconds runs out."""
        work = asyncio.create_task(self._attempts())
        try:
            while True:
                remaining = self._deadline_remaining()
                self._changed.clear()
                changed = asyncio.create_task(self._changed.wait())
                try:
                    timeout = HEARTBEAT_SECONDS if remaining is None else max(0.0, min(remaining, HEARTBEAT_SECONDS))
                    await asyncio.wait({work, changed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                if work.done():
                    work.result()
                    return
                if self.tracker.status.phase == "Running" and not changed.done():
                    # A long render sends no progress: show the run is alive (throttled write).
                    self.tracker.heartbeat()
                    self.reporter.progress()
                remaining = self._deadline_remaining()
                if remaining is not None and remaining <= 0:
                    self._keep_slot = True  # released after the Failed status is written
                    work.cancel()
                    try:
                        await work
                    except asyncio.CancelledError:
                        pass
                    await self._deadline_exceeded()
                    return
        finally:
            if not work.done():
                work.cancel()
                try:
                    await work
                except asyncio.CancelledError:
                    pass

    def _deadline_remaining(self) -> float | None:
        seconds = self.job.spec.active_deadline_seconds
        if not self._resume.is_set() or seconds is None:
            return None  # the clock stops while suspended (and restarts on resume, as for Jobs)
        if self._clock_start is not None:  # started in this process: sub-second precision
            return seconds - (time.monotonic() - self._clock_start)
        # Started by an earlier operator process: count from status.startTime.
        return decisions.deadline_remaining(self.tracker.status.start_time, seconds)

    async def _attempts(self) -> None:
        retries = (self.tracker.status.attempt or 1) - 1
        while True:
            if not await self._acquire_slot():
                return  # parked: the executor keeps a record until spec.suspend is false
            try:
                result_error = await self._attempt()
                # The outcome is written while the slot is still held, so nobody ever sees more
                # than VIDEOJOB_MAX_CONCURRENT_JOBS jobs Running.
                delay = await self._conclude(result_error, retries)
            finally:
                if not self._keep_slot:
                    self._release_slot()
            if delay is None:
                return
            retries += 1
            await asyncio.sleep(delay)

    async def _attempt(self) -> PipelineError | None:
        """One run of the pipeline; None on success, else the error."""
        if self.tracker.status.phase != "Running":
            if self.tracker.status.start_time is None:
                self._clock_start = time.monotonic()
            self.tracker.started()
        self._started = self._started or time.monotonic()
        self._changed.set()
        await self._publish()
        try:
            credentials = await read_credentials(
                self.env.kube, self.request.namespace, self.job, default_model=self.env.settings.llm_model
            )
        except TransientError as exc:
            self.tracker.failed(exc.reason, exc.message, stalled=False)
            return exc
        result = await run_videojob(
            self.job,
            settings=self.env.settings,
            store_root=self.env.store_root,
            tracker=self.tracker,
            callbacks=[self._on_progress],
            before_stage=self._gate,
            credentials=credentials,
            sandbox=self.env.sandbox,
            tenant=True,
            graph_for_renders=False,  # LangGraph only for runs with a model or speech (see `run.drive`)
        )
        if result.succeeded:
            return None
        return result.error or TransientError("the run ended without a result")

    async def _conclude(self, error: PipelineError | None, retries: int) -> float | None:
        """Report the attempt's outcome; the backoff delay if it will be retried, else None."""
        spec = self.job.spec
        elapsed = time.monotonic() - (self._started or self._submitted)
        if error is None:
            metrics.record_job_done(self.request.namespace, "success", elapsed)
            await self._publish()
            return None
        stage = error.stage or self.tracker.status.current_stage or "Unknown"
        limit = spec.retry_strategy.limit
        if not error.permanent and retries < limit:
            delay = decisions.backoff_seconds(spec.retry_strategy.backoff, retries + 1)
            metrics.record_retry(stage, error.reason)
            self.tracker.retrying(
                error.reason, f"{error.message}; retry {retries + 1}/{limit} in {delay:g}s", attempt=retries + 2
            )
            await self._publish()
            return delay
        metrics.record_failure(stage, error.reason)
        if spec.human_loop:
            self.tracker.awaiting_input(error.reason, decisions.human_loop_message(error.reason, error.message))
        metrics.record_job_done(self.request.namespace, "failure", elapsed)
        await self._publish()
        return None

    async def _deadline_exceeded(self) -> None:
        seconds = self.job.spec.active_deadline_seconds
        message = f"spec.activeDeadlineSeconds ({seconds}s) exceeded; the run was stopped"
        stage = self.tracker.status.current_stage or "Unknown"
        self.tracker.failed(C.DEADLINE_EXCEEDED, message, stalled=True, stopped="deadline exceeded")
        metrics.record_failure(stage, C.DEADLINE_EXCEEDED)
        metrics.record_job_done(self.request.namespace, "failure", time.monotonic() - (self._started or self._submitted))
        await self._publish()

    # ------------------------------------------------------------------------ slots, gate

    async def _acquire_slot(self) -> bool:
        """Wait for a free slot (FIFO by creation); while suspended, wait without a place in line.
        The run is in line before anything is written; the Pending status goes out in the
        background (`_announce_queued`), so writing it never delays taking a granted slot.
        False: suspended before it ever started, the run ended as a record (`_park`)."""
        while True:
            if not self._resume.is_set():
                if self.tracker.status.phase != "Suspended":
                    if self.tracker.status.phase is None:
                        self.tracker.queued()
                    self.tracker.suspended()
                    await self._publish()
                if self._park():
                    return False
                await self._resume.wait()
                self.tracker.restart_clock()  # the deadline clock restarts on resume, as for Jobs
            place = self.env.slots.enqueue(self.request.queue_key, self.request.namespace)  # in line before any await
            if place.done():
                break
            try:
                if self.tracker.status.current_stage != "Queued" or self.tracker.status.phase != "Pending":
                    self.tracker.queued()
                    self._announcement = asyncio.create_task(self._announce_queued())
                paused = asyncio.ensure_future(self._pause.wait())
                try:
                    await asyncio.wait({place, paused}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    paused.cancel()
            except BaseException:
                self.env.slots.withdraw(place, self.request.namespace)
                raise
            if place.done() and not place.cancelled():
                break
            self.env.slots.withdraw(place, self.request.namespace)  # suspended while waiting: leave the line
        self._holding_slot = True
        if self._started is None:
            metrics.record_queue_wait(time.monotonic() - self._submitted)
        return True

    def _park(self) -> bool:
        """Suspended with nothing under way (no attempt started in this process, no deadline clock
        counting): the run ends and leaves a `Parked` record, so thousands of suspended VideoJobs
        cost no task each; resuming rebuilds this run from it (status, attempt, queue place). A
        run that has started in this process keeps waiting as a task (its clock lives there)."""
        if self._started is not None or self.tracker.status.start_time is not None or self._cancelled:
            return False
        status = json.dumps(self.tracker.as_dict(), separators=(",", ":"))
        request = dataclasses.replace(self.request, generation=self.tracker.generation or self.request.generation,
                                      previous_status={}, restarting=False)
        self.parked = Parked(request, status, self._submitted)
        return True

    async def _announce_queued(self) -> None:
        """Write Pending (and post its Event), at most QUEUED_WRITES_AT_ONCE runs at a time; not
        at all if the run got its slot (or was suspended) before its turn came."""
        async with self.queued_writes:
            if self._holding_slot or self.tracker.status.phase != "Pending":
                return
            self._announcing = True
            try:
                await self._publish(announcing=True)
            finally:
                self._announcing = False

    async def _settle_announcement(self) -> None:
        """Before the run writes anything else: drop a Pending write still waiting for its turn,
        or let one already sent finish (so the object never shows Pending after Running)."""
        task, self._announcement = self._announcement, None
        if task is None or task.done():
            return
        if not self._announcing:
            task.cancel()
        await asyncio.wait({task})

    def _release_slot(self) -> None:
        if self._holding_slot:
            self._holding_slot = False
            self.env.slots.release(self.request.namespace)

    async def _gate(self, stage: str) -> None:
        """Called before each stage: pause here while spec.suspend is true."""
        if stage == Stage.Uploading.value:
            await self._stop_if_deleted()
        if self._resume.is_set():
            return
        self._release_slot()
        self.tracker.suspended()
        await self._publish()
        self._changed.set()
        await self._resume.wait()
        rules.clock_restarted_now(self.tracker)
        self._clock_start = time.monotonic()
        if not self.env.slots.try_acquire(self.request.namespace):
            self.tracker.queued("resumed; waiting for a free slot")
            await self._publish()
            await self.env.slots.acquire(self.request.queue_key, self.request.namespace)
        self._holding_slot = True
        rules.resume_at(self.tracker, stage)
        self._changed.set()
        await self._publish()

    async def _stop_if_deleted(self) -> None:
        """Before anything is published: is this VideoJob (this uid) still there? Its DELETED
        event stops a run, but a watch that lost its place (410 Gone, re-list) never delivers it,
        and without a finalizer nothing holds the object back. One read per run, so a deleted
        VideoJob never gets a version."""
        ns, name = self.request.namespace, self.request.name
        current = await self.env.kube.read_videojob(ns, name)
        if current is not None and (current.get("metadata") or {}).get("uid") == self.request.uid:
            return
        log.info("%s/%s was deleted (or replaced) while it ran; stopping before upload, nothing is published", ns, name)
        self._cancelled = True
        raise asyncio.CancelledError()

    # ------------------------------------------------------------------------------ output

    def _snapshot(self) -> dict[str, Any] | None:
        return None if self._cancelled else self.tracker.as_dict()

    def _on_progress(self, event: ProgressEvent) -> None:
        if self._cancelled:
            return
        self.reporter.progress(important=event.kind in ("stage_started", "stage_failed"))

    async def _publish(self, *, announcing: bool = False) -> None:
        """Write now if the phase changed (with an Event), else soon."""
        if self._cancelled:
            # Cancelled (spec edit, deletion, shutdown) while a step was ending: a render child
            # killed under it may look like a failure, which must not become the job's status.
            raise asyncio.CancelledError()
        if not announcing:
            await self._settle_announcement()
        await self.reporter.publish()
