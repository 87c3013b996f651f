"""`EnhancedRendererAgent`: the rendered video goes to S3, with progress (the seed's API).

    agent = EnhancedRendererAgent(agent_config, system_config, aws_config)
    agent.add_upload_progress_callback(lambda video_id, done, total, pct: print(f"{pct:.0f}%"))
    update = await agent.execute(state)      # a partial VideoGenerationState update
    agent.get_upload_status(state | update)
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from videojob.agents._base import AWSAgent, log
from videojob.pipeline.state import VideoGenerationState
from videojob.storage import s3
from videojob.storage.aws_service import VideoMetadata
from videojob.storage.records import UploadProgressCallback
from videojob.storage.retry import AWSError


class EnhancedRendererAgent(AWSAgent):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._callbacks: list[UploadProgressCallback] = []
        self._progress: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------- progress

    def add_upload_progress_callback(self, callback: UploadProgressCallback) -> None:
        """`callback(video_id, bytes_uploaded, total_bytes, percentage)`; plain or async."""
        self._callbacks.append(callback)

    def get_upload_progress(self, video_id: str) -> dict[str, Any] | None:
        """The last known progress of `video_id`'s upload (percentage never above 100)."""
        progress = self._progress.get(video_id)
        return dict(progress) if progress else None

    async def _on_progress(self, video_id: str, done: int, total: int, percent: float, extra: UploadProgressCallback | None) -> None:
        self._progress[video_id] = {
            "video_id": video_id, "bytes_uploaded": done, "total_bytes": total, "percentage": percent,
            "status": "completed" if total and done >= total else "in_progress",
        }
        for callback in [*self._callbacks, *([extra] if extra else [])]:
            try:
                result = callback(video_id, done, total, percent)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - a broken display must not fail the upload
                log.exception("upload progress callback failed")

    # -------------------------------------------------------------------------- execute

    async def execute(
        self,
        state: VideoGenerationState,
        *,
        required: bool | None = None,
        progress_callback: UploadProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Upload `state.video_path` (and the scene videos) as version `state.version`.

        Returns the state update: `upload_status` completed | failed_graceful | skipped, with
        `aws_upload_results`, `upload_retry_count`, `upload_error`. When the upload is required
        (`required=True` or AWS_REQUIRE_UPLOAD) a failure raises `UploadFailed` instead.
        """
        if not (self.aws_enabled and state.enable_aws_upload):
            return {"upload_status": "skipped"}
        if not state.video_path or state.version is None:
            raise ValueError("EnhancedRendererAgent.execute needs state.video_path and state.version")
        metadata = VideoMetadata(
            project_id=state.project_id, video_id=state.video_id, version=state.version, topic=state.topic,
            sha256=state.sha256, duration_seconds=state.duration_seconds,
            scene_videos=[Path(s.video_path) for s in state.scenes if s.video_path],
        )
        total = Path(state.video_path).stat().st_size
        self._progress[state.video_id] = {
            "video_id": state.video_id, "bytes_uploaded": 0, "total_bytes": total, "percentage": 0.0, "status": "in_progress",
        }

        async def on_progress(video_id: str, done: int, total: int, percent: float) -> None:
            await self._on_progress(video_id, done, total, percent, progress_callback)

        try:
            result = await self.service.upload_video_with_metadata(Path(state.video_path), metadata, on_progress)
        except AWSError as exc:
            self._progress[state.video_id]["status"] = "failed"
            key = s3.video_key(state.project_id, state.video_id, state.version)
            error = self._fail(f"video upload to s3://{self.service.video_bucket}/{key}", exc, self._required(required))
            return {"upload_status": "failed_graceful", "upload_error": error, "aws_upload_results": {}}
        return {
            "upload_status": "completed",
            "upload_error": None,
            "upload_retry_count": result.retries,
            "aws_upload_results": {
                "video_uri": result.uri, "bucket": result.bucket, "key": result.key,
                "scene_keys": ",".join(result.keys[1:]), "bytes": str(result.bytes),
            },
        }

    def get_upload_status(self, state: VideoGenerationState | dict[str, Any]) -> dict[str, Any]:
        """AWS availability, the upload's status, results, error, retries and progress."""
        data = state.model_dump() if isinstance(state, VideoGenerationState) else dict(state)
        video_id = data.get("video_id", "")
        return {
            "aws_enabled": self.aws_enabled,
            "upload_enabled": data.get("enable_aws_upload", True),
            "upload_status": data.get("upload_status", "not_started"),
            "results": data.get("aws_upload_results", {}),
            "error": data.get("upload_error"),
            "retry_count": data.get("upload_retry_count", 0),
            "progress": self.get_upload_progress(video_id),
            "bucket": self.aws_config.video_bucket_name if self.aws_config else None,
            "require_aws_upload": bool(self.aws_config and self.aws_config.require_aws_upload),
        }
