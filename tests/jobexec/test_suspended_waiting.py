"""A VideoJob suspended before its Job exists costs the Job-mode operator a small record, not a
run: one status write and one Event when it is created, no task while it waits; resumed, it
gets its Job in its place in the queue, also after an operator restart."""

from __future__ import annotations

from tests.controller.conftest import NAMESPACE
from tests.helpers import wait_until
from tests.jobexec.conftest import JOB_MODE, create, spec
from tests.jobexec.test_job_slots import watch_jobs


def resumed(kube, name: str) -> dict:
    """The status once the resume is seen (the run is in line for a slot by then)."""
    return kube.wait(name, lambda o: (o.get("status") or {}).get("observedGeneration") == 2
                     and o["status"].get("phase") == "Pending")["status"]


def test_suspended_videojobs_wait_without_a_run_and_resume_in_creation_order(operator, kube, jobs, apiserver):
    live = watch_jobs(apiserver)
    op = operator(**{**JOB_MODE, "max_concurrent_jobs": 1})
    create(kube, "busy", spec())
    jobs.wait_for("busy-g1-a1")  # holds the only slot
    for name in ("first", "second", "third"):
        create(kube, name, spec(suspend=True))
    for name in ("first", "second", "third"):
        assert "no Job is created until it is resumed" in kube.wait_phase(name, "Suspended")["status"]["message"]
        # One status write and one Event, straight to Suspended (no Queued on the way).
        assert [e["reason"] for e in kube.wait_events(name, lambda events: len(events) >= 1)] == ["Suspended"]
        assert apiserver.status_patches(NAMESPACE, name) == 1
        # The operator keeps no run (no task, no status writer) while it waits.
        run = op.controller.executor.runs[kube.get(name)["metadata"]["uid"]]
        assert run.task is None
    assert jobs.names() == ["busy-g1-a1"]

    # Resumed in the reverse order while the slot is taken: the slot still goes oldest first.
    for name in ("third", "first"):
        kube.patch_spec(name, {"suspend": False})
        assert resumed(kube, name)["message"] == "resumed; waiting for the worker Job"
    assert jobs.names() == ["busy-g1-a1"]
    for name in ("busy", "first", "third"):
        jobs.wait_for(f"{name}-g1-a1")
        jobs.finish(f"{name}-g1-a1", "Complete")
        assert kube.wait_phase(name, "Succeeded", "Failed")["status"]["phase"] == "Succeeded"
    assert live.created == ["busy-g1-a1", "first-g1-a1", "third-g1-a1"]  # the same Job names: no new content generation
    assert kube.get("second")["status"]["phase"] == "Suspended"
    assert "second-g1-a1" not in jobs.names()


def test_a_videojob_suspended_before_its_job_resumes_after_an_operator_restart(operator, kube, jobs):
    first = operator(**JOB_MODE)
    create(kube, "paused", spec(suspend=True))
    kube.wait_phase("paused", "Suspended")
    first.stop()

    second = operator(**JOB_MODE)
    uid = kube.get("paused")["metadata"]["uid"]
    waiting = lambda: second.controller.executor.live(uid)  # noqa: E731
    wait_until(lambda: waiting() is not None and waiting().task is None, message="the restarted operator took it up")
    assert [e["reason"] for e in kube.events("paused")] == ["Suspended"]  # nothing written again
    kube.patch_spec("paused", {"suspend": False})
    assert jobs.wait_for("paused-g1-a1")["spec"]["suspend"] is False
    assert resumed(kube, "paused")["message"] == "resumed; waiting for the worker Job"
    assert jobs.names() == ["paused-g1-a1"]
    jobs.finish("paused-g1-a1", "Complete")
    assert kube.wait_phase("paused", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"

