"""What gets published and recorded for one version, shared by the local store and AWS.

`VersionRecord` has exactly the DynamoDB attribute names of DESIGN.md ("AWS"), so the local
`record.json` and the DynamoDB item read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from pydantic import BaseModel

from videojob.api.models import UploadState

# cb(video_id, bytes_uploaded, total_bytes, percentage) — the seed's progress callback shape.
UploadProgressCallback = Callable[[str, int, int, float], "Awaitable[None] | None"]


def video_key(project_id: str, video_id: str) -> str:
    return f"{project_id}/{video_id}"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Artifacts:
    """Everything one run produced, ready to publish."""

    project_id: str
    video_id: str
    topic: str
    video: Path
    scene_videos: list[Path]
    scene_codes: list[str]
    combined_code: str
    duration_seconds: float
    size_bytes: int
    sha256: str
    plan: dict[str, Any] | None = None
    k8s_uid: str | None = None
    k8s_generation: int | None = None
    parent_version: int | None = None
    code_object_lock: dict[str, Any] | None = None  # {"mode": ..., "retention_days": ...}
    upload: bool = True  # spec.storage.upload
    required: bool = False  # spec.storage.required

    @property
    def video_key(self) -> str:
        return video_key(self.project_id, self.video_id)


class VersionRecord(BaseModel):
    video_key: str
    version: int
    project_id: str
    video_id: str
    topic: str
    status: str = "completed"
    video_uri: str | None = None
    code_uri: str | None = None
    size_bytes: int | None = None
    duration_seconds: float | None = None
    scene_count: int | None = None
    sha256: str | None = None
    created_at: str
    k8s_uid: str | None = None
    k8s_generation: int | None = None
    parent_version: int | None = None


@dataclass
class PreviousVersion:
    """The code of an earlier version, for editing."""

    version: int
    scene_codes: list[str]
    combined_code: str
    plan: dict[str, Any] | None = None



class UploadOutcome(BaseModel):
    """What the Uploading stage stored, and all that Recording needs to finish the version.

    Plain data: it travels from the `upload` node to the `record` node in the graph state.
    """

    version: int
    video_uri: str
    code_uri: str
    local_dir: Path  # the version's directory in the local store (hidden `.vN.partial` until recorded)
    upload_status: UploadState = UploadState.skipped
    code_upload_status: UploadState = UploadState.skipped
    bytes_uploaded: int = 0
    total_bytes: int = 0
    error: str | None = None
    retries: int = 0
    already_recorded: VersionRecord | None = None  # a restarted run whose version was already published
    remote: bool = False  # the version number came from DynamoDB, so the record goes there too


class RecordOutcome(BaseModel):
    """What the Recording stage wrote: the record, where, and why it is only local if it is."""

    record: VersionRecord
    table: str | None = None  # the DynamoDB table holding the record; None for the local store
    error: str | None = None  # the record could not be written to DynamoDB and is kept locally


class Publisher(Protocol):
    """Where versions go. The pipeline's Uploading and Recording stages call these in order."""

    async def previous_version(self, project_id: str, video_id: str, version: int | None = None) -> PreviousVersion | None:
        """The code of `version` (default: the latest), or None when there is none."""

    async def upload(self, artifacts: Artifacts, on_progress: UploadProgressCallback | None = None) -> UploadOutcome:
        """Choose the version number and store the files. Raises `UploadFailed` only when the
        upload is required; otherwise reports `failed_graceful` in the outcome."""

    async def record(self, artifacts: Artifacts, upload: UploadOutcome) -> RecordOutcome:
        """Make the version visible: after this it is complete and listed."""
