"""Fixtures for the Job executor: the one emulated API server (`tests/controller/apiserver.py`,
serving Jobs and pods here) and the real operator (`tests/controller/conftest.py`).

KMock has no controllers, so `JobControl` plays the job controller and the kubelet (it sets Job
conditions and pod statuses), and the worker is run in-process (`run_worker`) against the same
server. Nothing garbage-collects by ownerReferences here: the tests check that the operator
deletes its Jobs itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.controller.server_thread import ServerThread
from tests.controller.conftest import NAMESPACE, kube, operator, scene_code, serve_api, workdir  # noqa: F401  (fixtures)
from tests.helpers import sample, wait_until

MERGE = "application/merge-patch+json"

GROUP, VERSION, PLURAL = "videogen.io", "v1alpha1", "videojobs"
POD_DEFAULTS = {
    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    "nodeSelector": {"pool": "render"},
    "tolerations": [{"key": "render", "operator": "Exists", "effect": "NoSchedule"}],
}
JOB_MODE = dict(executor="job", worker_image="registry.example/videojob:9.9",
                job_pod_defaults=json.dumps(POD_DEFAULTS), job_ttl_seconds_after_finished=600)
QUICK_RETRY = {"limit": 2, "backoff": {"durationSeconds": 0}}


def create(kube, name, spec, labels=None):
    """A VideoJob in `default`, with `labels` (a Kueue queue, say)."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}
    return kube.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)


def spec(**extra):
    return {"topic": "Jobs", "code": scene_code(1), "render": {"quality": "low"}, **extra}


def runs_done(result):
    """Runs the operator has seen end (videojob_duration_seconds), in this process."""
    return sample("videojob_duration_seconds_count", namespace=NAMESPACE, result=result)


def warnings(events):
    return [e["reason"] for e in events if e["type"] == "Warning"]


def wait_warning(kube, name, reason):
    """The Warning Events about `name` once one has `reason` (it is posted after the status write)."""
    return warnings(kube.wait_events(name, lambda events: reason in warnings(events)))


WORKER_ACCOUNT = "videojob-worker"


def add_service_account(server: Any, name: str, namespace: str = NAMESPACE) -> None:
    """What the chart creates where VideoJobs run: the worker pods' ServiceAccount."""
    server.objects["v1/serviceaccounts", namespace, name] = {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "uid": f"sa-{name}", "resourceVersion": "1"},
    }


def enable_kueue(server: Any) -> None:
    """Kueue installed (`kube_controllers.KueueController`): it admits every queued Job at once."""
    server.enable_kueue()


def hold_kueue(server: Any) -> None:
    """Kueue installed, its ClusterQueue held: queued Jobs stay suspended until `release_kueue`."""
    server.enable_kueue()
    server.kueue_controller.held = True


@pytest.fixture()
def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The emulated API server with Jobs and pods, and the worker ServiceAccount in `default`."""
    for server in serve_api(ServerThread(workloads=True), tmp_path, monkeypatch):
        server.call(add_service_account, WORKER_ACCOUNT)
        yield server


class JobControl:
    """The job controller and the kubelet, played against the emulated API server."""

    AGENT = "tests-jobcontrol"  # its own User-Agent: the server tells its requests from the operator's

    def __init__(self, client: kubernetes.client.ApiClient):
        self.client = kubernetes.client.ApiClient(client.configuration)
        self.client.user_agent = f"{self.AGENT}/1"
        self.batch = kubernetes.client.BatchV1Api(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)

    def workload(self, job: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        """Kueue's Workload for the Job `job` (found by the Job's uid, as Kueue labels it)."""
        uid = self.get(job, namespace)["metadata"]["uid"]
        found = self.custom.list_namespaced_custom_object(
            "kueue.x-k8s.io", "v1beta1", namespace, "workloads", label_selector=f"kueue.x-k8s.io/job-uid={uid}")
        return next(iter(found["items"]), None)

    def names(self, namespace: str = NAMESPACE) -> list[str]:
        return sorted(j.metadata.name for j in self.batch.list_namespaced_job(namespace).items)

    def get(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        job = self.batch.read_namespaced_job(name, namespace)
        return self.batch.api_client.sanitize_for_serialization(job)

    def wait_for(self, name: str, timeout: float = 30, namespace: str = NAMESPACE) -> dict[str, Any]:
        wait_until(lambda: name in self.names(namespace), timeout, f"Job {name} created")
        return self.get(name, namespace)

    def wait_gone(self, name: str, timeout: float = 30, namespace: str = NAMESPACE) -> None:
        wait_until(lambda: name not in self.names(namespace), timeout, f"Job {name} deleted")

    def finish(self, name: str, condition: str, reason: str | None = None, message: str = "", namespace: str = NAMESPACE) -> None:
        """Set the Job's final condition (Complete or Failed), as the job controller does."""
        cond = {"type": condition, "status": "True", "reason": reason, "message": message}
        status = {"conditions": [{k: v for k, v in cond.items() if v}]}
        status["succeeded" if condition == "Complete" else "failed"] = 1
        self.batch.patch_namespaced_job_status(name, namespace, {"status": status}, _content_type=MERGE)

    def pod(self, job: str, status: dict[str, Any], namespace: str = NAMESPACE) -> None:
        """A pod of `job` with `status` (created, then its status set, as with a kubelet)."""
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"{job}-pod", "namespace": namespace,
            "labels": {**self.get(job, namespace)["spec"]["template"]["metadata"]["labels"],
                       "batch.kubernetes.io/job-name": job, "job-name": job}},
            "spec": {"containers": [{"name": "worker", "image": "x"}]}}
        self.core.create_namespaced_pod(namespace, body)
        self.core.patch_namespaced_pod_status(f"{job}-pod", namespace, {"status": status}, _content_type=MERGE)


@pytest.fixture()
def jobs(kube) -> JobControl:  # noqa: F811
    control = JobControl(kube.client)
    yield control
    control.client.close()
