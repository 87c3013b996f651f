"""The AWS `Publisher`: DynamoDB chooses the version, the enhanced agents upload, the local copy stays.

Order of one publish, so that nothing is lost whatever fails:

1. DynamoDB reserves the version number (conditional write; a restarted run gets its own back).
2. The files go into the local store under that number (`{output}/{project}/{video}/v{N}/`).
3. `EnhancedRendererAgent` uploads the video, `EnhancedCodeGeneratorAgent` the code.
4. `record`: DynamoDB gets the finished record, then the local version is committed.

When S3 or DynamoDB fails, the run goes on with the local copy and reports `failed_graceful`
(the status gets an `Uploaded=False` condition) — unless the upload is required
(`AWS_REQUIRE_UPLOAD` or `spec.storage.required`): then the run fails with `UploadFailed`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from videojob.agents.enhanced_code_generator_agent import EnhancedCodeGeneratorAgent
from videojob.agents.enhanced_renderer_agent import EnhancedRendererAgent
from videojob.pipeline.errors import TransientError, UploadFailed
from videojob.pipeline.state import AgentConfig, SceneState, VideoGenerationState
from videojob.storage import dynamo
from videojob.storage.aws_config import AWSConfig, load_aws_config
from videojob.storage.aws_service import AWSIntegrationService
from videojob.storage.local import LocalPublisher, LocalVersionStore, build_record
from videojob.storage.records import (
    Artifacts,
    PreviousVersion,
    UploadOutcome,
    UploadProgressCallback,
    VersionRecord,
)
from videojob.storage.retry import AWSError

log = logging.getLogger(__name__)
_LOCAL_VERSION = re.compile(r"^\.?v(\d+)(\.partial)?$")


def aws_publisher_from_env(store: LocalVersionStore) -> "AWSPublisher | None":
    """The AWS publisher when `AWS_S3_VIDEO_BUCKET` is set, else None (local only).
    Raises `videojob.config.ConfigError` naming the variable when an `AWS_*` value is invalid."""
    config = load_aws_config()
    if not config.enabled:
        return None
    return AWSPublisher(store, config)


class AWSPublisher:
    def __init__(self, store: LocalVersionStore, config: AWSConfig, service: AWSIntegrationService | None = None):
        self.store = store
        self.local = LocalPublisher(store)
        self.config = config
        self.service = service or AWSIntegrationService(config)
        self.renderer = EnhancedRendererAgent(
            AgentConfig(name="enhanced_renderer", agent_type="enhanced_renderer", max_retries=config.max_retries),
            None, config, service=self.service,
        )
        self.coder = EnhancedCodeGeneratorAgent(
            AgentConfig(name="enhanced_code_generator", agent_type="enhanced_code_generator", max_retries=config.max_retries),
            None, config, service=self.service,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "table": self.config.metadata_table_name, "video_bucket": self.config.video_bucket_name,
            "code_bucket": self.config.code_bucket_name, "store": str(self.store.root),
        }

    def _required(self, artifacts: Artifacts) -> bool:
        return self.config.require_aws_upload or artifacts.required

    # ----------------------------------------------------------------------------- editing

    async def previous_version(self, project_id: str, video_id: str, version: int | None = None) -> PreviousVersion | None:
        """The code of `version` (default: the latest finished one): from S3 when it was uploaded,
        else from the local store (versions kept locally, or made before AWS was on)."""
        try:
            if version is None:
                record = await self.service.latest_version(project_id, video_id)
            else:
                record = await self.service.get_version(project_id, video_id, version)
            if record is not None and record.status == dynamo.COMPLETED and (record.code_uri or "").startswith("s3://"):
                bundle = await self.coder.download_code(project_id, video_id, record.version)
                return PreviousVersion(record.version, bundle.scene_codes, bundle.combined_code, bundle.plan)
        except AWSError as exc:
            if self.config.require_aws_upload:
                raise TransientError(f"cannot read the previous version from AWS: {exc}", reason="AWSUnavailable") from None
            log.warning("reading the previous version from AWS failed, using the local store: %s", exc)
            record = None
        return await self.local.previous_version(project_id, video_id, record.version if record else version)

    # ------------------------------------------------------------------------------ upload

    async def upload(self, artifacts: Artifacts, on_progress: UploadProgressCallback | None = None) -> UploadOutcome:
        if not artifacts.upload:  # spec.storage.upload: false
            return await self.local.upload(artifacts)
        required = self._required(artifacts)
        try:
            local_highest = await asyncio.to_thread(self._local_highest, artifacts)
            # Above every local version too: versions kept locally while DynamoDB was down must
            # never be replaced by a later run that DynamoDB gives the same number.
            number, existing = await self.service.reserve_version(
                artifacts.project_id, artifacts.video_id, topic=artifacts.topic, k8s_uid=artifacts.k8s_uid,
                k8s_generation=artifacts.k8s_generation, parent_version=artifacts.parent_version,
                min_number=local_highest + 1,
            )
        except AWSError as exc:
            why = f"DynamoDB table {self.config.metadata_table_name}: {exc}"
            if required:
                raise UploadFailed(f"cannot allocate a version: {why}; the upload is required", stage="Uploading") from None
            log.warning("%s; the version stays local and nothing is uploaded", why)
            outcome = await self.local.upload(artifacts)
            outcome.upload_status = outcome.code_upload_status = "failed_graceful"
            outcome.error = f"{why}; nothing uploaded"
            outcome.total_bytes = artifacts.size_bytes
            return outcome

        if existing is not None and existing.get("status") in dynamo.FINISHED:
            # A restarted run whose version was already published: report it, write nothing.
            record = VersionRecord.model_validate(existing)
            done = record.status == dynamo.COMPLETED
            return UploadOutcome(
                version=number, video_uri=record.video_uri or "", code_uri=record.code_uri or "",
                local_dir=self.store.version_dir(artifacts.project_id, artifacts.video_id, number),
                upload_status="completed" if done else "failed_graceful",
                code_upload_status="completed" if done else "failed_graceful",
                bytes_uploaded=artifacts.size_bytes if done else 0, total_bytes=artifacts.size_bytes,
                already_recorded=record, extra={"aws": True},
            )

        partial = await asyncio.to_thread(self._local_copy, artifacts, number)
        final = self.store.version_dir(artifacts.project_id, artifacts.video_id, number)
        state = self._state(artifacts, number)
        video = await self.renderer.execute(state, required=required, progress_callback=on_progress)
        code = await self.coder.execute(state, required=required, object_lock=artifacts.code_object_lock)

        errors = [e for e in (video.get("upload_error"), code.get("upload_error")) if e]
        video_ok = video["upload_status"] == "completed"
        code_ok = code["code_upload_status"] == "completed"
        return UploadOutcome(
            version=number,
            video_uri=video["aws_upload_results"]["video_uri"] if video_ok else (final / f"{artifacts.video_id}.mp4").as_uri(),
            code_uri=code["code_upload_results"]["code_uri"] if code_ok else (final / f"{artifacts.video_id}.py").as_uri(),
            local_dir=partial,
            upload_status="completed" if video_ok and code_ok else "failed_graceful",
            code_upload_status=code["code_upload_status"],
            bytes_uploaded=artifacts.size_bytes if video_ok else 0,
            total_bytes=artifacts.size_bytes,
            error="; ".join(errors) or None,
            retries=video.get("upload_retry_count", 0) + code.get("code_upload_retry_count", 0),
            extra={"aws": True, "video": video.get("aws_upload_results"), "code": code.get("code_upload_results")},
        )

    def _local_highest(self, artifacts: Artifacts) -> int:
        base = self.store.video_dir(artifacts.project_id, artifacts.video_id)
        numbers = [0]
        if base.is_dir():
            for entry in base.iterdir():
                m = _LOCAL_VERSION.match(entry.name)
                if m and not self._is_own(entry, artifacts):
                    numbers.append(int(m.group(1)))
        return max(numbers)

    @staticmethod
    def _is_own(path: Path, artifacts: Artifacts) -> bool:
        """A reservation of this same run (restart): it must not push its own number up."""
        reservation = path / "reservation.json"
        if not artifacts.k8s_uid or not reservation.is_file():
            return False
        data = json.loads(reservation.read_text())
        return data.get("k8s_uid") == artifacts.k8s_uid and data.get("k8s_generation") == artifacts.k8s_generation

    def _local_copy(self, artifacts: Artifacts, number: int) -> Path:
        """The files under the DynamoDB-chosen number in the local store (kept after upload)."""
        got, path = self.store.reserve(artifacts, version=number)
        if got != number and path.name.startswith("."):
            # An earlier try of this run kept a different local number: start over under the right one.
            shutil.rmtree(path, ignore_errors=True)
            got, path = self.store.reserve(artifacts, version=number)
        if path.name.startswith("."):
            self.store.write_files(artifacts, path)
        return path

    @staticmethod
    def _state(artifacts: Artifacts, version: int) -> VideoGenerationState:
        titles = [s.get("title") for s in (artifacts.plan or {}).get("scenes", [])] if artifacts.plan else []
        count = max(len(artifacts.scene_codes), len(artifacts.scene_videos))
        scenes = [
            SceneState(
                index=i,
                title=(titles[i] if i < len(titles) and titles[i] else f"Scene {i + 1}"),
                class_name=f"Scene{i + 1}",
                code=artifacts.scene_codes[i] if i < len(artifacts.scene_codes) else None,
                video_path=str(artifacts.scene_videos[i]) if i < len(artifacts.scene_videos) else None,
                status="rendered",
            )
            for i in range(count)
        ]
        return VideoGenerationState(
            topic=artifacts.topic, project_id=artifacts.project_id, video_id=artifacts.video_id, plan=artifacts.plan,
            scenes=scenes, version=version, current_version=artifacts.parent_version, video_path=str(artifacts.video),
            combined_code=artifacts.combined_code, duration_seconds=artifacts.duration_seconds,
            size_bytes=artifacts.size_bytes, sha256=artifacts.sha256, enable_aws_upload=True,
            enable_aws_code_management=True, enable_code_object_lock=artifacts.code_object_lock is not None,
        )

    # ------------------------------------------------------------------------------ record

    async def record(self, artifacts: Artifacts, upload: UploadOutcome) -> VersionRecord:
        if not upload.extra.get("aws"):
            return await self.local.record(artifacts, upload)
        if upload.already_recorded:
            return upload.already_recorded
        status = dynamo.COMPLETED if upload.upload_status == "completed" else dynamo.LOCAL_ONLY
        record = build_record(artifacts, upload, status=status)
        try:
            await self.service.record_version(record)
        except (AWSError, dynamo.VersionConflict) as exc:
            why = f"recording version {record.version} in DynamoDB table {self.config.metadata_table_name} failed: {exc}"
            if self._required(artifacts):
                raise UploadFailed(why + "; the upload is required", stage="Recording") from None
            log.warning("%s; the record is kept locally", why)
            upload.extra["record_error"] = why  # status says so (condition Recorded=False)
        if upload.local_dir.name.startswith("."):
            await asyncio.to_thread(self.store.commit, upload.local_dir, record)
        return record
