"""Why a worker Job's pod has not started, told at once and failed after a deadline: the pod cannot
be created (FailedCreate), fits no node, its image does not pull yet or never will, or the API
server refuses the Job (403). The emulated Job controller refuses pods without their
ServiceAccount; the tests play the kubelet (pod statuses) and admission (403)."""

from __future__ import annotations

from tests.controller.conftest import NAMESPACE
from tests.helpers import condition
from tests.jobexec.conftest import JOB_MODE, QUICK_RETRY, create, spec, wait_warning


def image_waiting(jobs, job, reason, message="Back-off pulling image registry.example/videojob:9.9"):
    jobs.pod(job, {"phase": "Pending", "containerStatuses": [{
        "name": "worker", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"waiting": {"reason": reason, "message": message}}}]})


def test_an_image_pull_hiccup_is_waited_out_within_the_budget(operator, kube, jobs):
    operator(**JOB_MODE, job_pod_start_timeout_seconds=60)
    create(kube, "hiccup", spec(retryStrategy={"limit": 0}))
    jobs.wait_for("hiccup-g1-a1")
    image_waiting(jobs, "hiccup-g1-a1", "ImagePullBackOff")
    held = kube.wait("hiccup", lambda o: condition(o.get("status") or {}, "Succeeded").get("reason") == "ImagePullError",
                     timeout=60)["status"]
    assert held["phase"] == "Pending" and "ImagePullBackOff" in held["message"]
    wait_warning(kube, "hiccup", "ImagePullError")

    # The registry is back: the kubelet pulls, the pod runs, the Job completes.
    jobs.core.patch_namespaced_pod_status("hiccup-g1-a1-pod", NAMESPACE, {"status": {
        "phase": "Running", "containerStatuses": [{"name": "worker", "ready": True, "restartCount": 0, "image": "x",
                                                    "imageID": "x", "state": {"running": {}}}]}},
        _content_type="application/merge-patch+json")
    jobs.finish("hiccup-g1-a1", "Complete")
    assert kube.wait_phase("hiccup", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"
    assert jobs.names() == ["hiccup-g1-a1"]


def test_an_image_that_never_pulls_fails_after_the_budget_and_its_job_is_deleted(operator, kube, jobs):
    operator(**JOB_MODE, job_pod_start_timeout_seconds=4)
    create(kube, "pull", spec(retryStrategy=QUICK_RETRY))
    jobs.wait_for("pull-g1-a1")
    image_waiting(jobs, "pull-g1-a1", "ImagePullBackOff")

    status = kube.wait_phase("pull", "Failed")["status"]
    assert condition(status, "Succeeded")["reason"] == "ImagePullError"
    assert condition(status, "Stalled")["status"] == "True"  # not retried: a new Job pulls the same image
    assert "ImagePullBackOff" in status["message"]
    jobs.wait_gone("pull-g1-a1")  # the Job would otherwise sit there pulling forever
    assert jobs.names() == []


def test_an_invalid_image_name_fails_at_once(operator, kube, jobs):
    operator(**JOB_MODE)  # the default budget (600 s) is not waited for
    create(kube, "badname", spec(retryStrategy=QUICK_RETRY))
    jobs.wait_for("badname-g1-a1")
    image_waiting(jobs, "badname-g1-a1", "InvalidImageName", 'couldn\'t parse image reference "registry.example/Bad:tag"')
    status = kube.wait_phase("badname", "Failed", timeout=30)["status"]
    assert condition(status, "Succeeded")["reason"] == "ImagePullError" and "InvalidImageName" in status["message"]
    jobs.wait_gone("badname-g1-a1")


def test_a_job_whose_pod_cannot_be_created_warns_at_once_and_fails_after_the_deadline(operator, kube, jobs):
    """The Job controller refuses the pod (its ServiceAccount does not exist here): the Job alone
    would say nothing and the VideoJob would sit in Pending."""
    operator(**JOB_MODE, job_pod_start_timeout_seconds=6)
    create(kube, "orphan", spec(podTemplate={"serviceAccountName": "not-here"}, retryStrategy={"limit": 0}))
    jobs.wait_for("orphan-g1-a1")

    held = kube.wait("orphan", lambda o: condition(o.get("status") or {}, "Succeeded").get("reason") == "FailedCreate",
                     timeout=30)["status"]
    assert held["phase"] == "Pending"
    assert 'serviceaccount "not-here" not found' in held["message"]
    wait_warning(kube, "orphan", "FailedCreate")

    status = kube.wait_phase("orphan", "Failed", timeout=60)["status"]
    assert condition(status, "Succeeded")["reason"] == "FailedCreate"
    assert "VIDEOJOB_JOB_POD_START_TIMEOUT_SECONDS" in status["message"]
    jobs.wait_gone("orphan-g1-a1")  # it would wait for its pod for ever


def test_a_pod_that_fits_no_node_warns_and_fails_after_the_deadline(operator, kube, jobs):
    operator(**JOB_MODE, job_pod_start_timeout_seconds=6)
    create(kube, "huge-pod", spec(retryStrategy={"limit": 0}))
    jobs.wait_for("huge-pod-g1-a1")
    jobs.pod("huge-pod-g1-a1", {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory."}]})

    wait_warning(kube, "huge-pod", "Unschedulable")
    status = kube.wait_phase("huge-pod", "Failed", timeout=60)["status"]
    assert condition(status, "Succeeded")["reason"] == "Unschedulable"
    assert "Insufficient memory" in status["message"]


def test_an_admission_refusal_surfaces_in_status_and_fails_after_the_deadline(operator, kube, jobs, apiserver):
    """A validating webhook (or OwnerReferencesPermissionEnforcement) answers 403: said at once,
    retried, and failed after the deadline instead of a silent retry loop."""
    refusal = 'admission webhook "policy.example.com" denied the request: Jobs need resources.requests'
    deny_jobs = lambda resource, body: refusal if resource.plural == "jobs" else None  # noqa: E731
    apiserver.call(lambda server: server.admission.append(deny_jobs))
    operator(**JOB_MODE, job_pod_start_timeout_seconds=4)
    create(kube, "denied", spec(retryStrategy={"limit": 2}))

    held = kube.wait("denied", lambda o: condition(o.get("status") or {}, "Succeeded").get("reason") == "JobForbidden",
                     timeout=30)["status"]
    assert held["phase"] == "Pending" and "Jobs need resources.requests" in held["message"]
    wait_warning(kube, "denied", "JobForbidden")

    status = kube.wait_phase("denied", "Failed", timeout=60)["status"]
    assert condition(status, "Succeeded")["reason"] == "JobForbidden"
    assert condition(status, "Stalled")["status"] == "True"
    assert "policy.example.com" in status["message"]
    assert jobs.names() == []
