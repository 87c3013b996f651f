"""Fold progress events and node updates into a `VideoJobStatus` (pure: no I/O).

The CLI prints what this builds; the operator patches it into `.status`. Both therefore show
the same stages, progress, conditions and outputs for the same run. Every rule about status
fields lives here; callers say what happened (`started`, `retrying`, `failed`, ...) and never
write fields themselves.

Scene warnings (layout problems of a kept video, `SceneState.warnings`) have no field of their
own in the DESIGN status: they go into the Rendering stage's `message` and, at the end, after
the success `message` ("... ready: URI; warnings: scene 2: ...").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from videojob.api import conditions as C
from videojob.api.models import (
    CodeUploadStatus,
    Outputs,
    Phase,
    RecordRef,
    Stage,
    StagePhase,
    StageStatus,
    UploadState,
    UploadStatus,
    Usage,
    VideoJobStatus,
)
from videojob.pipeline.progress import ProgressEvent
from videojob.pipeline.stages import run_stages

if TYPE_CHECKING:
    from videojob.pipeline.state import StateUpdate


class StatusTracker:
    def __init__(
        self,
        generation: int | None = None,
        attempt: int = 1,
        previous: VideoJobStatus | None = None,
        stages: Iterable[Stage] | None = None,
    ):
        self.generation = generation
        # A new generation starts clean but keeps the conditions (their transition times matter).
        self.status = VideoJobStatus(
            observed_generation=generation,
            attempt=attempt,
            conditions=[c.model_copy() for c in previous.conditions] if previous else [],
            stages=[StageStatus(name=s) for s in (run_stages() if stages is None else stages)],
            upload=UploadStatus(),
            code_upload=CodeUploadStatus(),
            usage=Usage(),
        )
        self.warnings: list[str] = []  # "scene N: problem", from the latest scenes update

    @classmethod
    def resuming(cls, previous: VideoJobStatus, generation: int | None, attempt: int | None = None) -> "StatusTracker":
        """Another process takes over a run that `previous` describes (operator restarted, worker
        pod): stages and progress start again, but the run keeps when it started, its attempt,
        phase and message."""
        tracker = cls(generation, attempt=attempt or previous.attempt or 1, previous=previous)
        tracker.status.start_time = previous.start_time
        tracker.status.phase = previous.phase
        tracker.status.message = previous.message
        return tracker

    @classmethod
    def continuing(cls, previous: VideoJobStatus | None, generation: int | None, attempt: int = 1) -> "StatusTracker":
        """The stored status as it is (stages included), to record what happened next to it."""
        tracker = cls(generation, attempt=attempt, previous=previous)
        if previous is not None:
            tracker.status = previous.model_copy(deep=True)
            tracker.status.observed_generation = generation
            tracker.status.attempt = attempt
        return tracker

    # --------------------------------------------------------------------------- helpers

    def _cond(self, type_: str, status: str, reason: str, message: str = "") -> None:
        self.status.conditions = C.set_condition(self.status.conditions, type_, status, reason, message, self.generation)

    def _stage(self, name: str) -> StageStatus | None:
        return next((s for s in self.status.stages if s.name == name), None)

    def heartbeat(self) -> None:
        self.status.last_heartbeat_time = C.now_rfc3339()

    def expect_stages(self, stages: Iterable[Stage]) -> None:
        """The stages this run goes through (e.g. with Narrating); entries already there are kept."""
        self.status.stages = [self._stage(s) or StageStatus(name=s) for s in stages]

    def observe_generation(self, generation: int) -> None:
        """A spec change that does not change the content: the status now describes `generation`."""
        self.generation = generation
        self.status.observed_generation = generation

    def restart_clock(self) -> None:
        """The activeDeadlineSeconds clock starts again at the next `started` (after a resume)."""
        self.status.start_time = None

    def stop_running_stages(self, why: str) -> None:
        """Stages still running when the run is stopped end as Failed with `stopped: {why}`."""
        for stage in self.status.stages:
            if stage.phase == StagePhase.Running:
                stage.phase = StagePhase.Failed
                stage.finished_at = C.now_rfc3339()
                stage.message = f"stopped: {why}"

    # ----------------------------------------------------------------------- transitions

    def queued(self, message: str = "waiting for a free slot") -> None:
        self.status.phase = Phase.Pending
        self.status.current_stage = Stage.Queued
        self.status.message = message
        self.status.progress = self.status.progress or "0/0"
        self.status.progress_percent = self.status.progress_percent or 0
        self._cond(C.SUCCEEDED, "Unknown", C.QUEUED, message)
        self._cond(C.RECONCILING, "True", C.QUEUED, message)
        self._cond(C.STALLED, "False", C.QUEUED, "")
        self._cond(C.SUSPENDED, "False", C.NOT_SUSPENDED, "")

    def started(self, message: str = "started") -> None:
        self.status.phase = Phase.Running
        self.status.start_time = self.status.start_time or C.now_rfc3339()
        self.status.message = message
        self._cond(C.SUCCEEDED, "Unknown", C.RUNNING, "the pipeline is running")
        self._cond(C.RECONCILING, "True", C.RUNNING, "the pipeline is running")
        self._cond(C.STALLED, "False", C.RUNNING, "")
        self._cond(C.SUSPENDED, "False", C.NOT_SUSPENDED, "")
        self.heartbeat()

    def suspended(self, message: str = "spec.suspend is true") -> None:
        self.status.phase = Phase.Suspended
        self.status.message = message
        self._cond(C.SUSPENDED, "True", C.SUSPENDED_REASON, message)
        self._cond(C.RECONCILING, "False", C.SUSPENDED_REASON, message)

    def resumed(self) -> None:
        self.status.phase = Phase.Running
        self.status.message = "resumed"
        self._cond(C.SUSPENDED, "False", C.NOT_SUSPENDED, "")
        self._cond(C.RECONCILING, "True", C.RUNNING, "resumed")

    def apply(self, event: ProgressEvent) -> bool:
        """Take one event; True when it changed the stage or phase (worth an immediate write)."""
        self.status.progress = f"{event.done}/{event.total}"
        self.status.progress_percent = event.percent
        if event.message:
            self.status.message = event.message
        if event.data.get("sandbox") in ("bubblewrap", "pod", "none"):
            self.status.sandbox = event.data["sandbox"]
        stage = self._stage(event.stage)
        important = stage is not None and event.kind in ("stage_started", "stage_finished", "stage_failed")
        if stage is None:
            pass  # events of a stage this run does not list (or the run as a whole)
        elif event.kind == "stage_started":
            self.status.current_stage = Stage(event.stage)
            stage.phase = StagePhase.Running
            stage.started_at = stage.started_at or C.now_rfc3339()
            stage.attempts += 1
            stage.finished_at = None
        elif event.kind == "stage_finished":
            stage.phase = StagePhase.Succeeded
            stage.finished_at = C.now_rfc3339()
        elif event.kind == "stage_failed":
            stage.phase = StagePhase.Failed
            stage.finished_at = C.now_rfc3339()
            stage.message = event.message[:1000]
        elif event.kind in ("scene", "step") and event.scene is not None:
            stage.message = event.message[:1000]
        if event.kind == "upload" and event.bytes_total:
            self.status.upload = UploadStatus(
                status=UploadState.in_progress, bytes_uploaded=event.bytes_done or 0, total_bytes=event.bytes_total,
                percent=round(100.0 * (event.bytes_done or 0) / event.bytes_total, 1),
            )
        self.heartbeat()
        return important

    def count_usage(self, usage: dict[str, int]) -> None:
        """LLM calls and tokens (and narration characters) of the run so far (`state.usage` / `PipelineContext.usage`)."""
        self.status.usage = Usage(
            llm_calls=usage.get("llm_calls", 0), prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0), tts_characters=usage.get("tts_characters", 0),
        )

    def apply_update(self, update: StateUpdate) -> None:
        """Take a node's state update (from the graph stream)."""
        if update.get("scenes"):
            self._scene_warnings(update["scenes"])
        if update.get("usage"):
            self.count_usage(update["usage"])
        if update.get("version") is not None:
            self.status.version = update["version"]
        if "upload_status" in update:
            self._uploaded(UploadState(update["upload_status"]), update.get("code_upload_status"), update.get("upload_error"))
        if update.get("record_error"):
            self._cond(C.RECORDED, "False", C.RECORD_DEGRADED, update["record_error"])
        if update.get("outputs"):
            self.status.outputs = Outputs.model_validate(update["outputs"])
        if update.get("record"):
            record = update["record"]
            self.status.record = RecordRef(table=update.get("record_table"), video_key=record.video_key, version=record.version)

    def _scene_warnings(self, scenes: list) -> None:
        """Keep the scenes' layout warnings; the Rendering stage's message lists them."""
        warnings = []
        for scene in scenes:  # SceneState, or its dict from a checkpoint
            fields = scene if isinstance(scene, dict) else vars(scene)
            warnings += [f"scene {fields.get('index', 0) + 1}: {w}" for w in fields.get("warnings") or []]
        if warnings == self.warnings:
            return
        self.warnings = warnings
        stage = self._stage(Stage.Rendering)
        if stage is not None and warnings:
            stage.message = _clip("layout warnings: " + "; ".join(warnings), 1000)

    def _uploaded(self, state: UploadState, code_state: str | None, error: str | None) -> None:
        up = self.status.upload or UploadStatus()
        total = up.total_bytes
        done = total if state == UploadState.completed else up.bytes_uploaded
        percent = round(100.0 * done / total, 1) if total else (100.0 if state == UploadState.completed else 0)
        self.status.upload = UploadStatus(status=state, bytes_uploaded=done, total_bytes=total, percent=percent)
        self.status.code_upload = CodeUploadStatus(status=code_state or UploadState.not_started)
        if state == UploadState.failed_graceful:
            self._cond(C.UPLOADED, "False", C.UPLOAD_DEGRADED, f"video kept locally: {error}")
        elif state == UploadState.completed:
            self._cond(C.UPLOADED, "True", C.COMPLETED, "video and code uploaded")

    def succeeded(self, message: str) -> None:
        self.status.phase = Phase.Succeeded
        self.status.current_stage = Stage.Done
        self.status.completion_time = C.now_rfc3339()
        self.status.progress_percent = 100
        if self.status.progress and "/" in self.status.progress:
            total = self.status.progress.split("/")[1]
            self.status.progress = f"{total}/{total}"
        if self.warnings:
            message = _clip(f"{message}; warnings: " + "; ".join(self.warnings), 3000)
        self.status.message = message
        self._cond(C.SUCCEEDED, "True", C.COMPLETED, message)
        self._cond(C.RECONCILING, "False", C.COMPLETED, message)
        self._cond(C.STALLED, "False", C.COMPLETED, "")
        self.heartbeat()

    def failed(self, reason: str, message: str, *, stalled: bool = True, stopped: str | None = None) -> None:
        """The run ended in failure; stages still running are stopped (`stopped:` names why)."""
        self.stop_running_stages(stopped or reason)
        self.status.phase = Phase.Failed
        self.status.completion_time = C.now_rfc3339()
        self.status.message = message
        self._cond(C.SUCCEEDED, "False", reason, message)
        self._cond(C.RECONCILING, "False", reason, message)
        self._cond(C.STALLED, "True" if stalled else "False", reason, message if stalled else "")
        self.heartbeat()

    def rejected(self, reason: str, message: str) -> None:
        """Refused before any stage ran (invalid spec, policy): Failed and Stalled, no stages."""
        self.failed(reason, message, stalled=True)
        self.status.stages = []

    def awaiting_input(self, reason: str, message: str) -> None:
        """A permanent failure waits for a person (spec.humanLoop): not finished, so no completion time."""
        self.status.phase = Phase.AwaitingInput
        self.status.completion_time = None
        self.status.message = message
        self._cond(C.SUCCEEDED, "Unknown", reason, message)
        self._cond(C.RECONCILING, "False", C.AWAITING_INPUT, message)
        self._cond(C.STALLED, "True", reason, message)
        self.heartbeat()

    def retrying(self, reason: str, message: str, attempt: int) -> None:
        """The attempt failed and another one will run: Pending (Queued) again, not finished."""
        self.status.phase = Phase.Pending
        self.status.current_stage = Stage.Queued
        self.status.attempt = attempt
        self.status.completion_time = None
        self.status.message = message
        self._cond(C.SUCCEEDED, "Unknown", reason, message)
        self._cond(C.RECONCILING, "True", reason, message)

    def as_dict(self) -> dict[str, Any]:
        """The status as the API server stores it (camelCase, no nulls)."""
        return self.status.model_dump(by_alias=True, exclude_none=True, mode="json")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 4] + " ..."
