"""Layout problems are scene warnings: the video is kept and status names the scene and the problem.
Model code with repair attempts left is the exception: the problem goes back to the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from videojob.config import Settings
from videojob.run import run_videojob

from tests.llm.conftest import ScriptedChatModel, answer, codegen_calls, fenced, make_job, plan_json
from tests.narration.test_layout_repair import planning_then
from tests.pipeline.conftest import videojob

pytestmark = pytest.mark.render

OVERFLOWING_TITLE = """\
from manim import *


class Lesson(Scene):
    def construct(self):
        title = Text("A title that is far too long to fit across the frame at this size", font_size=56)
        self.play(FadeIn(title), run_time=0.3)
        self.wait(0.2)
"""

OVERLAPPING = """\
from manim import *


class Scene01(Scene):
    def construct(self):
        first = Text("First words", font_size=40)
        second = Text("Second words", font_size=40)
        self.play(FadeIn(first), FadeIn(second), run_time=0.3)
        self.wait(0.2)
"""

APART = OVERLAPPING.replace('second = Text("Second words", font_size=40)',
                            'second = Text("Second words", font_size=40).next_to(first, DOWN)')
OVERLAP_WARNING = "scene 1: Text 'First words' overlaps Text 'Second words'"


def stage(status: dict, name: str) -> dict:
    return next(s for s in status["stages"] if s["name"] == name)


def test_user_code_with_an_overflowing_title_renders_with_a_warning_in_status(write_manifest, run_cli):
    spec = {"topic": "Layout", "projectId": "tests", "render": {"quality": "low"}, "code": OVERFLOWING_TITLE}
    result = run_cli(write_manifest(videojob(spec)))
    assert result.code == 0, result.err
    status = result.status  # the final status `videojob run` printed
    assert status["phase"] == "Succeeded"
    assert Path(status["outputs"]["videoURI"].removeprefix("file://")).stat().st_size > 0
    warning = "scene 1: Text 'A title that is far too long to fit acro' overflows the frame at the left by"
    assert warning in status["message"] and "overflows the frame at the right by" in status["message"]
    assert stage(status, "Rendering")["message"].startswith("layout warnings: " + warning)
    assert not any("layout" in c["message"] for c in status["conditions"] if c["type"] != "Succeeded")


async def test_model_code_with_overlapping_text_is_sent_back_and_the_fix_renders(tmp_path):
    model = ScriptedChatModel(respond=planning_then([OVERLAPPING, APART]))
    result = await run_videojob(make_job(narration={"engine": "none"}), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    scene = result.state.scenes[0]
    assert scene.attempts == 2 and scene.warnings == []
    assert "layout check failed: Text 'First words' overlaps Text 'Second words'" in scene.history[0].error
    repair = codegen_calls(model)[1].text
    assert "Text 'First words' overlaps Text 'Second words'" in repair and "keep text blocks apart" in repair
    status = result.tracker.as_dict()
    assert "warnings" not in status["message"]
    assert "layout" not in (stage(status, "Rendering").get("message") or "")


async def test_the_last_attempt_keeps_the_video_and_reports_the_overlap(tmp_path):
    model = ScriptedChatModel(respond=planning_then([OVERLAPPING, OVERLAPPING]))
    job = make_job(narration={"engine": "none"}, render={"maxSceneAttempts": 2})
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    scene = result.state.scenes[0]
    assert scene.attempts == 2 and scene.history[0].error and scene.history[1].error is None
    assert scene.warnings == ["Text 'First words' overlaps Text 'Second words'"]
    status = result.tracker.as_dict()  # what the operator writes into .status
    assert Path(status["outputs"]["videoURI"].removeprefix("file://")).stat().st_size > 0  # the video was kept
    assert status["message"].endswith("; warnings: " + OVERLAP_WARNING)
    assert stage(status, "Rendering")["message"] == "layout warnings: " + OVERLAP_WARNING
    assert len(codegen_calls(model)) == 2


async def test_a_cached_render_keeps_its_warnings_and_model_code_still_answers_for_them(tmp_path):
    first = await run_videojob(make_job(narration={"engine": "none"}, render={"maxSceneAttempts": 1}),
                               settings=Settings(), store_root=tmp_path,
                               llm=ScriptedChatModel(respond=planning_then([OVERLAPPING])))
    assert first.succeeded and first.state.scenes[0].warnings
    # Same code again (the first answers may come from the LLM cache), now with attempts to spare:
    # the cached video's overlap goes back to the model.
    def respond(messages):
        if "plan short educational videos" in str(messages[0].content):
            return answer(plan_json("A title"))
        return answer(fenced(APART if "layout check failed" in str(messages) else OVERLAPPING))

    model = ScriptedChatModel(respond=respond)
    again = await run_videojob(make_job(narration={"engine": "none"}, generation=2), settings=Settings(),
                               store_root=tmp_path, llm=model)
    assert again.succeeded, again.status.message
    scene = again.state.scenes[0]
    assert scene.attempts == 2 and scene.warnings == []
    assert "layout check failed: Text 'First words' overlaps" in codegen_calls(model)[-1].text
