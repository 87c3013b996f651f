"""A live progress bar for `videojob run` (rich): stage, scene i/n, percent."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from videojob.pipeline.progress import ProgressEvent


class ProgressDisplay:
    def __init__(self, name: str):
        self.progress = Progress(
            TextColumn("[bold]{task.fields[name]}"),
            TextColumn("{task.fields[stage]:<15}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task("run", total=100, name=name, stage="Queued", detail="")

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
        self.progress.update(self.task, completed=event.percent, stage=event.stage, detail=detail)
