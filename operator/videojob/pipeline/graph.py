"""The pipeline as a LangGraph StateGraph.

    plan -> generate_code -> render --(all rendered)--> combine -> upload -> record -> END
                  ^             |
                  +--(a scene failed, attempts left)

Each node is a plain async function of (state, context) living in its own module; this file only
wires them and wraps each in its stage (gate for suspend/cancel, stage events for progress).
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from videojob import metrics
from videojob.pipeline import codegen, planner, publish, render
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.errors import PipelineError
from videojob.pipeline.state import VideoGenerationState

NodeFn = Callable[[PipelineContext, VideoGenerationState], Awaitable[dict[str, Any]]]

# node name -> (stage name in status, implementation)
NODES: dict[str, tuple[str, NodeFn]] = {
    "plan": ("Planning", planner.plan_scenes),
    "generate_code": ("GeneratingCode", codegen.generate_code),
    "render": ("Rendering", render.render_scenes),
    "combine": ("Combining", publish.combine),
    "upload": ("Uploading", publish.upload),
    "record": ("Recording", publish.record),
}


def _stage_node(stage: str, fn: NodeFn):
    async def node(state: VideoGenerationState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
        ctx = runtime.context
        await ctx.before_stage(stage)
        await ctx.progress.stage_started(stage)
        started = time.monotonic()
        try:
            update = await fn(ctx, state)
        except PipelineError as exc:
            exc.stage = exc.stage or stage
            metrics.record_stage(stage, "failure", time.monotonic() - started)
            await ctx.progress.emit("stage_failed", exc.message, data={"reason": exc.reason})
            raise
        metrics.record_stage(stage, "success", time.monotonic() - started)
        if stage == "Planning":
            ctx.progress.set_scene_count(len(update["scenes"]))
            await ctx.progress.step(f"planned {len(update['scenes'])} scene(s)")
        await ctx.progress.stage_finished()
        return update

    node.__name__ = f"{stage}_node"
    return node


def build_graph():
    """The compiled pipeline graph (stateless: build once, run many times)."""
    builder = StateGraph(VideoGenerationState, context_schema=PipelineContext)
    for name, (stage, fn) in NODES.items():
        builder.add_node(name, _stage_node(stage, fn))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "generate_code")
    builder.add_edge("generate_code", "render")
    builder.add_conditional_edges("render", render.route_after_render, ["combine", "generate_code"])
    builder.add_edge("combine", "upload")
    builder.add_edge("upload", "record")
    builder.add_edge("record", END)
    return builder.compile(name="videojob")
