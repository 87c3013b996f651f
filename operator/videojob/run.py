"""Run one VideoJob generation: the pipeline plus storage, reporting into a status tracker.

This is the one entry point shared by `videojob run` (laptop), the operator's inline executor and
`videojob worker` (Job executor). It never raises for problems with the job itself: the returned
`RunResult` carries the final status, with a reason and message on failure.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

from videojob.api.manifest import InvalidVideoJob, check_runnable  # check_runnable: re-exported
from videojob.api.models import Phase, UploadState, VideoJob, VideoJobStatus
from videojob.config import ConfigError, Settings
from videojob.policy import TenancyPolicy
from videojob.pipeline.budget import UsageBudget
from videojob.pipeline.context import PipelineContext, StageGate, open_gate
from videojob.pipeline.errors import InvalidContent, PipelineError, TransientError
from videojob.pipeline.graph import compiled_graph, nothing_to_checkpoint, run_in_order, stages_for
from videojob.pipeline.progress import Progress, ProgressCallback
from videojob.pipeline.sandbox import Sandbox, SandboxLimits
from videojob.pipeline.state import StateUpdate, VideoGenerationState
from videojob.pipeline.status import StatusTracker
from videojob.storage.aws_config import load_aws_config
from videojob.storage.local import LocalPublisher, LocalVersionStore
from videojob.storage.records import Publisher, UploadProgressCallback

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from videojob.pipeline.llm import ChatLLM

    Model = ChatLLM | Runnable | None  # what callers may pass as `llm`

log = logging.getLogger(__name__)

class _Unset(Enum):
    token = "unset"  # `llm` not given: resolve spec.llm / VIDEOJOB_LLM_MODEL


_UNSET = _Unset.token


@dataclass
class RunResult:
    tracker: StatusTracker
    state: VideoGenerationState | None = None
    error: PipelineError | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.tracker.status.phase == Phase.Succeeded

    @property
    def status(self) -> VideoJobStatus:
        return self.tracker.status


def make_publisher(store_root: Path) -> Publisher:
    """The local store, or the AWS publisher when AWS_S3_VIDEO_BUCKET is set (boto3 is imported
    only then). Raises ConfigError naming the variable when an AWS_* value is invalid."""
    store = LocalVersionStore(store_root)
    config = load_aws_config()
    if not config.enabled:
        return LocalPublisher(store)
    from videojob.storage.aws_publisher import AWSPublisher

    return AWSPublisher(store, config)


def initial_state(job: VideoJob, quality: str | None = None) -> VideoGenerationState:
    spec = job.spec
    return VideoGenerationState(
        topic=spec.topic,
        description=spec.description,
        source=spec.source if spec.source != "none" else "storyboard",
        project_id=job.project_id,
        video_id=job.video_id,
        quality=quality or spec.render.quality,
        max_scene_attempts=spec.render.max_scene_attempts,
        enable_aws_upload=spec.storage.upload,
        enable_aws_code_management=spec.storage.upload,
        enable_code_object_lock=spec.storage.code_object_lock is not None,
    )


@dataclass
class RunInputs:
    """What a run needs besides the job, resolved before any work starts."""

    llm: ChatLLM | None
    publisher: Publisher


def resolve_inputs(
    job: VideoJob, settings: Settings, store_root: Path, cache_dir: Path, llm: Model | _Unset,
    credentials: dict[str, str] | None, publisher: Publisher | None, *, tenant: bool = False,
    budget: UsageBudget | None = None,
) -> RunInputs:
    """The job's model (with the answer cache beside the render cache, and the per-job token cap)
    and publisher. Raises InvalidVideoJob, PipelineError or ConfigError. `tenant`: see run_videojob."""
    spec = job.spec
    wants_model = spec.source == "prompt" or spec.editing is not None or bool(spec.llm and spec.llm.model)
    if llm is _UNSET and not wants_model:
        llm = None  # the operator's default model is not even built for jobs that need none
    chat = None
    if llm is not None:
        from videojob.pipeline import llm as llm_mod  # the LLM stack loads only for jobs that use it

        if llm is _UNSET:
            llm = llm_mod.resolve_model(spec.llm, settings.llm_model, credentials, tenant=tenant)
        chat = llm_mod.prepare(llm, llm_mod.model_name(spec.llm, settings.llm_model), cache_dir.parent / "llm", budget)
    check_runnable(job, chat)
    return RunInputs(chat, publisher or make_publisher(store_root))


def refusal(exc: Exception) -> PipelineError:
    """The error a run reports when it cannot start (spec, model or AWS settings are wrong)."""
    if isinstance(exc, PipelineError):
        return exc
    if isinstance(exc, ConfigError):
        # Not the spec's fault: the operator's AWS_* settings are wrong. Stalled until fixed.
        return PipelineError(f"invalid configuration: {exc}", reason="InvalidConfiguration")
    return InvalidContent(str(exc), reason="InvalidSpec")


@asynccontextmanager
async def run_directory(store_root: Path) -> AsyncIterator[Path]:
    """Scratch for one run under `{store_root}/.work`, removed afterwards."""
    run_dir = store_root / ".work" / uuid.uuid4().hex[:12]
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield run_dir
    finally:
        await asyncio.to_thread(shutil.rmtree, run_dir, True)


@contextmanager
def render_sandbox(store_root: Path, settings: Settings, given: Sandbox | None) -> Iterator[Sandbox]:
    """The caller's sandbox (an operator shares one), or one of our own for this run."""
    if given is not None:
        yield given
        return
    own = Sandbox(store_root / ".work", SandboxLimits(memory_mb=settings.render_memory_mb, max_output_mb=settings.render_max_output_mb))
    try:
        yield own
    finally:
        own.close()


async def drive(ctx: PipelineContext, state: VideoGenerationState, tracker: StatusTracker, *,
                graph_for_renders: bool = True) -> VideoGenerationState:
    """Run the pipeline to its end, folding each node's update into the tracker: through the
    LangGraph graph, or node by node when no node has work (see `graph.nothing_to_checkpoint`,
    which says what `graph_for_renders=False` changes)."""
    if nothing_to_checkpoint(ctx, state, renders_need_graph=graph_for_renders):
        return await run_in_order(ctx, state, tracker.apply_update)
    final: StateUpdate | VideoGenerationState = state
    async for mode, chunk in compiled_graph().astream(
        state, context=ctx, stream_mode=["updates", "values"], config={"recursion_limit": 100}
    ):
        if mode == "updates":
            for update in chunk.values():
                if update:
                    tracker.apply_update(update)
        else:
            final = chunk
    return VideoGenerationState.model_validate(final)


def success_message(state: VideoGenerationState) -> str:
    message = f"version {state.version} ready: {state.outputs.video_uri if state.outputs else None}"
    if state.upload_status == UploadState.failed_graceful:
        message += " (upload failed; kept locally)"
    return message


async def run_videojob(
    job: VideoJob,
    *,
    settings: Settings,
    store_root: Path,
    cache_dir: Path | None = None,
    quality: str | None = None,
    llm: Model | _Unset = _UNSET,
    credentials: dict[str, str] | None = None,
    callbacks: list[ProgressCallback] | None = None,
    upload_callbacks: list[UploadProgressCallback] | None = None,
    before_stage: StageGate = open_gate,
    publisher: Publisher | None = None,
    sandbox: Sandbox | None = None,
    tracker: StatusTracker | None = None,
    tenant: bool = False,
    graph_for_renders: bool = True,
) -> RunResult:
    """Run the pipeline for `job` to the end. Cancel the task to stop it (children are killed).

    `llm` is a LangChain chat model or `ChatLLM` (default: built from spec.llm / settings), None
    for no model; `tracker` continues a status the caller already reports (else a new one).
    `tenant`: the job is a tenant's, run by the operator: a model at spec.llm.baseUrl gets only
    `credentials` (its own Secret's keys), never the operator's environment. The per-job caps
    (VIDEOJOB_MAX_*_PER_JOB) apply to every run. `graph_for_renders`: see `drive`."""
    budget = UsageBudget(TenancyPolicy.from_settings(settings).caps)
    tracker = tracker or StatusTracker(job.metadata.generation)
    if tracker.status.phase != Phase.Running:
        tracker.started()
    stages = stages_for(job)
    tracker.expect_stages(stages)
    store_root = Path(store_root)
    cache_dir = Path(cache_dir) if cache_dir else store_root / ".cache" / "renders"
    try:
        inputs = resolve_inputs(job, settings, store_root, cache_dir, llm, credentials, publisher, tenant=tenant, budget=budget)
    except (InvalidVideoJob, PipelineError, ConfigError) as exc:
        error = refusal(exc)
        tracker.failed(error.reason, error.message, stalled=True)
        return RunResult(tracker, error=error)

    progress = Progress([tracker.apply, *(callbacks or [])], stages)
    async with run_directory(store_root) as run_dir:
        with render_sandbox(store_root, settings, sandbox) as run_sandbox:
            ctx = PipelineContext(
                job=job,
                workdir=run_dir,
                cache_dir=cache_dir,
                sandbox=run_sandbox,
                publisher=inputs.publisher,
                progress=progress,
                llm=inputs.llm,
                before_stage=before_stage,
                upload_callbacks=list(upload_callbacks or []),
                budget=budget,
                **tuning(job, settings),
            )
            return await execute(ctx, initial_state(job, quality), tracker, graph_for_renders=graph_for_renders)


def tuning(job: VideoJob, settings: Settings) -> dict[str, Any]:
    """The PipelineContext fields that come from settings: limits, parallelism, cache size."""
    return {
        "limits": SandboxLimits(
            timeout_seconds=job.spec.render.scene_timeout_seconds,
            memory_mb=settings.render_memory_mb,
            max_output_mb=settings.render_max_output_mb,
        ),
        "scene_parallelism": settings.scene_parallelism,
        "render_cache_bytes": settings.render_cache_mb * 1024 * 1024,
        "repair_memory": settings.repair_memory,
    }


async def execute(ctx: PipelineContext, state: VideoGenerationState, tracker: StatusTracker, *,
                  graph_for_renders: bool = True) -> RunResult:
    """Run the graph and report how it ended into `tracker`."""
    try:
        final = await drive(ctx, state, tracker, graph_for_renders=graph_for_renders)
    except PipelineError as exc:
        tracker.count_usage(ctx.usage)  # calls of the failed stage count too
        tracker.failed(exc.reason, exc.message, stalled=exc.permanent)
        return RunResult(tracker, error=exc)
    except (OSError, RuntimeError, ValueError) as exc:
        # Not the job's fault (disk full, a library bug): worth a retry, never a traceback in status.
        log.exception("pipeline run failed unexpectedly")
        error = TransientError(f"internal error: {type(exc).__name__}: {exc}", reason="InternalError")
        tracker.failed(error.reason, error.message, stalled=False)
        return RunResult(tracker, error=error)
    tracker.succeeded(success_message(final))
    return RunResult(tracker, state=final)
