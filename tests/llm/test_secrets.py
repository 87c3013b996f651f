"""Credentials reach the LLM client and nothing else: not the logs, not status, not Events, not an
error message, not the state, not the process environment, not the render sandbox.

The key comes from a Kubernetes Secret named by spec.llm.credentialsSecretRef and is read by the
real operator (inline executor) or the real worker (Job executor) from the emulated API server;
spec.prompt sends it to the local OpenAI-compatible server, which checks it. One job succeeds
with it; another is refused with HTTP 401 and an error that echoes the key back, as providers
do, so the error path carries it too.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import uuid

import pytest

from tests.controller.conftest import NAMESPACE, apiserver, kube, operator, workdir  # noqa: F401  (fixtures)
from tests.helpers import condition
from tests.llm.conftest import Completion, Status, fenced, good_code, make_job, plan_json
from videojob.config import Settings
from videojob.controller.kube import KubeClient
from videojob.controller.worker import EXIT_FAILED, EXIT_OK, run_worker
from videojob.logs import MASK, captured_logging, mask
from videojob.run import run_videojob

pytestmark = pytest.mark.render

AWS_SECRET = "aws-leakcheck-Zq8yX7wV6uT5sR4qP3oN"
SECRET_NAME = "llm-keys"

# Reaches os.environ without naming it (the static check refuses `environ`), the way hostile code
# would, and puts the child's whole environment into its error, which travels back to the model.
ENV_DUMPING_SCENE = '''\
from manim import *
import manim.utils.file_ops as file_ops


class Scene01(Scene):
    def construct(self):
        env = getattr(file_ops.os, "envi" + "ron")
        raise RuntimeError("child env: " + repr(sorted(env.items())))
'''


def fresh_key() -> str:
    """A key no earlier test registered for redaction, in no shape the log masks know by heart
    (no `sk-` prefix): if it is masked, it is because the reader registered it."""
    return "llmkey" + uuid.uuid4().hex


class RawRecords(logging.Handler):
    """Every log record's text before any masking: what the process tried to log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else ""))


class LogCapture:
    """The JSON log lines a user sees (our handler, DEBUG) and the raw records behind them."""

    def __enter__(self) -> "LogCapture":
        self.stream = io.StringIO()
        self.raw = RawRecords()
        self._block = captured_logging("json", self.stream, level="DEBUG")
        self._block.__enter__()
        logging.getLogger().addHandler(self.raw)
        return self

    def __exit__(self, *exc: object) -> None:
        self._block.__exit__(*exc)

    @property
    def text(self) -> str:
        return self.stream.getvalue() + "\n".join(self.raw.lines)


def answer_prompts(server, refused_model: str, key: str):
    """Plans and code for every model but `refused_model`, which gets a 401 echoing the key."""

    def respond(body):
        if body.get("model") == refused_model:
            return Status(401, retry_after=None, message=f"Incorrect API key provided: {key}. Find your key at ...")
        prompt = "\n".join(str(m.get("content")) for m in body["messages"])
        if "plan short educational videos" in prompt:
            return Completion(plan_json("Leak check"))
        return Completion(fenced(good_code()))

    server.respond = respond


def prompt_spec(server, model: str) -> dict:
    return {
        "topic": "Circles", "prompt": "Show a circle", "render": {"quality": "low"}, "retryStrategy": {"limit": 0},
        "llm": {"model": f"openai:{model}", "baseUrl": server.base_url, "credentialsSecretRef": {"name": SECRET_NAME}},
    }


def create_secret(kube, key: str) -> None:
    """As a real API server stores it: base64 `data` (stringData is write-only)."""
    encoded = base64.b64encode(key.encode()).decode()
    kube.core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": SECRET_NAME, "labels": {"videogen.io/credentials": "true"}},
                                                   "data": {"OPENAI_API_KEY": encoded}})


def assert_nowhere(key: str, *, apiserver, kube, names, logs: LogCapture) -> None:  # noqa: F811
    for name in names:
        assert key not in json.dumps(apiserver.history(NAMESPACE, name)), f"{name}: the key is in a status write"
        assert key not in json.dumps(kube.events(name)), f"{name}: the key is in an Event"
    assert key not in logs.text, "the key is in the logs"
    assert key not in " ".join(os.environ.values())
    assert mask(f"leaked {key}!") == f"leaked {MASK}!", "the key read from the Secret was not registered for redaction"


def assert_used_and_refused(server, key: str, refused_status: dict) -> None:
    """The key reached the model (so it came from the Secret), and the refusal's message made it
    into status with the key masked."""
    assert server.requests and all(r.headers.get("Authorization") == f"Bearer {key}" for r in server.requests)
    assert refused_status["phase"] == "Failed"
    assert "Incorrect API key provided" in refused_status["message"], refused_status["message"]
    assert key not in refused_status["message"] and key not in json.dumps(condition(refused_status, "Succeeded"))


async def test_a_key_from_a_secret_reaches_the_model_and_nothing_else_inline(openai_server, operator, kube, apiserver):  # noqa: F811
    key = fresh_key()
    answer_prompts(openai_server, "m-refused-inline", key)
    create_secret(kube, key)
    with LogCapture() as logs:
        operator(llm_allowed_base_urls=openai_server.base_url)  # the inline executor, in this process: its logs are captured
        kube.create("keyed", prompt_spec(openai_server, "m-secrets-inline"))
        kube.create("refused", prompt_spec(openai_server, "m-refused-inline"))
        # The fake LLM answers on this test's event loop: block elsewhere.
        done = await asyncio.to_thread(kube.wait_phase, "keyed", "Succeeded", "Failed")
        refused = (await asyncio.to_thread(kube.wait_phase, "refused", "Succeeded", "Failed"))["status"]
        for name in ("keyed", "refused"):  # every Event posted (the final one follows the status write)
            await asyncio.to_thread(kube.wait_events, name, lambda events: any(e["reason"] in ("Succeeded", "Failed")
                                                                               or e["type"] == "Warning" for e in events))
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    assert_used_and_refused(openai_server, key, refused)
    assert_nowhere(key, apiserver=apiserver, kube=kube, names=["keyed", "refused"], logs=logs)


async def test_a_key_from_a_secret_reaches_the_model_and_nothing_else_in_a_worker(openai_server, kube, apiserver, tmp_path):  # noqa: F811
    key = fresh_key()
    answer_prompts(openai_server, "m-refused-worker", key)
    create_secret(kube, key)
    kube.create("keyed", prompt_spec(openai_server, "m-secrets-worker"))
    kube.create("refused", prompt_spec(openai_server, "m-refused-worker"))
    client = KubeClient(kube.client)  # the worker's own client (in a pod: its ServiceAccount)
    settings = Settings(workdir=tmp_path / "pod", scene_parallelism=1)
    with LogCapture() as logs:
        assert await run_worker(NAMESPACE, "keyed", 1, 1, settings=settings, kube=client, min_write_interval=0.2) == EXIT_OK
        assert await run_worker(NAMESPACE, "refused", 1, 1, settings=settings, kube=client) == EXIT_FAILED
    # The worker writes and posts before it returns: nothing left to wait for.
    assert kube.status("keyed")["phase"] == "Succeeded"
    assert_used_and_refused(openai_server, key, kube.status("refused"))
    assert [e["reason"] for e in kube.events("refused")][-1] != "Started"  # the failure was posted
    assert_nowhere(key, apiserver=apiserver, kube=kube, names=["keyed", "refused"], logs=logs)


async def test_no_credential_leaks_from_the_pipeline_into_the_sandbox_or_state(openai_server, tmp_path):
    """The pipeline's side: a scene that dumps its environment never sees a credential."""
    key = fresh_key()
    logs_stream = io.StringIO()

    def respond(body):
        prompt = "\n".join(str(m.get("content")) for m in body["messages"])
        if "plan short educational videos" in prompt:
            return Completion(plan_json("Leak check"))
        if "child env:" in prompt:
            return Completion(fenced(good_code()))
        return Completion(fenced(ENV_DUMPING_SCENE))

    openai_server.respond = respond
    job = make_job(llm={"model": "openai:m-secrets", "baseUrl": openai_server.base_url,
                        "credentialsSecretRef": {"name": SECRET_NAME}})
    credentials = {"OPENAI_API_KEY": key, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    with captured_logging("json", logs_stream, level="DEBUG"):
        raw = RawRecords()
        logging.getLogger().addHandler(raw)
        result = await run_videojob(job, settings=Settings(), store_root=tmp_path, credentials=credentials)
    assert result.succeeded, result.status.message

    # The key was used where it belongs...
    assert all(r.headers.get("Authorization") == f"Bearer {key}" for r in openai_server.requests)
    # ...and the sandbox really showed its environment (so its absence below means something).
    repair = [r for r in openai_server.requests if "child env:" in r.prompt]
    assert repair, "the env-dumping scene's error should have gone back to the model"
    assert "'PATH'" in repair[0].prompt and "'HOME'" in repair[0].prompt

    for secret in (key, AWS_SECRET):
        assert secret not in repair[0].prompt  # not in the render sandbox
        assert not any(secret in json.dumps(r.body) for r in openai_server.requests)
        assert secret not in logs_stream.getvalue() and secret not in "\n".join(raw.lines)  # not in logs, even at DEBUG
        assert secret not in json.dumps(result.tracker.as_dict())  # not in status
        assert secret not in result.state.model_dump_json()  # not in the pipeline state
        assert secret not in " ".join(os.environ.values())  # never put into the environment
    assert "OPENAI_API_KEY" not in repair[0].prompt and "AWS_SECRET_ACCESS_KEY" not in repair[0].prompt
