"""Progress events: what the pipeline tells its caller while it works.

A run has `2 * scenes + 4` steps: plan, code per scene, render per scene, combine, upload,
record. Each event carries the stage, finished/total steps and a percent, so the CLI can draw a
bar and the operator can write `status.progress` ("3/7") without knowing the graph.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Literal

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

    def __init__(self, callbacks: list[ProgressCallback] | None = None):
        self.callbacks = list(callbacks or [])
        self.done = 0
        self.total = 5  # until the plan says how many scenes there are (1 scene assumed)
        self.stage = "Queued"
        self.scenes: int | None = None

    def set_scene_count(self, scenes: int) -> None:
        self.scenes = scenes
        self.total = 2 * scenes + 4

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
