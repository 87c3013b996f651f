"""What the operator writes into a VideoJob's status in Job mode: only what the worker cannot.

The worker pod reports its own run (`worker.py`). The operator writes:
- before a Job's pod runs (Pending/Queued, the first write of a generation), and while suspended;
- between attempts (Pending, attempt N+1, the failed attempt's reason);
- what a pod could not report because it died first (OOMKilled, Evicted, ImagePullError,
  DeadlineExceeded, WorkerFailed), with a Warning Event naming the reason;
- Succeeded, when a Job completed but the worker's own Succeeded write was lost.

Every write starts from the VideoJob's status as stored (the worker writes between ours), is
made only if the object has not changed since (resourceVersion precondition), and goes through
the one `StatusReporter`, so a phase change gets its Event as in inline mode. When the worker
wrote in between (409), the change is applied again to what it wrote: the operator's write lands
on top, and the worker, whose next write then conflicts, stops writing (`reporter.same_writer`).
"""

from __future__ import annotations

from typing import Any, Callable

from videojob.api.models import VideoJobStatus
from videojob.controller.events import WARNING, EventRecorder, JobEvent
from videojob.controller.reporter import StatusReporter
from videojob.pipeline.status import StatusTracker

Change = Callable[[StatusTracker], Any]


class JobStatusMirror:
    def __init__(
        self,
        kube: Any,
        events: EventRecorder,
        ref: dict[str, Any],
        position: Callable[[], tuple[int, int]],
        *,
        previous: dict[str, Any] | None = None,
        min_interval: float = 1.0,
    ):
        """`position()`: the (metadata.generation, attempt) the status is written for."""
        self.kube = kube
        self.events = events
        self.ref = ref
        self.position = position
        self.status: dict[str, Any] = dict(previous or {})  # the status last read or written
        self._read_rv: str | None = None  # resourceVersion of the last read, until we write
        self._last: tuple[Change, bool] | None = None  # the last change written, and if fresh
        self.reporter = StatusReporter(
            kube, events, ref, lambda: self.status, phase=self.status.get("phase"),
            previous=self.status, on_conflict=self._rebuild, min_interval=min_interval,
        )

    async def read(self) -> dict[str, Any]:
        """The VideoJob's status as stored now (empty when it is gone)."""
        obj = await self.kube.read_videojob(self.ref["namespace"], self.ref["name"]) or {}
        self.status = obj.get("status") or {}
        self._read_rv = (obj.get("metadata") or {}).get("resourceVersion")
        return self.status

    # ------------------------------------------------------------------------------ writes

    async def queued(self, message: str) -> None:
        """The first write of a generation: observedGeneration, Reconciling=True, Queued."""
        await self._write(lambda t: t.queued(message), base=self.status, fresh=True)

    async def created_suspended(self, message: str) -> None:
        """The first write of a generation that is suspended before it has a Job: Suspended at
        once (one PATCH, one Event), not Queued and then Suspended."""
        def change(tracker: StatusTracker) -> None:
            tracker.queued(message)
            tracker.suspended(message)

        await self._write(change, base=self.status, fresh=True)

    async def suspended(self, message: str) -> None:
        await self._write(lambda t: t.suspended(message))

    async def waiting_for_pod(self, message: str) -> None:
        await self._write(lambda t: t.queued(message))

    async def held_up(self, reason: str, message: str) -> None:
        """The Job's pod cannot start (FailedCreate, Unschedulable): Pending, saying why."""
        await self._write(lambda t: t.retrying(reason, message, attempt=t.status.attempt or 1))

    async def succeeded_unless_reported(self, job_name: str) -> None:
        """The worker exits 0 only after writing Succeeded; if that write was lost, say so."""
        status = await self.read()
        if status.get("phase") != "Succeeded":
            await self._write(lambda t: t.succeeded(f"the worker Job {job_name} completed"), base=status)

    async def failed(self, reason: str, message: str, *, stalled: bool) -> None:
        await self._write(lambda t: t.failed(reason, message, stalled=stalled), base=self.status)

    async def retrying(self, reason: str, message: str, *, base: dict[str, Any]) -> None:
        """Pending until the next attempt's Job runs (the attempt is `position()`'s)."""
        await self._write(lambda t: t.retrying(reason, message, attempt=self.position()[1]), base=base)

    async def unreported(self, reason: str, message: str) -> None:
        """The Warning Event for a failure the worker could not report (its pod died first)."""
        await self.events.post(self.ref, JobEvent(WARNING, reason, message))

    @property
    def settled(self) -> bool:
        """Everything written has landed (no write is waiting for a retry)."""
        return not self.reporter.writer.pending

    async def close(self) -> None:
        await self.reporter.close(flush=False)

    async def _write(self, change: Change, *, base: dict[str, Any] | None = None, fresh: bool = False) -> None:
        """Apply `change` to the stored status (read unless `base` is given) and report it.
        `fresh`: a new generation's status (stages reset, its first phase gets an Event)."""
        if base is None:
            base = await self.read()
        self.reporter.based_on(base, phase_known=not fresh, resource_version=self._read_rv)
        self._read_rv = None  # from now on the writer knows the version (its own write's)
        self._last = (change, fresh)
        self.status = self._applied(change, base, fresh)
        await self.reporter.publish(now=True)

    def _applied(self, change: Change, base: dict[str, Any], fresh: bool) -> dict[str, Any]:
        generation, attempt = self.position()
        model = VideoJobStatus.from_object(base)
        if fresh:
            tracker = StatusTracker(generation, attempt=attempt, previous=model)
        else:
            tracker = StatusTracker.continuing(model, generation, attempt)
        change(tracker)
        return tracker.as_dict()

    def _rebuild(self, current: dict[str, Any], _written: dict[str, Any]) -> bool:
        """A conflict: someone (the worker) wrote since we read. Our change goes on top of it."""
        if self._last is not None:
            change, fresh = self._last
            self.status = self._applied(change, current, fresh)
        return True
