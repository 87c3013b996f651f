"""Fault injection through a proxy in front of moto: what is retried, how often, and what is not."""

from __future__ import annotations

import os

import pytest
from prometheus_client import REGISTRY

from videojob.storage.aws_publisher import AWSPublisher
from videojob.pipeline.errors import UploadFailed
from videojob.storage.aws_service import VideoMetadata
from videojob.storage.local import LocalVersionStore
from videojob.storage.retry import AWSError

MiB = 1024 * 1024


def put_to(key_part: str):
    return lambda r: r.method == "PUT" and key_part in r.path and "partNumber" not in r.query


def aws_errors(service: str, operation: str, retryable: str) -> float:
    value = REGISTRY.get_sample_value(
        "videojob_aws_errors_total", {"service": service, "operation": operation, "retryable": retryable}
    )
    return value or 0.0


async def test_server_errors_are_retried_by_botocore(tmp_path, make_service, fault_proxy):
    service = await make_service()
    fault_proxy.fail(2, 500, "InternalError", put_to("/videos/"))
    video = tmp_path / "v.mp4"
    video.write_bytes(os.urandom(4096))
    result = await service.upload_video_with_metadata(video, VideoMetadata("demo", "flaky", 1))
    assert fault_proxy.count(put_to("/videos/demo/flaky/v1/flaky.mp4")) == 3
    assert result.retries == 2


async def test_slowdown_is_retried(make_service, fault_proxy):
    service = await make_service()
    fault_proxy.fail(2, 503, "SlowDown", put_to("/code/"))
    result = await service.upload_code("demo", "slow", 1, "x = 1\n")
    assert fault_proxy.count(put_to("/code/demo/slow/v1/slow.py")) == 3
    assert result.retries == 2


async def test_a_request_is_tried_at_most_max_retries_plus_one_times(tmp_path, make_service, fault_proxy):
    service = await make_service()  # AWS_MAX_RETRIES=3: 4 attempts per request, and no layer above
    before = aws_errors("s3", "upload_file", "true")
    fault_proxy.fail(100, 500, "InternalError", put_to("/videos/"))
    video = tmp_path / "v.mp4"
    video.write_bytes(os.urandom(4096))
    with pytest.raises(AWSError) as failed:
        await service.upload_video_with_metadata(video, VideoMetadata("demo", "flaky", 1))
    assert failed.value.retryable is True and failed.value.code == "InternalError"
    assert fault_proxy.count(put_to("/videos/demo/flaky/v1/flaky.mp4")) == 4
    assert aws_errors("s3", "upload_file", "true") == before + 1  # one failed operation


async def test_access_denied_is_not_retried(tmp_path, make_service, fault_proxy):
    service = await make_service()
    before = aws_errors("s3", "upload_file", "false")
    fault_proxy.fail(100, 403, "AccessDenied", put_to("/videos/"))
    video = tmp_path / "v.mp4"
    video.write_bytes(b"data")
    with pytest.raises(AWSError) as failed:
        await service.upload_video_with_metadata(video, VideoMetadata("demo", "denied", 1))
    assert failed.value.retryable is False and failed.value.code == "AccessDenied"
    assert fault_proxy.count(put_to("/videos/")) == 1
    assert aws_errors("s3", "upload_file", "false") == before + 1


async def test_throttled_dynamodb_write_is_retried(tmp_path, make_service, fault_proxy, aws_env, make_artifacts):
    service = await make_service()
    publisher = AWSPublisher(LocalVersionStore(tmp_path / "out"), service.config, service)
    art = make_artifacts()
    outcome = await publisher.upload(art)
    is_put = lambda r: r.dynamodb_operation == "PutItem"  # noqa: E731
    fault_proxy.fail(2, 400, "ProvisionedThroughputExceededException", is_put)
    record = (await publisher.record(art, outcome)).record
    assert fault_proxy.count(is_put) == 1 + 3  # the reservation, then the record after two throttles
    assert (await service.latest_version("demo", "fourier")).version == record.version


async def test_multipart_progress_stays_within_100_percent_across_retries(tmp_path, make_service, fault_proxy, s3_client):
    service = await make_service(multipart_threshold="5MiB", chunk_size="5MiB", max_concurrent_uploads=2)
    # Part 2 fails three times: botocore retries that part alone (rewinding its progress), the
    # other parts are sent once.
    part2 = lambda r: r.method == "PUT" and "partNumber=2" in r.query  # noqa: E731
    part1 = lambda r: r.method == "PUT" and "partNumber=1" in r.query  # noqa: E731
    fault_proxy.fail(3, 500, "InternalError", part2)
    video = tmp_path / "v.mp4"
    size = 11 * MiB
    video.write_bytes(os.urandom(size))
    seen = []
    result = await service.upload_video_with_metadata(
        video, VideoMetadata("demo", "parts", 1), lambda vid, done, total, pct: seen.append((done, total, pct))
    )
    assert fault_proxy.count(part2) == 4 and fault_proxy.count(part1) == 1
    assert result.retries == 3
    assert all(done <= total == size and pct <= 100.0 for done, total, pct in seen)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)  # never goes backwards
    assert seen[-1] == (size, size, 100.0)
    assert s3_client.head_object(Bucket=result.bucket, Key=result.key)["ContentLength"] == size


async def test_access_denied_degrades_gracefully_unless_required(tmp_path, make_service, fault_proxy, make_artifacts):
    service = await make_service()
    store = LocalVersionStore(tmp_path / "out")
    publisher = AWSPublisher(store, service.config, service)
    fault_proxy.fail(100, 403, "AccessDenied", put_to("/videos/"))

    art = make_artifacts(uid="u", generation=1)
    outcome = await publisher.upload(art)
    assert outcome.upload_status == "failed_graceful"
    assert "AccessDenied" in outcome.error
    assert outcome.video_uri.startswith("file://")
    record = (await publisher.record(art, outcome)).record
    assert record.status == "local_only"
    assert (store.version_dir("demo", "fourier", 1) / "fourier.mp4").read_bytes() == art.video.read_bytes()

    required = make_artifacts(uid="u", generation=2, required=True)
    with pytest.raises(UploadFailed) as failed:
        await publisher.upload(required)
    assert "AccessDenied" in failed.value.message and "required" in failed.value.message
    # Nothing lost: the files wait in the local store for the retried run.
    assert (store.video_dir("demo", "fourier") / ".v2.partial" / "fourier.mp4").is_file()
