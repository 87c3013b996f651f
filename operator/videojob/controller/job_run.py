"""Supervision of one VideoJob generation in Job mode: one batch/v1 Job per attempt.

A `KubeJobRun` creates the attempt's Job (`jobspec.build_job`, named `{name}-g{generation}-a{attempt}`,
`backoffLimit: 0`), follows it from the watch feed (`job_changed`, `pod_changed`; a slow poll as a
safety net), maps `spec.suspend` onto `Job.spec.suspend`, and decides on each failed attempt
(`jobspec.attempt_verdict`): retry as a new Job after spec.retryStrategy's backoff, or stop. What
it writes into the VideoJob's status goes through `job_mirror.JobStatusMirror`.

With Kueue (a `kueue.x-k8s.io/queue-name` label) Kueue owns `Job.spec.suspend`: it unsuspends a
Job it admits and undoes anyone else's suspend. The operator stops such a Job the way Kueue
documents instead, by deactivating its Workload (`spec.active: false`: Kueue evicts it and
suspends the Job until it is active again), and creates no Job at all while a VideoJob is
suspended before its Job exists (Kueue would admit it).

API errors never fail a VideoJob: supervision goes on after a backoff, where it stopped (Job names
are deterministic, so every step is idempotent). Only a refusal of the Job itself (400/422) and
repeated internal errors do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from kubernetes.client.rest import ApiException

from videojob import metrics
from videojob.api import conditions as C
from videojob.controller import decisions
from videojob.controller.executor import RunEnvironment, RunHandle, RunRequest
from videojob.controller.job_client import JobsClient, api_message, owner_uid
from videojob.controller.job_mirror import JobStatusMirror
from videojob.controller.job_slots import RunSlot
from videojob.controller.jobspec import (LABEL_ATTEMPT, LABEL_GENERATION, QUEUE_LABEL, attempt_verdict, build_job,
                                         job_name, job_outcome)
from videojob.controller.pod_start import FAILED_CREATE, pod_started, pull_retrying, start_problem

if TYPE_CHECKING:
    from videojob.controller.job_executor import JobExecutor

log = logging.getLogger(__name__)

# Safety net under the watch: a Job not heard of for this long is read once.
POLL_INTERVAL = 60.0
# After a failed API call (server down, throttled), supervision goes on after this backoff.
API_RETRY_MIN, API_RETRY_MAX = 2.0, 60.0
# Unexpected errors (bugs) get this many tries before the VideoJob is failed with InternalError.
MAX_INTERNAL_ERRORS = 3
# While a Job has no started pod, why is asked this often (at most; less for short timeouts).
POD_CHECK_INTERVAL = 10.0
# Failures a Job's pod states itself; anything else is read from the pods once more.
POD_REASONS = ("OOMKilled", "Evicted", "ImagePullError")
SUSPENDED_MESSAGE = "spec.suspend is true; the Job is suspended"
HELD_MESSAGE = "spec.suspend is true; no Job is created until it is resumed"
RESUMED_MESSAGE = "resumed; waiting for the worker Job"
WORKLOAD_RETRY = 1.0  # Kueue has not made the Job's Workload yet: look again this soon
NAME_TAKEN = "JobNameTaken"


class KubeJobRun(RunHandle):
    """One content generation of one VideoJob, executed as Jobs (one per attempt)."""

    def __init__(self, request: RunRequest, env: RunEnvironment, executor: "JobExecutor", *, resumed: bool = False):
        """`resumed`: the run goes on from a `SuspendedRun` (suspended before its Job existed)."""
        self.request = request
        self.env = env
        self.executor = executor
        self.jobs: JobsClient = executor.jobs
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
        self._workload_missing = False  # a suspend waits for Kueue to make the Job's Workload
        self._pods: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._last_poll = time.monotonic()
        # Pod start: since when the Job has wanted a pod and has none started, the next check,
        # and the problem already reported (once per reason).
        self._waiting_since: float | None = None
        self._next_pod_check = 0.0
        self._start_reported: str | None = None
        self._forbidden_since: float | None = None  # the API server has refused us (403) since
        # A run slot (VIDEOJOB_MAX_CONCURRENT_JOBS) is held while the Job may run: from before
        # it is created (or unsuspended) until it ends or is suspended.
        self.slot = RunSlot(env.slots, request.namespace, request.queue_key)
        self._identity_repaired = False  # the worker identity was made again for this Job
        self.mirror = JobStatusMirror(
            env.kube, env.events, request.ref, lambda: (self.generation, self.attempt),
            previous=request.previous_status, min_interval=env.min_write_interval,
        )
        # A restarted operator goes on with the attempt the status names (its Job may exist).
        restarting = request.restarting and bool(self.mirror.status.get("attempt"))
        if restarting:
            self.attempt = int(self.mirror.status["attempt"])
        self._needs_queued_write = not restarting
        self._resumed = resumed
        self._submitted = time.monotonic()
        self.task: asyncio.Task | None = None

    # ------------------------------------------------------------------------------ control

    def start(self) -> asyncio.Task:
        self.task = asyncio.create_task(self._main(), name=f"videojob-jobs:{self.request.namespace}/{self.request.name}")
        return self.task

    def observe(self, generation: int, suspend: bool) -> None:
        self.generation = generation
        self.suspended = suspend
        self._wake.set()

    async def cancel(self, *, delete_job: bool = True) -> None:
        """Stop supervising; with `delete_job`, delete the attempt's Job (and so its pod)."""
        await self._stop_task()
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
        delay = self.executor.api_retry_min
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
                        await self.mirror.failed("JobRejected", f"the API server refused Job {self.job_name}: {api_message(exc)}", stalled=True)
                        return
                    if exc.status == 403 and await self._forbidden(api_message(exc)):
                        return
                    log.warning("%s/%s: API error (HTTP %s), retrying in %gs: %s", self.request.namespace,
                                self.request.name, exc.status, delay, api_message(exc))
                except Exception as exc:  # a bug must not end supervision silently, nor loop for ever
                    bugs += 1
                    log.exception("%s/%s: Job supervision failed (%d)", self.request.namespace, self.request.name, bugs)
                    if bugs >= MAX_INTERNAL_ERRORS:
                        await self.mirror.failed("InternalError", f"operator error: {type(exc).__name__}: {exc}", stalled=False)
                        return
                # Everything above is idempotent (deterministic Job names): go on where it stopped.
                await asyncio.sleep(delay)
                delay = min(delay * 2, API_RETRY_MAX)
        finally:
            self.slot.release()
            self.executor.forget_job(self)
            await self.mirror.close()

    async def _forbidden(self, message: str) -> bool:
        """A 403 (an admission webhook, OwnerReferencesPermissionEnforcement, RBAC): said at once
        (a Warning Event, the condition reason), retried with backoff (an administrator may fix
        it), and the run failed after the pod start timeout. True when it has failed."""
        reason, now = "JobForbidden", time.monotonic()
        text = f"the API server refused a request for Job {self.job_name}: {message}"
        if self._forbidden_since is None:
            self._forbidden_since = now
            await self.mirror.unreported(reason, text)
            await self.mirror.held_up(reason, text)
        timeout = self.env.settings.job_pod_start_timeout_seconds
        if now - self._forbidden_since < timeout:
            return False
        metrics.record_failure("Queued", reason)
        await self.mirror.failed(reason, f"{text} (for more than {timeout}s, VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS)", stalled=True)
        return True

    async def _attempts(self) -> None:
        """Attempts until one succeeds, one fails for good, or the retries run out."""
        while True:
            if not await self._start_attempt():
                return
            self._forbidden_since = None
            state, reason, message = await self._wait()
            self.finished = True
            self.slot.release()
            log.info("%s/%s: Job %s %s%s", self.request.namespace, self.request.name, self.job_name, state,
                     f" ({reason})" if reason else "")
            if state == "succeeded":
                await self.mirror.succeeded_unless_reported(self.job_name or "")
                metrics.record_job_done(self.request.namespace, "success", time.monotonic() - self._submitted)
                return
            delay = await self._conclude_failure(reason or "WorkerFailed", message)
            if delay is None:
                return
            await asyncio.sleep(delay)
            self.finished = False

    async def _start_attempt(self) -> bool:
        """Create (or adopt) the attempt's Job; False when the deadline has already passed."""
        spec = self.request.job.spec
        remaining = decisions.deadline_remaining(self.mirror.status.get("startTime"), spec.active_deadline_seconds)
        if remaining is not None and remaining <= 0 and not self.suspended:
            await self.mirror.failed(C.DEADLINE_EXCEEDED, f"spec.activeDeadlineSeconds ({spec.active_deadline_seconds}s) exceeded", stalled=True)
            return False
        self._use_job(job_name(self.request.name, self.content_generation, self.attempt))
        await self.executor.recounted()
        if self.executor.claim_slot(self.request.namespace, self.job_name or ""):
            self.slot.take_over()  # its Job was running when this operator started
        place = None if self.suspended or self.slot.held else self.slot.enqueue()
        no_job = self.suspended and await self.jobs.read_job(self.request.namespace, self.job_name or "") is None
        if self._needs_queued_write:
            waiting = place is not None and not place.done()
            if no_job:
                await self.mirror.created_suspended(HELD_MESSAGE)
            else:
                await self.mirror.queued(self.slot.waiting_message if waiting else f"starting Job {self.job_name}")
            self._needs_queued_write = False
        if no_job:
            if await self._hold_until_resumed():
                return False  # the executor keeps a `SuspendedRun` for it instead of this run
            place = None if self.slot.held else self.slot.enqueue()
        elif self._resumed:
            await self.mirror.waiting_for_pod(RESUMED_MESSAGE)
        self._resumed = False
        if place is not None:
            await self.slot.wait(place, lambda: self.suspended, self._wake)
        await self.executor.identity.ensure(self.request.namespace)
        # Without a slot (spec.suspend) the Job is created suspended; a Kueue Job always is.
        create_suspended = self.suspended or not self.slot.held
        deadline = None if remaining is None else max(1, int(remaining))
        body = build_job(self._videojob_dict(), self.attempt, self.env.settings, active_deadline_seconds=deadline,
                         suspend=create_suspended)
        job, created = await self.jobs.create_job(self.request.namespace, body)
        if not created and not self._ours(job):
            await self._name_taken(job)
            return False
        if created:
            log.info("%s/%s: created Job %s", self.request.namespace, self.request.name, self.job_name)
        if self._job is None:
            self._job = job
        queued = QUEUE_LABEL in ((job.get("metadata") or {}).get("labels") or {})
        if created:
            self._applied_suspend = create_suspended
        elif queued:  # adopted after a restart: set its Workload's spec.active (idempotent)
            self._applied_suspend = not self.suspended
        else:  # adopted after a restart: spec.suspend may have changed meanwhile
            self._applied_suspend = bool((job.get("spec") or {}).get("suspend"))
        if self.suspended and self.mirror.status.get("phase") != "Suspended":
            await self.mirror.suspended(SUSPENDED_MESSAGE)
        return True

    def _ours(self, job: dict[str, Any]) -> bool:
        """A Job found under this attempt's name was made for it: owned by this VideoJob (uid) and
        labelled with its generation and attempt. Anything else is a stranger's."""
        labels = (job.get("metadata") or {}).get("labels") or {}
        return (owner_uid(job) == self.request.uid and labels.get(LABEL_GENERATION) == str(self.content_generation)
                and labels.get(LABEL_ATTEMPT) == str(self.attempt))

    async def _name_taken(self, job: dict[str, Any]) -> None:
        """Fail the run without touching the other Job (no adoption, no suspend, no delete)."""
        meta = job.get("metadata") or {}
        owners = [f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})" for ref in meta.get("ownerReferences") or []]
        name = f"{self.request.namespace}/{self.job_name}"
        self.executor.disown(self)
        self.job_name, self._job, self.finished = None, None, True
        self.slot.release()
        metrics.record_failure("Queued", NAME_TAKEN)
        await self.mirror.failed(NAME_TAKEN, (
            f"Job {name} already exists and is not this VideoJob's (owned by {', '.join(owners) or 'nobody'}, "
            f"generation {meta.get('labels', {}).get(LABEL_GENERATION)}, attempt {meta.get('labels', {}).get(LABEL_ATTEMPT)}); "
            "it was left alone: delete or rename it, then edit the spec to run again"), stalled=True)

    async def _conclude_failure(self, reason: str, message: str) -> float | None:
        """Decide on a failed attempt; the backoff before the next one, or None when it ends here."""
        ns, spec = self.request.namespace, self.request.job.spec
        elapsed = time.monotonic() - self._submitted
        status = await self.mirror.read()
        verdict = attempt_verdict(status, self.attempt, reason, message)
        if verdict.job_active:
            await self.jobs.delete_job(ns, self.job_name or "")  # e.g. an image that never pulls
        stage = status.get("currentStage") or "Unknown"
        retries = self.attempt - 1
        if verdict.permanent or retries >= spec.retry_strategy.limit:
            metrics.record_failure(stage, verdict.reason)
            metrics.record_job_done(ns, "failure", elapsed)
            if not verdict.reported:  # the Failed Event carries the reason
                await self.mirror.failed(verdict.reason, f"Job {self.job_name}: {verdict.message}", stalled=verdict.permanent)
            return None
        retries += 1
        delay = decisions.backoff_seconds(spec.retry_strategy.backoff, retries)
        metrics.record_retry(stage, verdict.reason)
        note = f"{verdict.message}; retry {retries}/{spec.retry_strategy.limit} in {delay:g}s as a new Job"
        if not verdict.reported:
            await self.mirror.unreported(verdict.reason, f"Job {self.job_name}: {note}")
        self.attempt = retries + 1
        await self.mirror.retrying(verdict.reason, note, base=status)
        return delay

    async def _wait(self) -> tuple[str, str | None, str]:
        """Until the Job succeeds or fails (from the watch; a slow poll as a safety net).
        Applies suspend changes on the way."""
        ns, name = self.request.namespace, self.job_name or ""
        while True:
            if self._applied_suspend is not None and self.suspended != self._applied_suspend and not self._job_gone:
                await self._apply_suspend()
            if self._job_gone:
                return "failed", "JobDeleted", f"the worker Job {name} was deleted before it finished"
            state, reason, message = job_outcome(self._job or {}, list(self._pods.values()))
            if state == "failed" and reason not in POD_REASONS:
                # The Job's condition is generic: its pod may say more (OOMKilled, Evicted).
                state, reason, message = job_outcome(self._job or {}, await self.jobs.job_pods(ns, name))
            if reason == "ImagePullError" and pull_retrying(list(self._pods.values())):
                state = "running"  # the kubelet retries the pull; the pod start budget applies
            if state != "running":
                return state, reason, message
            stuck = await self._pod_not_starting()
            if stuck is not None:
                return stuck
            self._wake.clear()
            pause = POLL_INTERVAL if self._waiting_since is None else self._pod_check_interval
            if self._workload_missing:
                pause = min(pause, WORKLOAD_RETRY)
            try:
                await asyncio.wait_for(self._wake.wait(), pause)
            except asyncio.TimeoutError:
                if time.monotonic() - self._last_poll >= POLL_INTERVAL:
                    self._last_poll = time.monotonic()
                    job = await self.jobs.read_job(ns, name)
                    if job is None:
                        self._job_gone = True
                    else:
                        self._job = job

    @property
    def _pod_check_interval(self) -> float:
        return min(POD_CHECK_INTERVAL, self.env.settings.job_pod_start_timeout_seconds / 3)

    async def _pod_not_starting(self) -> tuple[str, str, str] | None:
        """While the Job wants a pod and none has started: say why at once (a Warning Event and
        the condition reason), and give the attempt up after the pod start timeout."""
        pods = list(self._pods.values())
        if ((self._job or {}).get("spec") or {}).get("suspend") or pod_started(pods):
            self._waiting_since, self._start_reported = None, None
            return None
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since, self._next_pod_check = now, now + self._pod_check_interval
        if now < self._next_pod_check:
            return None
        self._next_pod_check = now + self._pod_check_interval
        ns, name = self.request.namespace, self.job_name or ""
        problem = start_problem(pods, await self.executor.job_events(ns, name, max_age=self._pod_check_interval))
        if problem is None:
            return None
        reason, message = problem
        if reason == FAILED_CREATE and await self._repair_identity(message):
            return None  # the Job controller tries the pod again (with backoff); reported if it still fails
        if self._start_reported != reason:
            self._start_reported = reason
            await self.mirror.unreported(reason, f"Job {name}: {message}")
            await self.mirror.held_up(reason, f"Job {name}: {message}")
        timeout = self.env.settings.job_pod_start_timeout_seconds
        if now - self._waiting_since < timeout:
            return None
        await self.jobs.delete_job(ns, name)  # it would wait for its pod for ever
        return "failed", reason, f"{message} (for more than {timeout}s, VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS)"

    async def _hold_until_resumed(self) -> bool:
        """A VideoJob suspended before its Job exists gets it when it is resumed: a suspended
        Job would hold nothing but an object in etcd, a watched body in the operator and, under
        Kueue, a place in the queue. Nor does it keep this run: once its status says Suspended,
        the executor keeps a small `SuspendedRun` instead, and the handler that resumes the
        VideoJob starts a new run (True: handed over). Only while that status write waits for
        a retry (the API server refused it) does this run wait here itself."""
        if self.mirror.status.get("phase") != "Suspended":
            await self.mirror.suspended(HELD_MESSAGE)
        if self.suspended and self.mirror.settled and not self.slot.held and self.executor.hold(self):
            return True
        while self.suspended:
            self._wake.clear()
            await self._wake.wait()
        await self.mirror.waiting_for_pod(RESUMED_MESSAGE)
        return False

    async def _apply_suspend(self) -> None:
        suspend = self.suspended
        if not suspend and not self.slot.held:
            place = self.slot.enqueue()
            if not place.done():
                await self.mirror.waiting_for_pod("resumed; " + self.slot.waiting_message)
            if not await self.slot.wait(place, lambda: self.suspended, self._wake):
                return  # suspended again while it waited: nothing to resume
        job = self._job or {}
        uid = (job.get("metadata") or {}).get("uid")
        kueue = None
        if uid and QUEUE_LABEL in ((job.get("metadata") or {}).get("labels") or {}):
            # Kueue undoes a suspend of a Job it admitted: deactivate its Workload instead.
            kueue = await self.jobs.set_workload_active(self.request.namespace, uid, not suspend)
            self._workload_missing = kueue is False
            if kueue is False:
                return  # Kueue has not made the Workload yet: try again shortly
        if kueue is None:  # no Kueue (or no Workloads served): the Job's own switch
            await self.jobs.set_suspend(self.request.namespace, self.job_name or "", suspend)
        self._applied_suspend = suspend
        if suspend:
            self.slot.release()
            # Kubernetes stops the pod; a resumed Job starts a new one, which reuses the render
            # cache and the version reserved for this generation.
            await self.mirror.suspended(SUSPENDED_MESSAGE)
        else:
            await self.mirror.waiting_for_pod("resumed; waiting for the worker pod")

    async def _repair_identity(self, refusal: str) -> bool:
        """Once per Job: its pod was refused for want of the worker ServiceAccount the operator
        makes (deleted since): make the namespace's identity again."""
        if self._identity_repaired or not self.executor.identity.account_missing(self._job or {}, refusal):
            return False
        self._identity_repaired = True
        await self.executor.identity.repair(self.request.namespace)
        return True

    # ---------------------------------------------------------------------------- helpers

    def _use_job(self, name: str) -> None:
        self.executor.forget_job(self)
        self.job_name = name
        self._job, self._job_gone, self._pods = None, False, {}
        self._identity_repaired = False
        self.executor.index_job(self)

    def _videojob_dict(self) -> dict[str, Any]:
        raw = self.request.job.model_dump(by_alias=True, exclude_none=True, mode="json")
        raw["metadata"].update(namespace=self.request.namespace, uid=self.request.uid, generation=self.content_generation)
        return raw
