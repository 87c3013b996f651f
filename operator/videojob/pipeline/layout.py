"""The layout check: every object inside the frame, no two text blocks overlapping.

It measures the bounding boxes of a scene's mobjects after construction, so it runs inside the
render process (the sandbox), where the mobjects exist. `layout_problems` depends on Manim only:
storyboard scenes carry its source (`CHECK_SOURCE`) and call it before their exit transition, so
a layout the theme got wrong fails the render with a message saying what overflows by how much.
Tests call it directly on Manim objects.
"""

from __future__ import annotations

import inspect


def layout_problems(mobjects, frame_width=None, frame_height=None, tolerance=0.02):
    """Problems of the given top-level mobjects as sentences; empty when the layout is clean."""
    from manim import config
    from manim.mobject.text.tex_mobject import SingleStringMathTex
    from manim.mobject.text.text_mobject import MarkupText, Paragraph, Text

    half_w = (frame_width or config.frame_width) / 2
    half_h = (frame_height or config.frame_height) / 2
    text_types = (Text, MarkupText, Paragraph, SingleStringMathTex)

    def name(mob):
        text = getattr(mob, "original_text", None) or getattr(mob, "tex_string", None) or ""
        text = " ".join(str(text).split())
        return f"{type(mob).__name__} {text[:40]!r}" if text else type(mob).__name__

    def is_text(mob):
        return any(isinstance(m, text_types) for m in mob.get_family())

    boxes = []
    problems = []
    for mob in mobjects:
        if not mob.get_family() or mob.get_num_points() == 0 and not mob.submobjects:
            continue
        (left, bottom, _), (right, top, _) = mob.get_corner([-1, -1, 0]), mob.get_corner([1, 1, 0])
        over = {"left": -half_w - left, "right": right - half_w, "bottom": -half_h - bottom, "top": top - half_h}
        for side, amount in over.items():
            if amount > tolerance:
                problems.append(f"{name(mob)} overflows the frame at the {side} by {amount:.2f} units")
        if is_text(mob):
            boxes.append((mob, left, bottom, right, top))
    for i, (a, al, ab, ar, at) in enumerate(boxes):
        for b, bl, bb, br, bt in boxes[i + 1:]:
            overlap_w, overlap_h = min(ar, br) - max(al, bl), min(at, bt) - max(ab, bb)
            if overlap_w > tolerance and overlap_h > tolerance:
                problems.append(f"{name(a)} overlaps {name(b)}")
    return problems


def check_layout(scene):
    """Raise when the scene's current mobjects leave the frame or text blocks overlap."""
    problems = layout_problems(scene.mobjects)
    if problems:
        raise ValueError("layout check failed: " + "; ".join(problems))


# What storyboard scenes embed (they render where `videojob` may not be importable).
CHECK_SOURCE = inspect.getsource(layout_problems) + "\n\n" + inspect.getsource(check_layout)
