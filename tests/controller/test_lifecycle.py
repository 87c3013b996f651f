"""A VideoJob from creation to a video: status, conditions, Events, versions, deletion."""

from __future__ import annotations

from pathlib import Path

from tests.controller.conftest import scene_code, slow_scene_code
from tests.helpers import condition, status_writes, wait_until


def reasons(events, component="videojob-operator"):
    return [e["reason"] for e in events if e["component"] == component]


def warnings(events):
    return [e["reason"] for e in events if e["type"] == "Warning"]


def test_job_succeeds_with_status_conditions_and_events(operator, kube, apiserver):
    operator()
    kube.create("hello", {"topic": "Hello", "code": scene_code(1), "render": {"quality": "low"}})

    obj = kube.wait_phase("hello", "Succeeded", "Failed")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["observedGeneration"] == 1
    assert status["currentStage"] == "Done"
    done, total = status["progress"].split("/")
    assert done == total and status["progressPercent"] == 100
    assert status["version"] == 1 and status["record"]["version"] == 1
    assert condition(status, "Succeeded")["status"] == "True"
    assert condition(status, "Reconciling")["status"] == "False"
    assert condition(status, "Stalled")["status"] == "False"
    assert all(stage["phase"] == "Succeeded" and stage["attempts"] == 1 for stage in status["stages"])
    video = Path(status["outputs"]["videoURI"].removeprefix("file://"))
    assert video.is_file() and video.stat().st_size == status["outputs"]["sizeBytes"]

    # Kopf keeps its own state in annotations, never in .status.
    assert "kopf" not in status
    annotations = obj["metadata"].get("annotations", {})
    assert any(key.startswith("videogen.io/") for key in annotations)

    writes = status_writes(apiserver.history("default", "hello"))
    first = writes[0]
    assert first["observedGeneration"] == 1
    assert condition(first, "Reconciling")["status"] == "True"
    assert condition(first, "Succeeded")["status"] == "Unknown"

    # The Succeeded Event follows the Succeeded status write: wait for it, then check them all.
    events = kube.wait_events("hello", lambda events: "Succeeded" in reasons(events))
    assert reasons(events) == ["Started", "Succeeded"]


def test_progress_writes_are_throttled(operator, kube, apiserver):
    operator()
    # Two scenes: eight steps, six stages; the status still changes in only a handful of PATCHes.
    code = scene_code(1) + "\n\nclass Second(Scene):\n    def construct(self):\n        self.play(FadeIn(Square()), run_time=1)\n"
    kube.create("throttled", {"topic": "Two scenes", "code": code, "render": {"quality": "low"}})
    status = kube.wait_phase("throttled", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["progress"] == "8/8" and status["outputs"]["scenes"] == 2
    assert apiserver.status_patches("default", "throttled") <= 12


def test_invalid_spec_fails_stalled_without_retrying(operator, kube, apiserver):
    operator()  # no VIDEOJOB_LLM_MODEL
    kube.create("needs-llm", {"topic": "Fourier series", "prompt": "Explain Fourier series"})

    status = kube.wait_phase("needs-llm", "Failed")["status"]
    assert condition(status, "Stalled")["status"] == "True"
    assert condition(status, "Succeeded") | {"lastTransitionTime": None} == {
        "type": "Succeeded", "status": "False", "reason": "InvalidSpec",
        "message": status["message"], "observedGeneration": 1, "lastTransitionTime": None,
    }
    assert "spec.prompt" in status["message"] and "VIDEOJOB_LLM_MODEL" in status["message"]
    events = kube.wait_events("needs-llm", lambda events: warnings(events))
    assert warnings(events) == ["InvalidSpec"]

    # No retry loop: a further change of an unrelated label does not re-run or re-report it.
    kube.custom.patch_namespaced_custom_object(
        "videogen.io", "v1alpha1", "default", "videojobs", "needs-llm", {"metadata": {"labels": {"team": "a"}}},
        _content_type="application/merge-patch+json",
    )
    kube.wait("needs-llm", lambda obj: obj["metadata"].get("labels") == {"team": "a"})
    assert apiserver.status_patches("default", "needs-llm") == 1
    assert warnings(kube.events("needs-llm")) == ["InvalidSpec"]


def test_deleting_a_running_job_cancels_it(operator, kube, workdir):
    op = operator()
    kube.create("doomed", {"topic": "Long", "code": slow_scene_code(60), "render": {"quality": "low"}})
    kube.wait("doomed", lambda obj: (obj.get("status") or {}).get("currentStage") == "Rendering")
    uid = kube.get("doomed")["metadata"]["uid"]
    assert uid in op.controller.executor.runs

    kube.delete("doomed")
    kube.wait("doomed", lambda obj: obj == {}, timeout=30)  # gone at once: nothing holds it
    wait_until(lambda: uid not in op.controller.executor.runs, message="the run stopped")
    assert not list(workdir.glob("default/doomed/v*/record.json"))


def test_human_loop_waits_for_input_instead_of_failing(operator, kube):
    operator()
    kube.create("broken", {"topic": "Broken", "code": "print('no scene here')", "humanLoop": True})
    status = kube.wait_phase("broken", "AwaitingInput", "Failed")["status"]
    assert status["phase"] == "AwaitingInput"
    assert "spec.code" in status["message"] and "waiting for input" in status["message"]
    assert condition(status, "Succeeded")["status"] == "Unknown"
    assert condition(status, "Stalled")["status"] == "True"
    kube.wait_events("broken", lambda events: "AwaitingInput" in warnings(events))

    # Fixing the spec starts a new run that succeeds.
    kube.patch_spec("broken", {"code": scene_code(1), "render": {"quality": "low"}})
    status = kube.wait("broken", lambda o: (o.get("status") or {}).get("phase") == "Succeeded"
                       and o["status"].get("observedGeneration") == 2)["status"]
    assert condition(status, "Stalled")["status"] == "False"


def test_missing_credentials_secret_is_retried_then_fails(operator, kube):
    operator()
    kube.create("no-keys", {
        "topic": "Keys", "code": scene_code(1),
        "llm": {"model": "openai:gpt-4o-mini", "credentialsSecretRef": {"name": "absent"}},
        "retryStrategy": {"limit": 1, "backoff": {"durationSeconds": 0}},
    })
    status = kube.wait_phase("no-keys", "Failed")["status"]
    assert status["attempt"] == 2
    assert condition(status, "Succeeded")["reason"] == "CredentialsUnavailable"
    events = kube.wait_events("no-keys", lambda events: "CredentialsUnavailable" in warnings(events))
    assert "BackOff" in warnings(events) and warnings(events)[-1] == "CredentialsUnavailable"
    assert "'absent'" in status["message"] and "does not exist" in status["message"]


def test_all_namespaces_mode_serves_any_namespace(operator, kube, apiserver):
    apiserver.call(lambda server: server.objects.__setitem__(
        ("v1/namespaces", None, "team-a"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}))
    operator(namespaces=[])  # -A
    kube.create("elsewhere", {"topic": "Elsewhere", "code": scene_code(1), "render": {"quality": "low"}}, namespace="team-a")
    status = kube.wait("elsewhere", lambda o: (o.get("status") or {}).get("phase") == "Succeeded", namespace="team-a")["status"]
    assert status["outputs"]["videoURI"].endswith("/team-a/elsewhere/v1/elsewhere.mp4")
