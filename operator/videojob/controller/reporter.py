"""The one way a VideoJob's status is reported: PATCH `.status`, then an Event on a phase change.

Used by the handlers (an invalid spec), the inline run, the Job executor (what a worker could
not report) and the worker itself, so all four write the same status the same way:

- every write sends the whole status and null for every field the previous write (or the
  object as read) had and this one has not (`status_writer.nulls_for_removed`);
- progress writes are throttled (`StatusWriter`: at most one PATCH per second per job);
- a phase change is written at once, then its Event is posted (`events.transition_event`), and
  `videojob_phase_transitions_total` counts it.

The status itself comes from a `source` callable (a `StatusTracker`'s `as_dict`, or the
last status a Job executor built): the reporter never holds a copy that could go stale.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from videojob import metrics
from videojob.api import conditions as C
from videojob.api.models import Stage
from videojob.controller.events import EventRecorder, transition_event
from videojob.controller.status_writer import Conflict, StatusWriter
from videojob.pipeline.status import StatusTracker

log = logging.getLogger(__name__)

StatusSource = Callable[[], "dict[str, Any] | None"]


class StatusReporter:
    def __init__(
        self,
        kube: Any,
        events: EventRecorder,
        ref: dict[str, Any],
        source: StatusSource,
        *,
        phase: str | None = None,
        previous: dict[str, Any] | None = None,
        resource_version: str | None = None,
        on_conflict: Conflict | None = None,
        min_interval: float = 1.0,
    ):
        """`phase`: the phase the object shows now (no Event until it changes); `previous` and
        `resource_version`: the object as read (fields it has that the next write lacks are
        cleared; the first write is refused if it changed since); `on_conflict`: see
        `status_writer` (ownership)."""
        self.events = events
        self.ref = ref
        self.source = source
        self.phase = phase
        self.writer = StatusWriter(
            kube, ref["namespace"], ref["name"], source, previous=previous, resource_version=resource_version,
            on_conflict=on_conflict, min_interval=min_interval,
        )

    @property
    def stopped(self) -> bool:
        """Nothing more is written: the VideoJob was deleted, or its status belongs to another
        writer now (see `status_writer`, ownership)."""
        return self.writer.stopped

    def progress(self, *, important: bool = False) -> None:
        """The status moved without a phase change: write it within the throttle interval
        (`important`: at once, e.g. a stage started)."""
        self.writer.update(important=important)

    async def publish(self, *, now: bool = False) -> None:
        """Report the source's status: written at once and followed by an Event when the phase
        changed; otherwise soon (`now`: at once too)."""
        status = self.source()
        if status is None:
            return
        event = transition_event(self.phase, status)
        if event is None:
            if now:
                await self.writer.flush()
            else:
                self.writer.update(important=True)
            return
        self.phase = status["phase"]
        metrics.record_phase(self.ref["namespace"], status["phase"])
        await self.writer.flush()
        if not self.writer.stopped:
            await self.events.post(self.ref, event)

    def based_on(self, status: dict[str, Any], *, phase_known: bool = True, resource_version: str | None = None) -> None:
        """The object's status as just read (someone else may have written since our last
        write): the next write clears relative to it, and Events compare with its phase
        (`phase_known=False`: a new generation, whose first phase always gets an Event)."""
        self.writer.rebase(status, resource_version)
        self.phase = status.get("phase") if phase_known else None

    async def close(self, *, flush: bool = True) -> None:
        await self.writer.close(flush=flush)


def same_writer(current: dict[str, Any], written: dict[str, Any]) -> bool:
    """`on_conflict` for a writer that yields to any other: the object changed (metadata, spec),
    but its status is still what we last wrote (same phase, generation and attempt)."""
    ours = ("phase", "observedGeneration", "attempt")
    return all(current.get(key) == written.get(key) for key in ours)


async def acknowledge_generation(kube: Any, namespace: str, name: str, generation: int) -> None:
    """A spec change with nothing to do (suspend toggled on a finished run): the status says it
    was seen, and nothing else changes (no phase change, so no Event)."""
    await kube.patch_status(namespace, name, {"observedGeneration": generation})


# ------------------------------------------------------------------------------------------
# The only status fields the controller still sets itself: StatusTracker has no transition for
# "resumed at this stage, the deadline clock counting from now" (the inline run's stage gate).


def clock_restarted_now(tracker: StatusTracker) -> None:
    """spec.activeDeadlineSeconds counts again from now, as for Jobs on resume."""
    tracker.status.start_time = C.now_rfc3339()


def resume_at(tracker: StatusTracker, stage: str) -> None:
    """Running again, at the stage the run paused before."""
    tracker.resumed()
    tracker.status.current_stage = Stage(stage)
