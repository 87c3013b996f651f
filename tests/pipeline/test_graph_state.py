"""Nodes talk only through the graph state: a run stopped between Uploading and Recording (as a
checkpointing LangGraph would stop it) finishes from its checkpoint with a fresh context; a run
with nothing to render runs the same nodes in order, without LangGraph, to the same state."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.pipeline.conftest import storyboard, videojob
from videojob.api.manifest import parse_videojob
from videojob.config import Settings
from videojob.pipeline.context import PipelineContext
from videojob.pipeline.graph import build_graph, compiled_graph, nothing_to_checkpoint, route_after_render, run_in_order
from videojob.pipeline.progress import Progress
from videojob.pipeline.sandbox import Sandbox
from videojob.pipeline.state import SceneState, VideoGenerationState
from videojob.run import initial_state, tuning
from videojob.storage.local import LocalPublisher, LocalVersionStore

pytestmark = pytest.mark.render


def fresh_context(job, tmp_path: Path, sandbox: Sandbox, name: str) -> PipelineContext:
    """What a new process would build: its own store object, progress and scratch directory."""
    workdir = tmp_path / name
    workdir.mkdir()
    return PipelineContext(
        job=job, workdir=workdir, cache_dir=tmp_path / "cache", sandbox=sandbox,
        publisher=LocalPublisher(LocalVersionStore(tmp_path / "out")), progress=Progress(),
        **tuning(job, Settings()),
    )


async def test_a_run_stopped_before_recording_resumes_from_its_checkpoint(tmp_path):
    job = parse_videojob(videojob(storyboard(1), name="resumed", namespace="tests", uid="uid-1", generation=1))
    graph = build_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "resumed-1"}, "recursion_limit": 100}
    sandbox = Sandbox(tmp_path / "sandbox")
    try:
        first = fresh_context(job, tmp_path, sandbox, "first")
        await graph.ainvoke(initial_state(job), config, context=first, interrupt_before=["record"])
        stopped = graph.get_state(config)
        assert stopped.next == ("record",)
        video_dir = tmp_path / "out" / "tests" / "resumed"
        assert (video_dir / ".v1.partial").is_dir() and not (video_dir / "v1").exists()  # stored, not yet recorded
        assert stopped.values["stored"].version == 1

        final = await graph.ainvoke(None, config, context=fresh_context(job, tmp_path, sandbox, "second"))
    finally:
        sandbox.close()
    state = VideoGenerationState.model_validate(final)
    assert state.record is not None and state.record.version == 1
    assert (video_dir / "v1" / "record.json").is_file() and not (video_dir / ".v1.partial").exists()
    assert state.outputs is not None and state.outputs.video_uri == (video_dir / "v1" / "resumed.mp4").resolve().as_uri()


def test_the_router_sends_failed_scenes_back_to_code_generation():
    rendered = SceneState(index=0, title="A", class_name="Scene01", status="rendered")
    failed = SceneState(index=1, title="B", class_name="Scene02", status="failed")
    assert route_after_render(VideoGenerationState(scenes=[rendered])) == "combine"
    assert route_after_render(VideoGenerationState(scenes=[rendered, failed])) == "generate_code"


async def test_a_run_with_nothing_to_render_ends_in_the_same_state_without_langgraph(tmp_path):
    job = parse_videojob(videojob(storyboard(1, 1), name="twice", namespace="tests"))
    sandbox = Sandbox(tmp_path / "sandbox")
    try:
        first = fresh_context(job, tmp_path, sandbox, "first")
        assert not nothing_to_checkpoint(first, initial_state(job))  # its scenes are not rendered yet
        await compiled_graph().ainvoke(initial_state(job), context=first)

        in_order = fresh_context(job, tmp_path, sandbox, "in-order")
        assert nothing_to_checkpoint(in_order, initial_state(job))  # every scene is in the render cache
        updates: list[dict] = []
        plain = await run_in_order(in_order, initial_state(job), updates.append)
        graph = VideoGenerationState.model_validate(
            await compiled_graph().ainvoke(initial_state(job), context=fresh_context(job, tmp_path, sandbox, "graph"))
        )
    finally:
        sandbox.close()
    assert (plain.version, graph.version) == (2, 3)
    assert all(s.cached and s.status == "rendered" for s in plain.scenes)
    # The same scenes, joined video and code; only what names the version differs.
    per_version = {"version", "stored", "record", "outputs", "aws_upload_results", "code_upload_results"}
    assert plain.model_dump(exclude=per_version) == graph.model_dump(exclude=per_version)
    assert plain.outputs.sha256 == graph.outputs.sha256 and plain.outputs.size_bytes == graph.outputs.size_bytes
    assert [sorted(u) for u in updates][-1] == ["outputs", "record", "record_error", "record_table", "version"]
