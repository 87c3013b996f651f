"""For model-written code the layout check is a render error: text leaving the frame goes back
to the model with the repair prompt, and the fixed scene renders."""

from __future__ import annotations

import re

import pytest

from videojob.config import Settings
from videojob.run import run_videojob

from tests.llm.conftest import ScriptedChatModel, answer, codegen_calls, fenced, make_job, plan_json

pytestmark = pytest.mark.render

OVERFLOWING = """\
from manim import *


class Scene01(Scene):
    def construct(self):
        title = Text("A title that is far too long to fit across the frame at this size", font_size=56)
        self.play(FadeIn(title), run_time=0.3)
        self.play(FadeOut(title), run_time=0.2)
"""

FIXED = OVERFLOWING.replace("font_size=56)", "font_size=56).scale_to_fit_width(12)")

SLIDING_SHAPE = """\
from manim import *


class Scene01(Scene):
    def construct(self):
        square = Square()
        self.play(Create(square), run_time=0.3)
        self.play(square.animate.shift(RIGHT * 10), run_time=0.3)
"""


def planning_then(codes):
    def respond(messages):
        if "plan short educational videos" in str(messages[0].content):
            return answer(plan_json("A title"))
        return answer(fenced(codes.pop(0)))

    return respond


async def test_text_leaving_the_frame_is_sent_back_to_the_model_and_fixed(tmp_path):
    model = ScriptedChatModel(respond=planning_then([OVERFLOWING, FIXED]))
    job = make_job(narration={"engine": "none"})
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    scene = result.state.scenes[0]
    assert scene.attempts == 2
    assert re.search(r"ValueError: layout check failed: Text 'A title that is far too long to fit acro' overflows "
                     r"the frame at the left by \d+\.\d\d units", scene.history[0].error)
    assert "line 7, in construct: self.play(FadeIn(title)" in scene.history[0].error  # where, in the model's code
    repair = codegen_calls(model)[1].text
    assert "layout check failed" in repair and "scale text down" in repair
    assert "added by videojob" not in result.state.scenes[0].code  # the stored code is the model's own


async def test_shapes_may_slide_out_of_the_frame(tmp_path):
    model = ScriptedChatModel(respond=planning_then([SLIDING_SHAPE]))
    result = await run_videojob(make_job(narration={"engine": "none"}), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    assert result.state.scenes[0].attempts == 1
