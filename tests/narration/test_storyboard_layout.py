"""The designed storyboard look and the layout check that guards it."""

from __future__ import annotations

import pytest
from manim import DOWN, UP, Circle, MathTex, Scene, Text, VGroup, tempconfig

from videojob.api.models import StoryboardScene
from videojob.pipeline.codecheck import check_code
from videojob.pipeline.layout import check_layout, layout_problems
from videojob.pipeline.storyboard import generate_scene_code, scene_class_name, scene_duration


def test_layout_check_catches_an_overflowing_title():
    title = Text("A title far too long to fit across the frame at this size", font_size=64).to_edge(UP)
    problems = layout_problems([title, Circle().shift(DOWN)])
    assert problems == [
        f"Text 'A title far too long to fit across the f' overflows the frame at the {side} by {amount}"
        for side, amount in [("left", problems[0].split(" by ")[1]), ("right", problems[1].split(" by ")[1])]
    ]
    assert float(problems[0].split(" by ")[1].split()[0]) > 1


def test_layout_check_catches_overlapping_text_blocks_but_not_text_over_shapes():
    title = Text("Fourier series").to_edge(UP)
    formula = MathTex(r"\sum_n a_n \cos(nx)").move_to(title)
    assert layout_problems([title, formula]) == ["Text 'Fourier series' overlaps MathTex '\\\\sum_n a_n \\\\cos(nx)'"]
    assert layout_problems([Circle(radius=2), Text("inside the circle")]) == []


def test_check_layout_fails_the_scene_with_what_went_wrong():
    scene = Scene()
    scene.add(Text("x" * 80, font_size=48))
    with pytest.raises(ValueError, match=r"^layout check failed: Text 'x+' overflows the frame at the left"):
        check_layout(scene)


def test_check_layout_records_warnings_when_not_strict():
    scene = Scene()
    scene.add(Text("x" * 80, font_size=48))
    check_layout(scene, strict=False)
    check_layout(scene, strict=False)  # the same problem again is not a new warning
    assert [w.split(" by ")[0] for w in scene.layout_warnings] == [
        "Text 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' overflows the frame at the left",
        "Text 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' overflows the frame at the right",
    ]


def test_text_inside_groups_is_checked_block_by_block():
    title = Text("Overlapping words").move_to(UP)
    label = Text("More words here").move_to(UP)
    assert layout_problems([VGroup(title, Circle()), label], text_only=True) == [
        "Text 'Overlapping words' overlaps Text 'More words here'"]
    apart = VGroup(Text("Top words").to_edge(UP), Text("Bottom words").to_edge(DOWN))
    assert layout_problems([apart, Circle(radius=3)], text_only=True) == []


SCENES = {
    "designed": StoryboardScene(title="What is a Fourier series?", text="A sum of sines and cosines.",
                                bullets=["periodic", "orthogonal"], shape="circle", math=r"f(x)=\sum_n a_n\cos(nx)"),
    "long": StoryboardScene(title="An extremely long title that keeps going " * 4, text="Many words here. " * 10,
                            bullets=["a long bullet point that wraps " * 3] * 2, shape="axes"),
    "non-latin": StoryboardScene(title="傅里叶级数是什么？一个很长的标题用来测试换行和缩放", text="任何周期函数都可以写成正弦和余弦之和。" * 3,
                                 bullets=["Функции Фурье", "دالة دورية"], math=r"e^{i\pi} + 1 = 0"),
}


def _render(scene: StoryboardScene, quality: str, spoken: float | None = None) -> Scene:
    code = generate_scene_code(scene, 0, spoken_seconds=spoken)
    assert check_code(code) == []  # storyboard code passes the sandbox's static check
    namespace: dict = {}
    exec(compile(code, "storyboard.py", "exec"), namespace)  # noqa: S102 - our own generated code
    # dry_run: construct and play everything (the layout check included) without writing frames.
    with tempconfig({"quality": quality, "dry_run": True, "disable_caching": True, "progress_bar": "none",
                     "verbosity": "ERROR"}):
        rendered = namespace[scene_class_name(0)]()
        rendered.render()
    return rendered


@pytest.mark.parametrize("quality", ["low_quality", "production_quality"])
@pytest.mark.parametrize("name", list(SCENES))
def test_storyboard_scenes_stay_inside_the_frame_without_overlaps(name, quality):
    rendered = _render(SCENES[name], quality)
    assert rendered.layout_warnings == []  # the embedded check found no overflow or overlap


def test_the_scene_grows_to_fit_its_narration_and_ends_with_a_transition():
    scene = SCENES["designed"]
    assert scene_duration(scene, None) == 4 and scene_duration(scene, 9.5) == 9.5
    rendered = _render(scene, "low_quality", spoken=9.5)
    assert 9.5 <= rendered.renderer.time <= 9.5 + 5 / 15  # animations end on whole frames
    assert rendered.mobjects == []  # faded out: the next scene starts from the background
    code = generate_scene_code(scene, 0)
    for expected in ("MathTex(", "Write(title)", "LaggedStart(", "FadeIn(", "BACKGROUND = '#0F172A'"):
        assert expected in code
