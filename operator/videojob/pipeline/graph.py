"""The pipeline as a LangGraph StateGraph: its nodes, the router, and the builder.

    plan -> generate_code -> render --(all rendered)--> combine -> upload -> record -> END
                  ^             |
                  +--(a scene failed, attempts left)

Each node is a plain async function of (context, state) in its own module that returns a partial
state update; nothing passes between nodes outside the state. This file wires them and wraps
each in its stage (the gate for suspend/cancel, stage events for progress, stage metrics).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Awaitable, Callable, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from videojob import metrics
from videojob.api.models import Stage, VideoJob
from videojob.pipeline import codegen, planner, publish, render
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.errors import PipelineError
from videojob.pipeline.state import StateUpdate, VideoGenerationState
from videojob.pipeline.stages import run_stages

NodeFn = Callable[[PipelineContext, VideoGenerationState], Awaitable[StateUpdate]]
StateNode = Callable[[VideoGenerationState, Runtime[PipelineContext]], Awaitable[StateUpdate]]


@dataclass(frozen=True)
class Node:
    name: str  # the node's name in the graph
    stage: Stage  # what status.currentStage shows while it runs
    run: NodeFn


NODES: tuple[Node, ...] = (
    Node("plan", Stage.Planning, planner.plan_scenes),
    Node("generate_code", Stage.GeneratingCode, codegen.generate_code),
    Node("render", Stage.Rendering, render.render_scenes),
    Node("combine", Stage.Combining, publish.combine),
    Node("upload", Stage.Uploading, publish.upload),
    Node("record", Stage.Recording, publish.record),
)


def stages_for(job: VideoJob) -> list[Stage]:
    """The stages a run of `job` goes through, in order (optional stages only when it uses them)."""
    return run_stages()


def route_after_render(state: VideoGenerationState) -> Literal["combine", "generate_code"]:
    """Every scene rendered: combine. Otherwise back to code generation for the failed ones
    (the render node has already failed the run when no attempt is left)."""
    return "combine" if all(s.status == "rendered" for s in state.scenes) else "generate_code"


def _in_stage(node: Node) -> StateNode:
    stage = node.stage.value

    async def run(state: VideoGenerationState, runtime: Runtime[PipelineContext]) -> StateUpdate:
        ctx = runtime.context
        await ctx.before_stage(stage)
        await ctx.progress.stage_started(stage)
        started = time.monotonic()
        try:
            update = await node.run(ctx, state)
        except PipelineError as exc:
            exc.stage = exc.stage or stage
            metrics.record_stage(stage, "failure", time.monotonic() - started)
            await ctx.progress.emit("stage_failed", exc.message, data={"reason": exc.reason})
            raise
        metrics.record_stage(stage, "success", time.monotonic() - started)
        await ctx.progress.stage_finished()
        return update

    run.__name__ = f"{node.name}_in_stage"
    return run


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """The pipeline graph, compiled; with a checkpointer, a run can stop and resume between
    nodes (the state is plain data, the context is given again on resume)."""
    builder = StateGraph(VideoGenerationState, context_schema=PipelineContext)
    for node in NODES:
        builder.add_node(node.name, _in_stage(node))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "generate_code")
    builder.add_edge("generate_code", "render")
    builder.add_conditional_edges("render", route_after_render, ["combine", "generate_code"])
    builder.add_edge("combine", "upload")
    builder.add_edge("upload", "record")
    builder.add_edge("record", END)
    return builder.compile(checkpointer=checkpointer, name="videojob")


@cache
def compiled_graph() -> CompiledStateGraph:
    """The compiled pipeline graph, built once per process (it holds no run's data)."""
    return build_graph()
