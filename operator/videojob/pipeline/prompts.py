"""Prompt templates for planning and code generation (LCEL `ChatPromptTemplate`s).

Used as `PROMPT | llm.runnable(...)` or `PROMPT.format_messages(...)` for the tool-calling loop.
"""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate

MANIM_GUIDE = """\
You write Manim Community Edition (v0.19+) scenes in Python.
Rules:
- Start with `from manim import *`. Only import manim, numpy, math, random, itertools, functools,
  collections, typing, dataclasses, scipy, networkx. No file, network or OS access; no eval/exec/open.
- Define exactly one class `{class_name}(Scene)` with a `construct(self)` method.
- The frame is 14.2 units wide and 8 tall, centred on the origin: keep everything within
  x in [-6.6, 6.6], y in [-3.6, 3.6]. Use `.to_edge(UP)`, `.next_to(obj, DOWN, buff=0.4)`,
  `VGroup(...).arrange(DOWN, aligned_edge=LEFT)` and `.scale_to_fit_width(12)` when something is
  wide, so nothing leaves the frame or overlaps. Remove (FadeOut) what is no longer needed.
- Text: `Text(..., font_size=40..48)` for titles, 24..32 for body text; at most ~50 characters a line
  (split longer text over several Text objects). Use `MathTex` only when a formula needs it.
- Cheat-sheet: Create, Write, FadeIn, FadeOut, Transform, ReplacementTransform, Indicate, GrowArrow,
  self.play(anim, ..., run_time=s), self.wait(s), obj.animate.shift(RIGHT).set_color(RED),
  Axes(x_range=[-3, 3, 1], y_range=[-2, 2, 1], x_length=6, y_length=4).plot(lambda x: x**2, color=BLUE),
  Circle(radius=1), Square(side_length=2), Triangle(), Rectangle(width=4, height=2), Arrow(LEFT, RIGHT),
  Dot(point), Line(a, b), NumberPlane(), SurroundingRectangle(obj); colours BLUE, RED, GREEN, YELLOW,
  ORANGE, WHITE, GREY; directions UP, DOWN, LEFT, RIGHT, UL, UR, DL, DR, ORIGIN.
- Make the scene last about {duration} seconds in total (sum of run_time and wait).
{tools_note}Answer with the complete code in one ```python block and nothing else."""

TOOLS_NOTE = (
    "- Tools: `manim_docs(name)` shows the signature and docstring of a Manim class or function in the\n"
    "  installed version; `check_code(code)` runs the early code check. Use them when unsure, then answer.\n"
)

CODEGEN_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", MANIM_GUIDE),
        (
            "human",
            "Video topic: {topic}\n{description}\n\nScene {number} of {count}: {title}\nGoal: {goal}\n"
            "Visual elements: {visuals}\nNarration: {narration}\n\nWrite the scene.",
        ),
    ]
)

REPAIR_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", MANIM_GUIDE),
        (
            "human",
            "Scene {number} of {count} ({title}) failed to render.\nWhat the scene should show: {request}\n\n"
            "The last {shown} attempt(s), oldest first; the last one is the current code:\n\n{history}\n\n"
            "Fix the current code so it renders, avoiding the mistakes of the earlier attempts. "
            "Keep the class name `{class_name}` and the scene's intent.",
        ),
    ]
)

EDIT_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", MANIM_GUIDE),
        (
            "human",
            "Here is the current code of scene {number} of {count} ({title}):\n```python\n{code}\n```\n\n"
            "Change it according to this feedback, keeping everything else as it is:\n{feedback}",
        ),
    ]
)

PLAN_SYSTEM = """\
You plan short educational videos made of Manim scenes. Answer with JSON only, no prose:
{{"scenes": [{{"title": str, "goal": str, "visual_elements": [str], "narration": str,
"duration_seconds": number between 2 and 60}}]}}
Use 1 to {max_scenes} scenes; each scene shows one idea that fits on one 16:9 screen."""

PLAN_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", PLAN_SYSTEM),
        ("human", "Topic: {topic}\n{description}\n\nRequest: {prompt}"),
    ]
)

PLAN_REPAIR_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", PLAN_SYSTEM),
        ("human", "Topic: {topic}\n{description}\n\nRequest: {prompt}"),
        ("ai", "{bad_answer}"),
        ("human", "That answer is not valid: {error}\nAnswer again with valid JSON only."),
    ]
)
