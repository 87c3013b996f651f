"""S3 objects: keys, metadata, encryption, Object Lock, and uploads with per-object progress.

Blocking (boto3) code: call it from a worker thread (`AWSIntegrationService` does). Uploads go
through boto3's managed transfer (s3transfer): one PutObject up to `AWS_MULTIPART_THRESHOLD`,
above it a multipart upload of `AWS_CHUNK_SIZE` parts, `AWS_MAX_CONCURRENT_UPLOADS` at a time,
read from disk part by part (memory stays near chunk size x concurrency, whatever the file size).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig

from videojob.storage.aws_config import AWSConfig

VIDEO_TYPE = "video/mp4"
CODE_TYPE = "text/x-python; charset=utf-8"
JSON_TYPE = "application/json"

# Printable ASCII that stays as is in metadata values; everything else (and '%') is percent-encoded,
# so `urllib.parse.unquote` gives the original text back.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%")
_METADATA_LIMIT = 1800  # S3 allows 2 KB of user metadata in total (keys + values)


# ----------------------------------------------------------------------------------- keys


def video_prefix(project_id: str, video_id: str, version: int) -> str:
    return f"videos/{project_id}/{video_id}/v{version}"


def code_prefix(project_id: str, video_id: str, version: int) -> str:
    return f"code/{project_id}/{video_id}/v{version}"


def video_key(project_id: str, video_id: str, version: int) -> str:
    return f"{video_prefix(project_id, video_id, version)}/{video_id}.mp4"


def code_key(project_id: str, video_id: str, version: int) -> str:
    return f"{code_prefix(project_id, video_id, version)}/{video_id}.py"


def scene_key(prefix: str, index: int, suffix: str) -> str:
    """`index` counts from 0; file names count from 01."""
    return f"{prefix}/scenes/scene_{index + 1:02d}{suffix}"


def plan_key(project_id: str, video_id: str, version: int) -> str:
    return f"{code_prefix(project_id, video_id, version)}/plan.json"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# ------------------------------------------------------------------------------- metadata


def ascii_metadata(values: dict[str, Any]) -> dict[str, str]:
    """S3 user metadata travels in HTTP headers: ASCII only. Non-ASCII text is percent-encoded
    (reversible with `urllib.parse.unquote`); None values are left out; the total stays under 2 KB."""
    out: dict[str, str] = {}
    used = 0
    for key, value in values.items():
        if value is None:
            continue
        name = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "-") else "-" for ch in str(key).lower())
        text = quote(str(value), safe=_SAFE)
        if used + len(name) + len(text) > _METADATA_LIMIT:
            text = text[: max(0, _METADATA_LIMIT - used - len(name))]
            text = text[: text.rfind("%")] if "%" in text[-3:] else text  # never cut an escape in half
        if text:
            out[name] = text
            used += len(name) + len(text)
    return out


def retain_until(days: int, now: datetime | None = None) -> datetime:
    """Object Lock retain-until date `days` from now (timedelta arithmetic: no day-of-month overflow)."""
    now = now or datetime.now(timezone.utc)
    return (now + timedelta(days=days)).replace(microsecond=0)


def object_lock_args(lock: dict[str, Any] | None, now: datetime | None = None) -> dict[str, Any]:
    """PutObject arguments for `spec.storage.codeObjectLock` ({mode, retention_days})."""
    if not lock:
        return {}
    mode = str(lock.get("mode") or "GOVERNANCE")
    mode = getattr(lock.get("mode"), "value", mode)
    days = int(lock.get("retention_days") or lock.get("retentionDays") or 30)
    return {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": retain_until(days, now)}


# ------------------------------------------------------------------------------- progress


class ObjectProgress:
    """Bytes sent for one object, as s3transfer reports them from its worker threads.

    s3transfer reports negative amounts when botocore rewinds a request body to retry it:
    `reported` is the high-water mark, never above the total, so what users see only moves
    forward and ends at exactly 100%.
    """

    def __init__(self, total: int, sink: Callable[[int, int], None] | None = None):
        self.total = total
        self._sink = sink
        self._lock = threading.Lock()
        self._current = 0
        self.reported = 0
        self._last_percent = -1

    def __call__(self, nbytes: int) -> None:
        with self._lock:
            self._current = max(0, self._current + nbytes)
            reported = min(self.total, max(self.reported, self._current))
            if reported == self.reported and self._last_percent >= 0:
                return
            self.reported = reported
            percent = int(100 * reported / self.total) if self.total else 100
            if percent == self._last_percent:
                return
            self._last_percent = percent
        if self._sink:
            self._sink(reported, self.total)

    def finish(self) -> None:
        """The object is confirmed stored: 100%."""
        with self._lock:
            if self.reported == self.total and self._last_percent == 100:
                return
            self.reported = self.total
            self._last_percent = 100
        if self._sink:
            self._sink(self.total, self.total)

    @property
    def percent(self) -> float:
        return round(100.0 * self.reported / self.total, 1) if self.total else 100.0


# ---------------------------------------------------------------------------------- store


@dataclass
class StoredObject:
    bucket: str
    key: str
    size: int
    seconds: float

    @property
    def uri(self) -> str:
        return s3_uri(self.bucket, self.key)


class S3Store:
    """Thin, blocking S3 operations with the configured transfer settings and encryption."""

    def __init__(self, client: Any, config: AWSConfig):
        self.client = client
        self.config = config
        self.transfer = TransferConfig(
            multipart_threshold=int(config.multipart_threshold),
            multipart_chunksize=int(config.chunk_size),
            max_concurrency=config.max_concurrent_uploads,
            use_threads=True,
        )

    def upload_file(
        self,
        path: Path,
        bucket: str,
        key: str,
        *,
        content_type: str,
        metadata: dict[str, Any] | None = None,
        progress: ObjectProgress | None = None,
        extra: dict[str, Any] | None = None,
    ) -> StoredObject:
        args: dict[str, Any] = {"ContentType": content_type, **self.config.sse_args(), **(extra or {})}
        if metadata:
            args["Metadata"] = ascii_metadata(metadata)
        started = time.monotonic()
        self.client.upload_file(str(path), bucket, key, ExtraArgs=args, Callback=progress, Config=self.transfer)
        size = Path(path).stat().st_size
        return StoredObject(bucket, key, size, time.monotonic() - started)

    def put_bytes(
        self,
        data: bytes,
        bucket: str,
        key: str,
        *,
        content_type: str,
        metadata: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> StoredObject:
        args: dict[str, Any] = {"ContentType": content_type, **self.config.sse_args(), **(extra or {})}
        if metadata:
            args["Metadata"] = ascii_metadata(metadata)
        if "ObjectLockMode" in args:
            # Object Lock requires an integrity checksum on PutObject.
            args.setdefault("ChecksumAlgorithm", "SHA256")
        started = time.monotonic()
        self.client.put_object(Bucket=bucket, Key=key, Body=data, **args)
        return StoredObject(bucket, key, len(data), time.monotonic() - started)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        response = self.client.get_object(Bucket=bucket, Key=key)
        with response["Body"] as body:
            return body.read()

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def check_bucket(self, bucket: str) -> dict[str, Any]:
        """HeadBucket; raises ClientError (404 NoSuchBucket, 403 AccessDenied) when unusable."""
        self.client.head_bucket(Bucket=bucket)
        info: dict[str, Any] = {"bucket": bucket}
        try:
            lock = self.client.get_object_lock_configuration(Bucket=bucket)
            info["object_lock"] = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
        except Exception:  # noqa: BLE001 - informational only; absent configuration is an error on AWS
            info["object_lock"] = False
        return info

    def create_bucket(self, bucket: str, *, object_lock: bool = False) -> bool:
        """Create the bucket (development); False when it already exists and is ours."""
        try:
            self.client.head_bucket(Bucket=bucket)
            return False  # us-east-1 answers CreateBucket of an own bucket with 200: ask first
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        args: dict[str, Any] = {"Bucket": bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if object_lock:
            args["ObjectLockEnabledForBucket"] = True
        try:
            self.client.create_bucket(**args)
        except self.client.exceptions.BucketAlreadyOwnedByYou:
            return False
        except self.client.exceptions.BucketAlreadyExists:
            self.client.head_bucket(Bucket=bucket)  # raises unless it is ours after all
            return False
        return True
