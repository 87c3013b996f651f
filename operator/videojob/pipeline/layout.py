"""The layout check: every object inside the frame, no two text blocks overlapping.

It measures the bounding boxes of a scene's mobjects, so it runs inside the render process (the
sandbox), where the mobjects exist; the functions here depend on Manim only and travel as source.

A layout problem is a scene WARNING, not a failure: `check_layout(scene, strict=False)` records
what it found on `scene.layout_warnings`, and the executor writes that list into result.json,
where the parent reads it as a capped list of capped strings (`sandbox/scratch.py`). The video is
kept and the warnings reach status.

* Storyboard scenes carry `CHECK_SOURCE` and call `check_layout(self, strict=False)` before their
  exit transition.
* Other code (`spec.code`, LLM code) is rendered as `with_layout_check(code, class_name, strict)`:
  the scene class is wrapped so that after every `play` and `wait` no text may reach outside the
  frame and no two text blocks may overlap. (Only text is checked there: shapes sliding in or out
  of the frame, or text over a graph, are legitimate.) For model code with repair attempts left,
  `strict` makes a problem fail the render at once, like any error, so the repair loop sends it
  back to the model; the last attempt (and user code) renders with warnings instead.
"""

from __future__ import annotations

import inspect


def layout_problems(mobjects, frame_width=None, frame_height=None, tolerance=0.02, text_only=False):
    """Problems of the given top-level mobjects as sentences; empty when the layout is clean.
    With `text_only`, only mobjects holding text are checked, and only against the frame."""
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

    def text_blocks(mob):
        """The outermost text mobjects in `mob`'s family (a Paragraph, a MathTex, a number)."""
        if isinstance(mob, text_types) or type(mob).__name__ in ("DecimalNumber", "Integer"):
            return [mob]
        return [block for sub in mob.submobjects for block in text_blocks(sub)]

    boxes = []
    problems = []
    for mob in mobjects:
        if not mob.get_family() or mob.get_num_points() == 0 and not mob.submobjects:
            continue
        if text_only and not is_text(mob):
            continue
        (left, bottom, _), (right, top, _) = mob.get_corner([-1, -1, 0]), mob.get_corner([1, 1, 0])
        over = {"left": -half_w - left, "right": right - half_w, "bottom": -half_h - bottom, "top": top - half_h}
        for side, amount in over.items():
            if amount > tolerance:
                problems.append(f"{name(mob)} overflows the frame at the {side} by {amount:.2f} units")
        for block in text_blocks(mob):
            (bl, bb, _), (br, bt, _) = block.get_corner([-1, -1, 0]), block.get_corner([1, 1, 0])
            boxes.append((block, bl, bb, br, bt))
    for i, (a, al, ab, ar, at) in enumerate(boxes):
        for b, bl, bb, br, bt in boxes[i + 1:]:
            overlap_w, overlap_h = min(ar, br) - max(al, bl), min(at, bt) - max(ab, bb)
            if overlap_w > tolerance and overlap_h > tolerance:
                problems.append(f"{name(a)} overlaps {name(b)}")
    return problems


def check_layout(scene, text_only=False, strict=True, keep=20):
    """Check the scene's current mobjects: some leave the frame (with `text_only`: some text) or
    text blocks overlap. `strict` raises; otherwise each new problem is added to the list
    `scene.layout_warnings` (at most `keep` of them), which the executor reports."""
    problems = layout_problems(scene.mobjects, tolerance=0.05 if text_only else 0.02, text_only=text_only)
    if problems and strict:
        raise ValueError("layout check failed: " + "; ".join(problems)
                         + " (the frame is x -7.1..7.1, y -4..4: scale text down, wrap it or move it inside;"
                         + " keep text blocks apart)")
    found = scene.__dict__.setdefault("layout_warnings", [])
    for problem in problems:
        if problem not in found and len(found) < keep:
            found.append(problem)


# What scenes carry (they render where `videojob` may not be importable).
CHECK_SOURCE = inspect.getsource(layout_problems) + "\n\n" + inspect.getsource(check_layout)

_WRAPPER = """

# ---- added by videojob at render time (not part of the scene's code): the layout check ----
{check}


class {name}({name}):
    def play(self, *args, **kwargs):
        result = super().play(*args, **kwargs)
        check_layout(self, text_only=True, strict={strict})
        return result

    def wait(self, *args, **kwargs):
        result = super().wait(*args, **kwargs)
        check_layout(self, text_only=True, strict={strict})
        return result
"""


def with_layout_check(code: str, class_name: str, strict: bool = False) -> str:
    """`code` whose scene `class_name` is checked after every play and wait: text leaving the
    frame or overlapping other text fails the render (`strict`) or becomes a warning."""
    wrapper = _WRAPPER.format(check=CHECK_SOURCE.rstrip(), name=class_name, strict=bool(strict))
    return code.rstrip("\n") + "\n" + wrapper


def layout_failure(warnings: list[str]) -> str:
    """The render error for layout warnings that must go back to the model (a cached render)."""
    return ("layout check failed: " + "; ".join(warnings)
            + " (the frame is x -7.1..7.1, y -4..4: scale text down, wrap it or move it inside; keep text blocks apart)")
