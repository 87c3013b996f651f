"""The run-time context of one pipeline run: the things nodes use that are not state.

Passed to the graph as LangGraph's `context` (read in nodes through `runtime.context`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable

from videojob.api.models import VideoJob
from videojob.pipeline.budget import UsageBudget
from videojob.pipeline.progress import Progress
from videojob.pipeline.sandbox import Sandbox, SandboxLimits
from videojob.storage.records import Publisher, UploadProgressCallback

if TYPE_CHECKING:
    from videojob.pipeline.llm import ChatLLM

# Called before each stage starts; may wait (suspend) or raise (cancel, deadline).
StageGate = Callable[[str], Awaitable[None]]


async def open_gate(stage: str) -> None:
    """The default gate: every stage may start at once."""


@dataclass
class PipelineContext:
    job: VideoJob
    workdir: Path  # scratch for this run: combined video, temporary files
    cache_dir: Path  # render cache, shared between runs
    sandbox: Sandbox
    publisher: Publisher
    progress: Progress
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    scene_parallelism: int = 2
    render_cache_bytes: int | None = None  # None: unbounded
    llm: ChatLLM | None = None  # the job's model(s) with retries, fallbacks and the answer cache
    repair_memory: int = 5
    before_stage: StageGate = open_gate
    upload_callbacks: list[UploadProgressCallback] = field(default_factory=list)
    # LLM calls and tokens of this run, kept here rather than only in node updates so that a
    # node failing after some calls still has them counted in status.usage.
    usage: dict[str, int] = field(default_factory=lambda: {"llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
    # The operator's per-job caps (VIDEOJOB_MAX_*_PER_JOB), checked against `usage` as the run goes.
    budget: UsageBudget = field(default_factory=UsageBudget)
