"""The Job executor's supervision with fake API clients: what happens when the API server fails
or refuses a Job (cases the emulated server cannot produce)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from kubernetes.client.rest import ApiException

from tests.controller.apiserver import merge_patch
from tests.helpers import condition, wait_for
from videojob.api.manifest import parse_videojob
from videojob.config import Settings
from videojob.controller.events import EventRecorder
from videojob.controller.executor import RunEnvironment, RunRequest
from videojob.controller.job_executor import JobExecutor
from videojob.controller.slots import FairSlots


class FakeAPI:
    """The few calls the executor makes, in memory; `failures` are raised by create_job in turn."""

    def __init__(self, failures: list[ApiException]):
        self.failures = list(failures)
        self.status: dict[str, Any] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.creates = 0
        self.phases: list[str | None] = []  # after each status write

    async def create_job(self, namespace: str, body: dict[str, Any]):
        self.creates += 1
        if self.failures:
            raise self.failures.pop(0)
        name = body["metadata"]["name"]
        if name in self.jobs:
            return self.jobs[name], False
        self.jobs[name] = copy.deepcopy(body)
        return self.jobs[name], True

    async def read_videojob(self, namespace: str, name: str):
        return {"status": copy.deepcopy(self.status)}

    async def job_pods(self, namespace: str, name: str):
        return []

    async def failed_creates(self, namespace: str):
        return {}

    async def managed_jobs(self, namespaces: list[str], selector: str):
        return [job for job in self.jobs.values() if job.get("status") is None]

    async def delete_job(self, namespace: str, name: str):
        return self.jobs.pop(name, None) is not None

    async def read_job(self, namespace: str, name: str):
        return self.jobs.get(name)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]):
        self.status = merge_patch(self.status, status)
        self.phases.append(self.status.get("phase"))
        return {"status": self.status}

    async def create_event(self, namespace: str, event: dict[str, Any]):
        self.events.append(event)


def request() -> RunRequest:
    job = parse_videojob({"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob",
                          "metadata": {"name": "fake", "namespace": "ns", "uid": "uid-1", "generation": 1},
                          "spec": {"topic": "Fake", "storyboard": {"scenes": [{"title": "x"}]}}})
    return RunRequest(namespace="ns", name="fake", uid="uid-1", generation=1, content_generation=1, job=job, queue_key="")


def executor(api: FakeAPI, tmp_path, **options: Any) -> JobExecutor:
    env = RunEnvironment(settings=Settings(executor="job", workdir=tmp_path), kube=api, slots=FairSlots(1),
                         events=EventRecorder(api), store_root=tmp_path)
    return JobExecutor(env, jobs=api, **options)


async def test_a_failing_api_server_delays_the_job_but_does_not_fail_the_videojob(tmp_path):
    api = FakeAPI([ApiException(status=503, reason="Service Unavailable"), ApiException(status=500, reason="boom")])
    ex = executor(api, tmp_path, api_retry_min=0.01)
    await ex.submit(request())
    await wait_for(lambda: "fake-g1-a1" in api.jobs)
    await wait_for(lambda: api.phases)
    assert api.creates == 3 and list(api.jobs) == ["fake-g1-a1"]
    assert api.phases == ["Pending"]  # one Queued write; the errors never reached the status

    job = copy.deepcopy(api.jobs["fake-g1-a1"])
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    ex.job_event("MODIFIED", job)
    await wait_for(lambda: api.status.get("phase") == "Succeeded")  # mirrored: no worker wrote it here
    await ex.shutdown()


async def test_a_job_the_api_server_refuses_fails_the_videojob_as_stalled(tmp_path):
    refused = ApiException(status=422, reason="Unprocessable Entity")
    refused.body = '{"kind": "Status", "message": "Job.batch \\"fake-g1-a1\\" is invalid: spec.template.spec.affinity: Invalid value"}'
    api = FakeAPI([refused])
    ex = executor(api, tmp_path)
    run = await ex.submit(request())
    await asyncio.wait_for(run.task, 10)
    assert api.status["phase"] == "Failed"
    assert condition(api.status, "Succeeded")["reason"] == "JobRejected"
    assert condition(api.status, "Stalled")["status"] == "True"
    assert "spec.template.spec.affinity" in api.status["message"]
    assert api.creates == 1 and api.jobs == {}
    assert [e["reason"] for e in api.events][-1] == "JobRejected"

