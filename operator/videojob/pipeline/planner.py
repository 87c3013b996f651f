"""Planning: decide the scenes of the video from the content source.

- `spec.code`: one scene per top-level Scene class, rendered as given.
- `spec.storyboard`: one scene per storyboard scene.
- `spec.prompt`: the LLM writes a structured plan (validated with pydantic; one repair round).
- `spec.editing`: the scenes of the previous version, whose code the LLM will change.
"""

from __future__ import annotations

import json
import logging

from pydantic import BaseModel, Field, ValidationError

from videojob.api.models import MAX_SCENES, EditingSpec, Storyboard
from videojob.pipeline.codecheck import check_code, scene_classes
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.errors import InvalidContent
from videojob.pipeline.state import SceneState, StateUpdate, VideoGenerationState
from videojob.pipeline.storyboard import scene_class_name

log = logging.getLogger(__name__)


class PlannedScene(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    goal: str = ""
    visual_elements: list[str] = []
    narration: str = ""
    duration_seconds: float = Field(default=6, ge=1, le=60)


class Plan(BaseModel):
    scenes: list[PlannedScene] = Field(min_length=1, max_length=MAX_SCENES)


def _parse_plan(text: str) -> Plan:
    """The plan in a model answer: the outermost JSON object, fenced or not, validated."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the answer")
    return Plan.model_validate(json.loads(text[start : end + 1]))


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(plan)"
        return f"{where}: {err['msg']} ({exc.error_count()} problem(s))"
    return (str(exc).splitlines() or [type(exc).__name__])[0][:500]


async def plan_from_prompt(ctx: PipelineContext, usage: dict[str, int]) -> Plan:
    """Ask the model for a plan (`PLAN_PROMPT | model`); when the answer does not parse or
    validate, one repair round shows the model its answer and what was wrong with it."""
    from videojob.pipeline import llm as llm_mod  # only jobs with a prompt pay for the LLM stack
    from videojob.pipeline.prompts import PLAN_PROMPT, PLAN_REPAIR_PROMPT

    client = llm_mod.require_model(ctx.llm, "spec.prompt")
    spec = ctx.job.spec
    values = {
        "topic": spec.topic,
        "description": spec.description or "",
        "prompt": spec.prompt,
        "max_scenes": min(8, MAX_SCENES, ctx.budget.caps.max_scenes or MAX_SCENES),
    }
    model = client.runnable(usage=usage, stage="Planning")
    text = llm_mod.text_of(await (PLAN_PROMPT | model).ainvoke(values))
    try:
        return _parse_plan(text)
    except (ValueError, ValidationError) as exc:
        error = _first_line(exc)
        log.info("the model's plan is not valid (%s); asking once more", error)
        answer = await (PLAN_REPAIR_PROMPT | model).ainvoke({**values, "bad_answer": text[:4000], "error": error})
        try:
            return _parse_plan(llm_mod.text_of(answer))
        except (ValueError, ValidationError) as exc2:
            raise InvalidContent(
                f"the model's plan is not valid after one repair: {_first_line(exc2)}", stage="Planning"
            ) from None


async def _plan_edit(ctx: PipelineContext, state: VideoGenerationState, editing: EditingSpec) -> StateUpdate:
    """The scenes of the version being edited, each with its code to change."""
    from videojob.pipeline.llm import require_model

    require_model(ctx.llm, "spec.editing.feedback")
    previous = await ctx.publisher.previous_version(state.project_id, state.video_id, editing.from_version)
    if previous is None:
        which = f"version {editing.from_version}" if editing.from_version else "a previous version"
        raise InvalidContent(f"spec.editing: there is no {which} of {state.project_id}/{state.video_id} to edit", stage="Planning")
    titles = [s.get("title") for s in (previous.plan or {}).get("scenes", [])]
    scenes = []
    for i, code in enumerate(previous.scene_codes):
        names = scene_classes(code) or [scene_class_name(i)]
        title = titles[i] if i < len(titles) and titles[i] else names[0]
        scenes.append(SceneState(index=i, title=title, class_name=names[0], previous_code=code))
    return {
        "scenes": scenes, "plan": previous.plan, "editing_existing_video": True, "current_version": previous.version,
        "feedback": editing.feedback,
    }


def _plan_code(code: str) -> StateUpdate:
    """One scene per top-level Scene class of the user's code, after the static check."""
    try:
        names = scene_classes(code)
    except SyntaxError as exc:
        raise InvalidContent(f"spec.code: syntax error at line {exc.lineno}: {exc.msg}", stage="Planning") from None
    if not names:
        raise InvalidContent("spec.code: defines no Scene subclass (class MyScene(Scene): ...)", stage="Planning")
    violations = check_code(code)
    if violations:
        raise InvalidContent("spec.code: " + "; ".join(map(str, violations)), stage="Planning")
    return {"scenes": [SceneState(index=i, title=name, class_name=name) for i, name in enumerate(names)]}


def _plan_storyboard(storyboard: Storyboard) -> StateUpdate:
    return {
        "scenes": [
            SceneState(
                index=i, title=s.title, class_name=scene_class_name(i), duration_seconds=s.duration_seconds,
                narration=s.text, visual_elements=[s.shape] if s.shape != "none" else [],
            )
            for i, s in enumerate(storyboard.scenes)
        ]
    }


async def _plan_prompt(ctx: PipelineContext, usage: dict[str, int]) -> StateUpdate:
    plan = await plan_from_prompt(ctx, usage)
    scenes = [
        SceneState(
            index=i, title=p.title, class_name=scene_class_name(i), goal=p.goal, narration=p.narration,
            visual_elements=p.visual_elements, duration_seconds=p.duration_seconds,
        )
        for i, p in enumerate(plan.scenes)
    ]
    return {"plan": plan.model_dump(), "scenes": scenes}


async def plan_scenes(ctx: PipelineContext, state: VideoGenerationState) -> StateUpdate:
    """The Planning node: the scenes of the video, from the first content source present."""
    spec = ctx.job.spec
    usage = ctx.usage  # counts every call, even those of a node that then fails
    if spec.editing is not None:
        update = await _plan_edit(ctx, state, spec.editing)
    elif spec.source == "code":
        update = _plan_code(spec.code or "")
    elif spec.source == "storyboard" and spec.storyboard is not None:
        update = _plan_storyboard(spec.storyboard)
    elif spec.source == "prompt":
        update = await _plan_prompt(ctx, usage)
    else:
        raise InvalidContent("spec: needs one content source: spec.code, spec.storyboard or spec.prompt", stage="Planning")
    ctx.budget.check_scenes(len(update["scenes"]), _SCENES_FIELD.get(spec.source if spec.editing is None else "editing", "spec"))
    update["usage"] = dict(usage)
    count = len(update["scenes"])
    ctx.progress.set_scene_count(count)  # now the run knows how many steps it has
    await ctx.progress.step(f"planned {count} scene(s)")
    return update


# The field whose scenes count against VIDEOJOB_MAX_SCENES_PER_JOB, by content source.
_SCENES_FIELD = {"code": "spec.code", "storyboard": "spec.storyboard.scenes", "prompt": "spec.prompt",
                 "editing": "spec.editing"}
