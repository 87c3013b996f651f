"""Structured logs: JSON lines, the VideoJob's identity on every line about it, secrets masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys

import kubernetes
import pytest

from tests.helpers import wait_for
from tests.observability.conftest import failing_code, one_scene, videojob
from videojob.logs import MASK, captured_logging, job_context, mask, redact

SECRET = "vj-test-7Hq2-secret-Zk9"


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no log output"
    return [json.loads(line) for line in lines]  # every line is one JSON object


@pytest.mark.render
def test_videojob_run_json_logs_carry_the_job_and_hide_secrets(run_cli, monkeypatch):
    # The secret comes from the environment (as an LLM key would) and leaks into a render error.
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    job = videojob(failing_code(f"cannot reach the model with key {SECRET}"), name="leaky", namespace="team-a")
    job["metadata"]["generation"] = 4

    result = run_cli(job, "--log-format", "json")

    assert result.code == 1
    records = json_lines(result.err)
    assert SECRET not in result.err
    about_job = [r for r in records if r["logger"].startswith("videojob")]
    assert len(about_job) >= 3  # stages started, the failed stage, the failure
    for record in about_job:
        assert (record["namespace"], record["name"], record["generation"]) == ("team-a", "leaky", 4), record
        assert {"time", "level", "logger", "message"} <= record.keys()
    failed = [r for r in records if r["level"] == "ERROR"]
    assert failed and MASK in failed[-1]["message"] and "RenderFailed" in failed[-1]["message"]


@pytest.mark.render
def test_videojob_run_json_logs_of_a_successful_run(run_cli):
    result = run_cli(videojob(one_scene(1), name="fine"), "--log-format", "json")
    assert result.code == 0
    stages = [r["stage"] for r in json_lines(result.err) if "stage" in r]
    assert stages[:3] == ["Planning", "GeneratingCode", "Rendering"]


async def test_job_context_follows_tasks_and_threads():
    stream = io.StringIO()
    log = logging.getLogger("videojob.test")

    async def work():
        log.info("in a task")
        await asyncio.to_thread(log.info, "in a thread")

    with captured_logging("json", stream):
        with job_context("ns-1", "job-1", 7):
            task = asyncio.create_task(work())  # started inside: carries the context
        log.info("outside")
        await task
    records = {r["message"]: r for r in json_lines(stream.getvalue())}
    for message in ("in a task", "in a thread"):
        assert (records[message]["namespace"], records[message]["name"], records[message]["generation"]) == ("ns-1", "job-1", 7)
    assert "namespace" not in records["outside"]


def test_job_context_decorates_functions():
    stream = io.StringIO()

    @job_context("ns-2", "job-2", 1)
    def step():
        logging.getLogger("videojob.test").warning("decorated")

    with captured_logging("json", stream):
        step()
    (record,) = json_lines(stream.getvalue())
    assert record["name"] == "job-2" and record["generation"] == 1


async def test_job_context_decorated_coroutines_run_concurrently():
    stream = io.StringIO()
    log = logging.getLogger("videojob.test")

    turns = [asyncio.Event() for _ in range(4)]
    inside = []

    @job_context("ns-5", "job-5", 2)
    async def step(i: int) -> None:
        inside.append(i)
        await turns[i].wait()  # they leave in the order they entered (not LIFO)
        log.info("step %d", i)
        turns[i + 1].set()

    with captured_logging("json", stream):
        running = asyncio.gather(*(step(i) for i in range(3)))
        await wait_for(lambda: len(inside) == 3, message="all three steps inside the context")
        turns[0].set()
        await running
        log.info("after")
    records = json_lines(stream.getvalue())
    assert [r["name"] for r in records if r["message"].startswith("step")] == ["job-5"] * 3
    assert "name" not in records[-1]


def test_kopf_object_lines_get_the_generation_seen_last():
    stream = io.StringIO()
    with captured_logging("json", stream):
        with job_context("ns-3", "job-3", 5):
            pass
        # Kopf's per-object logger passes the object reference as `k8s_ref`.
        logging.getLogger("kopf.objects").info("Handler 'create' succeeded.", extra={"k8s_ref": {"namespace": "ns-3", "name": "job-3"}})
    (record,) = json_lines(stream.getvalue())
    assert (record["namespace"], record["name"], record["generation"]) == ("ns-3", "job-3", 5)


def test_registered_secrets_are_masked_everywhere():
    secret = redact("s3cr3t-from-a-Secret-object")
    stream = io.StringIO()
    log = logging.getLogger("videojob.test")
    with captured_logging("json", stream):
        log.info("calling with %s", secret)
        log.warning("extra field", extra={"detail": {"key": secret}})
        try:
            raise RuntimeError(f"auth failed for {secret}")
        except RuntimeError:
            log.exception("call failed")
    out = stream.getvalue()
    assert secret not in out
    assert out.count(MASK) == 3  # message, extra field, traceback
    json_lines(out)


def test_text_format_masks_and_prefixes_the_job():
    stream = io.StringIO()
    secret = redact("another-secret-value-42")
    with captured_logging("text", stream):
        with job_context("ns-4", "job-4", 2):
            logging.getLogger("videojob.test").warning("key %s", secret)
    line = stream.getvalue().strip()
    assert "[ns-4/job-4#2]" in line and secret not in line and MASK in line


@pytest.mark.parametrize(
    "text, hidden",
    [
        ("Incorrect API key provided: sk-proj-AbCdEf0123456789xyzXYZ", "sk-proj-AbCdEf0123456789xyzXYZ"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9.payload.sig"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("access key AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
        ("password=hunter2hunter2", "hunter2hunter2"),
    ],
)
def test_credential_shapes_are_masked(text, hidden):
    assert hidden not in mask(text)


def test_ordinary_text_is_left_alone():
    text = "rendered scene_01.mp4 sha256=3f786850e387550fdab836ed7e6dc881de23001b prompt_tokens=120"
    assert mask(text) == text


class OperatorProcess:
    """`videojob operator --log-format json` as a child process against the emulated API server."""

    def __init__(self, tmp_path, kubeconfig, **settings: str):
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "VIDEOJOB_WORKDIR": str(tmp_path / "work"),
               "PYTHONUNBUFFERED": "1", **settings}
        self.stderr_path = tmp_path / "operator.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "videojob.cli.main", "operator", "--log-format", "json", "-n", "default",
             "--metrics-port", "0", "--liveness-port", "0"],  # no servers
            env=env, stdout=subprocess.DEVNULL, stderr=self._stderr,
        )

    def stop(self) -> str:
        if self._stderr.closed:
            return self.stderr_path.read_text()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._stderr.close()
        return self.stderr_path.read_text()


@pytest.mark.slow
def test_operator_json_logs_name_the_job_and_never_the_secret(apiserver, kube, rejecting_openai, tmp_path):
    secret = "sk-obs-operator-9f8e7d6c5b4a3210"
    kube.core.create_namespaced_secret(
        "default", kubernetes.client.V1Secret(metadata={"name": "llm-keys", "labels": {"videogen.io/credentials": "true"}}, string_data={"OPENAI_API_KEY": secret})
    )
    child = OperatorProcess(tmp_path, apiserver.kubeconfig, VIDEOJOB_LLM_ALLOWED_BASE_URLS=rejecting_openai.base_url)
    try:
        kube.create("leaky", {
            "topic": "Circles", "prompt": "Show a circle", "retryStrategy": {"limit": 0},
            "llm": {"model": "openai:gpt-obs", "baseUrl": rejecting_openai.base_url,
                    "credentialsSecretRef": {"name": "llm-keys"}},
        })
        try:
            status = kube.wait_phase("leaky", "Succeeded", "Failed", timeout=20)["status"]
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator stderr:\n{child.stop()[-4000:]}") from None
    finally:
        output = child.stop()
    assert status["phase"] == "Failed"
    assert rejecting_openai.requests, "the model was called with the Secret's key"
    assert secret not in output
    records = json_lines(output)
    about = [r for r in records if r.get("name") == "leaky"]
    assert about, output[-3000:]
    for record in about:
        assert (record["namespace"], record["generation"]) == ("default", 1), record
    assert not any(key in r for r in records for key in ("settings", "k8s_ref", "k8s_skip")), "no Kopf internals"
    loggers = {r["logger"] for r in about}
    # Kopf's own lines about the object, and lines logged inside the run (the LLM client's).
    assert "kopf.objects" in loggers and loggers - {"kopf.objects"}, loggers
