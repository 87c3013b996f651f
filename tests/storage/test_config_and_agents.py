"""AWSConfig from the environment, and the seed's enhanced-agent API."""

from __future__ import annotations

import os

import pytest

from videojob.agents import EnhancedCodeGeneratorAgent, EnhancedRendererAgent
from videojob.config import ConfigError
from videojob.pipeline.errors import UploadFailed
from videojob.pipeline.state import AgentConfig, SceneState, VideoGenerationState
from videojob.storage.aws_config import AWSConfig, load_aws_config

MiB = 1024 * 1024


def test_config_reads_the_seed_variables(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_REQUIRE_UPLOAD", "true")
    monkeypatch.setenv("AWS_MULTIPART_THRESHOLD", "64MiB")
    monkeypatch.setenv("AWS_CHUNK_SIZE", "8388608")
    monkeypatch.setenv("AWS_MAX_CONCURRENT_UPLOADS", "4")
    monkeypatch.setenv("AWS_MAX_RETRIES", "5")
    monkeypatch.setenv("AWS_KMS_KEY_ID", "alias/videos")
    config = load_aws_config()
    assert config.enabled and config.require_aws_upload
    assert (config.video_bucket_name, config.code_bucket_name) == (aws_env["AWS_S3_VIDEO_BUCKET"], aws_env["AWS_S3_CODE_BUCKET"])
    assert config.metadata_table_name == aws_env["AWS_DYNAMODB_TABLE"]
    assert (config.multipart_threshold, config.chunk_size, config.max_concurrent_uploads, config.max_retries) == (64 * MiB, 8 * MiB, 4, 5)
    assert config.sse_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/videos"}


def test_defaults_without_aws(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    config = load_aws_config()
    assert not config.enabled
    assert config.metadata_table_name == "VideoMetadata" and config.require_aws_upload is False
    assert config.sse_args() == {"ServerSideEncryption": "AES256"}


def test_code_bucket_defaults_to_the_video_bucket(aws_env, monkeypatch):
    monkeypatch.delenv("AWS_S3_CODE_BUCKET")
    config = load_aws_config()
    assert config.code_bucket_name == config.video_bucket_name


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("AWS_CHUNK_SIZE", "1MB", "between 5 MiB and 5 GiB"),
        ("AWS_MULTIPART_THRESHOLD", "lots", "byte"),
        ("AWS_MAX_CONCURRENT_UPLOADS", "0", "greater than or equal to 1"),
        ("AWS_MAX_RETRIES", "-1", "greater than or equal to 0"),
        ("AWS_REQUIRE_UPLOAD", "maybe", "boolean"),
        ("AWS_S3_VIDEO_BUCKET", "My_Bucket", "bucket name"),
        ("AWS_DYNAMODB_TABLE", "x", "table name"),
        ("AWS_RETRY_MODE", "legacy", "standard"),
    ],
)
def test_a_bad_value_names_the_variable(aws_env, monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as bad:
        load_aws_config()
    assert str(bad.value).startswith(f"{name}: ") and words in str(bad.value)


def _state(tmp_path, **kw) -> VideoGenerationState:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(6 * MiB))
    return VideoGenerationState(
        topic="Clips", project_id="demo", video_id="clip", version=1, video_path=str(video),
        combined_code="from manim import *\n", scenes=[SceneState(index=0, title="A", class_name="A", code="# a\n")], **kw,
    )


async def test_renderer_agent_reports_progress_and_status(tmp_path, make_service, aws_env):
    service = await make_service(multipart_threshold="5MiB", chunk_size="5MiB")
    agent = EnhancedRendererAgent(AgentConfig(name="r", agent_type="enhanced_renderer"), None, service.config, service=service)
    calls = []
    agent.add_upload_progress_callback(lambda vid, done, total, pct: calls.append((vid, pct)))

    async def async_cb(vid, done, total, pct):
        calls.append(("async", pct))

    agent.add_upload_progress_callback(async_cb)
    state = _state(tmp_path)
    update = await agent.execute(state)
    assert update["upload_status"] == "completed"
    assert update["aws_upload_results"]["video_uri"] == f"s3://{aws_env['AWS_S3_VIDEO_BUCKET']}/videos/demo/clip/v1/clip.mp4"
    assert calls[-2:] == [("clip", 100.0), ("async", 100.0)]
    assert agent.get_upload_progress("clip") == {
        "video_id": "clip", "bytes_uploaded": 6 * MiB, "total_bytes": 6 * MiB, "percentage": 100.0, "status": "completed",
    }
    status = agent.get_upload_status(state.model_copy(update=update))
    assert status["aws_enabled"] and status["upload_status"] == "completed" and status["progress"]["percentage"] == 100.0


async def test_code_agent_uploads_and_downloads_for_editing(tmp_path, make_service):
    service = await make_service()
    agent = EnhancedCodeGeneratorAgent(AgentConfig(name="c", agent_type="enhanced_code_generator"), None, service.config, service=service)
    update = await agent.execute(_state(tmp_path, enable_code_object_lock=True))
    assert update["code_upload_status"] == "completed" and update["code_upload_results"]["object_lock_mode"] == "GOVERNANCE"
    editing = VideoGenerationState(project_id="demo", video_id="clip", editing_existing_video=True, current_version=1)
    scenes = (await agent.execute(editing))["scenes"]
    assert [s.previous_code for s in scenes] == ["# a\n"]
    assert [s.class_name for s in scenes] == ["Scene01"]  # the same class names the pipeline gives
    status = agent.get_code_management_status(editing)
    assert status["editing_existing_video"] and status["current_version"] == 1


async def test_agents_without_aws_skip(tmp_path):
    off = AWSConfig(video_bucket_name=None)
    renderer = EnhancedRendererAgent(AgentConfig(name="r", agent_type="enhanced_renderer"), None, off)
    coder = EnhancedCodeGeneratorAgent(AgentConfig(name="c", agent_type="enhanced_code_generator"), None, None)
    assert await renderer.execute(_state(tmp_path)) == {"upload_status": "skipped"}
    assert await coder.execute(_state(tmp_path)) == {"code_upload_status": "skipped"}
    assert renderer.get_upload_status(_state(tmp_path))["aws_enabled"] is False


async def test_agent_failure_is_graceful_unless_required(tmp_path, make_service):
    service = await make_service(create=False, max_retries=0)  # no buckets: NoSuchBucket
    agent = EnhancedRendererAgent(AgentConfig(name="r", agent_type="enhanced_renderer"), None, service.config, service=service)
    update = await agent.execute(_state(tmp_path))
    assert update["upload_status"] == "failed_graceful" and "NoSuchBucket" in update["upload_error"]
    with pytest.raises(UploadFailed) as failed:
        await agent.execute(_state(tmp_path), required=True)
    assert "NoSuchBucket" in failed.value.message


def test_only_aws_prefixed_variables_are_read(aws_env, monkeypatch):
    monkeypatch.setenv("REGION", "eu-west-9")
    monkeypatch.setenv("CHUNK_SIZE", "1")
    monkeypatch.setenv("MAX_RETRIES", "9")
    config = load_aws_config()
    assert (config.region, config.chunk_size, config.max_retries) == ("us-east-1", 16 * MiB, 3)
