"""Controllers a cluster runs beside the API server, emulated where operator tests depend on them.

`JobController` is the part of Kubernetes' Job controller that decides whether a Job's pod can be
created at all. A pod whose ServiceAccount does not exist is refused by the ServiceAccount
admission plugin; the Job controller then records a `FailedCreate` Warning Event on the Job and
the Job simply has no pod (it retries with backoff; the Job's status says nothing). That is what
happens to a worker Job in a namespace the chart did not prepare (issue 12).

It also stops a Job's pods when the Job is suspended (KEP-2232: the Job controller deletes its
active pods). Pods that can be created are left to the tests (`JobControl.pod`), which play the
kubelet.

`KueueController` is Kueue's Job integration as far as the operator meets it (see its docstring).
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import kmock

JOBS = "batch/v1/jobs"
PODS = "v1/pods"
WORKLOADS = "kueue.x-k8s.io/v1beta1/workloads"
WORKLOAD_INFO = kmock.ResourceInfo(kind="Workload", singular="workload", namespaced=True, subresources={"status"},
                                   verbs={"create", "delete", "get", "list", "patch", "update", "watch"}, shortnames={"wl"})
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobController:
    """On every Job that is created or unsuspended: a FailedCreate Event if its pod's
    ServiceAccount does not exist (`default` when the template names none)."""

    async def changed(self, server: Any, resource: Any, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if resource != kmock.resource(JOBS):
            return
        if (new.get("spec") or {}).get("suspend"):
            if old is not None and not (old.get("spec") or {}).get("suspend"):
                await self._stop_pods(server, new)
            return
        if old is not None and not (old.get("spec") or {}).get("suspend"):
            return  # already running: its pod was decided on when it started
        meta = new["metadata"]
        namespace = meta["namespace"]
        account = ((new.get("spec") or {}).get("template") or {}).get("spec", {}).get("serviceAccountName") or "default"
        key = (kmock.resource("v1/serviceaccounts"), namespace, account)
        if key in server.objects and not server.objects[key].deleted:
            return
        message = (f'Error creating: pods "{meta["name"]}-" is forbidden: error looking up service account '
                   f'{namespace}/{account}: serviceaccount "{account}" not found')
        await server.insert(kmock.resource("v1/events"), namespace, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "namespace": namespace,
                               "uid": meta.get("uid")},
            "type": "Warning", "reason": "FailedCreate", "message": message,
            "source": {"component": "job-controller"}, "reportingComponent": "job-controller",
            "firstTimestamp": _now(), "lastTimestamp": _now(), "count": 1,
        })

    @staticmethod
    async def _stop_pods(server: Any, job: dict[str, Any]) -> None:
        """A suspended Job's active pods are deleted (their containers get SIGTERM)."""
        meta = job["metadata"]
        pods = kmock.resource(PODS)
        for key, obj in list(server.objects.items()):
            resource, namespace, _ = key
            if resource != pods or namespace != meta["namespace"] or obj.deleted:
                continue
            pod = obj.raw
            if ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL) != meta["name"]:
                continue
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                await server.remove(pods, key)


def _condition(kind: str, status: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if status else "False", "reason": reason, "message": message,
            "lastTransitionTime": _now()}


class KueueController:
    """Kueue's Job integration (when `server.kueue` is on), as far as the operator meets it:

    - every Job naming a LocalQueue (label `kueue.x-k8s.io/queue-name`) gets a Workload, owned by
      the Job and labelled `kueue.x-k8s.io/job-uid`, with `spec.active: true`;
    - an active Workload is admitted at once unless the queue is `held` (a ClusterQueue with
      `stopPolicy: Hold`, or no quota left); admitted, Kueue unsuspends its Job;
    - Kueue keeps `Job.spec.suspend` in line with its decision: anyone else's suspend of an
      admitted Job is undone, and so is an unsuspend of a Job it has not admitted;
    - `spec.active: false` evicts the Workload (condition `Evicted`, reason `InactiveWorkload`):
      Kueue suspends its Job (so the Job controller stops the pod) until it is active again.

    Kueue injects nothing else the operator relies on; deleting a Job leaves its Workload to the
    garbage collector (not emulated: a Workload of a deleted Job is inert here). `lagging`: Kueue
    has not seen new Jobs yet (no Workload) until `catch_up`, as when its controller is busy.
    """

    def __init__(self) -> None:
        self.held = False
        self.lagging = False
        self._unseen: list[Any] = []  # Jobs created while lagging

    async def changed(self, server: Any, resource: Any, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if not server.kueue:
            return
        if resource == kmock.resource(JOBS) and ((new["metadata"].get("labels") or {}).get(QUEUE_LABEL)):
            if old is None and self.lagging:
                self._unseen.append((resource, new["metadata"]["namespace"], new["metadata"]["name"]))
                return
            if old is None:
                await self._create_workload(server, new)
            await self._reconcile(server, new)
        elif resource == kmock.resource(WORKLOADS):
            job = self._owner_job(server, new)
            if job is not None:
                await self._reconcile(server, job)

    async def release(self, server: Any) -> None:
        """The queue admits again (the test's ClusterQueue is no longer held); caller holds the lock."""
        self.held = False
        for (resource, _, _), obj in list(server.objects.items()):
            if resource == kmock.resource(JOBS) and not obj.deleted and (obj.raw["metadata"].get("labels") or {}).get(QUEUE_LABEL):
                await self._reconcile(server, obj.raw)

    async def catch_up(self, server: Any) -> None:
        """Kueue sees the Jobs created while it lagged (caller holds the lock)."""
        self.lagging = False
        unseen, self._unseen = self._unseen, []
        for key in unseen:
            if key in server.objects and not server.objects[key].deleted:
                await self._create_workload(server, server.objects[key].raw)
                await self._reconcile(server, server.objects[key].raw)

    async def _create_workload(self, server: Any, job: dict[str, Any]) -> None:
        meta = job["metadata"]
        suffix = hashlib.sha256(meta["uid"].encode()).hexdigest()[:5]
        await server.insert(kmock.resource(WORKLOADS), meta["namespace"], {
            "apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "Workload",
            "metadata": {"name": f"job-{meta['name']}-{suffix}", "namespace": meta["namespace"],
                         "labels": {JOB_UID_LABEL: meta["uid"]},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                              "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"active": True, "queueName": meta["labels"][QUEUE_LABEL],
                     "podSets": [{"name": "main", "count": 1, "template": (job.get("spec") or {}).get("template") or {}}]},
        })

    @staticmethod
    def _workload_key(server: Any, job: dict[str, Any]) -> Any:
        uid, namespace = job["metadata"].get("uid"), job["metadata"]["namespace"]
        for key, obj in server.objects.items():
            if key[0] == kmock.resource(WORKLOADS) and key[1] == namespace and not obj.deleted \
                    and (obj.raw["metadata"].get("labels") or {}).get(JOB_UID_LABEL) == uid:
                return key
        return None

    @staticmethod
    def _owner_job(server: Any, workload: dict[str, Any]) -> dict[str, Any] | None:
        for ref in workload["metadata"].get("ownerReferences") or []:
            key = (kmock.resource(JOBS), workload["metadata"]["namespace"], ref.get("name"))
            if ref.get("kind") == "Job" and key in server.objects and not server.objects[key].deleted:
                job = server.objects[key].raw
                if job["metadata"].get("uid") == ref.get("uid"):
                    return job
        return None

    async def _reconcile(self, server: Any, job: dict[str, Any]) -> None:
        key = self._workload_key(server, job)
        if key is None:
            return
        workload = server.objects[key].raw
        conditions = (job.get("status") or {}).get("conditions") or []
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions):
            return  # finished: nothing to admit or stop
        active = (workload.get("spec") or {}).get("active") is not False
        admitted = active and not self.held
        if active:
            wanted = [_condition("QuotaReserved", admitted, "QuotaReserved" if admitted else "Pending", ""),
                      _condition("Admitted", admitted, "Admitted" if admitted else "Pending", "")]
        else:
            wanted = [_condition("Admitted", False, "NoReservation", "The workload is deactivated"),
                      _condition("Evicted", True, "InactiveWorkload", "The workload is deactivated")]
        kinds = lambda cs: [(c["type"], c["status"], c["reason"]) for c in cs]  # noqa: E731
        if kinds((workload.get("status") or {}).get("conditions") or []) != kinds(wanted):
            await server.update(kmock.resource(WORKLOADS), key, {**workload, "status": {"conditions": wanted}})
        job_key = (kmock.resource(JOBS), job["metadata"]["namespace"], job["metadata"]["name"])
        current = server.objects[job_key].raw  # as it is now (the Workload's update may have moved it)
        if bool((current.get("spec") or {}).get("suspend")) == (not admitted):
            return
        await server.update(kmock.resource(JOBS), job_key, {**current, "spec": {**current["spec"], "suspend": not admitted}})
