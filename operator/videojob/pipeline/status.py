"""Fold progress events and node updates into a `VideoJobStatus` (pure: no I/O).

The CLI prints what this builds; the operator patches it into `.status`. Both therefore show
the same stages, progress, conditions and outputs for the same run.
"""

from __future__ import annotations

from typing import Any

from videojob.api import conditions as C
from videojob.api.models import (
    CodeUploadStatus,
    Outputs,
    RecordRef,
    StageStatus,
    UploadStatus,
    Usage,
    VideoJobStatus,
)
from videojob.pipeline.progress import ProgressEvent

PIPELINE_STAGES = ["Planning", "GeneratingCode", "Rendering", "Combining", "Uploading", "Recording"]


class StatusTracker:
    def __init__(self, generation: int | None = None, attempt: int = 1, previous: VideoJobStatus | None = None):
        self.generation = generation
        base = previous.model_copy(deep=True) if previous else VideoJobStatus()
        # A new generation starts clean but keeps the conditions (their transition times matter).
        self.status = VideoJobStatus(
            observed_generation=generation,
            attempt=attempt,
            conditions=base.conditions,
            stages=[StageStatus(name=s) for s in PIPELINE_STAGES],
            upload=UploadStatus(),
            code_upload=CodeUploadStatus(),
            usage=Usage(),
        )

    # --------------------------------------------------------------------------- helpers

    def _cond(self, type_: str, status: str, reason: str, message: str = "") -> None:
        self.status.conditions = C.set_condition(self.status.conditions, type_, status, reason, message, self.generation)

    def _stage(self, name: str) -> StageStatus | None:
        return next((s for s in self.status.stages if s.name == name), None)

    def heartbeat(self) -> None:
        self.status.last_heartbeat_time = C.now_rfc3339()

    # ----------------------------------------------------------------------- transitions

    def queued(self, message: str = "waiting for a free slot") -> None:
        self.status.phase = "Pending"
        self.status.current_stage = "Queued"
        self.status.message = message
        self.status.progress = self.status.progress or "0/0"
        self.status.progress_percent = self.status.progress_percent or 0
        self._cond(C.SUCCEEDED, "Unknown", C.QUEUED, message)
        self._cond(C.RECONCILING, "True", C.QUEUED, message)
        self._cond(C.STALLED, "False", C.QUEUED, "")
        self._cond(C.SUSPENDED, "False", C.NOT_SUSPENDED, "")

    def started(self) -> None:
        self.status.phase = "Running"
        self.status.start_time = self.status.start_time or C.now_rfc3339()
        self.status.message = "started"
        self._cond(C.SUCCEEDED, "Unknown", C.RUNNING, "the pipeline is running")
        self._cond(C.RECONCILING, "True", C.RUNNING, "the pipeline is running")
        self._cond(C.STALLED, "False", C.RUNNING, "")
        self._cond(C.SUSPENDED, "False", C.NOT_SUSPENDED, "")
        self.heartbeat()

    def suspended(self, message: str = "spec.suspend is true") -> None:
        self.status.phase = "Suspended"
        self.status.message = message
        self._cond(C.SUSPENDED, "True", C.SUSPENDED_REASON, message)
        self._cond(C.RECONCILING, "False", C.SUSPENDED_REASON, message)

    def resumed(self) -> None:
        self.status.phase = "Running"
        self.status.message = "resumed"
        self._cond(C.SUSPENDED, "False", C.NOT_SUSPENDED, "")
        self._cond(C.RECONCILING, "True", C.RUNNING, "resumed")

    def apply(self, event: ProgressEvent) -> bool:
        """Take one event; True when it changed the stage or phase (worth an immediate write)."""
        important = False
        self.status.progress = f"{event.done}/{event.total}"
        self.status.progress_percent = event.percent
        if event.message:
            self.status.message = event.message
        if event.data.get("sandbox") in ("bubblewrap", "pod", "none"):
            self.status.sandbox = event.data["sandbox"]
        stage = self._stage(event.stage)
        if event.kind == "stage_started" and stage is not None:
            self.status.current_stage = event.stage
            stage.phase = "Running"
            stage.started_at = stage.started_at or C.now_rfc3339()
            stage.attempts += 1
            stage.finished_at = None
            important = True
        elif event.kind == "stage_finished" and stage is not None:
            stage.phase = "Succeeded"
            stage.finished_at = C.now_rfc3339()
            important = True
        elif event.kind == "stage_failed" and stage is not None:
            stage.phase = "Failed"
            stage.finished_at = C.now_rfc3339()
            stage.message = event.message[:1000]
            important = True
        elif event.kind in ("scene", "step") and event.scene is not None and stage is not None:
            stage.message = event.message[:1000]
        elif event.kind == "upload" and event.bytes_total:
            self.status.upload = UploadStatus(
                status="in_progress", bytes_uploaded=event.bytes_done or 0, total_bytes=event.bytes_total,
                percent=round(100.0 * (event.bytes_done or 0) / event.bytes_total, 1),
            )
        self.heartbeat()
        return important

    def apply_update(self, update: dict[str, Any]) -> None:
        """Take a node's state update (from the graph stream)."""
        usage = update.get("usage")
        if usage:
            self.status.usage = Usage(
                llm_calls=usage.get("llm_calls", 0), prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
            )
        if update.get("version") is not None:
            self.status.version = update["version"]
        if "upload_status" in update:
            up = self.status.upload or UploadStatus()
            total = up.total_bytes
            done = total if update["upload_status"] == "completed" else up.bytes_uploaded
            self.status.upload = UploadStatus(
                status=update["upload_status"], bytes_uploaded=done, total_bytes=total,
                percent=round(100.0 * done / total, 1) if total else (100.0 if update["upload_status"] == "completed" else 0),
            )
            self.status.code_upload = CodeUploadStatus(status=update.get("code_upload_status", "not_started"))
            if update["upload_status"] == "failed_graceful":
                self._cond(C.UPLOADED, "False", C.UPLOAD_DEGRADED, f"video kept locally: {update.get('upload_error')}")
            elif update["upload_status"] == "completed":
                self._cond(C.UPLOADED, "True", C.COMPLETED, "video and code uploaded")
        if update.get("record_error"):
            self._cond(C.RECORDED, "False", C.RECORD_DEGRADED, update["record_error"])
        if update.get("outputs"):
            self.status.outputs = Outputs.model_validate(update["outputs"])
        if update.get("record"):
            rec = update["record"]
            self.status.record = RecordRef(table=update.get("record_table"), video_key=rec.get("video_key"), version=rec.get("version"))

    def succeeded(self, message: str) -> None:
        self.status.phase = "Succeeded"
        self.status.current_stage = "Done"
        self.status.completion_time = C.now_rfc3339()
        self.status.progress_percent = 100
        if self.status.progress and "/" in self.status.progress:
            total = self.status.progress.split("/")[1]
            self.status.progress = f"{total}/{total}"
        self.status.message = message
        self._cond(C.SUCCEEDED, "True", C.COMPLETED, message)
        self._cond(C.RECONCILING, "False", C.COMPLETED, message)
        self._cond(C.STALLED, "False", C.COMPLETED, "")
        self.heartbeat()

    def failed(self, reason: str, message: str, *, stalled: bool = True) -> None:
        self.status.phase = "Failed"
        self.status.completion_time = C.now_rfc3339()
        self.status.message = message
        self._cond(C.SUCCEEDED, "False", reason, message)
        self._cond(C.RECONCILING, "False", reason, message)
        self._cond(C.STALLED, "True" if stalled else "False", reason, message if stalled else "")
        self.heartbeat()

    def awaiting_input(self, reason: str, message: str) -> None:
        self.status.phase = "AwaitingInput"
        self.status.message = message
        self._cond(C.SUCCEEDED, "Unknown", reason, message)
        self._cond(C.RECONCILING, "False", C.AWAITING_INPUT, message)
        self._cond(C.STALLED, "True", reason, message)
        self.heartbeat()

    def retrying(self, reason: str, message: str, attempt: int) -> None:
        self.status.phase = "Pending"
        self.status.attempt = attempt
        self.status.message = message
        self._cond(C.SUCCEEDED, "Unknown", reason, message)
        self._cond(C.RECONCILING, "True", reason, message)

    def as_dict(self) -> dict[str, Any]:
        """The status as the API server stores it (camelCase, no nulls)."""
        return self.status.model_dump(by_alias=True, exclude_none=True, mode="json")
