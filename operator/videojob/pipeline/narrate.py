"""Narrating: speak each scene's narration before any code is written.

Runs between planning and code generation, in the trusted pipeline process (never in the render
sandbox), so that code generation knows how long each scene's voice lasts: storyboard scenes
grow to fit it and the LLM is told the spoken duration. Identical text and voice come from the
narration cache. `spec.narration.engine: none` (or no narration anywhere) skips the stage.
"""

from __future__ import annotations

from pathlib import Path

from videojob.api.models import VideoJob
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.narration import Narrator, engine_name
from videojob.pipeline.state import StateUpdate, VideoGenerationState


def narrated(job: VideoJob) -> bool:
    """Whether runs of `job` have a Narrating stage: an engine is in effect and some scene may
    have narration (storyboard scenes that say so; an LLM plan always writes narration)."""
    spec = job.spec
    source = spec.source
    if source == "prompt" or (spec.editing is not None and source != "code"):
        return engine_name(spec, True) != "none"
    if source == "storyboard":
        return engine_name(spec, any(s.narration for s in spec.storyboard.scenes)) != "none"
    return False


def narration_cache_dir(ctx: PipelineContext) -> Path:
    """Beside the render cache (`.cache/narration`), not inside it: its pruning is for renders."""
    return ctx.cache_dir.parent


def _field(state: VideoGenerationState, index: int) -> str:
    if state.source == "storyboard":
        return f"spec.storyboard.scenes[{index}].narration"
    return f"narration of scene {index + 1} (from the plan)"


async def narrate_scenes(ctx: PipelineContext, state: VideoGenerationState) -> StateUpdate:
    scenes = [s.model_copy(deep=True) for s in state.scenes]
    narrator = Narrator.for_spec(ctx.job.spec, narration_cache_dir(ctx), any_narration=any(s.narration for s in scenes))
    if narrator is None:  # engine none after all: nothing to speak, the steps still count
        for scene in scenes:
            await ctx.progress.step(f"{scene.label}: no narration", scene=scene.index)
        return {"scenes": scenes}
    for scene in scenes:  # one progress step per scene (pipeline/stages.py)
        if not scene.narration:
            await ctx.progress.step(f"{scene.label} has no narration", scene=scene.index)
            continue
        if scene.narration_track is None:
            # The per-job cap (VIDEOJOB_MAX_TTS_CHARACTERS_PER_JOB) stops the run before it speaks.
            ctx.budget.before_tts(ctx.usage, narrator.characters_to_synthesize(scene.narration))
            scene.narration_track = await narrator.narrate(scene.narration, field=_field(state, scene.index))
            ctx.usage["tts_characters"] = ctx.usage.get("tts_characters", 0) + scene.narration_track.characters
        track = scene.narration_track
        how = "from the narration cache" if track.cached else f"{track.characters} characters"
        await ctx.progress.step(
            f"{scene.label} narrated: {track.duration_seconds:.1f} s, {len(track.cues)} sentence(s), {how}",
            scene=scene.index,
        )
    return {"scenes": scenes, "usage": dict(ctx.usage)}
