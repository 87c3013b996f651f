"""`AWSIntegrationService`: the one async facade over S3 and DynamoDB (the seed's API).

Every boto3 call runs in a worker thread (`asyncio.to_thread`), so the event loop — the
operator's, with many jobs on it — never blocks on the network. Requests are retried by botocore
alone (`videojob.storage.retry`); an operation that still fails raises `AWSError` (which says
whether it is retryable) and counts once in `videojob_aws_errors_total`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import boto3
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer import exceptions as transfer_errors

from videojob import metrics
from videojob.storage import dynamo, s3
from videojob.storage.aws_config import AWSConfig
from videojob.storage.records import UploadProgressCallback, VersionRecord, video_key
from videojob.storage.retry import AttemptCounter, AWSError, botocore_config, describe_error, is_retryable

log = logging.getLogger(__name__)
T = TypeVar("T")

# What boto3, botocore and s3transfer raise when a call fails; anything else is a bug and propagates.
_AWS_FAILURES = (ClientError, BotoCoreError, Boto3Error, transfer_errors.RetriesExceededError, transfer_errors.S3UploadFailedError)


@dataclass
class VideoMetadata:
    """What the video object is (the seed's `video_metadata`)."""

    project_id: str
    video_id: str
    version: int
    topic: str = ""
    sha256: str | None = None
    duration_seconds: float | None = None
    scene_videos: list[Path] = field(default_factory=list)


@dataclass
class UploadResult:
    bucket: str
    key: str
    bytes: int
    seconds: float
    retries: int
    keys: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return s3.s3_uri(self.bucket, self.key)


@dataclass
class CodeBundle:
    """The code of one stored version."""

    version: int
    combined_code: str
    scene_codes: list[str]
    plan: dict[str, Any] | None = None


class AWSIntegrationService:
    """S3 uploads and downloads plus DynamoDB versions for one AWSConfig."""

    def __init__(self, config: AWSConfig, *, session: boto3.session.Session | None = None):
        if not config.enabled:
            raise ValueError("AWS_S3_VIDEO_BUCKET is not set: AWS is off")
        self.config = config
        session = session or boto3.session.Session()
        # Custom endpoints (moto, LocalStack, MinIO) rarely resolve bucket subdomains: path style.
        self._s3_style = {"addressing_style": "path"} if _custom_endpoint("s3") else {}
        client_config = botocore_config(
            config.max_retries, config.retry_mode, pool=config.max_concurrent_uploads + 2, s3=self._s3_style
        )
        self.s3_client = session.client("s3", region_name=config.region, config=client_config)
        self.dynamodb_client = session.client("dynamodb", region_name=config.region, config=client_config)
        self._session = session
        self._quick: tuple[s3.S3Store, dynamo.VersionTable] | None = None
        self.s3 = s3.S3Store(self.s3_client, config)
        self.table = dynamo.VersionTable(self.dynamodb_client, config.metadata_table_name)
        self._s3_attempts = AttemptCounter(self.s3_client)

    @property
    def video_bucket(self) -> str:
        return self.config.video_bucket_name  # type: ignore[return-value]

    @property
    def code_bucket(self) -> str:
        return self.config.code_bucket_name  # type: ignore[return-value]

    # ---------------------------------------------------------------------------- calling

    async def _call(self, service: str, operation: str, fn: Callable[[], T]) -> T:
        """Run blocking `fn` in a thread (botocore retries its requests); AWSError when it fails."""
        try:
            return await asyncio.to_thread(fn)
        except _AWS_FAILURES as exc:
            metrics.record_aws_error(service, operation, is_retryable(exc))
            raise AWSError(service, operation, exc) from exc

    # ------------------------------------------------------------------------------ health

    async def health_check(self) -> dict[str, Any]:
        """Status of the video bucket, the code bucket and the table, plus `overall_status`:
        healthy (all usable), degraded (some) or unavailable (none)."""

        async def check(kind: str, fn: Callable[[], dict[str, Any]], name: str) -> dict[str, Any]:
            try:
                info = await asyncio.to_thread(fn)
                return {"name": name, "status": "healthy", **info}
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                metrics.record_aws_error(kind, "health_check", False)
                return {"name": name, "status": "unavailable", "error": describe_error(exc)}

        quick_s3, quick_table = self._quick_clients()
        video, code, table = await asyncio.gather(
            check("s3", lambda: quick_s3.check_bucket(self.video_bucket), self.video_bucket),
            check("s3", lambda: quick_s3.check_bucket(self.code_bucket), self.code_bucket),
            check("dynamodb", lambda: self._check_table(quick_table), self.config.metadata_table_name),
        )
        healthy = sum(r["status"] == "healthy" for r in (video, code, table))
        overall = "healthy" if healthy == 3 else "unavailable" if healthy == 0 else "degraded"
        return {
            "video_bucket": video, "code_bucket": code, "table": table, "overall_status": overall,
            "region": self.config.region, "encryption": self.config.sse_args().get("ServerSideEncryption", "none"),
        }

    def _quick_clients(self) -> tuple[s3.S3Store, dynamo.VersionTable]:
        """Clients for health checks, which answer fast: one attempt, short timeouts."""
        if self._quick is None:
            quick = botocore_config(0, self.config.retry_mode, connect_timeout=3, read_timeout=5, s3=self._s3_style)
            region = self.config.region
            self._quick = (
                s3.S3Store(self._session.client("s3", region_name=region, config=quick), self.config),
                dynamo.VersionTable(self._session.client("dynamodb", region_name=region, config=quick), self.config.metadata_table_name),
            )
        return self._quick

    def _check_table(self, table: dynamo.VersionTable) -> dict[str, Any]:
        info = table.describe()
        if not info["project_index"]:
            raise RuntimeError(f"table {self.config.metadata_table_name} has no GSI {dynamo.PROJECT_INDEX}")
        return info

    async def ensure_resources(self) -> dict[str, list[str]]:
        """Create the buckets and the table if missing (development; idempotent)."""
        created: list[str] = []
        existing: list[str] = []
        buckets = [(self.video_bucket, False)]
        if self.code_bucket != self.video_bucket:
            # Object Lock can only be turned on when a bucket is created: on for the code bucket.
            buckets.append((self.code_bucket, True))
        for bucket, lock in buckets:
            made = await self._call("s3", "create_bucket", lambda b=bucket, l=lock: self.s3.create_bucket(b, object_lock=l))
            (created if made else existing).append(f"s3://{bucket}")
        made = await self._call("dynamodb", "create_table", self.table.create)
        (created if made else existing).append(f"dynamodb:{self.config.metadata_table_name}")
        return {"created": created, "existing": existing}

    # ----------------------------------------------------------------------------- uploads

    async def _upload_object(
        self,
        target: str,
        path: Path,
        bucket: str,
        key: str,
        *,
        content_type: str,
        metadata: dict[str, Any],
        progress: s3.ObjectProgress | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[s3.StoredObject, int]:
        """The stored object and how many request retries botocore needed for it."""
        before = self._s3_attempts.retries
        stored = await self._call(
            "s3", "upload_file",
            lambda: self.s3.upload_file(path, bucket, key, content_type=content_type, metadata=metadata, progress=progress, extra=extra),
        )
        if progress is not None:
            progress.finish()
        metrics.record_upload(target, stored.size, stored.seconds)
        return stored, self._s3_attempts.retries - before

    async def upload_video_with_metadata(
        self,
        video_path: Path,
        video_metadata: VideoMetadata,
        progress_callback: UploadProgressCallback | None = None,
    ) -> UploadResult:
        """Upload the video (and its scene videos) under `videos/{project}/{video}/v{N}/`.

        `progress_callback(video_id, bytes_uploaded, total_bytes, percentage)` follows the main
        video; it may be a plain function or a coroutine function and is called on the event loop.
        """
        m = video_metadata
        key = s3.video_key(m.project_id, m.video_id, m.version)
        total = Path(video_path).stat().st_size
        sink = _loop_sink(m.video_id, progress_callback)
        progress = s3.ObjectProgress(total, sink.send if sink else None)
        meta = {
            "project-id": m.project_id, "video-id": m.video_id, "version": m.version, "topic": m.topic,
            "sha256": m.sha256, "duration-seconds": m.duration_seconds,
        }
        try:
            stored, retries = await self._upload_object(
                "video", Path(video_path), self.video_bucket, key, content_type=s3.VIDEO_TYPE, metadata=meta, progress=progress
            )
        finally:
            if sink:
                await sink.drain()
        keys = [key]
        seconds = stored.seconds
        prefix = s3.video_prefix(m.project_id, m.video_id, m.version)
        for i, scene in enumerate(m.scene_videos):
            scene_stored, scene_retries = await self._upload_object(
                "video", Path(scene), self.video_bucket, s3.scene_key(prefix, i, ".mp4"), content_type=s3.VIDEO_TYPE,
                metadata={**meta, "scene": i + 1, "sha256": None},
            )
            keys.append(scene_stored.key)
            retries += scene_retries
            seconds += scene_stored.seconds
        return UploadResult(self.video_bucket, key, total, seconds, retries, keys)

    async def upload_code(
        self,
        project_id: str,
        video_id: str,
        version: int,
        combined_code: str,
        scene_codes: list[str] | None = None,
        *,
        topic: str = "",
        plan: dict[str, Any] | None = None,
        object_lock: dict[str, Any] | None = None,
    ) -> UploadResult:
        """Upload the code (UTF-8) under `code/{project}/{video}/v{N}/`, with Object Lock when asked."""
        prefix = s3.code_prefix(project_id, video_id, version)
        key = s3.code_key(project_id, video_id, version)
        meta = {"project-id": project_id, "video-id": video_id, "version": version, "topic": topic}
        objects: list[tuple[str, bytes, str]] = [(key, combined_code.encode("utf-8"), s3.CODE_TYPE)]
        for i, code in enumerate(scene_codes or []):
            objects.append((s3.scene_key(prefix, i, ".py"), code.encode("utf-8"), s3.CODE_TYPE))
        if plan is not None:
            objects.append((s3.plan_key(project_id, video_id, version), json.dumps(plan, ensure_ascii=False).encode("utf-8"), s3.JSON_TYPE))
        lock = s3.object_lock_args(object_lock)
        retries = 0
        seconds = 0.0
        for obj_key, data, content_type in objects:
            before = self._s3_attempts.retries
            stored = await self._call(
                "s3", "put_object",
                lambda k=obj_key, d=data, c=content_type: self.s3.put_bytes(d, self.code_bucket, k, content_type=c, metadata=meta, extra=lock),
            )
            metrics.record_upload("code", stored.size, stored.seconds)
            retries += self._s3_attempts.retries - before
            seconds += stored.seconds
        return UploadResult(self.code_bucket, key, len(objects[0][1]), seconds, retries, [o[0] for o in objects])

    async def download_code(self, project_id: str, video_id: str, version: int) -> CodeBundle:
        """The code of a stored version (for editing). Raises AWSError (NoSuchKey) when absent."""
        prefix = s3.code_prefix(project_id, video_id, version)

        def work() -> CodeBundle:
            combined = self.s3.get_bytes(self.code_bucket, s3.code_key(project_id, video_id, version)).decode("utf-8")
            keys = self.s3.list_keys(self.code_bucket, f"{prefix}/scenes/")
            scenes = [self.s3.get_bytes(self.code_bucket, k).decode("utf-8") for k in keys if k.endswith(".py")]
            plan = None
            if s3.plan_key(project_id, video_id, version) in self.s3.list_keys(self.code_bucket, f"{prefix}/plan.json"):
                plan = json.loads(self.s3.get_bytes(self.code_bucket, s3.plan_key(project_id, video_id, version)))
            return CodeBundle(version, combined, scenes or [combined], plan)

        return await self._call("s3", "download_code", work)

    # ---------------------------------------------------------------------------- versions

    async def reserve_version(
        self,
        project_id: str,
        video_id: str,
        *,
        topic: str = "",
        k8s_uid: str | None = None,
        k8s_generation: int | None = None,
        parent_version: int | None = None,
        min_number: int = 1,
    ) -> tuple[int, dict[str, Any] | None]:
        """The version number this run writes, at least `min_number` (see `dynamo.VersionTable.reserve`)."""
        return await self._call(
            "dynamodb", "reserve_version",
            lambda: self.table.reserve(
                project_id=project_id, video_id=video_id, topic=topic, k8s_uid=k8s_uid,
                k8s_generation=k8s_generation, parent_version=parent_version, min_number=min_number,
            ),
        )

    async def record_version(self, record: VersionRecord) -> VersionRecord:
        """Write the finished record (conditional: a completed record is never overwritten)."""
        await self._call("dynamodb", "put_item", lambda: self.table.put_record(record))
        return record

    async def get_version(self, project_id: str, video_id: str, version: int) -> VersionRecord | None:
        item = await self._call("dynamodb", "get_item", lambda: self.table.get(video_key(project_id, video_id), version))
        return VersionRecord.model_validate(item) if item and item.get("status") in dynamo.FINISHED else None

    async def latest_version(self, project_id: str, video_id: str) -> VersionRecord | None:
        return await self._call("dynamodb", "query", lambda: self.table.latest_version(video_key(project_id, video_id)))

    async def list_versions(self, project_id: str, video_id: str) -> list[VersionRecord]:
        return await self._call("dynamodb", "query", lambda: self.table.list_versions(video_key(project_id, video_id)))

    async def project_versions(self, project_id: str, limit: int = 100) -> list[VersionRecord]:
        return await self._call("dynamodb", "query", lambda: self.table.project_versions(project_id, limit))


def _custom_endpoint(service: str) -> bool:
    return bool(os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL"))


class _LoopSink:
    """Delivers progress from s3transfer's threads to a callback on the event loop, in order."""

    def __init__(self, video_id: str, callback: UploadProgressCallback):
        self.video_id = video_id
        self.callback = callback
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
        self.task = self.loop.create_task(self._deliver())

    def send(self, done: int, total: int) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (done, total))

    async def _deliver(self) -> None:
        while (item := await self.queue.get()) is not None:
            done, total = item
            percent = round(100.0 * done / total, 1) if total else 100.0
            try:
                result = self.callback(self.video_id, done, total, percent)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - a broken progress display must not fail the upload
                log.exception("upload progress callback failed")

    async def drain(self) -> None:
        # After the sends already scheduled (call_soon keeps FIFO order with call_soon_threadsafe).
        self.loop.call_soon(self.queue.put_nowait, None)
        await self.task


def _loop_sink(video_id: str, callback: UploadProgressCallback | None) -> _LoopSink | None:
    return _LoopSink(video_id, callback) if callback else None
