"""The real CLI against moto: `videojob aws init|health` and `videojob run` with AWS env set."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, cli_env

VIDEOJOB = str(Path(sys.executable).parent / "videojob")
HELLO = str(REPO / "examples" / "hello.yaml")


def videojob(*args: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([VIDEOJOB, *args], env=cli_env(env), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def status_of(proc: subprocess.CompletedProcess) -> dict:
    return yaml.safe_load(proc.stdout)["status"]


def condition(status: dict, type_: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_aws_init_is_idempotent_and_health_reports_each_resource(aws_env, tmp_path):
    first = videojob("aws", "init", env=aws_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert sorted(report["init"]["created"]) == sorted(
        [f"s3://{aws_env['AWS_S3_VIDEO_BUCKET']}", f"s3://{aws_env['AWS_S3_CODE_BUCKET']}", f"dynamodb:{aws_env['AWS_DYNAMODB_TABLE']}"]
    )
    again = videojob("aws", "init", env=aws_env, cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["init"]["created"] == []

    health = videojob("aws", "health", env=aws_env, cwd=tmp_path)
    assert health.returncode == 0, health.stdout
    report = json.loads(health.stdout)
    assert report["overall_status"] == "healthy"
    assert [report[k]["status"] for k in ("video_bucket", "code_bucket", "table")] == ["healthy"] * 3
    assert report["code_bucket"]["object_lock"] is True

    missing_table = videojob("aws", "health", env={**aws_env, "AWS_DYNAMODB_TABLE": "NoSuchTable"}, cwd=tmp_path)
    assert missing_table.returncode == 1
    report = json.loads(missing_table.stdout)
    assert report["overall_status"] == "degraded"
    assert report["table"]["status"] == "unavailable" and "ResourceNotFound" in report["table"]["error"]


def test_aws_health_with_nothing_reachable_is_unavailable(aws_env, tmp_path):
    proc = videojob("aws", "health", env={**aws_env, "AWS_ENDPOINT_URL": closed_port_url()}, cwd=tmp_path)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["overall_status"] == "unavailable"


@pytest.mark.parametrize("verb", [["aws", "health"], ["run", HELLO, "--output-dir", "out"]])
def test_a_bad_aws_setting_is_named_without_a_traceback(aws_env, tmp_path, verb):
    proc = videojob(*verb, env={**aws_env, "AWS_CHUNK_SIZE": "1KB"}, cwd=tmp_path)
    assert proc.returncode == 2
    assert "AWS_CHUNK_SIZE" in proc.stderr and "5 MiB" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_aws_verbs_without_a_bucket_say_which_variable_is_missing(aws_env, tmp_path):
    env = {k: v for k, v in aws_env.items() if k != "AWS_S3_VIDEO_BUCKET"}
    proc = videojob("aws", "health", env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "AWS_S3_VIDEO_BUCKET" in proc.stderr


def test_videojob_run_uploads_video_and_code_and_records_the_version(aws_env, tmp_path, s3_client, dynamodb_client):
    assert videojob("aws", "init", env=aws_env, cwd=tmp_path).returncode == 0
    videos, code, table = aws_env["AWS_S3_VIDEO_BUCKET"], aws_env["AWS_S3_CODE_BUCKET"], aws_env["AWS_DYNAMODB_TABLE"]

    proc = videojob("run", HELLO, "--output-dir", str(tmp_path / "out"), "--no-progress", env=aws_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    status = status_of(proc)
    assert status["phase"] == "Succeeded" and status["version"] == 1
    assert status["outputs"]["videoURI"] == f"s3://{videos}/videos/demo/hello/v1/hello.mp4"
    assert status["outputs"]["codeURI"] == f"s3://{code}/code/demo/hello/v1/hello.py"
    assert status["upload"]["status"] == "completed" and status["upload"]["percent"] == 100.0
    assert status["upload"]["bytesUploaded"] == status["outputs"]["sizeBytes"]
    assert status["codeUpload"]["status"] == "completed"
    assert status["record"] == {"table": table, "videoKey": "demo/hello", "version": 1}
    assert condition(status, "Uploaded")["status"] == "True"

    head = s3_client.head_object(Bucket=videos, Key="videos/demo/hello/v1/hello.mp4")
    assert head["ContentLength"] == status["outputs"]["sizeBytes"] and head["ContentType"] == "video/mp4"
    assert head["Metadata"]["sha256"] == status["outputs"]["sha256"]
    listed = {o["Key"] for o in s3_client.list_objects_v2(Bucket=videos)["Contents"]}
    assert {"videos/demo/hello/v1/scenes/scene_01.mp4", "videos/demo/hello/v1/scenes/scene_02.mp4"} <= listed
    listed = {o["Key"] for o in s3_client.list_objects_v2(Bucket=code)["Contents"]}
    assert {"code/demo/hello/v1/hello.py", "code/demo/hello/v1/scenes/scene_01.py", "code/demo/hello/v1/scenes/scene_02.py"} <= listed

    item = dynamodb_client.get_item(TableName=table, Key={"video_key": {"S": "demo/hello"}, "version": {"N": "1"}})["Item"]
    assert item["status"]["S"] == "completed"
    assert item["video_uri"]["S"] == status["outputs"]["videoURI"] and item["code_uri"]["S"] == status["outputs"]["codeURI"]
    assert (item["project_id"]["S"], item["video_id"]["S"], item["scene_count"]["N"]) == ("demo", "hello", "2")
    # The local copy stays, under the same version number.
    assert (tmp_path / "out" / "demo" / "hello" / "v1" / "hello.mp4").stat().st_size == status["outputs"]["sizeBytes"]

    second = videojob("run", HELLO, "--output-dir", str(tmp_path / "out"), "--no-progress", env=aws_env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert status_of(second)["outputs"]["videoURI"] == f"s3://{videos}/videos/demo/hello/v2/hello.mp4"


def test_run_with_aws_unreachable_succeeds_and_keeps_the_video_locally(aws_env, tmp_path):
    env = {**aws_env, "AWS_ENDPOINT_URL": closed_port_url(), "AWS_MAX_RETRIES": "0"}
    proc = videojob("run", HELLO, "--output-dir", str(tmp_path / "out"), "--no-progress", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    status = status_of(proc)
    assert status["phase"] == "Succeeded"
    assert status["upload"]["status"] == "failed_graceful"
    uploaded = condition(status, "Uploaded")
    assert uploaded["status"] == "False" and uploaded["reason"] == "UploadFailedKeptLocally"
    assert "DynamoDB" in uploaded["message"]
    video = Path(status["outputs"]["videoURI"].removeprefix("file://"))
    assert video.is_file() and video.stat().st_size == status["outputs"]["sizeBytes"]


def test_run_with_required_upload_fails_with_the_reason(aws_env, tmp_path):
    env = {**aws_env, "AWS_ENDPOINT_URL": closed_port_url(), "AWS_MAX_RETRIES": "0", "AWS_REQUIRE_UPLOAD": "true"}
    proc = videojob("run", HELLO, "--output-dir", str(tmp_path / "out"), "--no-progress", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    status = status_of(proc)
    assert status["phase"] == "Failed"
    succeeded = condition(status, "Succeeded")
    assert succeeded["status"] == "False" and succeeded["reason"] == "UploadFailed"
    assert "required" in succeeded["message"] and "Traceback" not in proc.stderr
