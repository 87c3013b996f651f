"""Kueue (issue 12, item 5): Kueue admits a queued Job by unsuspending it and undoes anyone
else's suspend of an admitted Job, so the operator stops a Kueue-managed worker the way Kueue
documents: it deactivates the Job's Workload (`spec.active: false`)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.controller.conftest import NAMESPACE, slow_scene_code
from tests.helpers import condition, status_writes, wait_until
from tests.jobexec.conftest import JOB_MODE, create, enable_kueue
from videojob.config import Settings
from videojob.controller.kube import KubeClient
from videojob.controller.worker import EXIT_OK, run_worker

QUEUE = {"kueue.x-k8s.io/queue-name": "render-queue"}
MERGE = "application/merge-patch+json"


def suspended(jobs, name: str) -> bool:
    return jobs.get(name)["spec"].get("suspend") is True


def pods_of(jobs, job: str) -> list[str]:
    return [p.metadata.name for p in jobs.core.list_namespaced_pod(NAMESPACE, label_selector=f"batch.kubernetes.io/job-name={job}").items]


def admitted(workload: dict[str, Any] | None) -> bool:
    return bool(workload) and (condition(workload.get("status") or {}, "Admitted") or {}).get("status") == "True"


def test_kueue_admits_a_queued_job_undoes_a_suspend_and_stops_it_when_deactivated(apiserver, jobs):
    """The emulated Kueue, as the operator meets it."""
    apiserver.call(enable_kueue)
    template = {"metadata": {"labels": {"app": "worker"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "x"}]}}
    jobs.batch.create_namespaced_job(NAMESPACE, {"metadata": {"name": "plain", "labels": QUEUE},
                                                 "spec": {"template": template}})
    wait_until(lambda: admitted(jobs.workload("plain")), message="Kueue admitted the Workload")
    assert not suspended(jobs, "plain")  # created suspended by Kueue's webhook, unsuspended on admission
    jobs.pod("plain", {"phase": "Running"})

    # Someone else's suspend of an admitted Job: Kueue undoes it.
    jobs.batch.patch_namespaced_job("plain", NAMESPACE, {"spec": {"suspend": True}}, _content_type=MERGE)
    assert not suspended(jobs, "plain")
    versions = [v["spec"].get("suspend") for v in apiserver.history(NAMESPACE, "plain", "batch/v1/jobs")]
    assert versions[-2:] == [True, False]

    # A deactivated Workload: Kueue suspends the Job, the Job controller stops its pod.
    workload = jobs.workload("plain")
    jobs.custom.patch_namespaced_custom_object("kueue.x-k8s.io", "v1beta1", NAMESPACE, "workloads",
                                               workload["metadata"]["name"], {"spec": {"active": False}})
    assert suspended(jobs, "plain") and pods_of(jobs, "plain") == []
    assert condition(jobs.workload("plain")["status"], "Evicted")["reason"] == "InactiveWorkload"


async def test_with_kueue_suspend_stops_the_worker_for_good_and_resume_runs_it_to_success(operator, kube, jobs, apiserver, tmp_path):
    apiserver.call(enable_kueue)
    operator(**JOB_MODE)
    create(kube, "queued", {"topic": "Queued", "code": slow_scene_code(8), "render": {"quality": "low"}}, labels=QUEUE)
    await asyncio.to_thread(wait_until, lambda: "queued-g1-a1" in jobs.names() and not suspended(jobs, "queued-g1-a1"),
                            message="Kueue admitted the worker Job")
    # The kubelet: the admitted Job's pod runs the worker.
    await asyncio.to_thread(jobs.pod, "queued-g1-a1", {"phase": "Running"})
    settings = Settings(workdir=tmp_path / "pod", scene_parallelism=1)
    client = KubeClient(kube.client)
    worker = asyncio.create_task(run_worker(NAMESPACE, "queued", 1, 1, settings=settings, kube=client, min_write_interval=0.2))
    await asyncio.to_thread(kube.wait, "queued", lambda o: (o.get("status") or {}).get("currentStage") == "Rendering")

    await asyncio.to_thread(kube.patch_spec, "queued", {"suspend": True})
    await asyncio.to_thread(kube.wait_phase, "queued", "Suspended")
    # Kueue itself holds the Job now: its Workload is inactive, so Kueue does not undo the
    # suspend, and the Job controller has stopped the pod.
    await asyncio.to_thread(wait_until, lambda: suspended(jobs, "queued-g1-a1") and pods_of(jobs, "queued-g1-a1") == [],
                            message="the worker Job suspended and its pod stopped")
    workload = await asyncio.to_thread(jobs.workload, "queued-g1-a1")
    assert workload["spec"]["active"] is False
    worker.cancel()  # the kubelet stops the deleted pod's container (SIGTERM)
    await asyncio.gather(worker, return_exceptions=True)
    assert suspended(jobs, "queued-g1-a1")
    writes = status_writes(apiserver.history(NAMESPACE, "queued"))
    first = next(i for i, w in enumerate(writes) if w.get("phase") == "Suspended")
    assert {w["phase"] for w in writes[first:]} == {"Suspended"}
    assert kube.status("queued")["phase"] == "Suspended"

    await asyncio.to_thread(kube.patch_spec, "queued", {"suspend": False})
    await asyncio.to_thread(wait_until, lambda: not suspended(jobs, "queued-g1-a1"), message="Kueue admitted the Job again")
    await asyncio.to_thread(jobs.pod, "queued-g1-a1", {"phase": "Running"})  # a new pod, as after any resume
    assert await run_worker(NAMESPACE, "queued", 1, 1, settings=settings, kube=client, min_write_interval=0.2) == EXIT_OK
    await asyncio.to_thread(jobs.finish, "queued-g1-a1", "Complete")
    status = (await asyncio.to_thread(kube.wait_phase, "queued", "Succeeded", "Failed"))["status"]
    assert status["phase"] == "Succeeded" and status["version"] == 1
    assert jobs.names() == ["queued-g1-a1"]  # the same Job throughout

    # Deleting the VideoJob deletes its Job (and so stops any pod), Kueue or not.
    await asyncio.to_thread(kube.delete, "queued")
    await asyncio.to_thread(jobs.wait_gone, "queued-g1-a1")


def test_with_kueue_a_videojob_created_suspended_gets_no_admitted_job_until_resumed(operator, kube, jobs, apiserver):
    apiserver.call(enable_kueue)
    operator(**JOB_MODE)
    create(kube, "later", {"topic": "Later", "code": slow_scene_code(1), "render": {"quality": "low"}, "suspend": True},
           labels=QUEUE)
    kube.wait_phase("later", "Suspended")
    # A Job created now would be admitted by Kueue and run: the operator creates none yet.
    assert "later-g1-a1" not in jobs.names()

    kube.patch_spec("later", {"suspend": False})
    wait_until(lambda: "later-g1-a1" in jobs.names() and not suspended(jobs, "later-g1-a1"), message="the Job admitted")
    kube.wait("later", lambda o: o["status"].get("phase") == "Pending" and o["status"].get("observedGeneration") == 2)


def test_a_suspend_before_kueue_has_made_the_workload_waits_for_it(operator, kube, jobs, apiserver):
    apiserver.call(enable_kueue)
    apiserver.call(lambda server: setattr(server.kueue_controller, "lagging", True))  # Kueue is busy
    operator(**JOB_MODE)
    create(kube, "early", {"topic": "Early", "code": slow_scene_code(1), "render": {"quality": "low"}}, labels=QUEUE)
    jobs.wait_for("early-g1-a1")
    kube.wait_phase("early", "Pending")
    kube.patch_spec("early", {"suspend": True})
    # The operator looked for the Workload and found none yet ...
    wait_until(lambda: apiserver.call(lambda server: sum(
        n for (_, verb, plural, _), n in server.requests_by_agent.items() if verb == "GET" and plural == "workloads")) >= 1,
        message="the operator looked for the Workload")
    # ... then Kueue catches up: it makes the Workload and admits the Job. The operator's next look
    # deactivates it, and Kueue suspends the Job again.
    apiserver.run("kueue_catch_up")
    wait_until(lambda: (jobs.workload("early-g1-a1") or {}).get("spec", {}).get("active") is False
               and suspended(jobs, "early-g1-a1"), message="the Workload deactivated and the Job suspended")
    assert kube.wait_phase("early", "Suspended")["status"]["phase"] == "Suspended"
