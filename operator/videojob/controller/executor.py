"""The one executor shape: how the handlers hand a VideoJob generation to whatever runs it.

Two implementations of `Executor`:

- `InlineExecutor` (`inline_executor.py`, runs in `inline_run.py`): the pipeline runs as an
  asyncio task in the operator process, at most VIDEOJOB_MAX_CONCURRENT_JOBS at once.
- `JobExecutor` (`job_executor.py`, runs in `job_run.py`): every attempt is a batch/v1 Job whose
  pod runs `videojob worker`.

Both keep one live run per VideoJob (by uid) in a `RunRegistry`: a request for the same content
generation updates the live run (`observe`: a new generation, maybe (un)suspend), a request for
another content generation replaces it. `make_executor` picks one from VIDEOJOB_EXECUTOR and
imports only that one (a Job-mode operator never imports the pipeline's run loop).
"""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from videojob.api.models import VideoJob
from videojob.config import Settings
from videojob.controller.events import EventRecorder
from videojob.controller.slots import FairSlots

if TYPE_CHECKING:
    import kopf

log = logging.getLogger(__name__)


@dataclass
class RunRequest:
    """What the handlers hand to the executor: one content generation of one VideoJob."""

    namespace: str
    name: str
    uid: str
    generation: int  # metadata.generation now (observedGeneration)
    content_generation: int  # the generation whose spec is produced (its version)
    job: VideoJob
    queue_key: Any  # (creationTimestamp, arrival of the first event): the run queue's order
    previous_status: dict[str, Any] = field(default_factory=dict)
    restarting: bool = False  # the status already describes this run (operator restart)

    @property
    def ref(self) -> dict[str, Any]:
        """The VideoJob as an Event's involvedObject names it."""
        return {"namespace": self.namespace, "name": self.name, "uid": self.uid}


@dataclass
class RunEnvironment:
    """What every run of one operator shares."""

    settings: Settings
    kube: Any  # KubeClient-like: patch_status, create_event, core (Secrets), api_client (Jobs)
    slots: FairSlots
    events: EventRecorder
    store_root: Path
    min_write_interval: float = 1.0
    # One render zygote for every inline run of this operator: Manim is imported once, not per run.
    sandbox: Any = None
    namespaces: list[str] = field(default_factory=list)  # the watched namespaces (empty: all)


class RunHandle(abc.ABC):
    """What an executor keeps for a VideoJob: the task working on one content generation."""

    request: RunRequest
    task: asyncio.Task | None = None
    # A record kept while the VideoJob waits, not a run (Job mode's `SuspendedRun`): resumed, its
    # run is started from the VideoJob's body by the handler (`Controller.spec_changed`).
    resumes_from_body: bool = False

    @property
    def content_generation(self) -> int:
        return self.request.content_generation

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    @abc.abstractmethod
    def start(self) -> asyncio.Task:
        """Start working; the task ends when the generation reached an outcome or was stopped."""

    @abc.abstractmethod
    def observe(self, generation: int, suspend: bool) -> None:
        """A spec change that keeps the content: a new metadata.generation, maybe (un)suspend."""

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Stop working on this generation (spec edit, deletion)."""

    async def _stop_task(self) -> None:
        """Cancel the task and wait until it has ended."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass


class Executor(Protocol):
    """What the handlers need from an executor."""

    @property
    def runs(self) -> Mapping[str, RunHandle]:
        """The live run of each VideoJob, by uid."""

    def live(self, uid: str) -> RunHandle | None:
        """The VideoJob's run, if one is still working."""

    async def submit(self, request: RunRequest) -> RunHandle:
        """Start (or keep) the run for this request's content generation."""

    async def cancel(self, uid: str) -> bool:
        """The VideoJob is being deleted: stop its run (and what it started). True if one ran."""

    async def shutdown(self) -> None:
        """The operator stops: stop supervising (what survives a restart is the executor's call)."""

    def register(self, registry: "kopf.OperatorRegistry") -> None:
        """Add the watches this executor needs to the operator's Kopf registry."""


Run = TypeVar("Run", bound=RunHandle)


class RunRegistry(abc.ABC, Generic[Run]):
    """The live run of each VideoJob, by uid, and what both executors do with it: a request for
    the live run's content generation updates that run (`observe`), any other replaces it."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}

    def live(self, uid: str) -> Run | None:
        run = self.runs.get(uid)
        return run if run is not None and not run.done else None

    @abc.abstractmethod
    def new_run(self, request: RunRequest) -> Run:
        """The executor's run for `request` (not started)."""

    async def submit(self, request: RunRequest) -> Run:
        """Start (or keep) the run for this request's content generation."""
        current = self.live(request.uid)
        if current is not None and current.content_generation == request.content_generation:
            current.observe(request.generation, request.job.spec.suspend)
            return current
        if current is not None:
            log.info("%s/%s: spec changed, stopping the run of generation %s",
                     request.namespace, request.name, current.content_generation)
            await current.cancel()
        run = self.new_run(request)
        self.runs[request.uid] = run
        run.start().add_done_callback(functools.partial(self._forget, request.uid, run))
        return run

    def _forget(self, uid: str, run: Run, _task: Any = None) -> None:
        if self.runs.get(uid) is run:
            del self.runs[uid]


def make_executor(settings: Settings, env: RunEnvironment) -> Executor:
    """The executor VIDEOJOB_EXECUTOR names; only its module is imported."""
    if settings.executor == "job":
        from videojob.controller.job_executor import JobExecutor

        return JobExecutor(env)
    from videojob.controller.inline_executor import InlineExecutor

    return InlineExecutor(env)
