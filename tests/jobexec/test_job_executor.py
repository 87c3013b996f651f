"""The Job executor against the emulated API server: the real operator creates Jobs, the test
plays the job controller and kubelet (KMock has none), and the worker runs in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.controller.conftest import NAMESPACE, scene_code, slow_scene_code
from tests.helpers import condition, status_writes, wait_until
from tests.jobexec.conftest import JOB_MODE, QUICK_RETRY, create, hold_kueue, runs_done, spec, wait_warning, warnings
from videojob.config import Settings
from videojob.controller.kube import KubeClient
from videojob.controller.worker import EXIT_FAILED, EXIT_NOTHING_TO_DO, EXIT_OK, run_worker

def test_the_job_carries_name_owner_labels_pod_template_and_queue(operator, kube, jobs):
    operator(**JOB_MODE)
    template = {"resources": {"limits": {"memory": "6Gi", "cpu": 3}}, "nodeSelector": {"zone": "b"},
                "tolerations": [{"key": "spot", "operator": "Exists"}], "priorityClassName": "batch-low"}
    vj = create(kube, "clip", spec(podTemplate=template, activeDeadlineSeconds=900),
                labels={"kueue.x-k8s.io/queue-name": "render-queue"})

    job = jobs.wait_for("clip-g1-a1")
    meta = job["metadata"]
    assert meta["ownerReferences"] == [{"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob", "name": "clip",
                                        "uid": vj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert meta["labels"]["videogen.io/videojob"] == "clip"
    assert meta["labels"]["videogen.io/generation"] == "1"
    assert meta["labels"]["videogen.io/attempt"] == "1"
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "render-queue"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["suspend"] is True  # created suspended: Kueue unsuspends it on admission
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    assert 0 < job["spec"]["activeDeadlineSeconds"] <= 900
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/videojob:9.9"
    assert container["args"] == ["worker", "--namespace", NAMESPACE, "--name", "clip", "--generation", "1", "--attempt", "1"]
    # spec.podTemplate.resources size the render container (a native sidecar), where scenes render.
    (render,) = pod["initContainers"]
    assert render["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "6Gi", "cpu": "3"}}
    assert pod["nodeSelector"] == {"pool": "render", "zone": "b"}
    assert [t["key"] for t in pod["tolerations"]] == ["render", "spot"]
    assert pod["priorityClassName"] == "batch-low"
    assert pod["serviceAccountName"] == "videojob-worker"

    status = kube.wait_phase("clip", "Pending")["status"]
    assert status["observedGeneration"] == 1 and status["currentStage"] == "Queued"
    assert condition(status, "Reconciling")["status"] == "True"
    assert condition(status, "Succeeded")["status"] == "Unknown"
    assert jobs.names() == ["clip-g1-a1"]


def test_jobs_and_pods_are_watched_with_a_server_side_label_selector(operator, apiserver):
    operator(**JOB_MODE)
    watched = lambda: {plural for plural, _ in apiserver.call(lambda server: list(server.watches))}  # noqa: E731
    wait_until(lambda: {"jobs", "pods", "videojobs"} <= watched())
    watches = apiserver.call(lambda server: list(server.watches))
    selector = "app.kubernetes.io/managed-by=videojob-operator"
    assert ("jobs", selector) in watches and ("pods", selector) in watches
    assert ("videojobs", None) in watches  # the operator's own resource: all of them


def test_a_job_queued_by_kueue_is_left_suspended_until_kueue_admits_it(operator, kube, jobs, apiserver):
    apiserver.call(hold_kueue)  # Kueue is installed; its queue admits nothing yet
    operator(**JOB_MODE)
    create(kube, "queued", spec(), labels={"kueue.x-k8s.io/queue-name": "render-queue"})
    assert jobs.wait_for("queued-g1-a1")["spec"]["suspend"] is True
    assert kube.wait_phase("queued", "Pending")["status"]["currentStage"] == "Queued"

    apiserver.run("release_kueue")  # Kueue admits the Workload and unsuspends the Job
    wait_until(lambda: jobs.get("queued-g1-a1")["spec"]["suspend"] is False, message="Kueue admitted the Job")
    before = runs_done("success")
    jobs.finish("queued-g1-a1", "Complete")
    wait_until(lambda: runs_done("success") == before + 1)
    # The operator never touched Job.spec.suspend: Kueue alone holds and releases the Job.
    patches = apiserver.call(lambda server: sum(
        n for (agent, verb, plural, _), n in server.requests_by_agent.items()
        if verb == "PATCH" and plural == "jobs" and agent != jobs.AGENT))
    assert patches == 0


def test_a_transient_failure_is_retried_as_a_new_job(operator, kube, jobs):
    operator(**JOB_MODE)
    create(kube, "flaky", spec(retryStrategy=QUICK_RETRY))
    jobs.wait_for("flaky-g1-a1")
    jobs.pod("flaky-g1-a1", {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."})
    jobs.finish("flaky-g1-a1", "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    second = jobs.wait_for("flaky-g1-a2")
    assert second["metadata"]["labels"]["videogen.io/attempt"] == "2"
    assert second["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--attempt", "2"]
    status = kube.wait("flaky", lambda o: o["status"].get("attempt") == 2)["status"]
    assert status["phase"] == "Pending"
    assert condition(status, "Succeeded")["reason"] == "Evicted"
    assert "retry 1/2" in status["message"]
    events = kube.wait_events("flaky", lambda events: any(e["reason"] == "Evicted" for e in events))
    evicted = [e for e in events if e["reason"] == "Evicted"]
    assert len(evicted) == 1 and evicted[0]["type"] == "Warning" and "retry 1/2" in evicted[0]["message"]

    # The second attempt completes (its worker's report is lost): the operator mirrors the success.
    jobs.finish("flaky-g1-a2", "Complete")
    status = kube.wait_phase("flaky", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded"
    assert jobs.names() == ["flaky-g1-a1", "flaky-g1-a2"]


def test_an_oom_killed_worker_fails_the_videojob_with_reason_oomkilled(operator, kube, jobs):
    operator(**JOB_MODE)
    create(kube, "greedy", spec(retryStrategy={"limit": 0}))
    jobs.wait_for("greedy-g1-a1")
    jobs.pod("greedy-g1-a1", {"phase": "Failed", "containerStatuses": [{
        "name": "worker", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]})
    jobs.finish("greedy-g1-a1", "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    status = kube.wait_phase("greedy", "Failed")["status"]
    assert condition(status, "Succeeded")["reason"] == "OOMKilled"
    assert condition(status, "Succeeded")["status"] == "False"
    assert "memory" in status["message"]
    assert wait_warning(kube, "greedy", "OOMKilled").count("OOMKilled") == 1
    assert jobs.names() == ["greedy-g1-a1"]


def test_deadline_exceeded_is_not_retried(operator, kube, jobs):
    operator(**JOB_MODE)
    create(kube, "slow", spec(retryStrategy=QUICK_RETRY, activeDeadlineSeconds=60))
    jobs.wait_for("slow-g1-a1")
    jobs.finish("slow-g1-a1", "Failed", "DeadlineExceeded", "Job was active longer than specified deadline")

    status = kube.wait_phase("slow", "Failed")["status"]
    assert condition(status, "Succeeded")["reason"] == "DeadlineExceeded"
    assert condition(status, "Stalled")["status"] == "True"
    wait_warning(kube, "slow", "DeadlineExceeded")
    assert jobs.names() == ["slow-g1-a1"]


def test_a_videojob_created_suspended_gets_its_job_when_resumed(operator, kube, jobs, apiserver):
    operator(**JOB_MODE)
    create(kube, "paused", spec(suspend=True))
    status = kube.wait_phase("paused", "Suspended")["status"]
    assert condition(status, "Suspended")["status"] == "True"
    assert "no Job is created until it is resumed" in status["message"]
    assert jobs.names() == []  # nothing in etcd, in the operator's watch, or in a Kueue queue

    kube.patch_spec("paused", {"suspend": False})
    assert jobs.wait_for("paused-g1-a1")["spec"]["suspend"] is False
    assert jobs.names() == ["paused-g1-a1"]  # the same run: no new Job, no new generation of Jobs


def test_a_spec_edit_replaces_the_job_and_deletion_leaves_no_job(operator, kube, jobs):
    operator(**JOB_MODE)
    create(kube, "edited", spec())
    jobs.wait_for("edited-g1-a1")
    kube.patch_spec("edited", {"topic": "Jobs, second take"})
    jobs.wait_for("edited-g2-a1")
    jobs.wait_gone("edited-g1-a1")

    kube.delete("edited")
    jobs.wait_gone("edited-g2-a1")
    kube.wait("edited", lambda o: not o)  # no finalizer left behind
    assert jobs.names() == []


async def test_the_worker_runs_the_pipeline_and_reports_into_status(operator, kube, jobs, apiserver, tmp_path):
    operator(**JOB_MODE)
    storyboard = {"scenes": [{"title": "One scene", "shape": "circle", "durationSeconds": 1}]}
    create(kube, "worked", {"topic": "Worker", "storyboard": storyboard, "render": {"quality": "low"},
                            "retryStrategy": QUICK_RETRY})
    job = jobs.wait_for("worked-g1-a1")
    kube.wait_phase("worked", "Pending")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["worker", "--namespace"]

    client = KubeClient(kube.client)  # the worker's own client (in a pod: its ServiceAccount)
    settings = Settings(workdir=tmp_path / "pod", scene_parallelism=1)
    code = await run_worker(NAMESPACE, "worked", 1, 1, settings=settings, kube=client, min_write_interval=0.2)
    assert code == EXIT_OK
    before = runs_done("success")
    jobs.finish("worked-g1-a1", "Complete")  # the pod exited 0
    wait_until(lambda: runs_done("success") == before + 1)  # the operator saw the Job complete

    status = kube.wait_phase("worked", "Succeeded")["status"]
    assert status["version"] == 1 and status["attempt"] == 1 and status["observedGeneration"] == 1
    assert all(stage["phase"] == "Succeeded" for stage in status["stages"])
    video = Path(status["outputs"]["videoURI"].removeprefix("file://"))
    assert video.is_file() and video.stat().st_size == status["outputs"]["sizeBytes"] > 0
    phases = [s.get("phase") for s in status_writes(apiserver.history(NAMESPACE, "worked"))]
    assert phases[0] == "Pending" and "Running" in phases and phases[-1] == "Succeeded"
    events = kube.wait_events("worked", lambda events: "Succeeded" in [e["reason"] for e in events])
    assert [e["reason"] for e in events][:3] == ["Queued", "Started", "Succeeded"]
    assert jobs.names() == ["worked-g1-a1"]

    # A worker for a generation that moved on, or for a VideoJob that is gone, does nothing.
    assert await run_worker(NAMESPACE, "worked", 2, 1, settings=settings, kube=client) == EXIT_NOTHING_TO_DO
    assert await run_worker(NAMESPACE, "absent", 1, 1, settings=settings, kube=client) == EXIT_NOTHING_TO_DO
    assert kube.status("worked")["phase"] == "Succeeded"

    # Deleting the VideoJob deletes its finished Job too (no garbage collector needed).
    kube.delete("worked")
    jobs.wait_gone("worked-g1-a1")
    kube.wait("worked", lambda o: not o)


async def test_a_failure_the_worker_reports_as_permanent_is_not_retried(operator, kube, jobs, tmp_path):
    operator(**JOB_MODE)
    # Code that can never render (a module not installed): refused before rendering, permanently.
    bad = "import manimgl\nfrom manim import *\n\nclass S(Scene):\n    def construct(self):\n        manimgl.run()\n"
    create(kube, "hostile", {"topic": "Bad", "code": bad, "render": {"quality": "low"}, "retryStrategy": QUICK_RETRY})
    jobs.wait_for("hostile-g1-a1")
    kube.wait_phase("hostile", "Pending")

    client = KubeClient(kube.client)
    settings = Settings(workdir=tmp_path / "pod", scene_parallelism=1)
    assert await run_worker(NAMESPACE, "hostile", 1, 1, settings=settings, kube=client) == EXIT_FAILED
    reported = kube.status("hostile")
    assert reported["phase"] == "Failed" and condition(reported, "Stalled")["status"] == "True"
    before = runs_done("failure")
    jobs.finish("hostile-g1-a1", "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    wait_until(lambda: runs_done("failure") == before + 1)  # the operator saw the Job fail

    # ... and left the worker's verdict alone: no attempt 2, the worker's reason, not the Job's.
    status = kube.status("hostile")
    assert status["attempt"] == 1
    assert condition(status, "Succeeded")["reason"] == condition(reported, "Succeeded")["reason"] == "InvalidContent"
    assert jobs.names() == ["hostile-g1-a1"]


def test_a_restarted_operator_adopts_the_running_job(operator, kube, jobs):
    first = operator(**JOB_MODE)
    create(kube, "adopted", spec())
    jobs.wait_for("adopted-g1-a1")
    kube.wait_phase("adopted", "Pending")
    first.stop()
    assert jobs.names() == ["adopted-g1-a1"]  # stopping the operator leaves the worker running

    operator(**JOB_MODE)
    before = runs_done("success")
    jobs.finish("adopted-g1-a1", "Complete")
    status = kube.wait_phase("adopted", "Succeeded")["status"]
    assert status["attempt"] == 1
    wait_until(lambda: runs_done("success") == before + 1)
    assert jobs.names() == ["adopted-g1-a1"]  # found by its name, not created again


def test_the_worker_command_exits_2_with_a_clear_message_when_the_videojob_is_gone(apiserver, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, KUBECONFIG=str(apiserver.kubeconfig), VIDEOJOB_WORKDIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "videojob.cli.main", "worker", "--namespace", NAMESPACE, "--name", "absent", "--generation", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == EXIT_NOTHING_TO_DO == 2
    assert "VideoJob default/absent not found" in done.stderr


def test_a_worker_stopped_by_sigterm_exits_143_and_writes_nothing_more(apiserver, kube, tmp_path):
    """What a suspended or deleted Job does to its pod: SIGTERM, then the operator decides."""
    import os
    import signal
    import subprocess
    import sys

    create(kube, "stopped", {"topic": "Long", "code": scene_code(60), "render": {"quality": "low"}})
    env = dict(os.environ, KUBECONFIG=str(apiserver.kubeconfig), VIDEOJOB_WORKDIR=str(tmp_path))
    worker = subprocess.Popen(
        [sys.executable, "-m", "videojob.cli.main", "worker", "--namespace", NAMESPACE, "--name", "stopped", "--generation", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        kube.wait("stopped", lambda o: (o.get("status") or {}).get("currentStage") == "Rendering", timeout=60)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr
    writes = status_writes(apiserver.history(NAMESPACE, "stopped"))
    assert writes[-1]["phase"] == "Running"  # no Failed: a stopped pod is not a failed run


async def test_a_transient_failure_the_worker_reports_is_retried_and_the_next_attempt_succeeds(operator, kube, jobs, tmp_path):
    operator(**JOB_MODE)
    storyboard = {"scenes": [{"title": "Keys", "shape": "square", "durationSeconds": 1}]}
    create(kube, "keys", {"topic": "Keys", "storyboard": storyboard, "render": {"quality": "low"},
                          "llm": {"credentialsSecretRef": {"name": "llm-keys"}}, "retryStrategy": QUICK_RETRY})
    jobs.wait_for("keys-g1-a1")
    kube.wait_phase("keys", "Pending")
    client = KubeClient(kube.client)
    settings = Settings(workdir=tmp_path / "pod", scene_parallelism=1)

    # Attempt 1: the Secret does not exist yet; the worker says so and exits 1.
    assert await run_worker(NAMESPACE, "keys", 1, 1, settings=settings, kube=client) == EXIT_FAILED
    reported = kube.status("keys")
    assert condition(reported, "Succeeded")["reason"] == "CredentialsUnavailable"
    assert condition(reported, "Stalled")["status"] == "False"
    jobs.finish("keys-g1-a1", "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    second = jobs.wait_for("keys-g1-a2")
    assert second["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "2"
    status = kube.wait("keys", lambda o: o["status"].get("attempt") == 2)["status"]
    assert status["phase"] == "Pending" and "retry 1/2" in status["message"]
    wait_warning(kube, "keys", "BackOff")

    # Attempt 2: the Secret is there now.
    kube.core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "llm-keys", "labels": {"videogen.io/credentials": "true"}},
                                                   "stringData": {"OPENAI_API_KEY": "sk-test"}})
    assert await run_worker(NAMESPACE, "keys", 1, 2, settings=settings, kube=client) == EXIT_OK
    jobs.finish("keys-g1-a2", "Complete")
    status = kube.wait_phase("keys", "Succeeded")["status"]
    assert status["attempt"] == 2 and status["version"] == 1
    assert jobs.names() == ["keys-g1-a1", "keys-g1-a2"]


async def test_a_stopping_workers_late_writes_never_undo_the_operators_suspended(operator, kube, jobs, apiserver, tmp_path):
    """Ownership of status writes: the operator's Suspended stands; the worker, still running (a
    pod takes its grace period to stop), finds the status written by someone else and stops writing."""
    operator(**JOB_MODE)
    create(kube, "stopping", {"topic": "Stopping", "code": slow_scene_code(8), "render": {"quality": "low"}})
    jobs.wait_for("stopping-g1-a1")
    await asyncio.to_thread(kube.wait_phase, "stopping", "Pending")
    settings = Settings(workdir=tmp_path / "pod", scene_parallelism=1)
    worker = asyncio.create_task(run_worker(NAMESPACE, "stopping", 1, 1, settings=settings, kube=KubeClient(kube.client),
                                            min_write_interval=0.2))
    await asyncio.to_thread(kube.wait, "stopping", lambda o: (o.get("status") or {}).get("currentStage") == "Rendering")

    await asyncio.to_thread(kube.patch_spec, "stopping", {"suspend": True})
    await asyncio.to_thread(kube.wait_phase, "stopping", "Suspended")
    assert jobs.get("stopping-g1-a1")["spec"]["suspend"] is True
    # Nothing stops the pod here: the worker renders on to the end and reports every stage after.
    assert await worker == EXIT_OK
    assert list((tmp_path / "pod").glob("**/stopping.mp4")), "the worker finished its run"

    writes = status_writes(apiserver.history(NAMESPACE, "stopping"))
    suspended = next(i for i, w in enumerate(writes) if w.get("phase") == "Suspended")
    assert [w["phase"] for w in writes[suspended:]] == ["Suspended"] * (len(writes) - suspended)
    status = kube.status("stopping")
    assert status["phase"] == "Suspended" and status["observedGeneration"] == 2
