"""State that flows through the LangGraph pipeline, with the seed's public names.

`VideoGenerationState` keeps the seed's fields (enable_aws_upload, project_id, video_id, version,
current_version, editing_existing_video, upload_status, ...) so code written against the seed's
enhanced agents keeps working. Everything that is not plain data (the LLM, the sandbox, the store,
progress callbacks) travels in `PipelineContext` (see `context.py`), not in the state.

Nodes read the state and return a partial update; nothing passes between nodes any other way, so
the state alone (plain, serializable data) is enough to checkpoint and resume a run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from videojob.api.models import Outputs
from videojob.pipeline.narration import NarrationTrack
from videojob.storage.records import UploadOutcome, VersionRecord

SceneStatus = Literal["pending", "coded", "rendered", "failed"]
StateUpdate = dict[str, Any]  # what a node returns: some VideoGenerationState fields, new values
Source = Literal["code", "storyboard", "prompt"]


class AttemptRecord(BaseModel):
    """One try at a scene: the code that was rendered and how it ended."""

    attempt: int
    code: str
    error: str | None = None


class SceneState(BaseModel):
    """One scene on its way from plan to video."""

    index: int
    title: str
    class_name: str
    goal: str | None = None
    narration: str | None = None
    visual_elements: list[str] = []
    duration_seconds: float | None = None
    code: str | None = None
    previous_code: str | None = None  # the code of the version being edited
    status: SceneStatus = "pending"
    attempts: int = 0
    video_path: str | None = None
    cached: bool = False
    error: str | None = None
    history: list[AttemptRecord] = []
    warnings: list[str] = []  # layout problems of the rendered video (kept, reported in status)
    narration_track: NarrationTrack | None = None  # the spoken narration (Narrating stage)

    @property
    def label(self) -> str:
        return f"scene {self.index + 1} ({self.title!r})"

    @property
    def spoken_seconds(self) -> float | None:
        """How long the scene's voice lasts (pauses included), None when it has none."""
        return self.narration_track.duration_seconds if self.narration_track else None


class AgentConfig(BaseModel):
    """The seed's per-agent configuration."""

    name: str
    agent_type: str
    enabled: bool = True
    max_retries: int = 3
    timeout_seconds: float = 300
    enable_human_loop: bool = False


class VideoGenerationState(BaseModel):
    """The pipeline's state. Nodes return partial updates of it (plain dicts)."""

    # What to make
    topic: str = ""
    description: str | None = None
    source: Source = "storyboard"
    project_id: str = "default"
    video_id: str = "video"
    quality: str = "medium"
    max_scene_attempts: int = 3
    feedback: str | None = None
    plan: dict[str, Any] | None = None
    scenes: list[SceneState] = []

    # Versions (seed names)
    version: int | None = None
    current_version: int | None = None  # the version being edited, when editing
    editing_existing_video: bool = False

    # Results of Combining
    video_path: str | None = None
    combined_code: str | None = None
    duration_seconds: float | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    subtitle_paths: list[str] = []  # the .vtt and .srt sidecars of a narrated video

    # Results of Uploading (read by Recording) and Recording (status.outputs and status.record)
    stored: UploadOutcome | None = None
    record: VersionRecord | None = None
    record_table: str | None = None  # the DynamoDB table of the record; None when only local
    outputs: Outputs | None = None

    # AWS control and results (seed names)
    enable_aws_upload: bool = True
    enable_aws_code_management: bool = True
    enable_code_object_lock: bool = False
    aws_upload_results: dict[str, str] = {}
    code_upload_results: dict[str, str] = {}
    upload_status: str = "not_started"
    code_upload_status: str = "not_started"
    upload_retry_count: int = 0
    code_upload_retry_count: int = 0
    upload_error: str | None = None
    record_error: str | None = None  # the version record could not be written (not required)

    # LLM usage
    usage: dict[str, int] = Field(default_factory=lambda: {"llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0})

    def pending_scenes(self) -> list[SceneState]:
        return [s for s in self.scenes if s.status in ("pending", "failed")]
