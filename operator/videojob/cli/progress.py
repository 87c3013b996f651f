"""A live progress bar for `videojob run` (rich): stage, scene i/n, percent."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:  # a replayed run draws its last frame without loading the pipeline
    from videojob.pipeline.progress import ProgressEvent


class ProgressDisplay:
    """`stream`: where to draw (default: stderr as it is when drawing). `live`: redrawn ten times
    a second while a run goes on; otherwise drawn when started and stopped (a replayed run)."""

    def __init__(self, name: str, stream: TextIO | None = None, live: bool = True):
        self.progress = Progress(
            TextColumn("[bold]{task.fields[name]}"),
            TextColumn("{task.fields[stage]:<15}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(file=stream) if stream is not None else Console(stderr=True),
            transient=False,
            auto_refresh=live,
        )
        self.task = self.progress.add_task("run", total=100, name=name, stage="Queued", detail="")
        self.shown: tuple[int, str, str] = (0, "Queued", "")  # (percent, stage, detail) on the bar now

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def on_event(self, event: ProgressEvent) -> None:
        detail = ""
        if event.scene is not None and event.scenes:
            detail = f"scene {event.scene + 1}/{event.scenes}"
            if event.attempt and event.attempt > 1:
                detail += f" (attempt {event.attempt})"
        elif event.kind == "upload" and event.bytes_total:
            detail = f"{event.bytes_done * 100 // event.bytes_total}% uploaded"
        self.show(event.percent, event.stage, detail)

    def show(self, percent: int, stage: str, detail: str) -> None:
        self.shown = (percent, stage, detail)
        self.progress.update(self.task, completed=percent, stage=stage, detail=detail)
