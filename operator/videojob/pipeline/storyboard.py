"""Deterministic code generation for `spec.storyboard`: one readable Manim scene per storyboard scene.

No LLM is involved: the same storyboard always yields the same code (and so hits the render
cache). Layout: title at the top; paragraph and bullets in a column on the left (the whole width
when there is no shape); the shape on the right. Everything is scaled to stay inside the frame,
and animation times are scaled so the scene lasts `durationSeconds`.
"""

from __future__ import annotations

import textwrap

from videojob.api.models import StoryboardScene

# Manim's frame is 14.2 x 8 units; keep a margin so nothing touches the edge.
_CONTENT_WIDTH_WITH_SHAPE = 7.4
_CONTENT_WIDTH_ALONE = 12.4
_CONTENT_HEIGHT = 5.4
_WRAP_WITH_SHAPE = 38
_WRAP_ALONE = 62

_SHAPES = {
    "circle": "Circle(radius=1.5, color=BLUE)",
    "square": "Square(side_length=2.8, color=GREEN)",
    "triangle": "Triangle(color=YELLOW).scale(1.6)",
    "arrow": "Arrow(LEFT * 1.6, RIGHT * 1.6, color=ORANGE, buff=0)",
    "axes": "Axes(x_range=[-3, 3, 1], y_range=[-2, 2, 1], x_length=4.5, y_length=3.2)",
}


def scene_class_name(index: int) -> str:
    return f"Scene{index + 1:02d}"


def _timeline(scene: StoryboardScene) -> list[tuple[str, float]]:
    """(animation, seconds) in playback order, before fitting to the duration."""
    steps = [("title", 1.0)]
    if scene.text:
        steps.append(("text", 0.8))
    steps += [(f"bullet{i}", 0.5) for i in range(len(scene.bullets))]
    if scene.shape != "none":
        steps.append(("shape", 1.0))
    return steps


def generate_scene_code(scene: StoryboardScene, index: int) -> str:
    """Manim code for one storyboard scene; the class is `scene_class_name(index)`."""
    has_shape = scene.shape != "none"
    width = _CONTENT_WIDTH_WITH_SHAPE if has_shape else _CONTENT_WIDTH_ALONE
    wrap = _WRAP_WITH_SHAPE if has_shape else _WRAP_ALONE
    duration = float(scene.duration_seconds)

    steps = _timeline(scene)
    animated = sum(t for _, t in steps)
    # Leave at least a fifth of the scene to read the finished slide.
    scale = min(1.0, 0.8 * duration / animated)
    times = {name: round(t * scale, 3) for name, t in steps}
    hold = round(duration - sum(times.values()), 3)

    lines = [
        f"class {scene_class_name(index)}(Scene):",
        f"    # Storyboard scene {index + 1}: {scene.title[:80]!r}",
        "",
        "    def construct(self):",
        f"        title = Text({scene.title!r}, font_size=40, weight=BOLD)",
        "        title.scale_to_fit_width(min(title.width, 12.4)).to_edge(UP, buff=0.5)",
        f"        self.play(Write(title), run_time={times['title']})",
        "",
        "        body = VGroup()",
    ]
    if scene.text:
        wrapped = textwrap.wrap(scene.text, wrap) or [scene.text]
        lines.append(f"        paragraph = Paragraph(*{wrapped!r}, font_size=26, line_spacing=0.8)")
        lines.append("        body.add(paragraph)")
    for i, bullet in enumerate(scene.bullets):
        text = "\u2022 " + "\n   ".join(textwrap.wrap(bullet, wrap - 3) or [bullet])
        lines.append(f"        bullet{i} = Text({text!r}, font_size=26)")
        lines.append(f"        body.add(bullet{i})")
    lines += [
        "        if len(body):",
        "            body.arrange(DOWN, aligned_edge=LEFT, buff=0.35)",
        f"            if body.width > {width}:",
        f"                body.scale_to_fit_width({width})",
        f"            if body.height > {_CONTENT_HEIGHT}:",
        f"                body.scale_to_fit_height({_CONTENT_HEIGHT})",
        "            body.next_to(title, DOWN, buff=0.6)",
        "            body.to_edge(LEFT, buff=0.8)" if has_shape else "            body.set_x(0)",
    ]
    if scene.text:
        lines.append(f"        self.play(FadeIn(paragraph, shift=UP * 0.2), run_time={times['text']})")
    for i in range(len(scene.bullets)):
        lines.append(f"        self.play(FadeIn(bullet{i}, shift=RIGHT * 0.2), run_time={times[f'bullet{i}']})")
    if has_shape:
        lines += [
            f"        shape = {_SHAPES[scene.shape]}",
            "        shape.move_to(RIGHT * 3.6 + DOWN * 0.5)" if (scene.text or scene.bullets) else "        shape.move_to(DOWN * 0.5)",
            f"        self.play(Create(shape), run_time={times['shape']})",
        ]
    if hold > 0:
        lines.append(f"        self.wait({hold})")
    return "from manim import *\n\n\n" + "\n".join(lines) + "\n"
