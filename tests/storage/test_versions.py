"""Versions in DynamoDB: conditional allocation, restarts, records, editing from S3."""

from __future__ import annotations

import asyncio
import shutil
import threading

import pytest

from videojob.storage.aws_publisher import AWSPublisher
from videojob.storage import dynamo
from videojob.storage.local import LocalVersionStore


def items(client, table, key="demo/fourier"):
    response = client.query(
        TableName=table, KeyConditionExpression="video_key = :k", ExpressionAttributeValues={":k": {"S": key}},
        ConsistentRead=True,
    )
    return [dynamo.from_item(i) for i in response["Items"]]


async def publish(publisher, art):
    outcome = await publisher.upload(art)
    return outcome, (await publisher.record(art, outcome)).record


async def test_two_threads_never_get_the_same_version(make_service, aws_env):
    service = await make_service()
    table = service.table
    rounds, got, errors = 20, {0: [], 1: []}, []
    barrier = threading.Barrier(2)

    def worker(n: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()
                number, existing = table.reserve(project_id="demo", video_id="race", topic="t", k8s_uid=f"uid-{n}", k8s_generation=r)
                assert existing is None
                got[n].append(number)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    all_numbers = got[0] + got[1]
    assert sorted(all_numbers) == list(range(1, 2 * rounds + 1))
    # Each number's item still belongs to the thread that got it: nothing was overwritten.
    stored = {i["version"]: i["k8s_uid"] for i in table.items("demo/race")}
    for n in (0, 1):
        assert all(stored[v] == f"uid-{n}" for v in got[n])


async def test_version_one_then_two_edits_code_downloaded_from_s3(tmp_path, make_service, aws_env, s3_client, dynamodb_client, make_artifacts):
    service = await make_service()
    store = LocalVersionStore(tmp_path / "out")
    publisher = AWSPublisher(store, service.config, service)

    v1, record1 = await publish(publisher, make_artifacts(code="first", uid="u1", generation=1))
    assert (v1.version, v1.upload_status, v1.code_upload_status) == (1, "completed", "completed")
    assert record1.video_uri == f"s3://{aws_env['AWS_S3_VIDEO_BUCKET']}/videos/demo/fourier/v1/fourier.mp4"
    assert record1.code_uri == f"s3://{aws_env['AWS_S3_CODE_BUCKET']}/code/demo/fourier/v1/fourier.py"

    # The editing run may be on another machine: nothing local, the code comes from S3.
    shutil.rmtree(tmp_path / "out")
    previous = await publisher.previous_version("demo", "fourier")
    assert previous.version == 1
    assert previous.combined_code == "from manim import *\n# first\n"
    assert previous.scene_codes == ["from manim import *\nclass Scene1(Scene):\n    pass  # first\n"]
    assert previous.plan == {"scenes": [{"title": "Intro"}]}

    v2, record2 = await publish(publisher, make_artifacts(code="second", uid="u1", generation=2, parent=previous.version))
    assert v2.version == 2 and record2.parent_version == 1
    stored = {i["version"]: i for i in items(dynamodb_client, aws_env["AWS_DYNAMODB_TABLE"])}
    assert set(stored) == {1, 2}
    assert stored[2]["parent_version"] == 1 and stored[2]["status"] == "completed"
    assert stored[2]["code_uri"].endswith("/code/demo/fourier/v2/fourier.py")
    # Version 1 is untouched; the local copy of v2 holds the same record.
    body = s3_client.get_object(Bucket=aws_env["AWS_S3_CODE_BUCKET"], Key="code/demo/fourier/v1/fourier.py")["Body"].read()
    assert body == b"from manim import *\n# first\n"
    assert (store.version_dir("demo", "fourier", 2) / "fourier.mp4").is_file()
    assert [r.version for r in store.list_versions("demo", "fourier")] == [2]
    assert (await publisher.previous_version("demo", "fourier", 1)).combined_code.endswith("# first\n")


async def test_the_dynamodb_item_has_the_design_attributes(tmp_path, make_service, aws_env, dynamodb_client, make_artifacts):
    service = await make_service()
    publisher = AWSPublisher(LocalVersionStore(tmp_path / "out"), service.config, service)
    art = make_artifacts(uid="uid-7", generation=3, topic="Fourier — 傅里叶")
    await publish(publisher, art)
    (item,) = items(dynamodb_client, aws_env["AWS_DYNAMODB_TABLE"])
    assert {
        "video_key", "version", "project_id", "video_id", "topic", "status", "video_uri", "code_uri", "size_bytes",
        "duration_seconds", "scene_count", "created_at", "k8s_uid", "k8s_generation",
    } <= set(item)
    assert item["video_key"] == "demo/fourier" and item["version"] == 1
    assert item["topic"] == "Fourier — 傅里叶"  # DynamoDB keeps Unicode as is
    assert (item["size_bytes"], item["scene_count"], item["k8s_uid"], item["k8s_generation"]) == (art.size_bytes, 1, "uid-7", 3)
    assert item["sha256"] == art.sha256
    # The GSI lists the project's versions.
    (listed,) = await service.project_versions("demo")
    assert listed.video_key == "demo/fourier"


async def test_a_restarted_run_reuses_its_version(tmp_path, make_service, aws_env, dynamodb_client, make_artifacts):
    service = await make_service()
    publisher = AWSPublisher(LocalVersionStore(tmp_path / "out"), service.config, service)
    art = make_artifacts(uid="uid-1", generation=1)
    first = await publisher.upload(art)  # the run dies here, before recording
    again = await publisher.upload(art)  # the restarted run
    assert again.version == first.version == 1
    await publisher.record(art, again)
    after = await publisher.upload(art)  # one more restart after it finished: nothing new
    assert after.already_recorded is not None and after.version == 1
    other = await publisher.upload(make_artifacts(uid="uid-1", generation=2))
    assert other.version == 2
    assert [i["version"] for i in items(dynamodb_client, aws_env["AWS_DYNAMODB_TABLE"])] == [1, 2]


async def test_a_completed_record_is_never_overwritten(tmp_path, make_service, make_artifacts):
    service = await make_service()
    publisher = AWSPublisher(LocalVersionStore(tmp_path / "out"), service.config, service)
    _, record = await publish(publisher, make_artifacts(uid="a", generation=1))
    intruder = record.model_copy(update={"k8s_uid": "b", "topic": "other"})
    with pytest.raises(dynamo.VersionConflict):
        await service.record_version(intruder)
    assert (await service.latest_version("demo", "fourier")).k8s_uid == "a"


async def test_concurrent_publishes_of_one_video_both_survive(tmp_path, make_service, aws_env, make_artifacts):
    service = await make_service()
    publisher = AWSPublisher(LocalVersionStore(tmp_path / "out"), service.config, service)
    results = await asyncio.gather(
        publish(publisher, make_artifacts(uid="a", generation=1, code="a")),
        publish(publisher, make_artifacts(uid="b", generation=1, code="b")),
    )
    assert sorted(r[1].version for r in results) == [1, 2]
    listed = await service.list_versions("demo", "fourier")
    assert {(r.version, r.k8s_uid) for r in listed} == {(r[1].version, r[1].k8s_uid) for r in results}
    for outcome, record in results:
        code = await service.download_code("demo", "fourier", record.version)
        assert code.combined_code.endswith(f"# {record.k8s_uid}\n")


async def test_spec_code_object_lock_reaches_the_code_objects(tmp_path, make_service, aws_env, s3_client, make_artifacts):
    service = await make_service()
    publisher = AWSPublisher(LocalVersionStore(tmp_path / "out"), service.config, service)
    outcome, _ = await publish(publisher, make_artifacts(code_object_lock={"mode": "GOVERNANCE", "retention_days": 2}))
    assert outcome.code_upload_status == "completed"
    code = s3_client.head_object(Bucket=aws_env["AWS_S3_CODE_BUCKET"], Key="code/demo/fourier/v1/fourier.py")
    assert code["ObjectLockMode"] == "GOVERNANCE"
    video = s3_client.head_object(Bucket=aws_env["AWS_S3_VIDEO_BUCKET"], Key="videos/demo/fourier/v1/fourier.mp4")
    assert "ObjectLockMode" not in video  # only code is locked
