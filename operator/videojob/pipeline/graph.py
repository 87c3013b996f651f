"""The pipeline: its nodes, the edges between them, the typed router, and two ways to run it.

    plan -> narrate -> generate_code -> render --(all rendered)--> combine -> upload -> record -> END
                             ^             |
                             +--(a scene failed, attempts left)

Each node is a plain async function of (context, state) in its own module that returns a partial
state update; nothing passes between nodes outside the state. This file wires them (`NODES`,
`NEXT`) and wraps each in its stage (the gate for suspend/cancel, stage events for progress,
stage metrics). The same table drives both runners:

- `build_graph()` / `compiled_graph()`: a LangGraph StateGraph, which can checkpoint and resume
  a run between nodes; used whenever a node has real work to do (a model call, a render, speech).
- `run_in_order()`: the same nodes and router, called one after the other; for a run whose every
  scene is already in the render cache, where there is nothing worth checkpointing and importing
  LangGraph (~0.8 s) would be most of the run's cost (`videojob run` on an unchanged VideoJob).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Awaitable, Callable, Literal

from videojob import metrics
from videojob.api.models import Stage, VideoJob
from videojob.pipeline import codegen, narrate, planner, publish, render
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.errors import PipelineError
from videojob.pipeline.state import StateUpdate, VideoGenerationState
from videojob.pipeline.stages import run_stages

if TYPE_CHECKING:  # LangGraph loads only when a graph is built
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.runtime import Runtime

NodeFn = Callable[[PipelineContext, VideoGenerationState], Awaitable[StateUpdate]]
Router = Callable[[VideoGenerationState], str]


@dataclass(frozen=True)
class Node:
    name: str  # the node's name in the graph
    stage: Stage  # what status.currentStage shows while it runs
    run: NodeFn
    applies: Callable[[VideoJob], bool] | None = None  # optional stages: whether a job has it


NODES: tuple[Node, ...] = (
    Node("plan", Stage.Planning, planner.plan_scenes),
    Node("narrate", Stage.Narrating, narrate.narrate_scenes, applies=narrate.narrated),
    Node("generate_code", Stage.GeneratingCode, codegen.generate_code),
    Node("render", Stage.Rendering, render.render_scenes),
    Node("combine", Stage.Combining, publish.combine),
    Node("upload", Stage.Uploading, publish.upload),
    Node("record", Stage.Recording, publish.record),
)
_BY_NAME = {node.name: node for node in NODES}
FIRST = "plan"
END = "__end__"  # the same name as langgraph.graph.END


def stages_for(job: VideoJob) -> list[Stage]:
    """The stages a run of `job` goes through, in order (optional stages only when it uses them)."""
    return run_stages(*(n.stage for n in NODES if n.applies is not None and n.applies(job)))


def route_after_render(state: VideoGenerationState) -> Literal["combine", "generate_code"]:
    """Every scene rendered: combine. Otherwise back to code generation for the failed ones
    (the render node has already failed the run when no attempt is left)."""
    return "combine" if all(s.status == "rendered" for s in state.scenes) else "generate_code"


# After each node: the next node's name, or a router with the names it may return.
NEXT: dict[str, str | tuple[Router, tuple[str, ...]]] = {
    "plan": "narrate",
    "narrate": "generate_code",
    "generate_code": "render",
    "render": (route_after_render, ("combine", "generate_code")),
    "combine": "upload",
    "upload": "record",
    "record": END,
}


async def run_in_stage(node: Node, ctx: PipelineContext, state: VideoGenerationState) -> StateUpdate:
    """Run one node inside its stage: gate, stage events, stage metrics."""
    if node.applies is not None and not node.applies(ctx.job):
        return {}  # an optional stage this job does not have: no status, no metrics
    stage = node.stage.value
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


def nothing_to_checkpoint(ctx: PipelineContext, state: VideoGenerationState, *, renders_need_graph: bool = True) -> bool:
    """Whether no node of this run has real work: no model to call, nothing to speak, and every
    scene known from the manifest already in the render cache. Such a run is a few file
    operations (its scenes are joined, stored and recorded), so it runs in order, without
    LangGraph. A scene that left the cache meanwhile still renders: this decides only the runner.
    `renders_need_graph=False` (the operator's inline runs): renders alone do not call for the
    graph either, only a model or speech does; the graph runs with no checkpointer there, so it
    adds nothing, while LangGraph (~32 MB) would stay resident in the operator after one render."""
    from videojob.pipeline.render_cache import uncached_known_scenes

    if ctx.llm is not None or narrate.narrated(ctx.job):
        return False
    return not renders_need_graph or uncached_known_scenes(ctx.job, ctx.cache_dir, state.quality) == 0


def _successor(name: str, state: VideoGenerationState) -> str:
    step = NEXT[name]
    return step if isinstance(step, str) else step[0](state)


async def run_in_order(
    ctx: PipelineContext, state: VideoGenerationState, on_update: Callable[[StateUpdate], None]
) -> VideoGenerationState:
    """Run the pipeline to its end without LangGraph: each node in its stage, its update folded
    into the state as LangGraph folds it (every field a last-value channel; the next node sees a
    state built from the values) and handed to `on_update`, then the edge or router to the next."""
    name = FIRST
    while name != END:
        update = await run_in_stage(_BY_NAME[name], ctx, state)
        if update:
            on_update(update)
            # Built as LangGraph builds a node's input (`schema(**values)`): keys the state does
            # not have are dropped, as LangGraph drops them.
            state = VideoGenerationState(**{**dict(state), **update})
        name = _successor(name, state)
    return state


def _langgraph_node(node: Node):
    async def run(state: VideoGenerationState, runtime: Runtime[PipelineContext]) -> StateUpdate:
        return await run_in_stage(node, runtime.context, state)

    run.__name__ = f"{node.name}_in_stage"
    return run


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """The pipeline graph, compiled; with a checkpointer, a run can stop and resume between
    nodes (the state is plain data, the context is given again on resume)."""
    from langgraph.graph import END as GRAPH_END, START, StateGraph

    builder = StateGraph(VideoGenerationState, context_schema=PipelineContext)
    for node in NODES:
        builder.add_node(node.name, _langgraph_node(node))
    builder.add_edge(START, FIRST)
    for name, step in NEXT.items():
        if isinstance(step, str):
            builder.add_edge(name, GRAPH_END if step == END else step)
        else:
            router, targets = step
            builder.add_conditional_edges(name, router, list(targets))
    return builder.compile(checkpointer=checkpointer, name="videojob")


@cache
def compiled_graph() -> CompiledStateGraph:
    """The compiled pipeline graph, built once per process (it holds no run's data)."""
    return build_graph()
