"""`EnhancedCodeGeneratorAgent`: code versions in S3 (the seed's API).

`execute(state)` uploads the version's code (combined file, one file per scene, the plan) as UTF-8
`text/x-python`, under Object Lock when asked. When editing (`editing_existing_video` with a
`current_version` and no new code yet) it downloads that version's code instead and returns the
scenes with `previous_code` set, ready for code generation.
"""

from __future__ import annotations

from typing import Any

from videojob.agents._base import AWSAgent
from videojob.pipeline.state import SceneState, VideoGenerationState
from videojob.pipeline.storyboard import scene_class_name
from videojob.storage import s3
from videojob.storage.aws_service import CodeBundle
from videojob.storage.retry import AWSError

DEFAULT_LOCK = {"mode": "GOVERNANCE", "retention_days": 30}


class EnhancedCodeGeneratorAgent(AWSAgent):
    async def download_code(self, project_id: str, video_id: str, version: int) -> CodeBundle:
        """The stored code of `version`. Raises AWSError when it cannot be read."""
        return await self.service.download_code(project_id, video_id, version)

    async def execute(
        self,
        state: VideoGenerationState,
        *,
        required: bool | None = None,
        object_lock: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Upload (or, when editing, download) code; returns a partial state update.

        Upload: `code_upload_status` completed | failed_graceful | skipped with
        `code_upload_results` and `code_upload_retry_count`; a required upload raises
        `UploadFailed` on failure. `object_lock` ({mode, retention_days}) overrides the default
        used when `state.enable_code_object_lock` is set.
        """
        if not (self.aws_enabled and state.enable_aws_code_management):
            return {"code_upload_status": "skipped"}
        if state.editing_existing_video and state.current_version and state.combined_code is None:
            return await self._download_for_editing(state)
        if state.combined_code is None or state.version is None:
            raise ValueError("EnhancedCodeGeneratorAgent.execute needs state.combined_code and state.version")
        lock = object_lock or (DEFAULT_LOCK if state.enable_code_object_lock else None)
        try:
            result = await self.service.upload_code(
                state.project_id, state.video_id, state.version, state.combined_code,
                [scene.code or "" for scene in state.scenes], topic=state.topic, plan=state.plan, object_lock=lock,
            )
        except AWSError as exc:
            key = s3.code_key(state.project_id, state.video_id, state.version)
            error = self._fail(f"code upload to s3://{self.service.code_bucket}/{key}", exc, self._required(required))
            return {"code_upload_status": "failed_graceful", "upload_error": error, "code_upload_results": {}}
        results = {"code_uri": result.uri, "bucket": result.bucket, "key": result.key, "keys": ",".join(result.keys)}
        if lock:
            results["object_lock_mode"] = str(lock.get("mode"))
        return {"code_upload_status": "completed", "code_upload_retry_count": result.retries, "code_upload_results": results}

    async def _download_for_editing(self, state: VideoGenerationState) -> dict[str, Any]:
        bundle = await self.download_code(state.project_id, state.video_id, state.current_version)  # type: ignore[arg-type]
        titles = [s.get("title") for s in (bundle.plan or {}).get("scenes", [])]
        scenes = [
            SceneState(
                index=i, title=(titles[i] if i < len(titles) and titles[i] else f"Scene {i + 1}"),
                class_name=scene_class_name(i), previous_code=code,
            )
            for i, code in enumerate(bundle.scene_codes)
        ]
        return {"scenes": scenes, "plan": bundle.plan, "code_upload_status": "not_started"}

    def get_code_management_status(self, state: VideoGenerationState | dict[str, Any]) -> dict[str, Any]:
        """AWS availability, versions, the code upload's status, results and retries."""
        data = state.model_dump() if isinstance(state, VideoGenerationState) else dict(state)
        return {
            "aws_enabled": self.aws_enabled,
            "code_management_enabled": data.get("enable_aws_code_management", True),
            "code_upload_status": data.get("code_upload_status", "not_started"),
            "results": data.get("code_upload_results", {}),
            "retry_count": data.get("code_upload_retry_count", 0),
            "version": data.get("version"),
            "current_version": data.get("current_version"),
            "editing_existing_video": data.get("editing_existing_video", False),
            "object_lock": data.get("enable_code_object_lock", False),
            "bucket": self.aws_config.code_bucket_name if self.aws_config else None,
        }
