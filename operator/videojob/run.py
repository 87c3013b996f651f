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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videojob.api.manifest import InvalidVideoJob
from videojob.api.models import VideoJob
from videojob.config import ConfigError, Settings
from videojob.policy import TenancyPolicy
from videojob.pipeline import llm as llm_mod
from videojob.pipeline.budget import UsageBudget
from videojob.pipeline.context import PipelineContext, StageGate, _open_gate
from videojob.pipeline.errors import InvalidContent, PipelineError, TransientError
from videojob.pipeline.graph import build_graph
from videojob.pipeline.progress import Progress, ProgressCallback
from videojob.pipeline.sandbox import Sandbox, SandboxLimits
from videojob.pipeline.state import VideoGenerationState
from videojob.pipeline.status import StatusTracker
from videojob.storage.local import LocalPublisher, LocalVersionStore
from videojob.storage.records import Publisher, UploadProgressCallback

log = logging.getLogger(__name__)

_GRAPH = None
_UNSET: Any = object()


def graph():
    global _GRAPH
    if _GRAPH is None:
        _GRAPH = build_graph()
    return _GRAPH


@dataclass
class RunResult:
    tracker: StatusTracker
    state: VideoGenerationState | None = None
    error: PipelineError | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.tracker.status.phase == "Succeeded"

    @property
    def status(self):
        return self.tracker.status


def make_publisher(settings: Settings, store_root: Path) -> Publisher:
    """The local store, or the AWS publisher when AWS_S3_VIDEO_BUCKET is set."""
    store = LocalVersionStore(store_root)
    try:
        from videojob.agents.publisher import aws_publisher_from_env
    except ImportError:
        return LocalPublisher(store)
    return aws_publisher_from_env(store) or LocalPublisher(store)


def check_runnable(job: VideoJob, llm: Any) -> None:
    """Problems that make the job impossible before any work starts. Raises InvalidVideoJob."""
    spec = job.spec
    if llm is None and (spec.source == "prompt" or spec.editing is not None):
        field_name = "spec.editing.feedback" if spec.editing is not None else "spec.prompt"
        raise InvalidVideoJob(
            [f"{field_name}: needs an LLM: set spec.llm.model (e.g. 'openai:gpt-4o-mini') or VIDEOJOB_LLM_MODEL"]
        )


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


async def run_videojob(
    job: VideoJob,
    *,
    settings: Settings,
    store_root: Path,
    cache_dir: Path | None = None,
    quality: str | None = None,
    llm: Any = _UNSET,
    credentials: dict[str, str] | None = None,
    callbacks: list[ProgressCallback] | None = None,
    upload_callbacks: list[UploadProgressCallback] | None = None,
    before_stage: StageGate = _open_gate,
    publisher: Publisher | None = None,
    sandbox: Sandbox | None = None,
    tracker: StatusTracker | None = None,
    tenant: bool = False,
) -> RunResult:
    """Run the pipeline for `job` to the end. Cancel the task to stop it (children are killed).

    `tenant`: the job is a tenant's, run by the operator: a model at spec.llm.baseUrl gets only
    `credentials` (its own Secret's keys), never the operator's environment."""
    tracker = tracker or StatusTracker(job.metadata.generation)
    if tracker.status.phase not in ("Running",):
        tracker.started()
    try:
        if llm is _UNSET:
            llm = llm_mod.resolve_model(job.spec.llm, settings.llm_model, credentials, tenant=tenant)
        check_runnable(job, llm)
        publisher = publisher or make_publisher(settings, Path(store_root))
    except (InvalidVideoJob, PipelineError) as exc:
        error = exc if isinstance(exc, PipelineError) else InvalidContent(str(exc), reason="InvalidSpec")
        tracker.failed(error.reason, error.message, stalled=True)
        return RunResult(tracker, error=error)
    except ConfigError as exc:
        # Not the spec's fault: the operator's AWS_* settings are wrong. Stalled until fixed.
        error = PipelineError(f"invalid configuration: {exc}", reason="InvalidConfiguration")
        tracker.failed(error.reason, error.message, stalled=True)
        return RunResult(tracker, error=error)

    store_root = Path(store_root)
    run_dir = store_root / ".work" / uuid.uuid4().hex[:12]
    run_dir.mkdir(parents=True, exist_ok=True)
    own_sandbox = sandbox is None
    sandbox = sandbox or Sandbox(
        store_root / ".work", SandboxLimits(memory_mb=settings.render_memory_mb, max_output_mb=settings.render_max_output_mb)
    )
    limits = SandboxLimits(
        timeout_seconds=job.spec.render.scene_timeout_seconds,
        memory_mb=settings.render_memory_mb,
        max_output_mb=settings.render_max_output_mb,
    )

    def on_event(event):
        tracker.apply(event)

    progress = Progress([on_event, *(callbacks or [])])
    ctx = PipelineContext(
        job=job,
        workdir=run_dir,
        cache_dir=Path(cache_dir) if cache_dir else store_root / ".cache" / "renders",
        sandbox=sandbox,
        publisher=publisher,
        progress=progress,
        limits=limits,
        scene_parallelism=settings.scene_parallelism,
        render_cache_bytes=settings.render_cache_mb * 1024 * 1024,
        llm=llm,
        llm_model_name=llm_mod.model_name(job.spec.llm, settings.llm_model),
        repair_memory=settings.repair_memory,
        before_stage=before_stage,
        upload_callbacks=list(upload_callbacks or []),
        budget=UsageBudget(TenancyPolicy.from_settings(settings).caps),
    )
    state = initial_state(job, quality)
    final: dict[str, Any] = state.model_dump()
    try:
        async for mode, chunk in graph().astream(
            state, context=ctx, stream_mode=["updates", "values"], config={"recursion_limit": 100}
        ):
            if mode == "updates":
                for update in chunk.values():
                    if update:
                        if "record" in update:
                            update = {**update, "record_table": ctx.publisher.describe().get("table")}
                        tracker.apply_update(update)
            else:
                final = chunk if isinstance(chunk, dict) else chunk.model_dump()
        result_state = VideoGenerationState.model_validate(final)
        message = f"version {result_state.version} ready: {result_state.outputs.get('videoURI')}"
        if result_state.upload_status == "failed_graceful":
            message += " (upload failed; kept locally)"
        tracker.succeeded(message)
        return RunResult(tracker, state=result_state)
    except PipelineError as exc:
        tracker.apply_update({"usage": ctx.usage})
        tracker.failed(exc.reason, exc.message, stalled=exc.permanent)
        return RunResult(tracker, error=exc)
    except (OSError, RuntimeError, ValueError) as exc:
        # Not the job's fault (disk full, a library bug): worth a retry, never a traceback in status.
        log.exception("pipeline run failed unexpectedly")
        error = TransientError(f"internal error: {type(exc).__name__}: {exc}", reason="InternalError")
        tracker.failed(error.reason, error.message, stalled=False)
        return RunResult(tracker, error=error)
    finally:
        if own_sandbox:
            sandbox.close()
        await asyncio.to_thread(shutil.rmtree, run_dir, True)
