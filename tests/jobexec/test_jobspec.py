"""The Job the operator creates for a VideoJob run (pure: no API server needed)."""

from __future__ import annotations

import json

import jsonschema

from videojob.api.crd import crd
from videojob.config import Settings
from videojob.controller.jobspec import attempt_verdict, build_job, job_name, job_outcome


def videojob(**spec):
    return {
        "apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob",
        "metadata": {"name": "fourier", "namespace": "team-a", "uid": "uid-123", "generation": 3,
                     "labels": {"kueue.x-k8s.io/queue-name": "gpu-queue"}},
        "spec": {"topic": "Fourier", "storyboard": {"scenes": [{"title": "x"}]}, **spec},
    }


def settings(**kw):
    return Settings(worker_image="registry.example/videojob:1.0", job_pod_defaults=json.dumps({
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "nodeSelector": {"pool": "render"},
        "tolerations": [{"key": "render", "operator": "Exists"}],
    }), **kw)


def test_name_owner_labels_and_worker_command():
    job = build_job(videojob(), attempt=2, settings=settings(), environ={"AWS_S3_VIDEO_BUCKET": "videos", "AWS_SECRET_ACCESS_KEY": "s3cr3t"})
    meta = job["metadata"]
    assert meta["name"] == "fourier-g3-a2" == job_name("fourier", 3, 2)
    assert meta["ownerReferences"] == [{"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob", "name": "fourier",
                                        "uid": "uid-123", "controller": True, "blockOwnerDeletion": True}]
    assert meta["labels"]["videogen.io/videojob"] == "fourier"
    assert meta["labels"]["videogen.io/attempt"] == "2"
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/videojob:1.0"
    assert container["args"] == ["worker", "--namespace", "team-a", "--name", "fourier", "--generation", "3", "--attempt", "2"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AWS_S3_VIDEO_BUCKET"] == "videos"
    assert "AWS_SECRET_ACCESS_KEY" not in env and "s3cr3t" not in json.dumps(job)


def test_retries_and_deadline_map_onto_the_job():
    job = build_job(videojob(activeDeadlineSeconds=900, suspend=True), attempt=1, settings=settings())
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 900
    assert job["spec"]["suspend"] is True
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_pod_template_merges_over_chart_defaults():
    template = {"resources": {"limits": {"memory": "8Gi", "cpu": 4}}, "nodeSelector": {"zone": "a"},
                "tolerations": [{"key": "spot", "operator": "Exists"}], "serviceAccountName": "custom-worker",
                "priorityClassName": "batch-low", "affinity": {"nodeAffinity": {}}}
    pod = build_job(videojob(podTemplate=template), attempt=1, settings=settings())["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "8Gi", "cpu": "4"}}
    assert pod["nodeSelector"] == {"pool": "render", "zone": "a"}
    assert [t["key"] for t in pod["tolerations"]] == ["render", "spot"]
    assert pod["serviceAccountName"] == "custom-worker"
    assert pod["priorityClassName"] == "batch-low"
    assert pod["affinity"] == {"nodeAffinity": {}}


def test_default_service_account_and_restricted_security():
    pod = build_job(videojob(), attempt=1, settings=settings())["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "videojob-worker"
    sc = pod["containers"][0]["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_long_names_stay_valid_and_distinct():
    a, b = job_name("x" * 250 + "a", 12, 3), job_name("x" * 250 + "b", 12, 3)
    assert len(a) <= 63 and len(b) <= 63 and a != b and a.endswith("-g12-a3")


def test_pod_template_is_accepted_by_the_crd_schema():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.validate(videojob(podTemplate={"resources": {"limits": {"cpu": 2, "memory": "2Gi"}},
                                              "tolerations": [{"key": "k", "operator": "Exists"}]}), schema)


def test_failure_reasons_from_job_and_pods():
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    oom = {"status": {"containerStatuses": [{"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}}
    assert job_outcome(failed, [oom])[:2] == ("failed", "OOMKilled")
    evicted = {"status": {"reason": "Evicted", "message": "node low on memory"}}
    assert job_outcome(failed, [evicted]) == ("failed", "Evicted", "node low on memory")
    deadline = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]}}
    assert job_outcome(deadline, [])[:2] == ("failed", "DeadlineExceeded")
    pulling = {"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}]}}
    assert job_outcome({"status": {}}, [pulling])[:2] == ("failed", "ImagePullError")
    assert job_outcome({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, [])[0] == "succeeded"
    assert job_outcome({"status": {"active": 1}}, [])[0] == "running"
    assert job_outcome(failed, [])[:2] == ("failed", "WorkerFailed")


def worker_status(phase, attempt, stalled, reason="RenderFailed"):
    return {"phase": phase, "attempt": attempt, "message": "scene 1 failed",
            "conditions": [{"type": "Succeeded", "status": "False", "reason": reason},
                           {"type": "Stalled", "status": "True" if stalled else "False", "reason": reason}]}


def test_the_workers_own_report_decides_whether_an_attempt_is_retried():
    permanent = attempt_verdict(worker_status("Failed", 2, stalled=True), 2, "WorkerFailed", "exit 1")
    assert (permanent.reported, permanent.reason, permanent.permanent) == (True, "RenderFailed", True)
    transient = attempt_verdict(worker_status("Failed", 2, stalled=False, reason="TransientError"), 2, "WorkerFailed", "")
    assert (transient.reported, transient.reason, transient.permanent) == (True, "TransientError", False)
    waiting = attempt_verdict({**worker_status("AwaitingInput", 1, stalled=True)}, 1, "WorkerFailed", "")
    assert waiting.reported and waiting.permanent


def test_a_failure_the_worker_did_not_report_is_judged_by_the_pod():
    # The status still describes attempt 1 (its worker's report): attempt 2's pod died silently.
    oom = attempt_verdict(worker_status("Failed", 1, stalled=False), 2, "OOMKilled", "out of memory")
    assert (oom.reported, oom.reason, oom.permanent, oom.job_active) == (False, "OOMKilled", False, False)
    running = {"phase": "Running", "attempt": 1}
    assert attempt_verdict(running, 1, "DeadlineExceeded", "").permanent
    pull = attempt_verdict(running, 1, "ImagePullError", "ImagePullBackOff")
    assert pull.permanent and pull.job_active
    assert not attempt_verdict(running, 1, "Evicted", "").permanent


def test_worker_pods_pull_with_the_operators_pull_secrets():
    pod = build_job(videojob(), attempt=1, settings=settings(worker_image_pull_secrets="regcred, other"))["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
    assert "imagePullSecrets" not in build_job(videojob(), attempt=1, settings=settings())["spec"]["template"]["spec"]
