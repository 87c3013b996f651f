"""Progress events: what the pipeline tells its caller while it works.

A run counts one step per scene in the per-scene stages (code, render, narration) and one step in
each other stage (`stages.step_count`): `2 * scenes + 4` without narration. Each event carries
the stage, finished/total steps and a percent, so the CLI can draw a bar and the operator can
write `status.progress` ("3/7") without knowing the graph.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Literal

from videojob.api.models import Stage
from videojob.pipeline.stages import run_stages, step_count

EventKind = Literal["stage_started", "stage_finished", "stage_failed", "step", "scene", "upload", "usage", "log"]


@dataclass(frozen=True)
class ProgressEvent:
    kind: EventKind
    stage: str
    done: int
    total: int
    message: str = ""
    scene: int | None = None  # 0-based scene index, for scene events
    scenes: int | None = None
    attempt: int | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    data: dict = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


ProgressCallback = Callable[[ProgressEvent], "Awaitable[None] | None"]


class Progress:
    """Counts steps and fans events out to callbacks. One per run."""

    def __init__(self, callbacks: list[ProgressCallback] | None = None, stages: Iterable[Stage] | None = None):
        self.callbacks = list(callbacks or [])
        self.stages = list(run_stages() if stages is None else stages)
        self.done = 0
        self.total = step_count(self.stages, 1)  # until the plan says how many scenes there are
        self.stage = "Queued"
        self.scenes: int | None = None

    def set_scene_count(self, scenes: int) -> None:
        self.scenes = scenes
        self.total = step_count(self.stages, scenes)

    async def emit(self, kind: EventKind, message: str = "", **extra) -> None:
        event = ProgressEvent(kind, self.stage, self.done, self.total, message, scenes=self.scenes, **extra)
        for callback in self.callbacks:
            result = callback(event)
            if hasattr(result, "__await__"):
                await result

    async def stage_started(self, stage: str, message: str = "") -> None:
        self.stage = stage
        await self.emit("stage_started", message or f"{stage} started")

    async def stage_finished(self, message: str = "") -> None:
        await self.emit("stage_finished", message or f"{self.stage} finished")

    async def step(self, message: str = "", **extra) -> None:
        self.done = min(self.done + 1, self.total)
        await self.emit("step", message, **extra)
