"""Controllers a cluster runs beside the API server, emulated where operator tests depend on them.

`JobController` is the part of Kubernetes' Job controller that decides whether a Job's pod can be
created at all. A pod whose ServiceAccount does not exist is refused by the ServiceAccount
admission plugin; the Job controller then records a `FailedCreate` Warning Event on the Job and
the Job simply has no pod (it retries with backoff; the Job's status says nothing). That is what
happens to a worker Job in a namespace the chart did not prepare (issue 12).

Pods that can be created are left to the tests (`JobControl.pod`), which play the kubelet.
"""

from __future__ import annotations

import datetime
from typing import Any

import kmock

JOBS = "batch/v1/jobs"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobController:
    """On every Job that is created or unsuspended: a FailedCreate Event if its pod's
    ServiceAccount does not exist (`default` when the template names none)."""

    async def changed(self, server: Any, resource: Any, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if resource != kmock.resource(JOBS) or (new.get("spec") or {}).get("suspend"):
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
