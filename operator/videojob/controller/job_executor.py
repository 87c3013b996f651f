"""The Job executor (VIDEOJOB_EXECUTOR=job): every attempt of a VideoJob run is a batch/v1 Job.

The operator stays thin, as in Argo Workflows, KubeRay or Tekton: it creates one Job per attempt,
and the worker pod runs `videojob worker`, which runs the pipeline and writes progress into the
VideoJob's status itself. Where things live:

- `job_run.KubeJobRun`: supervision of one generation (create the attempt's Job, follow it,
  retry as a new Job or stop; `spec.suspend` is `Job.spec.suspend`);
- `job_mirror.JobStatusMirror`: the status the operator writes when the worker cannot;
- `job_client.JobsClient`: the Kubernetes calls on Jobs and pods;
- this module: the `Executor` (one run per VideoJob) and the watches on the operator's Jobs and
  their pods, which feed the runs; and `SuspendedRun`, all it keeps of a VideoJob suspended
  before its Job exists (a record, not a run, until it is resumed).

Permanent failures (the worker reported Failed with Stalled=True, or AwaitingInput) are not
retried; neither are DeadlineExceeded and ImagePullError. A spec edit or the VideoJob's deletion
deletes the Job (propagationPolicy Background); operator shutdown leaves Jobs running (a restarted
operator finds them again by their names).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from kubernetes.client.rest import ApiException

from videojob.controller.executor import RunEnvironment, RunHandle, RunRegistry, RunRequest
from videojob.controller.job_client import JobsClient, api_message, owner_uid, pod_job_name
from videojob.controller.job_identity import WorkerIdentityKeeper
from videojob.controller.job_run import API_RETRY_MIN, KubeJobRun
from videojob.controller.jobspec import LABEL_VIDEOJOB, job_holds_slot
from videojob.controller.kube import plain

log = logging.getLogger(__name__)

MANAGED_BY = {"app.kubernetes.io/managed-by": "videojob-operator"}
MANAGED_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
JobKey = tuple[str, str]  # (namespace, Job name)


class SuspendedRun(RunHandle):
    """What the executor keeps for a VideoJob suspended before its Job exists, once its status
    says so: which VideoJob, and which content generation it will produce. No task, status
    writer or parsed spec: a cluster may hold thousands of VideoJobs suspended (queued by a
    batch system, or paused by hand), and each would otherwise keep a whole run alive.

    `task` stays None (the run was not started): the handler that resumes the VideoJob
    (`Controller.spec_changed`) starts its run from the VideoJob's body, and `submit` goes on
    with the same content generation (`KubeJobRun(resumed=True)`)."""

    resumes_from_body = True

    def __init__(self, run: KubeJobRun):
        request = run.request
        self.namespace, self.name, self.uid = request.namespace, request.name, request.uid
        self.generation = run.generation
        self.suspended = True
        self._content_generation = run.content_generation

    @property
    def content_generation(self) -> int:
        return self._content_generation

    def start(self) -> asyncio.Task:
        raise RuntimeError("a suspended VideoJob's run starts from its body (JobExecutor.submit)")

    def observe(self, generation: int, suspend: bool) -> None:
        self.generation = generation
        self.suspended = suspend

    async def cancel(self, *, delete_job: bool = True) -> None:
        """Nothing runs and no Job exists (any Job found since is deleted by `JobExecutor.cancel`)."""


class JobExecutor(RunRegistry["KubeJobRun | SuspendedRun"]):
    """Runs VideoJob generations as Kubernetes Jobs; the same interface as `InlineExecutor`."""

    def __init__(self, env: RunEnvironment, jobs: JobsClient | None = None, *, api_retry_min: float = API_RETRY_MIN,
                 identity: WorkerIdentityKeeper | None = None):
        """`jobs`: the Kubernetes calls (default: through `env.kube`'s client); `api_retry_min`:
        the first backoff after a failed API call; `identity`: who prepares a namespace for
        worker pods (default: from the settings, through `env.kube`'s client)."""
        super().__init__()
        self.env = env
        self.api_retry_min = api_retry_min
        self._jobs = jobs
        self._identity = identity
        self._by_job: dict[JobKey, KubeJobRun] = {}
        # Jobs seen on the watch, by owner uid: what to delete when a VideoJob goes away, even
        # Jobs of runs this process never supervised (finished ones, or before a restart).
        self._owned: dict[str, set[JobKey]] = {}
        # FailedCreate Events by namespace, read at most once per pod check interval for all runs
        # there (200 Jobs waiting for pods cost one list, not 200).
        self._failed_creates: dict[str, tuple[float, dict[str, list[dict[str, Any]]]]] = {}
        self._failed_creates_lock = asyncio.Lock()
        # Run slots (VIDEOJOB_MAX_CONCURRENT_JOBS) of Jobs an earlier operator process left
        # running, counted once before any run takes a slot; a run that adopts such a Job takes
        # its slot over, and one nobody adopts is released when the watch sees it end.
        self._recounted = False
        self._recount_lock = asyncio.Lock()
        self._held_at_start: set[JobKey] = set()
        self._holds_slot: dict[JobKey, bool] = {}  # the watch's latest word on each Job

    @property
    def jobs(self) -> JobsClient:
        if self._jobs is None:
            self._jobs = JobsClient(self.env.kube.api_client)
        return self._jobs

    @property
    def identity(self) -> WorkerIdentityKeeper:
        if self._identity is None:
            client = self.env.kube.api_client if self.env.settings.worker_cluster_role else None
            self._identity = WorkerIdentityKeeper(client, self.env.settings)
        return self._identity

    # ------------------------------------------------------------------ executor interface

    def new_run(self, request: RunRequest) -> KubeJobRun:
        return KubeJobRun(request, self.env, self)

    async def submit(self, request: RunRequest) -> RunHandle:
        """As `RunRegistry.submit`; a `SuspendedRun` of the same content generation that is
        resumed becomes a run again (any other request replaces it)."""
        waiting = self.runs.get(request.uid)
        if isinstance(waiting, SuspendedRun):
            same = waiting.content_generation == request.content_generation
            if same and request.job.spec.suspend:
                waiting.observe(request.generation, True)
                return waiting
            del self.runs[request.uid]
            if same:
                run = KubeJobRun(request, self.env, self, resumed=True)
                self.runs[request.uid] = run
                run.start().add_done_callback(functools.partial(self._forget, request.uid, run))
                return run
        return await super().submit(request)

    def hold(self, run: KubeJobRun) -> bool:
        """`run` (suspended, no Job) hands over to a `SuspendedRun`; False if it is not the
        VideoJob's live run any more."""
        uid = run.request.uid
        if self.runs.get(uid) is not run:
            return False
        self.forget_job(run)
        owned = self._owned.get(uid)
        if owned is not None:
            owned.discard((run.request.namespace, run.job_name or ""))  # it has no Job (the watch adds any)
            if not owned:
                del self._owned[uid]
        self.runs[uid] = SuspendedRun(run)
        return True

    async def cancel(self, uid: str) -> bool:
        """The VideoJob is being deleted: stop supervising and delete all its Jobs."""
        run = self.runs.pop(uid, None)
        if run is not None:
            await run.cancel()
        for namespace, name in sorted(self._owned.pop(uid, set())):
            await self.jobs.delete_job(namespace, name)
        return run is not None

    async def shutdown(self) -> None:
        """Operator stop: Jobs keep running; a restarted operator picks them up by name."""
        runs = list(self.runs.values())
        self.runs.clear()
        await asyncio.gather(*(run.cancel(delete_job=False) for run in runs), return_exceptions=True)

    async def job_events(self, namespace: str, job_name: str, max_age: float) -> list[dict[str, Any]]:
        """The FailedCreate Events of one Job, from a namespace-wide list at most `max_age` old."""
        async with self._failed_creates_lock:
            read_at, by_job = self._failed_creates.get(namespace, (float("-inf"), {}))
            if time.monotonic() - read_at >= max_age:
                by_job = await self.jobs.failed_creates(namespace)
                self._failed_creates[namespace] = (time.monotonic(), by_job)
        return by_job.get(job_name, [])

    # ------------------------------------------------------------------------ run slots

    async def recounted(self) -> None:
        """Before the first run slot is given: the Jobs already running (an operator restart)
        take theirs, so a restart never lets more than the limit run at once."""
        if self._recounted:
            return
        async with self._recount_lock:
            if self._recounted:
                return
            try:
                found = await self.jobs.managed_jobs(self.env.namespaces, MANAGED_SELECTOR)
            except ApiException as exc:  # counted as they are adopted instead
                log.warning("cannot list worker Jobs to count run slots (HTTP %s): %s", exc.status, api_message(exc))
                found = []
            for job in found:
                meta = job.get("metadata") or {}
                key = (meta.get("namespace") or "", meta.get("name") or "")
                if job_holds_slot(job) and self._holds_slot.get(key, True):
                    self.env.slots.occupy(key[0])
                    self._held_at_start.add(key)
            self._recounted = True
            if self._held_at_start:
                log.info("%d worker Jobs already running hold run slots", len(self._held_at_start))

    def claim_slot(self, namespace: str, job_name: str) -> bool:
        """The slot an already running Job held at start-up, for the run that adopts it."""
        key = (namespace, job_name)
        if key in self._held_at_start:
            self._held_at_start.discard(key)
            return True
        return False

    def _slot_seen(self, key: JobKey, event_type: str | None, job: dict[str, Any]) -> None:
        holds = event_type != "DELETED" and job_holds_slot(job)
        if event_type == "DELETED":
            self._holds_slot.pop(key, None)
        else:
            self._holds_slot[key] = holds
        if not holds and key in self._held_at_start:
            self._held_at_start.discard(key)  # ended before any run adopted it
            self.env.slots.release(key[0])

    # ------------------------------------------------------------------------- watch feed

    def index_job(self, run: KubeJobRun) -> None:
        key = (run.request.namespace, run.job_name or "")
        self._by_job[key] = run
        self._owned.setdefault(run.request.uid, set()).add(key)

    def forget_job(self, run: KubeJobRun) -> None:
        key = (run.request.namespace, run.job_name or "")
        if self._by_job.get(key) is run:
            del self._by_job[key]

    def disown(self, run: KubeJobRun) -> None:
        """The Job of that name belongs to someone else: never follow, suspend or delete it."""
        self.forget_job(run)
        self._owned.get(run.request.uid, set()).discard((run.request.namespace, run.job_name or ""))

    def job_event(self, event_type: str | None, job: dict[str, Any]) -> None:
        meta = job.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        self._slot_seen(key, event_type, job)
        owner = owner_uid(job)
        if owner:
            if event_type == "DELETED":
                self._owned.get(owner, set()).discard(key)
            else:
                self._owned.setdefault(owner, set()).add(key)
        run = self._by_job.get(key)
        if run is not None:
            run.job_changed(event_type, job)

    def pod_event(self, event_type: str | None, pod: dict[str, Any]) -> None:
        run = self._by_job.get(((pod.get("metadata") or {}).get("namespace") or "", pod_job_name(pod) or ""))
        if run is not None:
            run.pod_changed(event_type, pod)

    def register(self, registry: Any) -> None:
        """Watch the operator's Jobs and their pods (RBAC: list/watch jobs and pods)."""
        import kopf

        # async: Kopf runs sync handlers in threads, and the runs' asyncio.Events must be set
        # from the event loop (set from another thread, a waiter may never wake up).
        @kopf.on.event("batch", "v1", "jobs", labels=MANAGED_BY, registry=registry, id="worker-jobs")
        async def on_job(event: Any, **_: Any) -> None:
            self.job_event(event.get("type"), plain(event.get("object") or {}))

        @kopf.on.startup(registry=registry, id="worker-jobs-selectors")
        def on_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
            # Server-side filtering: without it a cluster-wide operator would stream every pod
            # and Job of the cluster and drop all but its own (the handlers' `labels` filter is
            # client-side). Startup handlers run before the watch streams begin.
            settings.watching.label_selectors["batch", "v1", "jobs"] = MANAGED_SELECTOR
            settings.watching.label_selectors["v1", "pods"] = MANAGED_SELECTOR

        @kopf.on.cleanup(registry=registry, id="worker-jobs-shutdown")
        async def on_cleanup(**_: Any) -> None:
            # Stop supervising before Kopf's hung-task sweep (which would wait for our tasks).
            await self.shutdown()

        @kopf.on.event("v1", "pods", labels={**MANAGED_BY, LABEL_VIDEOJOB: kopf.PRESENT}, registry=registry, id="worker-pods")
        async def on_pod(event: Any, **_: Any) -> None:
            self.pod_event(event.get("type"), plain(event.get("object") or {}))
