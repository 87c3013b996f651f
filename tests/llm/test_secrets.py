"""Credentials reach the LLM client and nothing else: not the logs, not status, not the state,
not the process environment, not the render sandbox (whose whole environment a scene dumps here)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from videojob.config import Settings
from videojob.run import run_videojob

from tests.llm.conftest import Completion, fenced, good_code, make_job, plan_json

pytestmark = pytest.mark.render

OPENAI_KEY = "sk-leakcheck-5f1e2d3c4b5a69788796a5b4"
AWS_SECRET = "aws-leakcheck-Zq8yX7wV6uT5sR4qP3oN"

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


async def test_no_credential_leaks_anywhere(openai_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    def respond(body):
        prompt = "\n".join(str(m.get("content")) for m in body["messages"])
        if "plan short educational videos" in prompt:
            return Completion(plan_json("Leak check"))
        if "child env:" in prompt:
            return Completion(fenced(good_code()))
        return Completion(fenced(ENV_DUMPING_SCENE))

    openai_server.respond = respond
    job = make_job(llm={"model": "openai:m-secrets", "baseUrl": openai_server.base_url,
                        "credentialsSecretRef": {"name": "llm-keys"}})
    credentials = {"OPENAI_API_KEY": OPENAI_KEY, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, credentials=credentials)
    assert result.succeeded, result.status.message

    # The key was used where it belongs...
    assert all(r.headers.get("Authorization") == f"Bearer {OPENAI_KEY}" for r in openai_server.requests)
    # ...and the sandbox really showed its environment (so its absence below means something).
    repair = [r for r in openai_server.requests if "child env:" in r.prompt]
    assert repair, "the env-dumping scene's error should have gone back to the model"
    assert "'PATH'" in repair[0].prompt and "'HOME'" in repair[0].prompt

    for secret in (OPENAI_KEY, AWS_SECRET):
        assert secret not in repair[0].prompt  # not in the render sandbox
        assert not any(secret in json.dumps(r.body) for r in openai_server.requests)
        assert secret not in caplog.text  # not in logs, even at DEBUG (openai, httpx, ours)
        assert secret not in json.dumps(result.tracker.as_dict())  # not in status
        assert secret not in result.state.model_dump_json()  # not in the pipeline state
        assert secret not in " ".join(os.environ.values())  # never put into the environment
    assert "OPENAI_API_KEY" not in repair[0].prompt and "AWS_SECRET_ACCESS_KEY" not in repair[0].prompt
