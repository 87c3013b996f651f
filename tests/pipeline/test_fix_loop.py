"""The self-healing loop with a scripted chat model: a render error goes back to code generation."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from videojob.api.manifest import parse_videojob
from videojob.config import Settings
from videojob.run import run_videojob
from tests.pipeline.conftest import videojob

pytestmark = pytest.mark.render

PLAN = json.dumps({"scenes": [{"title": "A circle", "goal": "show a circle", "duration_seconds": 1}]})
BROKEN = "```python\nfrom manim import *\n\nclass Scene01(Scene):\n    def construct(self):\n        self.play(Create(Circel()))\n```"
FIXED = "```python\nfrom manim import *\n\nclass Scene01(Scene):\n    def construct(self):\n        self.play(Create(Circle()), run_time=1)\n```"


def prompt_job(max_attempts: int = 3):
    return parse_videojob(
        videojob({"topic": "Circles", "prompt": "Show a circle", "projectId": "tests",
                  "render": {"quality": "low", "maxSceneAttempts": max_attempts}})
    )


def scripted(*answers: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=a) for a in answers]))


async def test_failed_render_is_fixed_by_the_model(tmp_path):
    result = await run_videojob(prompt_job(), settings=Settings(), store_root=tmp_path, llm=scripted(PLAN, BROKEN, FIXED))
    assert result.succeeded, result.error
    scene = result.state.scenes[0]
    assert scene.attempts == 2
    assert "NameError" in scene.history[0].error and "Circel" in scene.history[0].error
    assert scene.history[1].error is None
    status = result.status
    code_stage = next(s for s in status.stages if s.name == "GeneratingCode")
    render_stage = next(s for s in status.stages if s.name == "Rendering")
    assert code_stage.attempts == 2 and render_stage.attempts == 2
    assert status.usage.llm_calls == 3
    assert (tmp_path / "tests" / "demo-video" / "v1" / "plan.json").is_file()


async def test_attempts_are_bounded_and_the_failure_names_the_scene(tmp_path):
    result = await run_videojob(prompt_job(max_attempts=2), settings=Settings(), store_root=tmp_path,
                                llm=scripted(PLAN, BROKEN, BROKEN, FIXED))
    assert not result.succeeded
    assert result.error.reason == "RenderFailed"
    assert "scene 1 ('A circle') failed after 2 attempt(s)" in result.error.message
    assert "Circel" in result.error.message
    assert result.status.phase == "Failed"
    assert not (tmp_path / "tests" / "demo-video" / "v1").exists()  # no half-written version
