"""Code generation per scene: given code, the storyboard generator, or the LLM.

The model may call tools first (`tools.py`: Manim docs lookup, the sandbox's code check), in a
bounded loop. On a failed render it gets the scene back with its code, the trimmed traceback and
the last `repair_memory` attempts (windowed memory), and writes a fix; the render stage bounds the
attempts (render.maxSceneAttempts). Editing sends the previous version's code with the feedback.
Code that fails the static check is treated like a failed render: the model sees why and tries
again, within the same attempt bound.
"""

from __future__ import annotations

import asyncio

from typing import TYPE_CHECKING

from videojob.pipeline.codecheck import scene_classes
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.state import SceneState, StateUpdate, VideoGenerationState
from videojob.pipeline.storyboard import generate_scene_code

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage


def needs_llm(state: VideoGenerationState) -> bool:
    return state.source == "prompt" or state.editing_existing_video


# The repair prompt keeps the end of a traceback (where the error is) and drops the middle.
_ERROR_LINES = 25
_ERROR_CHARS = 2000


def trim_error(error: str | None) -> str:
    """The part of a render error a fixer needs: the last lines, at most ~2000 characters."""
    lines = (error or "unknown error").strip().splitlines()
    if len(lines) > _ERROR_LINES:
        lines = ["[... earlier lines left out ...]"] + lines[-_ERROR_LINES:]
    text = "\n".join(lines)
    return text if len(text) <= _ERROR_CHARS else "[...]" + text[-_ERROR_CHARS:]


def history_text(scene: SceneState, keep: int) -> str:
    """The last `keep` attempts (windowed memory), oldest first: code and trimmed error each."""
    parts = []
    for record in scene.history[-keep:]:
        parts.append(f"Attempt {record.attempt}:\n```python\n{record.code.rstrip()}\n```\nError:\n{trim_error(record.error)}")
    return "\n\n".join(parts)


def _messages(ctx: PipelineContext, state: VideoGenerationState, scene: SceneState, tools_note: str) -> list[BaseMessage]:
    from videojob.pipeline.prompts import CODEGEN_PROMPT, EDIT_PROMPT, REPAIR_PROMPT

    count = len(state.scenes)
    # A narrated scene lasts at least as long as its voice: the model is told the spoken length.
    seconds = max(scene.duration_seconds or 6, scene.spoken_seconds or 0)
    common = {
        "class_name": scene.class_name, "duration": f"{seconds:.3g}", "tools_note": tools_note,
        "number": scene.index + 1, "count": count, "title": scene.title,
    }
    if scene.history:
        if scene.previous_code is not None:
            request = f"the previous version's scene, changed according to this feedback: {state.feedback or ''}"
        else:
            request = "; ".join(p for p in (scene.goal or scene.title, scene.narration) if p)
        return REPAIR_PROMPT.format_messages(
            **common, request=request, shown=min(len(scene.history), ctx.repair_memory),
            history=history_text(scene, ctx.repair_memory),
        )
    if scene.previous_code is not None:
        return EDIT_PROMPT.format_messages(**common, code=scene.previous_code, feedback=state.feedback or "")
    return CODEGEN_PROMPT.format_messages(
        **common, topic=state.topic, description=state.description or "", goal=scene.goal or scene.title,
        visuals=", ".join(scene.visual_elements) or "your choice", narration=scene.narration or "",
    )


async def _llm_code(ctx: PipelineContext, state: VideoGenerationState, scene: SceneState, usage: dict[str, int]) -> str:
    # Imported here: only jobs with a prompt (or editing) pay for the LLM stack.
    from videojob.pipeline import llm as llm_mod
    from videojob.pipeline.prompts import TOOLS_NOTE
    from videojob.pipeline.tools import CODEGEN_TOOLS

    client = llm_mod.require_model(ctx.llm, "spec.editing.feedback" if state.editing_existing_video else "spec.prompt")
    messages = _messages(ctx, state, scene, TOOLS_NOTE)
    answer = await llm_mod.answer_with_tools(client, messages, CODEGEN_TOOLS, usage=usage, stage="GeneratingCode")
    code = llm_mod.extract_code(answer)
    _adopt_class_name(scene, code)
    return code


def _adopt_class_name(scene: SceneState, code: str) -> None:
    """Models sometimes rename the class; render the one Scene they wrote instead of failing."""
    try:
        names = scene_classes(code)
    except SyntaxError:
        return
    if names and scene.class_name not in names:
        scene.class_name = names[0]


async def generate_code(ctx: PipelineContext, state: VideoGenerationState) -> StateUpdate:
    """Write code for every scene that has none yet or whose last render failed."""
    spec = ctx.job.spec
    usage = ctx.usage  # counts every call, even those of a node that then fails
    scenes = [s.model_copy(deep=True) for s in state.scenes]
    todo = [s for s in scenes if s.status in ("pending", "failed")]

    async def one(scene: SceneState) -> None:
        first = scene.attempts == 0
        if needs_llm(state):
            scene.code = await _llm_code(ctx, state, scene, usage)
        elif state.source == "code":
            scene.code = spec.code
        else:
            scene.code = generate_scene_code(spec.storyboard.scenes[scene.index], scene.index, scene.spoken_seconds)
        scene.status = "coded"
        scene.error = None
        scene.warnings = []  # they were about the old code
        if first:
            await ctx.progress.step(f"code for {scene.label} ready", scene=scene.index)
        else:
            await ctx.progress.emit("scene", f"new code for {scene.label} (attempt {scene.attempts + 1})", scene=scene.index, attempt=scene.attempts + 1)

    # LLM calls for different scenes are independent; run a few at once.
    limit = asyncio.Semaphore(4)

    async def bounded(scene: SceneState) -> None:
        async with limit:
            await one(scene)

    await asyncio.gather(*(bounded(s) for s in todo))
    return {"scenes": scenes, "usage": dict(usage)}
