"""The Job executor's Kubernetes calls: its Jobs and their pods (VideoJobs: `kube.KubeClient`).

The official client is synchronous: every call runs in a worker thread so the event loop never
blocks. Every method returns plain dicts, and None (or False) when the object is gone: a 404 is an
answer here, not an error.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from videojob.api.models import API_GROUP, KIND
from videojob.controller.kube import MERGE_PATCH, api_call

# Pods carry their Job's name in these labels (the second since Kubernetes 1.27).
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
# Kueue's Workload of a Job: found by the label Kueue puts on it, the Job's uid.
KUEUE_GROUP, KUEUE_VERSION, WORKLOADS = "kueue.x-k8s.io", "v1beta1", "workloads"
KUEUE_JOB_UID = "kueue.x-k8s.io/job-uid"


class JobsClient:
    """Jobs and their pods, through one `kubernetes.client.ApiClient`."""

    def __init__(self, api_client: kubernetes.client.ApiClient):
        self.api_client = api_client
        self.batch = kubernetes.client.BatchV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)

    def _dict(self, obj: Any) -> dict[str, Any]:
        return obj if isinstance(obj, dict) else self.api_client.sanitize_for_serialization(obj)

    async def create_job(self, namespace: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(job, created): an existing Job of the same name is returned as it is (idempotent
        after an operator restart)."""
        try:
            job = await api_call(self.batch.create_namespaced_job, namespace, body)
            return self._dict(job), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = await self.read_job(namespace, body["metadata"]["name"])
        if existing is None:  # deleted in between: try once more
            job = await api_call(self.batch.create_namespaced_job, namespace, body)
            return self._dict(job), True
        return existing, False

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._dict(await api_call(self.batch.read_namespaced_job, name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def set_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        try:
            await api_call(
                self.batch.patch_namespaced_job, name, namespace, {"spec": {"suspend": suspend}},
                _content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def set_workload_active(self, namespace: str, job_uid: str, active: bool) -> bool | None:
        """Activate or deactivate Kueue's Workload of a Job (`spec.active`; false: Kueue evicts
        it and suspends the Job until it is active again). False when Kueue has not made the
        Workload yet; None when the cluster serves no Workloads (Kueue is not installed)."""
        custom = kubernetes.client.CustomObjectsApi(self.api_client)
        try:
            found = await api_call(
                custom.list_namespaced_custom_object, KUEUE_GROUP, KUEUE_VERSION, namespace, WORKLOADS,
                label_selector=f"{KUEUE_JOB_UID}={job_uid}",
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        names = [(w.get("metadata") or {}).get("name") for w in found.get("items") or []]
        for name in names:
            try:
                await api_call(
                    custom.patch_namespaced_custom_object, KUEUE_GROUP, KUEUE_VERSION, namespace, WORKLOADS, name,
                    {"spec": {"active": active}}, _content_type=MERGE_PATCH,
                )
            except ApiException as exc:
                if exc.status != 404:  # gone with its Job meanwhile
                    raise
        return bool(names)

    async def delete_job(self, namespace: str, name: str) -> bool:
        """Delete a Job and (in the background) its pods. False if it was already gone."""
        try:
            await api_call(
                self.batch.delete_namespaced_job, name, namespace, propagation_policy="Background"
            )
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        selector = f"{JOB_NAME_LABELS[0]}={name}"
        found = await api_call(self.core.list_namespaced_pod, namespace, label_selector=selector)
        pods = self._dict(found).get("items") or []
        # Filter here too: the selector is the server's job, but not every server honours it.
        return [p for p in pods if pod_job_name(p) == name]

    async def managed_jobs(self, namespaces: list[str], selector: str) -> list[dict[str, Any]]:
        """The Jobs labelled `selector` in the namespaces the operator watches (empty: all; a
        pattern such as `team-*` needs the cluster-wide list)."""
        literal = [ns for ns in namespaces if not any(ch in ns for ch in "*?[!")]
        if namespaces and len(literal) == len(namespaces):
            found = []
            for ns in dict.fromkeys(literal):
                jobs = await api_call(self.batch.list_namespaced_job, ns, label_selector=selector)
                found += self._dict(jobs).get("items") or []
            return found
        jobs = self._dict(await api_call(self.batch.list_job_for_all_namespaces, label_selector=selector))
        items = jobs.get("items") or []
        if not namespaces:
            return items
        return [job for job in items if any(fnmatch.fnmatchcase((job.get("metadata") or {}).get("namespace") or "", ns)
                                            for ns in namespaces)]

    async def failed_creates(self, namespace: str) -> dict[str, list[dict[str, Any]]]:
        """The Job controller's FailedCreate Events in `namespace`, by Job name, oldest first: one
        list for every Job of the namespace (the server filters by kind and reason)."""
        selector = "involvedObject.kind=Job,reason=FailedCreate"
        found = await api_call(self.core.list_namespaced_event, namespace, field_selector=selector)
        by_job: dict[str, list[dict[str, Any]]] = {}
        for event in self._dict(found).get("items") or []:
            about = event.get("involvedObject") or {}
            if about.get("kind") == "Job" and event.get("reason") == "FailedCreate":  # not every server filters
                by_job.setdefault(about.get("name") or "", []).append(event)
        for events in by_job.values():
            events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return by_job


def api_message(exc: ApiException) -> str:
    """The `message` of a Kubernetes Status body, else the HTTP reason."""
    try:
        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def pod_job_name(pod: dict[str, Any]) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return next((labels[key] for key in JOB_NAME_LABELS if labels.get(key)), None)


def owner_uid(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(API_GROUP + "/"):
            return ref.get("uid")
    return None
