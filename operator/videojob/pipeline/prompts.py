"""Prompt templates for planning and code generation (LCEL `ChatPromptTemplate`s)."""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate

MANIM_GUIDE = """\
You write Manim Community Edition (v0.19+) scenes in Python.
Rules:
- Start with `from manim import *`. Only import manim, numpy, math, random, itertools, functools,
  collections, typing, dataclasses, scipy, networkx. No file, network or OS access.
- Define exactly one class `{class_name}(Scene)` with a `construct(self)` method.
- The frame is 14.2 units wide and 8 tall, centred on the origin: keep everything within
  x in [-6.6, 6.6], y in [-3.6, 3.6]. Use `.to_edge`, `.next_to`, `.arrange` and
  `.scale_to_fit_width` so nothing leaves the frame or overlaps.
- Text: `Text(..., font_size=36..48)` for titles, 24..32 for body text; at most ~60 characters a line.
  Use `MathTex` only when the formula needs it.
- Common API: Create, Write, FadeIn, FadeOut, Transform, ReplacementTransform, Indicate,
  self.play(..., run_time=s), self.wait(s), VGroup(...).arrange(DOWN), Axes(...).plot(lambda x: ...),
  Circle, Square, Triangle, Arrow, Dot, Line, NumberPlane, BLUE, RED, GREEN, YELLOW, UP, DOWN, LEFT, RIGHT.
- Make the scene last about {duration} seconds in total.
Answer with the complete code in one ```python block and nothing else."""

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
            "This scene failed to render. Earlier attempts, oldest first:\n{history}\n\n"
            "Fix the latest code so it renders. Keep the class name `{class_name}` and the scene's intent "
            "({title}).",
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
Use 1 to {max_scenes} scenes; each scene shows one idea."""

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
