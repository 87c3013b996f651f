"""The Job executor (VIDEOJOB_EXECUTOR=job): every attempt of a VideoJob run is a batch/v1 Job.

The operator stays thin, as in Argo Workflows, KubeRay or Tekton: it creates one Job per attempt
(`jobspec.build_job`, named `{name}-g{generation}-a{attempt}`), and the worker pod runs
`videojob worker`, which runs the pipeline and writes progress into the VideoJob's status itself.
The operator writes status only when the worker cannot:

- before a Job's pod runs (Pending/Queued, the first write of a generation), while suspended;
- between attempts (Pending, attempt N+1): retries are new Jobs with spec.retryStrategy's
  backoff (`backoffLimit: 0` on every Job), so each attempt stays visible;
- when the pod died without reporting: OOMKilled, Evicted, ImagePullError, DeadlineExceeded,
  WorkerFailed (`jobspec.job_outcome`), with an Event naming the reason.

Permanent failures (the worker reported Failed with Stalled=True, or AwaitingInput) are not
retried; neither are DeadlineExceeded and ImagePullError. `spec.suspend` is `Job.spec.suspend`.
A spec edit or the VideoJob's deletion deletes the Job (propagationPolicy Background); operator
shutdown leaves Jobs running (a restarted operator finds them again by their names).

The interface is `InlineExecutor`'s: `submit`, `cancel`, `live`, `shutdown`; plus `register`,
which adds the watches on the operator's Jobs and their pods to a Kopf registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import kubernetes
from kubernetes.client.rest import ApiException

from videojob import metrics
from videojob.api import conditions as C
from videojob.api.models import API_GROUP, API_VERSION, PLURAL, VideoJobStatus
from videojob.controller import decisions
from videojob.controller.events import WARNING, JobEvent, transition_event
from videojob.controller.executor import RunRegistry
from videojob.controller.jobrun import RunEnvironment, RunHandle, RunRequest
from videojob.controller.jobspec import LABEL_VIDEOJOB, QUEUE_LABEL, attempt_verdict, build_job, job_name, job_outcome
from videojob.controller.status_writer import nulls_for_removed
from videojob.pipeline.status import StatusTracker

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "videojob-operator"}
# Pods carry their Job's name in these labels (the second since Kubernetes 1.27).
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
# Safety net under the watch: a Job not heard of for this long is read once.
POLL_INTERVAL = 60.0
# After a failed API call (server down, throttled), supervision goes on after this backoff.
API_RETRY_MIN, API_RETRY_MAX = 2.0, 60.0
# Unexpected errors (bugs) get this many tries before the VideoJob is failed with InternalError.
MAX_INTERNAL_ERRORS = 3


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class JobsClient:
    """The Job executor's API calls (sync kubernetes client in threads): Jobs, their pods, and
    reading a VideoJob. Every method returns plain dicts; None when the object is gone."""

    def __init__(self, api_client: kubernetes.client.ApiClient):
        self.api_client = api_client
        self.batch = kubernetes.client.BatchV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)

    def _dict(self, obj: Any) -> dict[str, Any]:
        return obj if isinstance(obj, dict) else self.api_client.sanitize_for_serialization(obj)

    async def create_job(self, namespace: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(job, created): an existing Job of the same name is returned as it is (idempotent
        after an operator restart)."""
        try:
            job = await asyncio.to_thread(self.batch.create_namespaced_job, namespace, body)
            return self._dict(job), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = await self.read_job(namespace, body["metadata"]["name"])
        if existing is None:  # deleted in between: try once more
            job = await asyncio.to_thread(self.batch.create_namespaced_job, namespace, body)
            return self._dict(job), True
        return existing, False

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._dict(await asyncio.to_thread(self.batch.read_namespaced_job, name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def set_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        try:
            await asyncio.to_thread(
                self.batch.patch_namespaced_job, name, namespace, {"spec": {"suspend": suspend}},
                _content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def delete_job(self, namespace: str, name: str) -> bool:
        """Delete a Job and (in the background) its pods. False if it was already gone."""
        try:
            await asyncio.to_thread(
                self.batch.delete_namespaced_job, name, namespace, propagation_policy="Background"
            )
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        selector = f"{JOB_NAME_LABELS[0]}={name}"
        found = await asyncio.to_thread(self.core.list_namespaced_pod, namespace, label_selector=selector)
        pods = self._dict(found).get("items") or []
        # Filter here too: the selector is the server's job, but not every server honours it.
        return [p for p in pods if pod_job_name(p) == name]

    async def read_videojob(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, API_GROUP, API_VERSION, namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def _api_message(exc: ApiException) -> str:
    """The `message` of a Kubernetes Status body, else the HTTP reason."""
    try:
        import json

        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def pod_job_name(pod: dict[str, Any]) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return next((labels[key] for key in JOB_NAME_LABELS if labels.get(key)), None)


def _owner_uid(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "VideoJob" and ref.get("apiVersion", "").startswith(API_GROUP + "/"):
            return ref.get("uid")
    return None


class KubeJobRun(RunHandle):
    """One content generation of one VideoJob, executed as Jobs (one per attempt)."""

    def __init__(self, request: RunRequest, env: RunEnvironment, executor: "JobExecutor"):
        self.request = request
        self.env = env
        self.executor = executor
        self.jobs = executor.jobs
        self.generation = request.generation
        self.suspended = request.job.spec.suspend
        self.attempt = 1
        self.job_name: str | None = None
        self.finished = False  # the current Job reached an outcome; nothing left to stop
        self._job: dict[str, Any] | None = None
        self._job_gone = False
        # The Job.spec.suspend the operator last asked for (None: no Job yet). Compared with
        # spec.suspend, not with the Job: Kueue's webhook creates queued Jobs suspended and
        # unsuspends them on admission, and the operator must not undo either.
        self._applied_suspend: bool | None = None
        self._pods: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._status: dict[str, Any] = dict(request.previous_status or {})
        # A restarted operator goes on with the attempt the status names (its Job may exist).
        restarting = request.restarting and bool(self._status.get("attempt"))
        if restarting:
            self.attempt = int(self._status["attempt"])
        self._needs_queued_write = not restarting
        self._submitted = time.monotonic()
        self.task: asyncio.Task | None = None

    # ------------------------------------------------------------------------------ control

    def start(self) -> asyncio.Task:
        self.task = asyncio.create_task(self._main(), name=f"videojob-jobs:{self.request.namespace}/{self.request.name}")
        return self.task

    def observe(self, generation: int, suspend: bool) -> None:
        """A spec change that keeps the content: a new generation, maybe (un)suspend the Job."""
        self.generation = generation
        self.suspended = suspend
        self._wake.set()

    async def cancel(self, *, delete_job: bool = True) -> None:
        """Stop supervising; with `delete_job`, delete the attempt's Job (and so its pod)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        if delete_job and self.job_name and not self.finished:
            await self.jobs.delete_job(self.request.namespace, self.job_name)

    # --------------------------------------------------------------------------- watch feed

    def job_changed(self, event_type: str | None, body: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self._job_gone = True
        else:
            self._job = body
        self._wake.set()

    def pod_changed(self, event_type: str | None, body: dict[str, Any]) -> None:
        name = (body.get("metadata") or {}).get("name", "")
        if event_type == "DELETED":
            self._pods.pop(name, None)
        else:
            self._pods[name] = body
        self._wake.set()

    # -------------------------------------------------------------------------------- main

    async def _main(self) -> None:
        delay = API_RETRY_MIN
        bugs = 0
        try:
            while True:
                try:
                    await self._attempts()
                    return
                except asyncio.CancelledError:
                    raise
                except ApiException as exc:
                    if exc.status in (400, 422):  # the API server refuses the Job: the spec must change
                        await self._fail("JobRejected", f"the API server refused Job {self.job_name}: {_api_message(exc)}", stalled=True)
                        return
                    log.warning("%s/%s: API error (HTTP %s), retrying in %gs: %s", self.request.namespace,
                                self.request.name, exc.status, delay, _api_message(exc))
                except Exception as exc:  # a bug must not end supervision silently, nor loop for ever
                    bugs += 1
                    log.exception("%s/%s: Job supervision failed (%d)", self.request.namespace, self.request.name, bugs)
                    if bugs >= MAX_INTERNAL_ERRORS:
                        await self._fail("InternalError", f"operator error: {type(exc).__name__}: {exc}", stalled=False)
                        return
                # Everything above is idempotent (deterministic Job names): go on where it stopped.
                await asyncio.sleep(delay)
                delay = min(delay * 2, API_RETRY_MAX)
        finally:
            self.executor.forget_job(self)

    async def _attempts(self) -> None:
        spec = self.request.job.spec
        ns, name = self.request.namespace, self.request.name
        while True:
            remaining = decisions.deadline_remaining(self._status.get("startTime"), spec.active_deadline_seconds)
            if remaining is not None and remaining <= 0 and not self.suspended:
                await self._fail(C.DEADLINE_EXCEEDED, f"spec.activeDeadlineSeconds ({spec.active_deadline_seconds}s) exceeded", stalled=True)
                return
            self._use_job(job_name(name, self.content_generation, self.attempt))
            if self._needs_queued_write:
                # The first write of a generation: observedGeneration, Reconciling=True, Queued.
                await self._write(lambda t: t.queued(f"starting Job {self.job_name}"), base=self._status, fresh=True)
                self._needs_queued_write = False
            deadline = None if remaining is None else max(1, int(remaining))
            body = build_job(self._videojob_dict(), self.attempt, self.env.settings, active_deadline_seconds=deadline,
                             suspend=self.suspended)  # a Kueue Job is created suspended whatever this says
            job, created = await self.jobs.create_job(ns, body)
            if created:
                log.info("%s/%s: created Job %s", ns, name, self.job_name)
            if self._job is None:
                self._job = job
            queued = QUEUE_LABEL in ((job.get("metadata") or {}).get("labels") or {})
            if created or queued:
                self._applied_suspend = self.suspended
            else:  # adopted after a restart: spec.suspend may have changed meanwhile
                self._applied_suspend = bool((job.get("spec") or {}).get("suspend"))
            if self.suspended and self._status.get("phase") != "Suspended":
                await self._write(lambda t: t.suspended("spec.suspend is true; the Job is suspended"))

            state, reason, message = await self._wait()
            self.finished = True
            log.info("%s/%s: Job %s %s%s", ns, name, self.job_name, state, f" ({reason})" if reason else "")
            elapsed = time.monotonic() - self._submitted
            if state == "succeeded":
                await self._mirror_success()
                metrics.record_job_done(ns, "success", elapsed)
                return

            status = (await self.jobs.read_videojob(ns, name) or {}).get("status") or {}
            self._status = status
            verdict = attempt_verdict(status, self.attempt, reason or "WorkerFailed", message)
            if verdict.job_active:
                await self.jobs.delete_job(ns, self.job_name)  # e.g. an image that never pulls
            stage = status.get("currentStage") or "Unknown"
            retries = self.attempt - 1
            if verdict.permanent or retries >= spec.retry_strategy.limit:
                metrics.record_failure(stage, verdict.reason)
                metrics.record_job_done(ns, "failure", elapsed)
                if not verdict.reported:  # the Failed Event carries the reason
                    await self._fail(verdict.reason, f"Job {self.job_name}: {verdict.message}", stalled=verdict.permanent)
                return
            retries += 1
            delay = decisions.backoff_seconds(spec.retry_strategy.backoff, retries)
            metrics.record_retry(stage, verdict.reason)
            note = f"{verdict.message}; retry {retries}/{spec.retry_strategy.limit} in {delay:g}s as a new Job"
            if not verdict.reported:
                await self._unreported(verdict.reason, f"Job {self.job_name}: {note}")
            self.attempt = retries + 1
            await self._write(lambda t: self._retrying(t, verdict.reason, note), base=status)
            await asyncio.sleep(delay)
            self.finished = False

    async def _wait(self) -> tuple[str, str | None, str]:
        """Until the Job succeeds or fails (from the watch; a slow poll as a safety net).
        Applies suspend changes on the way."""
        ns = self.request.namespace
        while True:
            if self._applied_suspend is not None and self.suspended != self._applied_suspend:
                await self._apply_suspend()
            if self._job_gone:
                return "failed", "JobDeleted", f"the worker Job {self.job_name} was deleted before it finished"
            state, reason, message = job_outcome(self._job or {}, list(self._pods.values()))
            if state == "failed" and reason not in ("OOMKilled", "Evicted", "ImagePullError"):
                # The Job's condition is generic: its pod may say more (OOMKilled, Evicted).
                pods = await self.jobs.job_pods(ns, self.job_name)
                state, reason, message = job_outcome(self._job or {}, pods)
            if state != "running":
                return state, reason, message
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL)
            except asyncio.TimeoutError:
                job = await self.jobs.read_job(ns, self.job_name)
                if job is None:
                    self._job_gone = True
                else:
                    self._job = job

    async def _apply_suspend(self) -> None:
        suspend = self.suspended
        await self.jobs.set_suspend(self.request.namespace, self.job_name, suspend)
        self._applied_suspend = suspend
        if suspend:
            # Kubernetes stops the pod; a resumed Job starts a new one, which reuses the render
            # cache and the version reserved for this generation.
            await self._write(lambda t: t.suspended("spec.suspend is true; the Job is suspended"))
        else:
            await self._write(lambda t: t.queued("resumed; waiting for the worker pod"))

    async def _mirror_success(self) -> None:
        """The worker exits 0 only after writing Succeeded; if that write was lost, say so."""
        status = (await self.jobs.read_videojob(self.request.namespace, self.request.name) or {}).get("status") or {}
        self._status = status
        if status.get("phase") != "Succeeded":
            await self._write(lambda t: t.succeeded(f"the worker Job {self.job_name} completed"), base=status)

    async def _fail(self, reason: str, message: str, *, stalled: bool) -> None:
        def change(t: StatusTracker) -> None:
            for entry in t.status.stages:
                if entry.phase == "Running":
                    entry.phase = "Failed"
                    entry.finished_at = C.now_rfc3339()
                    entry.message = f"stopped: {reason}"
            t.failed(reason, message, stalled=stalled)

        await self._write(change, base=self._status)

    async def _unreported(self, reason: str, message: str) -> None:
        """The Event for a failure the worker could not report (its pod died first)."""
        await self.env.events.post(self._ref(), JobEvent(WARNING, reason, message))

    @staticmethod
    def _retrying(t: StatusTracker, reason: str, message: str) -> None:
        t.status.completion_time = None
        t.retrying(reason, message, attempt=t.status.attempt)
        t.status.current_stage = "Queued"

    # ------------------------------------------------------------------------------ output

    def _ref(self) -> dict[str, Any]:
        return {"namespace": self.request.namespace, "name": self.request.name, "uid": self.request.uid}

    def _use_job(self, name: str) -> None:
        self.executor.forget_job(self)
        self.job_name = name
        self._job, self._job_gone, self._pods = None, False, {}
        self.executor.index_job(self)

    def _videojob_dict(self) -> dict[str, Any]:
        raw = self.request.job.model_dump(by_alias=True, exclude_none=True, mode="json")
        raw["metadata"].update(namespace=self.request.namespace, uid=self.request.uid, generation=self.content_generation)
        return raw

    async def _write(
        self, change: Callable[[StatusTracker], Any], *, base: dict[str, Any] | None = None, fresh: bool = False
    ) -> None:
        """Apply `change` to the VideoJob's current status (read unless `base` is given) and PATCH it,
        with an Event when the phase changes. `fresh`: a new generation's status (stages reset)."""
        ns, name = self.request.namespace, self.request.name
        if base is None:
            base = (await self.jobs.read_videojob(ns, name) or {}).get("status") or {}
        model = VideoJobStatus.from_object(base)
        tracker = StatusTracker(self.generation, attempt=self.attempt, previous=model)
        if not fresh and model is not None:
            tracker.status = model.model_copy(deep=True)
            tracker.status.observed_generation = self.generation
            tracker.status.attempt = self.attempt
        change(tracker)
        status = tracker.as_dict()
        result = await self.env.kube.patch_status(ns, name, nulls_for_removed(base, status))
        if result is None:
            return  # the VideoJob is gone
        self._status = status
        event = transition_event(None if fresh else base.get("phase"), status)
        if event is not None:
            metrics.record_phase(ns, status["phase"])
            await self.env.events.post(self._ref(), event)



class JobExecutor(RunRegistry):
    """Runs VideoJob generations as Kubernetes Jobs; the same interface as `InlineExecutor`."""

    def __init__(self, env: RunEnvironment, jobs: JobsClient | None = None):
        super().__init__()
        self.env = env
        self._jobs = jobs
        self._by_job: dict[tuple[str, str], KubeJobRun] = {}
        # Jobs seen on the watch, by owner uid: what to delete when a VideoJob goes away, even
        # Jobs of runs this process never supervised (finished ones, or before a restart).
        self._owned: dict[str, set[tuple[str, str]]] = {}

    @property
    def jobs(self) -> JobsClient:
        if self._jobs is None:
            self._jobs = JobsClient(self.env.kube.api_client)
        return self._jobs

    # ------------------------------------------------------------------ executor interface

    async def submit(self, request: RunRequest) -> KubeJobRun:
        current = self.live(request.uid)
        if current is not None and current.content_generation == request.content_generation:
            current.observe(request.generation, request.job.spec.suspend)
            return current
        if current is not None:
            log.info("%s/%s: spec changed, deleting Job %s", request.namespace, request.name, current.job_name)
            await current.cancel(delete_job=True)
        return self._track(request.uid, KubeJobRun(request, self.env, self))

    async def cancel(self, uid: str) -> bool:
        """The VideoJob is being deleted: stop supervising and delete all its Jobs."""
        run = self.runs.pop(uid, None)
        if run is not None:
            await run.cancel(delete_job=True)
        for namespace, name in sorted(self._owned.pop(uid, set())):
            await self.jobs.delete_job(namespace, name)
        return run is not None

    async def shutdown(self) -> None:
        """Operator stop: Jobs keep running; a restarted operator picks them up by name."""
        runs = list(self.runs.values())
        self.runs.clear()
        await asyncio.gather(*(run.cancel(delete_job=False) for run in runs), return_exceptions=True)

    # ------------------------------------------------------------------------- watch feed

    def index_job(self, run: KubeJobRun) -> None:
        self._by_job[(run.request.namespace, run.job_name)] = run
        self._owned.setdefault(run.request.uid, set()).add((run.request.namespace, run.job_name))

    def forget_job(self, run: KubeJobRun) -> None:
        key = (run.request.namespace, run.job_name)
        if self._by_job.get(key) is run:
            del self._by_job[key]

    def job_event(self, event_type: str | None, job: dict[str, Any]) -> None:
        meta = job.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        owner = _owner_uid(job)
        if owner:
            if event_type == "DELETED":
                self._owned.get(owner, set()).discard(key)
            else:
                self._owned.setdefault(owner, set()).add(key)
        run = self._by_job.get(key)
        if run is not None:
            run.job_changed(event_type, job)

    def pod_event(self, event_type: str | None, pod: dict[str, Any]) -> None:
        run = self._by_job.get(((pod.get("metadata") or {}).get("namespace"), pod_job_name(pod)))
        if run is not None:
            run.pod_changed(event_type, pod)

    def register(self, registry: Any) -> None:
        """Watch the operator's Jobs and their pods (RBAC: list/watch jobs and pods)."""
        import kopf

        # async: Kopf runs sync handlers in threads, and the runs' asyncio.Events must be set
        # from the event loop (set from another thread, a waiter may never wake up).
        @kopf.on.event("batch", "v1", "jobs", labels=MANAGED_BY, registry=registry, id="worker-jobs")
        async def on_job(event: Any, **_: Any) -> None:
            self.job_event(event.get("type"), _plain(event.get("object") or {}))

        @kopf.on.startup(registry=registry, id="worker-jobs-selectors")
        def on_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
            # Server-side filtering: without it a cluster-wide operator would stream every pod
            # and Job of the cluster and drop all but its own (the handlers' `labels` filter is
            # client-side). Startup handlers run before the watch streams begin.
            selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
            settings.watching.label_selectors["batch", "v1", "jobs"] = selector
            settings.watching.label_selectors["v1", "pods"] = selector

        @kopf.on.cleanup(registry=registry, id="worker-jobs-shutdown")
        async def on_cleanup(**_: Any) -> None:
            # Stop supervising before Kopf's hung-task sweep (which would wait for our tasks).
            await self.shutdown()

        @kopf.on.event("v1", "pods", labels={**MANAGED_BY, LABEL_VIDEOJOB: kopf.PRESENT}, registry=registry, id="worker-pods")
        async def on_pod(event: Any, **_: Any) -> None:
            self.pod_event(event.get("type"), _plain(event.get("object") or {}))
