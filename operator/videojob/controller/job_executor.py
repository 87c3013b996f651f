"""The Job executor (VIDEOJOB_EXECUTOR=job): every attempt of a VideoJob run is a batch/v1 Job.

The operator stays thin, as in Argo Workflows, KubeRay or Tekton: it creates one Job per attempt,
and the worker pod runs `videojob worker`, which runs the pipeline and writes progress into the
VideoJob's status itself. Where things live:

- `job_run.KubeJobRun`: supervision of one generation (create the attempt's Job, follow it,
  retry as a new Job or stop; `spec.suspend` is `Job.spec.suspend`);
- `job_mirror.JobStatusMirror`: the status the operator writes when the worker cannot;
- `job_client.JobsClient`: the Kubernetes calls on Jobs and pods;
- this module: the `Executor` (one run per VideoJob) and the watches on the operator's Jobs and
  their pods, which feed the runs.

Permanent failures (the worker reported Failed with Stalled=True, or AwaitingInput) are not
retried; neither are DeadlineExceeded and ImagePullError. A spec edit or the VideoJob's deletion
deletes the Job (propagationPolicy Background); operator shutdown leaves Jobs running (a restarted
operator finds them again by their names).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from videojob.controller.executor import RunEnvironment, RunRegistry, RunRequest
from videojob.controller.job_client import JobsClient, owner_uid, pod_job_name
from videojob.controller.job_run import API_RETRY_MIN, KubeJobRun
from videojob.controller.jobspec import LABEL_VIDEOJOB
from videojob.controller.kube import plain

MANAGED_BY = {"app.kubernetes.io/managed-by": "videojob-operator"}
JobKey = tuple[str, str]  # (namespace, Job name)


class JobExecutor(RunRegistry[KubeJobRun]):
    """Runs VideoJob generations as Kubernetes Jobs; the same interface as `InlineExecutor`."""

    def __init__(self, env: RunEnvironment, jobs: JobsClient | None = None, *, api_retry_min: float = API_RETRY_MIN):
        """`jobs`: the Kubernetes calls (default: through `env.kube`'s client); `api_retry_min`:
        the first backoff after a failed API call."""
        super().__init__()
        self.env = env
        self.api_retry_min = api_retry_min
        self._jobs = jobs
        self._by_job: dict[JobKey, KubeJobRun] = {}
        # Jobs seen on the watch, by owner uid: what to delete when a VideoJob goes away, even
        # Jobs of runs this process never supervised (finished ones, or before a restart).
        self._owned: dict[str, set[JobKey]] = {}
        # FailedCreate Events by namespace, read at most once per pod check interval for all runs
        # there (200 Jobs waiting for pods cost one list, not 200).
        self._failed_creates: dict[str, tuple[float, dict[str, list[dict[str, Any]]]]] = {}
        self._failed_creates_lock = asyncio.Lock()

    @property
    def jobs(self) -> JobsClient:
        if self._jobs is None:
            self._jobs = JobsClient(self.env.kube.api_client)
        return self._jobs

    # ------------------------------------------------------------------ executor interface

    def new_run(self, request: RunRequest) -> KubeJobRun:
        return KubeJobRun(request, self.env, self)

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

    # ------------------------------------------------------------------------- watch feed

    def index_job(self, run: KubeJobRun) -> None:
        key = (run.request.namespace, run.job_name or "")
        self._by_job[key] = run
        self._owned.setdefault(run.request.uid, set()).add(key)

    def forget_job(self, run: KubeJobRun) -> None:
        key = (run.request.namespace, run.job_name or "")
        if self._by_job.get(key) is run:
            del self._by_job[key]

    def job_event(self, event_type: str | None, job: dict[str, Any]) -> None:
        meta = job.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
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
            selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
            settings.watching.label_selectors["batch", "v1", "jobs"] = selector
            settings.watching.label_selectors["v1", "pods"] = selector

        @kopf.on.cleanup(registry=registry, id="worker-jobs-shutdown")
        async def on_cleanup(**_: Any) -> None:
            # Stop supervising before Kopf's hung-task sweep (which would wait for our tasks).
            await self.shutdown()

        @kopf.on.event("v1", "pods", labels={**MANAGED_BY, LABEL_VIDEOJOB: kopf.PRESENT}, registry=registry, id="worker-pods")
        async def on_pod(event: Any, **_: Any) -> None:
            self.pod_event(event.get("type"), plain(event.get("object") or {}))
