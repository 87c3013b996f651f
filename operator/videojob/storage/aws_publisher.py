"""The AWS `Publisher`: DynamoDB chooses the version, S3 takes the files, the local copy stays.

Order of one publish, so that nothing is lost whatever fails:

1. DynamoDB reserves the version number (conditional write; a restarted run gets its own back).
2. The files go into the local store under that number (`{output}/{project}/{video}/v{N}/`).
3. The video (and scene videos) and the code go to S3.
4. `record`: DynamoDB gets the finished record, then the local version is committed.

When S3 or DynamoDB fails, the run goes on with the local copy and reports `failed_graceful`
(the status gets an `Uploaded=False` condition) — unless the upload is required
(`AWS_REQUIRE_UPLOAD` or `spec.storage.required`): then the run fails with `UploadFailed`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, TypeVar

from videojob.api.models import UploadState
from videojob.errors import TransientError, UploadFailed
from videojob.storage import dynamo, s3
from videojob.storage.aws_config import AWSConfig, load_aws_config
from videojob.storage.aws_service import AWSIntegrationService, UploadResult, VideoMetadata
from videojob.storage.local import LocalPublisher, LocalVersionStore, build_record
from videojob.storage.records import (
    Artifacts,
    PreviousVersion,
    RecordOutcome,
    UploadOutcome,
    UploadProgressCallback,
    VersionRecord,
)
from videojob.storage.retry import AWSError

log = logging.getLogger(__name__)
T = TypeVar("T")


def aws_publisher_from_env(store: LocalVersionStore) -> "AWSPublisher | None":
    """The AWS publisher when `AWS_S3_VIDEO_BUCKET` is set, else None (local only).
    Raises `videojob.config.ConfigError` naming the variable when an `AWS_*` value is invalid."""
    config = load_aws_config()
    if not config.enabled:
        return None
    return AWSPublisher(store, config)


def degrade(what: str, exc: AWSError, *, required: bool, stage: str) -> str:
    """A failed AWS step: raise `UploadFailed` when the upload is required, else log and return
    the reason the run goes on with its local copy (graceful degradation)."""
    why = f"{what} failed: {exc}" + ("" if exc.retryable else " (not retryable)")
    if required:
        raise UploadFailed(why + "; the upload is required (AWS_REQUIRE_UPLOAD / spec.storage.required)", stage=stage)
    log.warning("%s; continuing with the local copy", why)
    return why


class AWSPublisher:
    def __init__(self, store: LocalVersionStore, config: AWSConfig, service: AWSIntegrationService | None = None):
        self.store = store
        self.local = LocalPublisher(store)
        self.config = config
        self.service = service or AWSIntegrationService(config)

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
                bundle = await self.service.download_code(project_id, video_id, record.version)
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
        try:
            # Above every local version too: versions kept locally while DynamoDB was down must
            # never be replaced by a later run that DynamoDB gives the same number.
            local_highest = await asyncio.to_thread(self.store.highest_taken, artifacts)
            number, existing = await self.service.reserve_version(
                artifacts.project_id, artifacts.video_id, topic=artifacts.topic, k8s_uid=artifacts.k8s_uid,
                k8s_generation=artifacts.k8s_generation, parent_version=artifacts.parent_version,
                min_number=local_highest + 1,
            )
        except AWSError as exc:
            return await self._local_only(artifacts, exc)
        if existing is not None and existing.get("status") in dynamo.FINISHED:
            return self._already_published(artifacts, VersionRecord.model_validate(existing))

        outcome = await asyncio.to_thread(self.local.store_version, artifacts, number)
        required = self._required(artifacts)
        video = await self._attempt(
            f"video upload to s3://{self.service.video_bucket}/{s3.video_key(artifacts.project_id, artifacts.video_id, number)}",
            required,
            self.service.upload_video_with_metadata(artifacts.video, self._metadata(artifacts, number), on_progress),
        )
        code = await self._attempt(
            f"code upload to s3://{self.service.code_bucket}/{s3.code_key(artifacts.project_id, artifacts.video_id, number)}",
            required,
            self.service.upload_code(
                artifacts.project_id, artifacts.video_id, number, artifacts.combined_code, artifacts.scene_codes,
                topic=artifacts.topic, plan=artifacts.plan, object_lock=artifacts.code_object_lock,
            ),
        )
        errors = [r for r in (video, code) if isinstance(r, str)]
        return outcome.model_copy(
            update={
                "video_uri": video.uri if isinstance(video, UploadResult) else outcome.video_uri,
                "code_uri": code.uri if isinstance(code, UploadResult) else outcome.code_uri,
                "upload_status": UploadState.failed_graceful if errors else UploadState.completed,
                "code_upload_status": UploadState.completed if isinstance(code, UploadResult) else UploadState.failed_graceful,
                "bytes_uploaded": artifacts.size_bytes if isinstance(video, UploadResult) else 0,
                "total_bytes": artifacts.size_bytes,
                "error": "; ".join(errors) or None,
                "retries": sum(r.retries for r in (video, code) if isinstance(r, UploadResult)),
                "remote": True,
            }
        )

    async def _attempt(self, what: str, required: bool, upload: Awaitable[T]) -> T | str:
        """The upload's result, or (not required) why it failed."""
        try:
            return await upload
        except AWSError as exc:
            return degrade(what, exc, required=required, stage="Uploading")

    async def _local_only(self, artifacts: Artifacts, exc: AWSError) -> UploadOutcome:
        """DynamoDB cannot allocate a version: the version stays local and nothing is uploaded."""
        why = f"DynamoDB table {self.config.metadata_table_name}: {exc}"
        if self._required(artifacts):
            raise UploadFailed(f"cannot allocate a version: {why}; the upload is required", stage="Uploading") from None
        log.warning("%s; the version stays local and nothing is uploaded", why)
        outcome = await self.local.upload(artifacts)
        return outcome.model_copy(
            update={
                "upload_status": UploadState.failed_graceful, "code_upload_status": UploadState.failed_graceful,
                "error": f"{why}; nothing uploaded", "total_bytes": artifacts.size_bytes,
            }
        )

    def _already_published(self, artifacts: Artifacts, record: VersionRecord) -> UploadOutcome:
        """A restarted run whose version was already published: report it, write nothing."""
        done = UploadState.completed if record.status == dynamo.COMPLETED else UploadState.failed_graceful
        return UploadOutcome(
            version=record.version, video_uri=record.video_uri or "", code_uri=record.code_uri or "",
            local_dir=self.store.version_dir(artifacts.project_id, artifacts.video_id, record.version),
            upload_status=done, code_upload_status=done,
            bytes_uploaded=artifacts.size_bytes if done == UploadState.completed else 0, total_bytes=artifacts.size_bytes,
            already_recorded=record, remote=True,
        )

    @staticmethod
    def _metadata(artifacts: Artifacts, version: int) -> VideoMetadata:
        return VideoMetadata(
            project_id=artifacts.project_id, video_id=artifacts.video_id, version=version, topic=artifacts.topic,
            sha256=artifacts.sha256, duration_seconds=artifacts.duration_seconds,
            scene_videos=[Path(p) for p in artifacts.scene_videos],
        )

    # ------------------------------------------------------------------------------ record

    async def record(self, artifacts: Artifacts, upload: UploadOutcome) -> RecordOutcome:
        if not upload.remote:
            return await self.local.record(artifacts, upload)
        table = self.config.metadata_table_name
        if upload.already_recorded:
            return RecordOutcome(record=upload.already_recorded, table=table)
        status = dynamo.COMPLETED if upload.upload_status == UploadState.completed else dynamo.LOCAL_ONLY
        record = build_record(artifacts, upload, status=status)
        error = None
        try:
            await self.service.record_version(record)
        except (AWSError, dynamo.VersionConflict) as exc:
            error = f"recording version {record.version} in DynamoDB table {table} failed: {exc}"
            if self._required(artifacts):
                raise UploadFailed(error + "; the upload is required", stage="Recording") from None
            log.warning("%s; the record is kept locally", error)
        await asyncio.to_thread(self.store.commit, upload.local_dir, record)
        return RecordOutcome(record=record, table=table, error=error)
