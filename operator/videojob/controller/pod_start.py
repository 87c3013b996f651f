"""Why a worker Job's pod has not started (pure: no I/O).

A Job whose pod cannot be created says nothing in its own status: the Job controller records a
`FailedCreate` Warning Event on the Job (a missing ServiceAccount, an admission webhook, a
ResourceQuota or LimitRange refusal) and retries for ever. A pod that exists but fits no node
has `PodScheduled=False`, reason `Unschedulable`. Either way the VideoJob would sit in Pending
with no word; the Job executor asks `start_problem` while the Job has no running pod, reports
what it finds at once (a Warning Event and the condition reason) and gives up after
VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS. Image pulls the kubelet retries get the same budget.
"""

from __future__ import annotations

from typing import Any

FAILED_CREATE = "FailedCreate"
UNSCHEDULABLE = "Unschedulable"
IMAGE_PULL = "ImagePullError"
# Pull errors the kubelet retries by itself (a registry hiccup, a rate limit): given the same
# budget as any pod start. InvalidImageName and ErrImageNeverPull cannot pass: they fail at once.
RETRIED_PULLS = frozenset({"ErrImagePull", "ImagePullBackOff"})
STARTED_PHASES = frozenset({"Running", "Succeeded", "Failed"})


def pod_started(pods: list[dict[str, Any]]) -> bool:
    """A pod of the Job got past scheduling and image pulls (or ended)."""
    return any((pod.get("status") or {}).get("phase") in STARTED_PHASES for pod in pods)


def pull_retrying(pods: list[dict[str, Any]]) -> str | None:
    """'reason: message' of a pull the kubelet is still retrying, if any container waits on one."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in RETRIED_PULLS:
                return f"{waiting['reason']}: {waiting.get('message') or ''}".strip(": ")
    return None


def start_problem(pods: list[dict[str, Any]], job_events: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) of what keeps the Job's pod from starting, or None if nothing is known
    to be wrong (it may simply be on its way). `job_events`: the Job's Events, oldest first."""
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == UNSCHEDULABLE:
                return UNSCHEDULABLE, f"the worker pod cannot be scheduled: {cond.get('message') or 'no node fits it'}"
    pulling = pull_retrying(pods)
    if pulling:
        return IMAGE_PULL, f"the worker image cannot be pulled yet: {pulling}"
    if pods:
        return None  # created: whatever happens next is the pod's (job_outcome)
    refused = [e for e in job_events if e.get("reason") == FAILED_CREATE and e.get("type") == "Warning"]
    if refused:
        return FAILED_CREATE, f"the worker pod cannot be created: {refused[-1].get('message') or 'refused'}"
    return None
