"""The Job the operator creates for a VideoJob run (pure: no API server needed)."""

from __future__ import annotations

import json

import jsonschema

import kubernetes_validate
import pytest

from videojob.api.crd import crd
from videojob.config import Settings
from videojob.controller.jobspec import attempt_verdict, build_job, job_name, job_outcome

CREDENTIAL_ENV = {"AWS_S3_VIDEO_BUCKET": "videos", "AWS_REGION": "eu-west-1", "VIDEOJOB_LLM_MODEL": "openai:gpt-4o",
                  "AWS_SECRET_ACCESS_KEY": "s3cr3t", "OPENAI_API_KEY": "sk-live"}


def containers(job) -> dict[str, dict]:
    """{name: container} of the pod, init (sidecar) containers included."""
    pod = job["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}


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
    container = containers(job)["worker"]
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
    # Resources size the render container: it is the one that grows with scenes and quality.
    (render,) = pod["initContainers"]
    assert render["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "8Gi", "cpu": "4"}}
    assert pod["nodeSelector"] == {"pool": "render", "zone": "a"}
    assert [t["key"] for t in pod["tolerations"]] == ["render", "spot"]
    assert pod["serviceAccountName"] == "custom-worker"
    assert pod["priorityClassName"] == "batch-low"
    assert pod["affinity"] == {"nodeAffinity": {}}


def test_default_service_account_and_restricted_security():
    pod = build_job(videojob(), attempt=1, settings=settings())["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "videojob-worker"
    for container in pod["initContainers"] + pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] and sc["runAsUser"] > 0 and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True


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


# ----------------------------------------------------------------------- the pod as a boundary


def test_render_container_is_a_native_sidecar_serving_the_spool():
    job = build_job(videojob(), attempt=1, settings=settings())
    pod = job["spec"]["template"]["spec"]
    (render,) = pod["initContainers"]
    assert render["name"] == "render" and render["restartPolicy"] == "Always"
    assert render["args"] == ["render-server", "--spool", "/spool"]
    worker = containers(job)["worker"]
    spool = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}["/spool"]
    assert {m["mountPath"]: m["name"] for m in render["volumeMounts"]}["/spool"] == spool
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[spool]
    assert {e["name"]: e["value"] for e in worker["env"]}["VIDEOJOB_RENDER_SPOOL"] == "/spool"
    # Every writable path of the render container is an emptyDir: the root filesystem is read-only.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all("emptyDir" in volumes[m["name"]] for m in render["volumeMounts"])
    assert not pod.get("shareProcessNamespace")
    assert render["securityContext"]["runAsUser"] != worker["securityContext"]["runAsUser"]


def test_render_container_gets_no_token_no_aws_and_no_llm_settings():
    job = build_job(videojob(), attempt=1, settings=settings(), environ=CREDENTIAL_ENV)
    pod = job["spec"]["template"]["spec"]
    render = containers(job)["render"]
    assert pod["automountServiceAccountToken"] is False
    token_volumes = {v["name"] for v in pod["volumes"] if "projected" in v}
    assert not [m for m in render["volumeMounts"] if m["name"] in token_volumes or "serviceaccount" in m["mountPath"]]
    names = {e["name"] for e in render.get("env", [])}
    assert not [n for n in names if n.startswith(("AWS_", "VIDEOJOB_LLM", "OPENAI", "ANTHROPIC"))]
    assert "envFrom" not in render
    assert "s3cr3t" not in json.dumps(job) and "sk-live" not in json.dumps(job)
    # IRSA's webhook would otherwise inject AWS credentials into it.
    assert job["spec"]["template"]["metadata"]["annotations"]["eks.amazonaws.com/skip-containers"] == "render"


def test_the_service_account_token_is_projected_only_into_the_worker():
    job = build_job(videojob(), attempt=1, settings=settings(), environ=CREDENTIAL_ENV)
    pod = job["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    sources = volume["projected"]["sources"]
    assert {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}} in sources
    paths = [item["path"] for src in sources for item in (src.get("configMap") or src.get("downwardAPI") or {}).get("items", [])]
    assert sorted(paths + ["token"]) == ["ca.crt", "namespace", "token"]  # what load_incluster_config reads
    mounted = [(name, m) for name, c in containers(job).items() for m in c["volumeMounts"] if m["name"] == volume["name"]]
    assert [(name, m["mountPath"], m.get("readOnly")) for name, m in mounted] == [
        ("worker", "/var/run/secrets/kubernetes.io/serviceaccount", True)]
    worker_env = {e["name"]: e["value"] for e in containers(job)["worker"]["env"]}
    assert worker_env["AWS_S3_VIDEO_BUCKET"] == "videos" and worker_env["VIDEOJOB_LLM_MODEL"] == "openai:gpt-4o"


def test_runtime_class_applies_to_job_pods_when_configured():
    assert "runtimeClassName" not in build_job(videojob(), 1, settings())["spec"]["template"]["spec"]
    pod = build_job(videojob(), 1, settings(job_runtime_class_name="gvisor"))["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"


def test_default_resources_come_from_the_render_settings_and_are_never_best_effort():
    plain = Settings(worker_image="x", render_memory_mb=3072, scene_parallelism=2)
    job = build_job(videojob(), 1, plain)
    render, worker = containers(job)["render"], containers(job)["worker"]
    assert render["resources"] == {"requests": {"cpu": "2", "memory": "3072Mi"}, "limits": {"memory": "6656Mi"}}
    assert worker["resources"]["requests"] and worker["resources"]["limits"]["memory"]
    bigger = containers(build_job(videojob(), 1, Settings(worker_image="x", render_memory_mb=4096, scene_parallelism=4)))
    assert bigger["render"]["resources"]["limits"]["memory"] == f"{4096 * 4 + 512}Mi"


def test_kueue_jobs_are_created_suspended_with_requests_on_every_container():
    job = build_job(videojob(), 1, settings(), suspend=False)  # the fixture carries a queue label
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job["spec"]["suspend"] is True
    for container in containers(job).values():
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    plain = videojob()
    plain["metadata"]["labels"] = {}
    assert build_job(plain, 1, settings(), suspend=False)["spec"]["suspend"] is False
    assert build_job(plain, 1, settings(), suspend=True)["spec"]["suspend"] is True


def test_a_node_drain_is_not_counted_as_a_failure_but_a_worker_exit_ends_the_job():
    spec = build_job(videojob(), 1, settings())["spec"]
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["action"] == "FailJob"
    assert rules[1]["onExitCodes"] == {"containerName": "worker", "operator": "NotIn", "values": [0]}
    assert spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy requires it


@pytest.mark.parametrize(("a", "b"), [("a.b", "a-b"), ("Fourier", "fourier"), ("x.y.z", "x-y-z")])
def test_names_that_sanitize_alike_get_distinct_jobs(a, b):
    assert job_name(a, 1, 1) != job_name(b, 1, 1)
    for name in (a, b):
        assert len(job_name(name, 1, 1)) <= 63
    assert job_name("a-b", 1, 1) == "a-b-g1-a1"  # names that are DNS labels already stay readable


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.utils.latest_version() + ".0"])
def test_the_job_validates_against_the_kubernetes_schema(version):
    # 1.29: the oldest Kubernetes the chart admits (native sidecars are on by default from 1.29).
    job = build_job(videojob(podTemplate={"resources": {"limits": {"cpu": 2}}}), 2,
                    settings(job_runtime_class_name="gvisor", worker_image_pull_secrets="regcred"), environ=CREDENTIAL_ENV)
    kubernetes_validate.validate(job, version, strict=True)


def test_an_image_pull_error_of_the_render_container_is_seen():
    pulling = {"status": {"initContainerStatuses": [{"name": "render", "state": {"waiting": {"reason": "ErrImagePull"}}}]}}
    assert job_outcome({"status": {}}, [pulling])[:2] == ("failed", "ImagePullError")
    # An OOM of the render container restarts that sidecar; the worker reports the scene itself.
    render_oom = {"status": {"initContainerStatuses": [{"name": "render", "lastState": {"terminated": {"reason": "OOMKilled"}}}]}}
    assert job_outcome({"status": {}}, [render_oom])[0] == "running"
