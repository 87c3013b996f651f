"""Uploads to S3: multipart, progress, encryption, Object Lock, metadata, content types."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import pytest

from videojob.storage import s3
from videojob.storage.aws_service import VideoMetadata

MiB = 1024 * 1024


def _file(path, size: int):
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


async def test_large_video_goes_up_in_parts_with_progress_to_exactly_100(tmp_path, make_service, s3_client):
    service = await make_service(multipart_threshold="5MiB", chunk_size="5MiB", max_concurrent_uploads=3)
    video = _file(tmp_path / "v.mp4", 12 * MiB + 123)
    seen = []
    result = await service.upload_video_with_metadata(
        video, VideoMetadata("demo", "fourier", 1, topic="Fourier"), lambda vid, done, total, pct: seen.append((vid, done, total, pct))
    )
    head = s3_client.head_object(Bucket=result.bucket, Key="videos/demo/fourier/v1/fourier.mp4")
    assert head["ContentLength"] == 12 * MiB + 123
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert head["ContentType"] == "video/mp4"
    assert result.uri == f"s3://{result.bucket}/videos/demo/fourier/v1/fourier.mp4"
    assert {s[0] for s in seen} == {"fourier"}
    percents = [s[3] for s in seen]
    assert percents == sorted(percents) and max(percents) == 100.0 and percents[-1] == 100.0
    assert all(s[1] <= s[2] == 12 * MiB + 123 for s in seen)


async def test_small_video_is_one_put(tmp_path, make_service, s3_client):
    service = await make_service()
    video = _file(tmp_path / "v.mp4", 100_000)
    result = await service.upload_video_with_metadata(video, VideoMetadata("demo", "small", 1))
    head = s3_client.head_object(Bucket=result.bucket, Key=result.key)
    assert "-" not in head["ETag"].strip('"')
    assert head["ContentLength"] == 100_000


async def test_video_and_code_are_encrypted_with_aes256_by_default(tmp_path, make_service, s3_client):
    service = await make_service()
    video = await service.upload_video_with_metadata(_file(tmp_path / "v.mp4", 1000), VideoMetadata("demo", "enc", 1))
    code = await service.upload_code("demo", "enc", 1, "from manim import *\n")
    for result in (video, code):
        head = s3_client.head_object(Bucket=result.bucket, Key=result.key)
        assert head["ServerSideEncryption"] == "AES256"


async def test_kms_key_id_switches_to_sse_kms_also_for_multipart(tmp_path, make_service, s3_client):
    key_id = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    service = await make_service(kms_key_id=key_id, multipart_threshold="5MiB", chunk_size="5MiB")
    video = await service.upload_video_with_metadata(_file(tmp_path / "v.mp4", 6 * MiB), VideoMetadata("demo", "kms", 1))
    code = await service.upload_code("demo", "kms", 1, "from manim import *\n")
    for result in (video, code):
        head = s3_client.head_object(Bucket=result.bucket, Key=result.key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_id


async def test_encryption_can_be_turned_off(tmp_path, make_service, s3_client):
    service = await make_service(enable_encryption=False)
    result = await service.upload_code("demo", "plain", 1, "x = 1\n")
    assert "ServerSideEncryption" not in s3_client.head_object(Bucket=result.bucket, Key=result.key)


async def test_code_object_lock_sets_mode_and_retention_from_days(make_service, s3_client):
    service = await make_service()  # `aws init` creates the code bucket with Object Lock enabled
    before = datetime.now(timezone.utc)
    result = await service.upload_code(
        "demo", "locked", 1, "from manim import *\n", ["class A(Scene): pass\n"],
        object_lock={"mode": "COMPLIANCE", "retention_days": 30},
    )
    for key in result.keys:
        head = s3_client.head_object(Bucket=result.bucket, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        until = head["ObjectLockRetainUntilDate"]
        assert before + timedelta(days=30) - timedelta(seconds=5) <= until <= datetime.now(timezone.utc) + timedelta(days=30)
    # COMPLIANCE really protects the version: deleting it is refused.
    version_id = s3_client.head_object(Bucket=result.bucket, Key=result.key)["VersionId"]
    with pytest.raises(Exception) as refused:
        s3_client.delete_object(Bucket=result.bucket, Key=result.key, VersionId=version_id)
    assert "AccessDenied" in str(refused.value)


@pytest.mark.parametrize(
    "now, days, expected",
    [
        (datetime(2026, 1, 31, 12, tzinfo=timezone.utc), 30, datetime(2026, 3, 2, 12, tzinfo=timezone.utc)),
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc), 1, datetime(2027, 1, 1, 23, 59, 59, tzinfo=timezone.utc)),
        (datetime(2028, 2, 29, tzinfo=timezone.utc), 365, datetime(2029, 2, 28, tzinfo=timezone.utc)),
    ],
)
def test_retention_date_is_computed_with_timedelta_on_month_ends(now, days, expected):
    assert s3.object_lock_args({"mode": "GOVERNANCE", "retention_days": days}, now=now) == {
        "ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": expected,
    }


async def test_non_ascii_topic_is_percent_encoded_in_metadata(tmp_path, make_service, s3_client):
    service = await make_service()
    topic = "Séries de Fourier — 傅里叶级数 ✓ 100%"
    video = _file(tmp_path / "v.mp4", 2000)
    digest = hashlib.sha256(video.read_bytes()).hexdigest()
    result = await service.upload_video_with_metadata(video, VideoMetadata("demo", "unicode", 1, topic=topic, sha256=digest))
    meta = s3_client.head_object(Bucket=result.bucket, Key=result.key)["Metadata"]
    assert meta["topic"].isascii()
    assert unquote(meta["topic"]) == topic
    assert meta["sha256"] == digest
    assert meta["version"] == "1"


async def test_code_is_utf8_python_with_scenes_and_plan(make_service, s3_client):
    service = await make_service()
    code = "from manim import *\n# Überschrift: 傅里叶\n"
    result = await service.upload_code("demo", "code", 3, code, ["# one\n", "# two\n"], plan={"scenes": [{"title": "Ä"}]})
    assert result.keys == [
        "code/demo/code/v3/code.py", "code/demo/code/v3/scenes/scene_01.py", "code/demo/code/v3/scenes/scene_02.py",
        "code/demo/code/v3/plan.json",
    ]
    obj = s3_client.get_object(Bucket=result.bucket, Key="code/demo/code/v3/code.py")
    assert obj["ContentType"] == "text/x-python; charset=utf-8"
    assert obj["Body"].read().decode("utf-8") == code
    bundle = await service.download_code("demo", "code", 3)
    assert (bundle.combined_code, bundle.scene_codes, bundle.plan) == (code, ["# one\n", "# two\n"], {"scenes": [{"title": "Ä"}]})
