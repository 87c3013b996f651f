"""Deterministic code generation for `spec.storyboard`: one readable, themed Manim scene per scene.

No LLM is involved: the same storyboard (and narration length) always yields the same code, so
it hits the render cache. The theme (`THEME`) fixes the palette, the type scale and the margins.
Layout: the title at the top with an accent rule under it; below, text and bullets in a column
on the left, the formula and the shape in a column on the right (either column takes the whole
width when the other is empty). Each block is scaled to fit its box, so everything stays inside
the frame and no two text blocks overlap, whatever the text length, script or render quality;
the embedded layout check (`layout.py`) verifies that in the render process before the scene's
exit transition (a fade to the background, which the next scene writes onto); a problem it finds
is reported as a scene warning in status, and the video is kept.
"""

from __future__ import annotations

import unicodedata

from videojob.api.models import StoryboardScene
from videojob.pipeline.layout import CHECK_SOURCE

THEME = {
    "background": "#0F172A",  # slate
    "title": "#F8FAFC",
    "body": "#CBD5E1",
    "accent": "#38BDF8",  # sky: rule under the title, bullets, shapes
    "accent2": "#F59E0B",  # amber: formulas
    "font": "Sans",  # fontconfig picks a sans-serif face with the script's glyphs
    "title_size": 44,
    "body_size": 28,
    "math_size": 52,
}
# Manim's frame is 14.22 x 8 units. Content lives inside these margins.
_MARGIN_X, _MARGIN_Y = 0.7, 0.5
_FULL_WIDTH = 14.22 - 2 * _MARGIN_X
_LEFT_WIDTH, _RIGHT_WIDTH, _GUTTER = 7.3, 4.6, 0.9
# Characters per line before the fit-to-box scaling (a wide CJK character counts twice).
_TITLE_COLUMNS, _BODY_COLUMNS_FULL, _BODY_COLUMNS_LEFT = 38, 60, 36
EXIT_SECONDS = 0.5

_SHAPES = {
    "circle": "Circle(radius=1.5, color=ACCENT, stroke_width=6)",
    "square": "Square(side_length=2.8, color=ACCENT, stroke_width=6)",
    "triangle": "Triangle(color=ACCENT, stroke_width=6).scale(1.6)",
    "arrow": "Arrow(LEFT * 1.6, RIGHT * 1.6, color=ACCENT, buff=0, stroke_width=8)",
    "axes": "Axes(x_range=[-3, 3, 1], y_range=[-2, 2, 1], x_length=4.5, y_length=3.2, axis_config={'color': BODY})",
}


def scene_class_name(index: int) -> str:
    return f"Scene{index + 1:02d}"


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap_display(text: str, columns: int) -> list[str]:
    """Greedy line wrapping by display width: words where there are spaces, characters where
    there are none (Chinese, Japanese), and over-long words cut."""
    lines, line = [], ""
    tokens = []
    for word in " ".join(text.split()).split(" "):
        if _display_width(word) <= columns:
            tokens.append(word)
        else:
            tokens += list(word) if any(_display_width(c) == 2 for c in word) else [
                word[i:i + columns] for i in range(0, len(word), columns)]
    for token in tokens:
        glue = "" if not line or (_display_width(token) == 2 and len(token) == 1) else " "
        if line and _display_width(line + glue + token) > columns:
            lines.append(line)
            line = token
        else:
            line += glue + token
    return lines + [line] if line else lines or [text]


def scene_duration(scene: StoryboardScene, spoken_seconds: float | None = None) -> float:
    """How long the scene lasts: its durationSeconds, grown to fit its narration."""
    return round(max(float(scene.duration_seconds), spoken_seconds or 0.0), 3)


def _timeline(scene: StoryboardScene) -> list[tuple[str, float]]:
    steps = [("title", 1.2)]
    if scene.text:
        steps.append(("text", 0.8))
    if scene.bullets:
        steps.append(("bullets", 0.5 + 0.3 * len(scene.bullets)))
    if scene.math:
        steps.append(("math", 1.2))
    if scene.shape != "none":
        steps.append(("shape", 1.0))
    return steps


def _times(scene: StoryboardScene, duration: float) -> tuple[dict[str, float], float, float]:
    """Run time of each entrance, the hold, and the exit: entrances take at most 60% of the scene."""
    exit_time = round(min(EXIT_SECONDS, 0.15 * duration), 3)
    steps = _timeline(scene)
    scale = min(1.0, 0.6 * (duration - exit_time) / sum(t for _, t in steps))
    times = {name: round(t * scale, 3) for name, t in steps}
    hold = round(duration - exit_time - sum(times.values()), 3)
    return times, hold, exit_time


def _header() -> list[str]:
    theme = [f"{k.upper()} = {v!r}" for k, v in THEME.items() if not k.endswith("size")]
    return ["from manim import *", "", "# videojob storyboard theme", *theme, "", "", CHECK_SOURCE.rstrip(), ""]


def _content_lines(scene: StoryboardScene, two_columns: bool) -> list[str]:
    columns = _BODY_COLUMNS_LEFT if two_columns else _BODY_COLUMNS_FULL
    size = THEME["body_size"]
    lines = ["        body = VGroup()"]
    if scene.text:
        wrapped = wrap_display(scene.text, columns)
        lines.append(f"        paragraph = Paragraph(*{wrapped!r}, font_size={size}, font=FONT, color=BODY, line_spacing=0.8)")
        lines.append("        body.add(paragraph)")
    for i, bullet in enumerate(scene.bullets):
        text = "\u2022 " + "\n   ".join(wrap_display(bullet, columns - 3))
        lines.append(f"        bullet{i} = Text({text!r}, font_size={size}, font=FONT, color=BODY, t2c={{'\u2022': ACCENT}})")
        lines.append(f"        body.add(bullet{i})")
    lines.append("        visual = VGroup()")
    if scene.math:
        lines.append(f"        formula = MathTex({scene.math!r}, font_size={THEME['math_size']}, color=ACCENT2)")
        lines.append("        visual.add(formula)")
    if scene.shape != "none":
        lines.append(f"        shape = {_SHAPES[scene.shape]}")
        lines.append("        visual.add(shape)")
    return lines


def _placement_lines(two_columns: bool) -> list[str]:
    left_x = -7.11 + _MARGIN_X
    right_center = 7.11 - _MARGIN_X - _RIGHT_WIDTH / 2
    bottom = -4 + _MARGIN_Y
    lines = [
        "        top = rule.get_bottom()[1] - 0.45",
        f"        height = top - ({bottom})",
        "        if len(body):",
        "            body.arrange(DOWN, aligned_edge=LEFT, buff=0.3)",
        f"            body.scale(min(1, {(_LEFT_WIDTH if two_columns else _FULL_WIDTH)} / body.width, height / body.height))",
        f"            body.align_to([{left_x}, top, 0], UL)",
        "        if len(visual):",
        "            visual.arrange(DOWN, buff=0.5)",
        f"            visual.scale(min(1, {(_RIGHT_WIDTH if two_columns else _FULL_WIDTH)} / visual.width, height / visual.height))",
    ]
    if two_columns:
        lines.append(f"            visual.move_to([{right_center}, top - height / 2, 0])")
    else:
        lines += [
            "            space = height - (body.height + 0.5 if len(body) else 0)",
            "            visual.scale(min(1, space / visual.height))",
            f"            visual.move_to([0, ({bottom}) + space / 2, 0])",
        ]
    return lines


def _animation_lines(scene: StoryboardScene, times: dict[str, float], hold: float, exit_time: float) -> list[str]:
    lines = [f"        self.play(Write(title), GrowFromEdge(rule, LEFT), run_time={times['title']})"]
    if scene.text:
        lines.append(f"        self.play(FadeIn(paragraph, shift=UP * 0.2), run_time={times['text']})")
    if scene.bullets:
        names = ", ".join(f"FadeIn(bullet{i}, shift=RIGHT * 0.3)" for i in range(len(scene.bullets)))
        lines.append(f"        self.play(LaggedStart({names}, lag_ratio=0.35), run_time={times['bullets']})")
    if scene.math:
        lines.append(f"        self.play(Write(formula), run_time={times['math']})")
    if scene.shape != "none":
        lines.append(f"        self.play(Create(shape), run_time={times['shape']})")
    if hold > 0:
        lines.append(f"        self.wait({hold})")
    lines += ["        check_layout(self, strict=False)", f"        self.play(*[FadeOut(m) for m in self.mobjects], run_time={exit_time})"]
    return lines


def generate_scene_code(scene: StoryboardScene, index: int, spoken_seconds: float | None = None) -> str:
    """Manim code for one storyboard scene; the class is `scene_class_name(index)`. The scene
    lasts `scene_duration(scene, spoken_seconds)` seconds."""
    has_text = bool(scene.text or scene.bullets)
    has_visual = bool(scene.math) or scene.shape != "none"
    two_columns = has_text and has_visual
    times, hold, exit_time = _times(scene, scene_duration(scene, spoken_seconds))
    title_lines = wrap_display(scene.title, _TITLE_COLUMNS)
    if len(title_lines) > 3:  # a title is a headline: three lines at most
        title_lines = title_lines[:2] + [title_lines[2].rstrip(" .") + "\u2026"]
    lines = [
        f"class {scene_class_name(index)}(Scene):",
        f"    # Storyboard scene {index + 1}: {scene.title[:80]!r}",
        "",
        "    def construct(self):",
        "        self.camera.background_color = BACKGROUND",
        f"        title = Text({chr(10).join(title_lines)!r}, font_size={THEME['title_size']}, font=FONT, weight=BOLD, color=TITLE)",
        f"        title.scale(min(1, {_FULL_WIDTH} / title.width, 1.9 / title.height))",
        f"        title.to_edge(UP, buff={_MARGIN_Y + 0.1}).to_edge(LEFT, buff={_MARGIN_X})",
        "        rule = Line(LEFT, RIGHT, color=ACCENT, stroke_width=6)",
        "        rule.set_width(min(title.width, 3)).next_to(title, DOWN, buff=0.2, aligned_edge=LEFT)",
        *_content_lines(scene, two_columns),
        *_placement_lines(two_columns),
        "",
        *_animation_lines(scene, times, hold, exit_time),
    ]
    return "\n".join(_header()) + "\n\n" + "\n".join(lines) + "\n"
