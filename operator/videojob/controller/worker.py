"""`videojob worker`: run one VideoJob generation inside a Job pod (the Job executor).

The worker reads its VideoJob, checks that the generation it was started for is still the one
to produce, runs the same pipeline as the inline executor (`run_videojob`) and reports into
the VideoJob's status through the operator's `StatusReporter` (throttled writes, an Event at
every phase change). It does not retry: the operator makes each retry a new Job. LLM keys come
from the one credential reader (`credentials.py`), which registers them for log redaction.

It needs only: get videojobs, patch videojobs/status, create events, and list (by name and the
label videogen.io/credentials=true) the Secret named in spec.llm.credentialsSecretRef (the
chart's worker Role).

Exit codes: 0 succeeded; 1 failed (status says why, Stalled=True when a retry cannot help);
2 nothing to do: the VideoJob is gone, its generation moved on, or the configuration is bad;
143 stopped by SIGTERM (Job suspended or deleted), with nothing more written.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from videojob.api.manifest import InvalidVideoJob, parse_videojob
from videojob.api.models import VideoJobStatus
from videojob.config import ConfigError, Settings, load_settings
from videojob.controller import decisions, reporter as rules
from videojob.controller.credentials import CredentialsUnavailable, read_credentials
from videojob.controller.events import EventRecorder
from videojob.controller.reporter import StatusReporter
from videojob.pipeline.status import StatusTracker

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_NOTHING_TO_DO, EXIT_TERMINATED = 0, 1, 2, 143


class NothingToDo(Exception):
    """The VideoJob is missing or no longer wants this generation."""


def _error(message: str) -> None:
    sys.stderr.write(f"videojob worker: {message}\n")


def worker_command(args: Any) -> int:
    from videojob.logs import configure_logging

    configure_logging(getattr(args, "log_format", "text"))
    try:
        settings = load_settings()
    except ConfigError as exc:
        _error(f"bad configuration: {exc}")
        return EXIT_NOTHING_TO_DO
    from videojob.controller.kube import KubeClient

    try:
        kube = KubeClient.from_environment()
    except Exception as exc:
        _error(f"no cluster credentials (in-cluster service account or kubeconfig): {exc}")
        return EXIT_NOTHING_TO_DO
    try:
        return asyncio.run(_until_terminated(run_worker(
            args.namespace, args.name, args.generation, args.attempt, settings=settings, kube=kube,
        )))
    finally:
        kube.close()


async def _until_terminated(work: Any) -> int:
    """Run `work`; SIGTERM (the pod is stopped: suspend, deletion) cancels it."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError):  # not the main thread
        pass
    try:
        return await task
    except asyncio.CancelledError:
        _error("stopped by SIGTERM; the operator decides what happens next")
        return EXIT_TERMINATED


async def run_worker(
    namespace: str,
    name: str,
    generation: int,
    attempt: int = 1,
    *,
    settings: Settings,
    kube: Any,
    store_root: Path | None = None,
    min_write_interval: float = 1.0,
) -> int:
    """The worker's core: returns the exit code. `kube` is a `KubeClient` (or alike)."""
    try:
        raw = await _videojob_to_run(kube, namespace, name, generation)
    except NothingToDo as exc:
        _error(str(exc))
        return EXIT_NOTHING_TO_DO
    meta = raw["metadata"]
    previous_raw = raw.get("status") or {}
    previous = VideoJobStatus.from_object(previous_raw)
    current = int(meta.get("generation") or generation)
    if previous is not None and previous.start_time and previous.observed_generation == current:
        tracker = StatusTracker.resuming(previous, current, attempt)  # the run started with attempt 1
    else:
        tracker = StatusTracker(current, attempt=attempt, previous=previous)
    ref = {"namespace": namespace, "name": name, "uid": meta.get("uid")}
    # Ownership: once anyone else (the operator: suspend, a new generation, a lost pod) writes the
    # status, this worker writes no more, so its late writes never undo the operator's.
    reporter = StatusReporter(kube, EventRecorder(kube), ref, tracker.as_dict, phase=previous_raw.get("phase"),
                              previous=previous_raw, resource_version=meta.get("resourceVersion"),
                              on_conflict=rules.same_writer, min_interval=min_write_interval)
    try:
        return await _run(raw, generation, attempt, tracker, reporter, settings=settings, kube=kube, store_root=store_root)
    finally:
        await reporter.close(flush=False)


async def _run(
    raw: dict[str, Any], generation: int, attempt: int, tracker: StatusTracker, reporter: StatusReporter,
    *, settings: Settings, kube: Any, store_root: Path | None,
) -> int:
    document = {key: raw[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in raw}
    try:
        job = parse_videojob(document)
    except InvalidVideoJob as exc:  # the operator validates first; an old image may disagree
        tracker.failed("InvalidSpec", "invalid spec: " + "; ".join(exc.problems), stalled=True)
        await reporter.publish()
        return EXIT_FAILED
    job.metadata.generation = generation  # the version belongs to the content generation
    tracker.started(f"running in Job pod (attempt {attempt})")
    await reporter.publish()
    try:
        credentials = await read_credentials(kube, raw["metadata"]["namespace"], job, default_model=settings.llm_model)
    except CredentialsUnavailable as exc:
        tracker.failed(exc.reason, exc.message, stalled=False)
        await reporter.publish()
        return EXIT_FAILED

    from videojob.run import run_videojob

    store = Path(store_root or settings.workdir)
    sandbox = _pod_sandbox(store)
    try:
        result = await run_videojob(
            job,
            settings=settings,
            store_root=store,
            tracker=tracker,
            callbacks=[lambda event: reporter.progress(important=event.kind in ("stage_started", "stage_failed"))],
            credentials=credentials,
            tenant=True,  # a model at spec.llm.baseUrl gets only the Secret's keys
            sandbox=sandbox,
        )
    finally:
        if sandbox is not None:
            sandbox.close()
    if not result.succeeded and job.spec.human_loop and result.error is not None and result.error.permanent:
        tracker.awaiting_input(result.error.reason, decisions.human_loop_message(result.error.reason, result.error.message))
    await reporter.publish()
    await reporter.close(flush=True)
    return EXIT_OK if result.succeeded else EXIT_FAILED


async def _videojob_to_run(kube: Any, namespace: str, name: str, generation: int) -> dict[str, Any]:
    raw = await kube.read_videojob(namespace, name)
    if raw is None:
        raise NothingToDo(f"VideoJob {namespace}/{name} not found (deleted?); nothing to do")
    if raw.get("metadata", {}).get("deletionTimestamp"):
        raise NothingToDo(f"VideoJob {namespace}/{name} is being deleted; nothing to do")
    wanted = decisions.content_generation(raw)
    if wanted != generation:
        raise NothingToDo(
            f"VideoJob {namespace}/{name} is at generation {wanted}, this worker was started for "
            f"generation {generation}; nothing to do (the operator runs the new generation)"
        )
    return raw


def _pod_sandbox(store: Path) -> Any:
    """In a Job pod with a render container (VIDEOJOB_RENDER_SPOOL set), scenes render there
    (status.sandbox: pod); otherwise run_videojob makes the usual sandbox (VIDEOJOB_SANDBOX)."""
    from videojob.pipeline.sandbox import Sandbox
    from videojob.pipeline.sandbox.pod import pod_runner_from_environment

    runner = pod_runner_from_environment()
    return None if runner is None else Sandbox(store / ".work", runner=runner)
