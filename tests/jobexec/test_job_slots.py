"""VIDEOJOB_MAX_CONCURRENT_JOBS bounds live worker Jobs in job mode (oldest VideoJob first, and
across an operator restart), and a Job of an attempt's name that is not the VideoJob's own is
never adopted."""

from __future__ import annotations

from typing import Any

import kmock

from tests.controller.conftest import NAMESPACE
from tests.helpers import condition
from tests.jobexec.conftest import JOB_MODE, add_service_account, create, spec

JOBS = kmock.resource("batch/v1/jobs")


class LiveJobs:
    """An emulated controller: after every change on the server, how many worker Jobs could be
    running (neither Complete nor Failed, not suspended); the most ever, and creation order."""

    def __init__(self) -> None:
        self.most = 0
        self.created: list[str] = []

    async def changed(self, server: Any, resource: Any, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if resource != JOBS:
            return
        if old is None:
            self.created.append(new["metadata"]["name"])
        live = 0
        for (kind, _, _), obj in server.objects.items():
            if kind != JOBS or obj.deleted:
                continue
            ended = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                        for c in (obj.raw.get("status") or {}).get("conditions") or [])
            live += not ended and not (obj.raw.get("spec") or {}).get("suspend")
        self.most = max(self.most, live)


def watch_jobs(apiserver) -> LiveJobs:
    counter = LiveJobs()
    apiserver.call(lambda server: server.controllers.append(counter))
    return counter


def waiting_for_slot(kube, name: str) -> dict[str, Any]:
    return kube.wait(name, lambda o: "waiting for a free slot" in ((o.get("status") or {}).get("message") or ""), timeout=30)["status"]


def complete(kube, jobs, name: str) -> None:
    jobs.wait_for(f"{name}-g1-a1")
    jobs.finish(f"{name}-g1-a1", "Complete")
    assert kube.wait_phase(name, "Succeeded", "Failed")["status"]["phase"] == "Succeeded"


def test_one_slot_runs_one_worker_job_at_a_time_in_creation_order(operator, kube, jobs, apiserver):
    live = watch_jobs(apiserver)
    operator(**{**JOB_MODE, "max_concurrent_jobs": 1})
    create(kube, "one", spec())
    jobs.wait_for("one-g1-a1")
    create(kube, "two", spec())
    create(kube, "three", spec())
    for name in ("two", "three"):
        status = waiting_for_slot(kube, name)
        assert (status["phase"], status["currentStage"]) == ("Pending", "Queued")
    assert jobs.names() == ["one-g1-a1"]

    for name in ("one", "two", "three"):
        complete(kube, jobs, name)
    assert live.created == ["one-g1-a1", "two-g1-a1", "three-g1-a1"]
    assert live.most == 1


def test_a_restarted_operator_counts_the_jobs_still_running(operator, kube, jobs, apiserver):
    """A Job still running at start-up holds a slot even when no run adopts it: here its worker
    has already written Succeeded and its pod is on its way out."""
    live = watch_jobs(apiserver)
    first = operator(**{**JOB_MODE, "max_concurrent_jobs": 1})
    create(kube, "early", spec())
    jobs.wait_for("early-g1-a1")
    kube.wait_phase("early", "Pending")
    first.stop()  # its Job runs on
    kube.custom.patch_namespaced_custom_object_status(  # what the worker writes before it exits
        "videogen.io", "v1alpha1", NAMESPACE, "videojobs", "early", {"status": {"phase": "Succeeded"}})

    create(kube, "late", spec())
    operator(**{**JOB_MODE, "max_concurrent_jobs": 1})
    waiting_for_slot(kube, "late")  # the running Job holds the only slot
    assert jobs.names() == ["early-g1-a1"]
    jobs.finish("early-g1-a1", "Complete")  # the pod exited: its slot is free
    complete(kube, jobs, "late")
    assert live.most == 1


def test_suspending_gives_the_slot_to_the_next_videojob(operator, kube, jobs, apiserver):
    live = watch_jobs(apiserver)
    operator(**{**JOB_MODE, "max_concurrent_jobs": 1})
    create(kube, "paused", spec())
    jobs.wait_for("paused-g1-a1")
    create(kube, "next", spec())
    waiting_for_slot(kube, "next")

    kube.patch_spec("paused", {"suspend": True})
    jobs.wait_for("next-g1-a1")  # the suspended Job's slot went to the next in line
    assert jobs.get("paused-g1-a1")["spec"]["suspend"] is True
    kube.patch_spec("paused", {"suspend": False})
    status = kube.wait("paused", lambda o: "waiting for a free slot" in (o["status"].get("message") or ""))["status"]
    assert status["phase"] == "Pending"
    assert jobs.get("paused-g1-a1")["spec"]["suspend"] is True  # resumed only when a slot is free

    complete(kube, jobs, "next")
    jobs.wait_for("paused-g1-a1")
    kube.wait("paused", lambda o: o["status"].get("message") == "resumed; waiting for the worker pod")
    assert jobs.get("paused-g1-a1")["spec"]["suspend"] is False
    complete(kube, jobs, "paused")
    assert live.most == 1


def test_a_job_of_the_same_name_owned_by_someone_else_is_never_adopted(operator, kube, jobs):
    stranger = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "taken-g1-a1", "labels": {"app.kubernetes.io/managed-by": "videojob-operator",
                                          "videogen.io/generation": "1", "videogen.io/attempt": "1"},
        "ownerReferences": [{"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob", "name": "taken",
                             "uid": "uid-of-an-earlier-taken", "controller": True}]},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "serviceAccountName": "videojob-worker",
                                       "containers": [{"name": "x", "image": "busybox"}]}}}}
    jobs.batch.create_namespaced_job(NAMESPACE, stranger)
    before = jobs.get("taken-g1-a1")

    operator(**JOB_MODE)
    create(kube, "taken", spec())
    status = kube.wait_phase("taken", "Failed")["status"]
    assert condition(status, "Succeeded")["reason"] == "JobNameTaken"
    assert condition(status, "Stalled")["status"] == "True"
    assert "default/taken-g1-a1" in status["message"] and "uid-of-an-earlier-taken" in status["message"]
    assert jobs.get("taken-g1-a1") == before  # not suspended, patched or deleted

    kube.delete("taken")
    kube.wait("taken", lambda o: not o)
    assert jobs.get("taken-g1-a1") == before  # deleting the VideoJob does not take the stranger along


def test_one_namespace_cannot_take_every_slot(operator, kube, jobs, apiserver):
    """VIDEOJOB_MAX_CONCURRENT_PER_NAMESPACE: the second slot goes to the other namespace."""
    apiserver.call(lambda server: server.objects.__setitem__(
        ("v1/namespaces", None, "team-b"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}))
    apiserver.call(add_service_account, "videojob-worker", "team-b")
    operator(**{**JOB_MODE, "max_concurrent_jobs": 2, "max_concurrent_per_namespace": 1},
             namespaces=[NAMESPACE, "team-b"])
    create(kube, "a1", spec())
    jobs.wait_for("a1-g1-a1")
    create(kube, "a2", spec())
    waiting_for_slot(kube, "a2")
    kube.create("b1", spec(), namespace="team-b")
    jobs.wait_for("b1-g1-a1", namespace="team-b")
    assert jobs.names() == ["a1-g1-a1"]  # a free slot, but not for a second Job of `default`

    complete(kube, jobs, "a1")
    jobs.wait_for("a2-g1-a1")
