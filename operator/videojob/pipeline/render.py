"""Rendering: every coded scene through the sandbox, a few at once, with a cache.

The cache is keyed by (code, scene class, quality, Manim version): an unchanged re-run — or an
operator restarted mid-run — takes finished scenes from disk instead of rendering them again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from videojob import metrics
from videojob.pipeline.codegen import needs_llm
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.errors import SceneRenderFailed
from videojob.pipeline.render_cache import RenderCache, cache_key
from videojob.pipeline.state import AttemptRecord, SceneState, VideoGenerationState

async def render_scenes(ctx: PipelineContext, state: VideoGenerationState) -> dict[str, Any]:
    """Render coded scenes; failed ones are marked for another round of code generation, or
    the run fails with SceneRenderFailed when no attempt is left (or nobody can fix the code)."""
    cache = RenderCache(ctx.cache_dir, ctx.render_cache_bytes)
    scenes = [s.model_copy(deep=True) for s in state.scenes]
    todo = [s for s in scenes if s.status == "coded"]
    limit = asyncio.Semaphore(ctx.scene_parallelism)
    uncached = [s for s in todo if cache.get(cache_key(s.code, s.class_name, state.quality)) is None]
    ctx.sandbox.prewarm(min(len(uncached), ctx.scene_parallelism))

    async def one(scene: SceneState) -> None:
        key = cache_key(scene.code, scene.class_name, state.quality)
        async with limit:
            scene.attempts += 1
            hit = cache.get(key)
            if hit is not None:
                scene.status, scene.video_path, scene.cached = "rendered", str(hit), True
                metrics.record_render_attempt("cached")
                await ctx.progress.step(f"{scene.label} taken from the render cache", scene=scene.index, attempt=scene.attempts)
                return
            await ctx.progress.emit("scene", f"rendering {scene.label}", scene=scene.index, attempt=scene.attempts)
            out = ctx.workdir / "renders" / f"{key}.mp4"
            outcome = await ctx.sandbox.render(scene.code, scene.class_name, state.quality, out, ctx.limits)
        scene.history = scene.history + [AttemptRecord(attempt=scene.attempts, code=scene.code, error=outcome.error)]
        metrics.record_render_attempt("success" if outcome.ok else "failure")
        if outcome.ok:
            scene.status, scene.video_path, scene.cached, scene.error = "rendered", str(cache.put(key, outcome.movie)), False, None
            await ctx.progress.step(f"{scene.label} rendered", scene=scene.index, attempt=scene.attempts, data={"result": "success"})
        else:
            scene.status, scene.error = "failed", outcome.error
            await ctx.progress.emit(
                "scene", f"{scene.label} failed (attempt {scene.attempts}): {outcome.error}", scene=scene.index,
                attempt=scene.attempts, data={"result": "failure", "kind": outcome.kind},
            )

    await asyncio.gather(*(one(s) for s in todo))
    fixable = needs_llm(state)
    for scene in scenes:
        if scene.status == "failed" and (not fixable or scene.attempts >= state.max_scene_attempts):
            raise SceneRenderFailed(scene.index, scene.title, scene.attempts, _last_line(scene.error))
    return {"scenes": scenes}


def _last_line(error: str | None, limit: int = 600) -> str:
    text = (error or "unknown error").strip()
    return text if len(text) <= limit else "..." + text[-limit:]
