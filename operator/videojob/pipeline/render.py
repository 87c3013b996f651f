"""Rendering: every coded scene through the sandbox, a few at once, with a cache.

Each render round takes sandboxes for this job only (`Sandbox.job`) and lets them go at its end;
scenes `videojob run` already prefetched are claimed instead of rendered again. The cache is
written here, from the parent's own copy of each video, never from inside a sandbox.

The cache is keyed by (code, scene class, quality, Manim version): an unchanged re-run — or an
operator restarted mid-run — takes finished scenes from disk instead of rendering them again.

Layout problems (`layout.py`) come back as warnings beside a good video. They are kept on the
scene (and in the cache entry) and reported in status; only for model-written code with repair
attempts left are they a render error, so the model fixes them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from videojob import metrics
from videojob.pipeline import prefetch
from videojob.pipeline.codegen import needs_llm
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.errors import PipelineError, SceneRenderFailed
from videojob.pipeline.layout import layout_failure, with_layout_check
from videojob.pipeline.render_cache import RenderCache, cache_key
from videojob.pipeline.sandbox import JobSandbox, RenderOutcome, SandboxUnavailable
from videojob.pipeline.state import AttemptRecord, SceneState, VideoGenerationState

log = logging.getLogger(__name__)


class SandboxRefused(PipelineError):
    """No OS sandbox can be made here, so untrusted scene code is not run (fail closed)."""

    reason = "SandboxUnavailable"


async def render_scenes(ctx: PipelineContext, state: VideoGenerationState) -> dict[str, Any]:
    """Render coded scenes; failed ones are marked for another round of code generation, or
    the run fails with SceneRenderFailed when no attempt is left (or nobody can fix the code).
    The scenes of this round render in sandboxes of this job only (none when all are cached)."""
    cache = RenderCache(ctx.cache_dir, ctx.render_cache_bytes)
    scenes = [s.model_copy(deep=True) for s in state.scenes]
    todo = [s for s in scenes if s.status == "coded"]
    keys = [cache_key(s.code, s.class_name, state.quality) for s in todo]
    uncached = [k for k in keys if not prefetch.pending(k) and cache.get(k) is None]
    if uncached:
        ctx.sandbox.prewarm(min(len(uncached), ctx.scene_parallelism))
    job = ctx.sandbox.job(ctx.scene_parallelism)
    try:
        await _render_round(ctx, state, cache, todo, job)
    except SandboxUnavailable as exc:
        raise SandboxRefused(str(exc), stage="Rendering") from None
    finally:
        await job.aclose()
    fixable = needs_llm(state)
    for scene in scenes:
        if scene.status == "failed" and (not fixable or scene.attempts >= state.max_scene_attempts):
            raise SceneRenderFailed(scene.index, scene.title, scene.attempts, _last_line(scene.error))
    return {"scenes": scenes}


async def _render_round(ctx: PipelineContext, state: VideoGenerationState, cache: RenderCache,
                        todo: list[SceneState], job: JobSandbox) -> None:
    limit = asyncio.Semaphore(ctx.scene_parallelism)

    async def one(scene: SceneState) -> None:
        key = cache_key(scene.code, scene.class_name, state.quality)
        async with limit:
            scene.attempts += 1
            # Model code with attempts left answers for its layout like for any error.
            strict = needs_llm(state) and scene.attempts < state.max_scene_attempts
            prefetched = prefetch.claim(key)  # started before the pipeline was loaded (videojob run)
            hit = None if prefetched else cache.get(key)
            if hit is not None and not (strict and cache.warnings(key)):
                scene.status, scene.video_path, scene.cached = "rendered", str(hit), True
                scene.warnings = cache.warnings(key)
                metrics.record_render_attempt("cached")
                _log_warnings(scene)
                await ctx.progress.step(f"{scene.label} taken from the render cache{_warned(scene)}",
                                        scene=scene.index, attempt=scene.attempts)
                return
            if hit is None:
                await ctx.progress.emit("scene", f"rendering {scene.label}", scene=scene.index, attempt=scene.attempts)
            # The parent's own copy of the video, outside every sandbox mount: what the cache takes.
            out = ctx.workdir / "renders" / f"{key}.mp4"
            if hit is not None:  # cached, with layout warnings the model has to fix
                outcome = RenderOutcome(True, movie=hit, warnings=cache.warnings(key))
            elif prefetched is not None:
                outcome = await prefetched  # its movie is in the cache already
            else:
                code = scene.code if _embeds_check(state) else with_layout_check(scene.code, scene.class_name, strict)
                outcome = await job.render(code, scene.class_name, state.quality, out, ctx.limits)
                if outcome.ok:
                    outcome.movie = cache.put(key, outcome.movie, outcome.warnings)
        if outcome.ok and outcome.warnings and strict:
            outcome = RenderOutcome(False, error=layout_failure(outcome.warnings), kind="LayoutCheck")
        scene.history = scene.history + [AttemptRecord(attempt=scene.attempts, code=scene.code, error=outcome.error)]
        metrics.record_render_attempt("success" if outcome.ok else "failure")
        if outcome.ok:
            scene.status, scene.video_path, scene.cached, scene.error = "rendered", str(outcome.movie), False, None
            scene.warnings = list(outcome.warnings)
            _log_warnings(scene)
            await ctx.progress.step(f"{scene.label} rendered{_warned(scene)}", scene=scene.index, attempt=scene.attempts,
                                    data={"result": "success", "sandbox": job.isolation})
        else:
            scene.status, scene.error, scene.warnings = "failed", outcome.error, []
            await ctx.progress.emit(
                "scene", f"{scene.label} failed (attempt {scene.attempts}): {outcome.error}", scene=scene.index,
                attempt=scene.attempts, data={"result": "failure", "kind": outcome.kind, "sandbox": job.isolation},
            )

    await asyncio.gather(*(one(s) for s in todo))


def _embeds_check(state: VideoGenerationState) -> bool:
    """Storyboard code carries its own layout check; other code gets it wrapped on."""
    return state.source == "storyboard" and not state.editing_existing_video


def _warned(scene: SceneState) -> str:
    if not scene.warnings:
        return ""
    return f" with {len(scene.warnings)} layout warning(s): " + "; ".join(scene.warnings)


def _log_warnings(scene: SceneState) -> None:
    for warning in scene.warnings:
        log.warning("layout warning in %s: %s", scene.label, warning)


def _last_line(error: str | None, limit: int = 600) -> str:
    text = (error or "unknown error").strip()
    return text if len(text) <= limit else "..." + text[-limit:]
