"""Code generation per scene: given code, the storyboard generator, or the LLM.

On a failed render the LLM gets the scene back with its code, the trimmed traceback and the last
`repair_memory` attempts (windowed memory), and writes a fix. Code that fails the static check is
treated like a failed render: the model sees why and tries again, within the same attempt bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from videojob.pipeline import llm as llm_mod
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.prompts import CODEGEN_PROMPT, EDIT_PROMPT, REPAIR_PROMPT
from videojob.pipeline.state import SceneState, VideoGenerationState
from videojob.pipeline.storyboard import generate_scene_code


def needs_llm(state: VideoGenerationState) -> bool:
    return state.source == "prompt" or state.editing_existing_video


def _history_text(scene: SceneState, keep: int) -> str:
    parts = []
    for record in scene.history[-keep:]:
        parts.append(f"Attempt {record.attempt}:\n```python\n{record.code}\n```\nError:\n{record.error}")
    return "\n\n".join(parts)


async def _llm_code(ctx: PipelineContext, state: VideoGenerationState, scene: SceneState, usage: dict[str, int]) -> str:
    model = llm_mod.require_model(ctx.llm, "spec.prompt")
    count = len(state.scenes)
    if scene.history:
        messages = REPAIR_PROMPT.format_messages(
            class_name=scene.class_name, title=scene.title, duration=scene.duration_seconds or 6,
            history=_history_text(scene, ctx.repair_memory),
        )
    elif scene.previous_code is not None:
        messages = EDIT_PROMPT.format_messages(
            class_name=scene.class_name, duration=scene.duration_seconds or 6, number=scene.index + 1, count=count,
            title=scene.title, code=scene.previous_code, feedback=state.feedback or "",
        )
    else:
        messages = CODEGEN_PROMPT.format_messages(
            class_name=scene.class_name, duration=scene.duration_seconds or 6, topic=state.topic,
            description=state.description or "", number=scene.index + 1, count=count, title=scene.title,
            goal=scene.goal or scene.title, visuals=", ".join(scene.visual_elements) or "your choice",
            narration=scene.narration or "",
        )
    answer = await llm_mod.invoke(model, messages, usage)
    return llm_mod.extract_code(answer)


async def generate_code(ctx: PipelineContext, state: VideoGenerationState) -> dict[str, Any]:
    """Write code for every scene that has none yet or whose last render failed."""
    spec = ctx.job.spec
    usage = dict(state.usage)
    scenes = [s.model_copy(deep=True) for s in state.scenes]
    todo = [s for s in scenes if s.status in ("pending", "failed")]

    async def one(scene: SceneState) -> None:
        first = scene.attempts == 0
        if needs_llm(state):
            scene.code = await _llm_code(ctx, state, scene, usage)
        elif state.source == "code":
            scene.code = spec.code
        else:
            scene.code = generate_scene_code(spec.storyboard.scenes[scene.index], scene.index)
        scene.status = "coded"
        scene.error = None
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
    return {"scenes": scenes, "usage": usage}
