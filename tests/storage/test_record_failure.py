"""The DynamoDB record fails after the upload succeeded: the run still succeeds (nothing is lost),
and the status says the version is not recorded."""

from __future__ import annotations

import asyncio

import pytest

from videojob.api.manifest import parse_videojob
from videojob.config import Settings
from videojob.run import run_videojob

pytestmark = pytest.mark.render


async def test_lost_table_at_recording_is_reported_not_hidden(aws_env, make_service, dynamodb_client, tmp_path):
    await make_service()  # buckets and table exist: reservation and upload work
    job = parse_videojob({
        "apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob", "metadata": {"name": "recfail"},
        "spec": {"topic": "Record failure", "projectId": "tests", "render": {"quality": "low"},
                 "storyboard": {"scenes": [{"title": "One", "durationSeconds": 1}]}},
    })

    async def lose_table_before_recording(stage: str) -> None:
        if stage == "Recording":
            await asyncio.to_thread(dynamodb_client.delete_table, TableName=aws_env["AWS_DYNAMODB_TABLE"])

    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, before_stage=lose_table_before_recording)
    assert result.succeeded, result.error
    status = result.status
    assert status.upload.status == "completed"
    assert status.outputs.video_uri.startswith("s3://")
    recorded = next(c for c in status.conditions if c.type == "Recorded")
    assert recorded.status == "False" and recorded.reason == "RecordFailedKeptLocally"
    assert "DynamoDB" in recorded.message
    # The local copy keeps the record.
    assert (tmp_path / "tests" / "recfail" / "v1" / "record.json").is_file()
