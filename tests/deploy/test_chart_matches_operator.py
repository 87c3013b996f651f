"""The chart and the operator agree: the arguments the Deployment passes parse with the real CLI, the
environment it sets loads with the real settings classes, and worker Jobs inherit every AWS setting."""

from __future__ import annotations

import json

import pytest

from tests.deploy.conftest import FULL_VALUES
from videojob.cli.main import build_parser
from videojob.config import Settings, load_settings
from videojob.controller.jobspec import PASSED_ENV, build_job
from videojob.storage.aws_config import ENV_NAMES, load_aws_config


@pytest.fixture(scope="module")
def full(render):
    # The dashboard toggle is beside the point here.
    return render(FULL_VALUES, set_=["grafanaDashboard.enabled=false"])


def test_default_args_parse_with_the_operator_cli(render):
    args = build_parser().parse_args(render().container()["args"])
    assert args.verb == "operator"
    assert args.all_namespaces is True and not args.namespaces
    assert (args.metrics_port, args.liveness_port, args.log_format) == (8000, 8080, "json")


def test_namespaced_args_parse_with_the_operator_cli(full):
    args = build_parser().parse_args(full.container()["args"])
    assert args.namespaces == ["videos", "videos-staging"]
    assert args.all_namespaces is False
    assert args.info_metric is True


def test_rendered_environment_loads_with_the_operators_settings(full, monkeypatch):
    env = full.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.executor == "job"
    assert settings.max_concurrent_jobs == 8
    assert settings.llm_model.startswith("bedrock_converse:")
    assert str(settings.workdir) == "/var/lib/videojob"
    assert settings.job_ttl_seconds_after_finished == 1800
    assert settings.job_pod_start_timeout_seconds == 300
    assert json.loads(settings.job_pod_defaults)["priorityClassName"] == "batch-low"
    aws = load_aws_config()
    assert aws.enabled and aws.video_bucket_name == "acme-videojob-videos"
    assert aws.code_bucket_name == "acme-videojob-code"
    assert int(aws.multipart_threshold) == 64 * 1024 * 1024
    assert int(aws.chunk_size) == 16 * 1024 * 1024
    assert (aws.max_concurrent_uploads, aws.max_retries, aws.retry_mode) == (4, 0, "adaptive")
    assert aws.sse_args()["ServerSideEncryption"] == "aws:kms"


def test_every_variable_the_chart_sets_is_one_the_operator_reads(full):
    known = {f"VIDEOJOB_{name.upper()}" for name in Settings.model_fields}
    known |= set(ENV_NAMES.values()) | {"AWS_ENDPOINT_URL"}
    # TZ comes from operator.extraEnv; POD_NAMESPACE (downward API) names the leader Lease's namespace.
    chart_env = {e["name"] for e in full.container()["env"]} - {"TZ", "POD_NAMESPACE"}
    assert "POD_NAMESPACE" in {e["name"] for e in full.container()["env"]}
    assert sorted(chart_env - known) == []


def test_worker_jobs_inherit_every_aws_and_render_setting(full):
    env = full.env()
    inherited = {k for k in env if k.startswith("AWS_")} | {
        "VIDEOJOB_LLM_MODEL", "VIDEOJOB_SCENE_PARALLELISM", "VIDEOJOB_RENDER_MEMORY_MB",
        "VIDEOJOB_RENDER_MAX_OUTPUT_MB", "VIDEOJOB_REPAIR_MEMORY"}
    assert sorted(inherited - set(PASSED_ENV)) == []


def test_worker_job_runs_the_chart_image_as_the_chart_service_account(full, monkeypatch):
    for name, value in full.env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    videojob = {"metadata": {"name": "fourier", "namespace": "videos", "generation": 1, "uid": "u-1"},
                "spec": {"topic": "Fourier"}}
    job = build_job(videojob, 1, settings, environ=full.env())
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == full.container()["image"]
    assert pod["serviceAccountName"] == "videojob-worker"
    # Worker pods pull the image with the same registry credentials as the operator.
    assert pod["imagePullSecrets"] == full.one("Deployment")["spec"]["template"]["spec"]["imagePullSecrets"]
    # The worker ServiceAccount the chart made exists in that namespace.
    assert full.one("ServiceAccount", "videojob-worker", "videos")
    assert job["spec"]["ttlSecondsAfterFinished"] == 1800
    # The image's ENTRYPOINT is `tini -- videojob`: args alone must form the worker command line.
    assert "command" not in container and container["args"][0] == "worker"
    assert pod["nodeSelector"] == {"workload": "render"}


def test_the_pod_start_timeout_is_a_chart_value(render, monkeypatch):
    default = Settings.model_fields["job_pod_start_timeout_seconds"].default
    assert render().env()["VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS"] == str(default)  # the operator's own default
    rendered = render(set_=["worker.podStartTimeoutSeconds=120"])
    monkeypatch.setenv("VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS", rendered.env()["VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS"])
    assert load_settings().job_pod_start_timeout_seconds == 120 != default
    from tests.deploy.conftest import HelmError

    with pytest.raises(HelmError, match="podStartTimeoutSeconds"):
        render(set_=["worker.podStartTimeoutSeconds=0"])
    assert "VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS" not in render(set_=["operator.executor=inline"]).env()
