"""Pure functions for the Job executor: the batch/v1 Job of one VideoJob run, and what a failed
Job or its pod says about why it failed. No API calls here (dask-kubernetes' `build_*_spec` style):
the executor applies what these return.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from videojob.api.models import API_GROUP, API_VERSION, KIND
from videojob.config import Settings
from videojob.controller import podspec

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
LABEL_VIDEOJOB = f"{API_GROUP}/videojob"
LABEL_GENERATION = f"{API_GROUP}/generation"
LABEL_ATTEMPT = f"{API_GROUP}/attempt"
WORKDIR = podspec.WORKDIR

# Settings the worker needs to behave like the operator. Credentials are deliberately absent:
# a Job spec is readable by anyone who can list Jobs; workers get AWS access from their
# ServiceAccount (IRSA) and LLM keys from the Secret named in spec.llm.credentialsSecretRef.
PASSED_ENV = (
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_S3_VIDEO_BUCKET", "AWS_S3_CODE_BUCKET",
    "AWS_DYNAMODB_TABLE", "AWS_REQUIRE_UPLOAD", "AWS_ENABLE_ENCRYPTION", "AWS_KMS_KEY_ID",
    "AWS_MULTIPART_THRESHOLD", "AWS_CHUNK_SIZE", "AWS_MAX_CONCURRENT_UPLOADS", "AWS_MAX_RETRIES", "AWS_RETRY_MODE",
    "VIDEOJOB_LLM_MODEL", "VIDEOJOB_SCENE_PARALLELISM", "VIDEOJOB_RENDER_MEMORY_MB",
    "VIDEOJOB_RENDER_MAX_OUTPUT_MB", "VIDEOJOB_REPAIR_MEMORY",
    # Per-job caps: the worker enforces them as the run goes (docs/operator.md "Multi-tenancy").
    "VIDEOJOB_MAX_SCENES_PER_JOB", "VIDEOJOB_MAX_TOKENS_PER_JOB", "VIDEOJOB_MAX_TTS_CHARACTERS_PER_JOB",
)

_DNS_LABEL = re.compile(r"[^a-z0-9-]")


def job_name(name: str, generation: int, attempt: int) -> str:
    """Deterministic, <= 63 characters (Job names become pod labels), unique per attempt.

    A VideoJob name that is not already a DNS label (`a.b`, `A`) is sanitized and gets a short hash
    of the original, so `a.b` and `a-b` never map to the same Job."""
    suffix = f"-g{generation}-a{attempt}"
    base = _DNS_LABEL.sub("-", name.lower()).strip("-") or "videojob"
    if base != name or len(base) + len(suffix) > 63:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        base = base[: 63 - len(suffix) - 9].rstrip("-") + "-" + digest
    return base + suffix


def label_value(value: str) -> str:
    """A label value (<= 63 chars); long names keep a hash so they stay distinct."""
    if len(value) <= 63:
        return value
    return value[:54].rstrip("-.") + "-" + hashlib.sha256(value.encode()).hexdigest()[:8]


def _merge_resources(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for kind in ("limits", "requests"):
        if over and over.get(kind):
            merged.setdefault(kind, {}).update({k: str(v) for k, v in over[kind].items()})
    return merged


def merged_pod_settings(defaults: dict[str, Any], template: dict[str, Any] | None) -> dict[str, Any]:
    """spec.podTemplate over the chart's defaults: maps merge key by key, tolerations add up,
    affinity and names are replaced."""
    template = template or {}
    out = {
        "resources": _merge_resources(defaults.get("resources", {}), template.get("resources")),
        "nodeSelector": {**defaults.get("nodeSelector", {}), **(template.get("nodeSelector") or {})},
        "tolerations": list(defaults.get("tolerations", [])) + list(template.get("tolerations") or []),
        "affinity": template.get("affinity") or defaults.get("affinity"),
        "serviceAccountName": template.get("serviceAccountName") or defaults.get("serviceAccountName"),
        "priorityClassName": template.get("priorityClassName") or defaults.get("priorityClassName"),
    }
    return {k: v for k, v in out.items() if v}


def pod_failure_policy() -> dict[str, Any]:
    """A node drain, preemption or spot reclaim (the pod gets DisruptionTarget) is not the job's
    fault: the Job controller replaces the pod without counting it. Any exit of the worker itself
    ends the Job at once; the operator decides on retries (each a new Job, with backoff)."""
    return {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": podspec.WORKER_CONTAINER, "operator": "NotIn", "values": [0]}},
    ]}


def build_job(
    videojob: dict[str, Any],
    attempt: int,
    settings: Settings,
    environ: dict[str, str] | None = None,
    active_deadline_seconds: int | None = None,
    suspend: bool | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job for one attempt of the VideoJob's current generation.

    `suspend` (default spec.suspend) creates the Job suspended. A Job for a Kueue queue is always
    created suspended: Kueue unsuspends it on admission (and counts its requests against quota).
    """
    meta = videojob["metadata"]
    spec = videojob.get("spec", {})
    name, namespace, generation = meta["name"], meta["namespace"], int(meta.get("generation") or 1)
    environ = os.environ if environ is None else environ
    defaults = json.loads(settings.job_pod_defaults or "{}")
    defaults["resources"] = _merge_resources(podspec.default_render_resources(settings), defaults.get("resources"))
    pod = merged_pod_settings(defaults, spec.get("podTemplate"))

    labels = {
        "app.kubernetes.io/name": "videojob-worker",
        "app.kubernetes.io/managed-by": "videojob-operator",
        LABEL_VIDEOJOB: label_value(name),
        LABEL_GENERATION: str(generation),
        LABEL_ATTEMPT: str(attempt),
    }
    job_labels = dict(labels)
    queue = (meta.get("labels") or {}).get(QUEUE_LABEL)
    if queue:
        job_labels[QUEUE_LABEL] = queue  # Kueue admits the Job by this label

    env = [{"name": "VIDEOJOB_WORKDIR", "value": WORKDIR}]
    env += [{"name": k, "value": environ[k]} for k in PASSED_ENV if environ.get(k)]
    args = ["worker", "--namespace", namespace, "--name", name, "--generation", str(generation), "--attempt", str(attempt)]
    pod_spec = podspec.pod_spec(
        image=settings.worker_image or "videojob-operator:latest", args=args, env=env,
        service_account=pod.get("serviceAccountName") or settings.worker_service_account,
        render_resources=pod.get("resources", {}), runtime_class=settings.job_runtime_class_name or None,
    )
    pull_secrets = [n.strip() for n in settings.worker_image_pull_secrets.split(",") if n.strip()]
    if pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in pull_secrets]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if pod.get(key):
            pod_spec[key] = pod[key]

    suspend = bool(spec.get("suspend", False)) if suspend is None else suspend
    job_spec: dict[str, Any] = {
        # 0: a failure of the worker ends the Job; the operator retries as a new Job (with backoff),
        # so each attempt is visible. Disruptions do not count (podFailurePolicy).
        "backoffLimit": 0,
        "podFailurePolicy": pod_failure_policy(),
        "suspend": suspend or bool(queue),
        "ttlSecondsAfterFinished": settings.job_ttl_seconds_after_finished,
        "template": {"metadata": {"labels": labels, "annotations": podspec.pod_annotations()}, "spec": pod_spec},
    }
    deadline = active_deadline_seconds if active_deadline_seconds is not None else spec.get("activeDeadlineSeconds")
    if deadline:
        job_spec["activeDeadlineSeconds"] = int(deadline)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, generation, attempt),
            "namespace": namespace,
            "labels": job_labels,
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": KIND,
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }


def job_holds_slot(job: dict[str, Any]) -> bool:
    """A worker Job that counts against VIDEOJOB_MAX_CONCURRENT_JOBS: not finished, and either
    running or queued in Kueue (which may start it at any moment). One suspended by its
    VideoJob's spec.suspend does not count."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return False
    queued = QUEUE_LABEL in ((job.get("metadata") or {}).get("labels") or {})
    return queued or not (job.get("spec") or {}).get("suspend")


# Waiting reasons that never fix themselves without a change to the image or registry.
_IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


def job_outcome(job: dict[str, Any], pods: list[dict[str, Any]] = ()) -> tuple[str, str | None, str]:
    """(state, reason, message) of a worker Job: state is running | succeeded | failed.

    Used for what the worker could not report itself: the pod was OOMKilled, evicted, could not
    pull its image, or the Job ran past its deadline.
    """
    for pod in pods:
        status = pod.get("status", {})
        if status.get("reason") == "Evicted":
            return "failed", "Evicted", status.get("message") or "the worker pod was evicted"
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            terminated = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
            if terminated and terminated.get("reason") == "OOMKilled" and cs.get("name", podspec.WORKER_CONTAINER) == podspec.WORKER_CONTAINER:
                # The render container restarts by itself (a sidecar); the worker reports its scene.
                return "failed", "OOMKilled", "the worker container ran out of memory"
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _IMAGE_ERRORS:
                return "failed", "ImagePullError", f"{waiting.get('reason')}: {waiting.get('message', '')}".strip(": ")
    for cond in job.get("status", {}).get("conditions", []) or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "succeeded", None, "the worker finished"
        if cond.get("type") == "Failed":
            reason = cond.get("reason") or "WorkerFailed"
            if reason == "BackoffLimitExceeded":
                reason = "WorkerFailed"
            return "failed", reason, cond.get("message") or "the worker Job failed"
    return "running", None, ""


# Failures of a Job that a new attempt cannot fix: the deadline covers all attempts, and an
# image that cannot be pulled needs a change to the image or the registry.
PERMANENT_JOB_FAILURES = frozenset({"DeadlineExceeded", "ImagePullError"})


@dataclass(frozen=True)
class AttemptVerdict:
    """What a failed attempt means for the VideoJob."""

    reported: bool  # the worker wrote the failure into status itself
    reason: str
    message: str
    permanent: bool  # a retry cannot help: no new Job
    job_active: bool = False  # the Job is still running (its pod is stuck) and must be deleted


def attempt_verdict(status: dict[str, Any], attempt: int, reason: str, message: str) -> AttemptVerdict:
    """Decide on a failed attempt from the VideoJob's status and the Job's outcome.

    The worker's own report wins: it wrote Failed (Stalled=True: permanent) or AwaitingInput
    for this attempt before exiting. Otherwise the pod died first and `reason` (from
    `job_outcome`) is the failure to report.
    """
    phase = status.get("phase")
    if status.get("attempt") == attempt and phase in ("Failed", "AwaitingInput"):
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        stalled = (conditions.get("Stalled") or {}).get("status") == "True"
        return AttemptVerdict(
            reported=True,
            reason=(conditions.get("Succeeded") or {}).get("reason") or "Failed",
            message=status.get("message") or "the worker reported a failure",
            permanent=stalled or phase == "AwaitingInput",
        )
    return AttemptVerdict(
        reported=False, reason=reason, message=message,
        permanent=reason in PERMANENT_JOB_FAILURES, job_active=reason == "ImagePullError",
    )
