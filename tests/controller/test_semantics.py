"""Spec semantics: suspend/resume, spec edits (new version, old run cancelled), deadline."""

from __future__ import annotations

import json

from tests.controller.conftest import scene_code, slow_scene_code
from tests.helpers import condition, status_writes


def reasons(events):
    return [e["reason"] for e in events if e["component"] == "videojob-operator"]


def records(workdir, name):
    return sorted(
        (json.loads(p.read_text()) for p in workdir.glob(f"default/{name}/v*/record.json")),
        key=lambda r: r["version"],
    )


def test_suspended_job_waits_then_resumes_into_one_version(operator, kube, apiserver, workdir):
    operator()
    kube.create("paused", {"topic": "Paused", "code": scene_code(1), "render": {"quality": "low"}, "suspend": True})
    status = kube.wait_phase("paused", "Suspended")["status"]
    assert condition(status, "Suspended")["status"] == "True"
    assert condition(status, "Reconciling")["status"] == "False"
    assert status.get("startTime") is None  # nothing ran

    kube.patch_spec("paused", {"suspend": False})
    obj = kube.wait("paused", lambda o: (o.get("status") or {}).get("phase") == "Succeeded")
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"] == 2
    assert condition(status, "Suspended")["status"] == "False"
    assert status["version"] == 1 and len(records(workdir, "paused")) == 1
    events = kube.wait_events("paused", lambda events: "Succeeded" in reasons(events))
    assert reasons(events)[:1] == ["Suspended"] and reasons(events)[-1] == "Succeeded"


def test_suspend_mid_run_pauses_before_the_next_stage(operator, kube, workdir):
    operator()
    kube.create("midway", {"topic": "Midway", "code": slow_scene_code(15), "render": {"quality": "low"}})
    kube.wait("midway", lambda o: (o.get("status") or {}).get("currentStage") == "Rendering")
    kube.patch_spec("midway", {"suspend": True})

    status = kube.wait_phase("midway", "Suspended", "Succeeded")["status"]
    assert status["phase"] == "Suspended"
    stages = {s["name"]: s["phase"] for s in status["stages"]}
    assert stages["Rendering"] == "Succeeded" and stages["Combining"] == "Pending"

    kube.patch_spec("midway", {"suspend": False})
    status = kube.wait_phase("midway", "Succeeded")["status"]
    assert status["observedGeneration"] == 3
    assert [r["version"] for r in records(workdir, "midway")] == [1]
    events = kube.wait_events("midway", lambda events: "Succeeded" in reasons(events))
    assert reasons(events).count("Resumed") == 1


def test_spec_edit_cancels_the_run_and_produces_the_next_version(operator, kube, apiserver, workdir):
    operator()
    kube.create("edited", {"topic": "First", "code": scene_code(1), "render": {"quality": "low"}})
    assert kube.wait_phase("edited", "Succeeded")["status"]["version"] == 1

    # An edit starts generation 2; a second edit while it renders cancels it for generation 3.
    kube.patch_spec("edited", {"topic": "Second", "code": slow_scene_code(60)})
    kube.wait("edited", lambda o: o["status"].get("observedGeneration") == 2 and o["status"].get("currentStage") == "Rendering")
    kube.patch_spec("edited", {"topic": "Third", "code": scene_code(2)})

    obj = kube.wait("edited", lambda o: o["status"].get("observedGeneration") == 3 and o["status"].get("phase") == "Succeeded")
    assert obj["status"]["version"] == 2
    assert [(r["version"], r["k8s_generation"], r["topic"]) for r in records(workdir, "edited")] == [
        (1, 1, "First"), (2, 3, "Third"),
    ]
    assert obj["spec"]["topic"] == "Third"  # the operator never edits the spec
    # Each generation's first status write says it was seen and is being worked on.
    writes = status_writes(apiserver.history("default", "edited"))
    for generation in (2, 3):
        first = next(w for w in writes if w.get("observedGeneration") == generation)
        assert condition(first, "Reconciling")["status"] == "True"
        assert condition(first, "Succeeded")["status"] == "Unknown"


def test_active_deadline_fails_the_run(operator, kube):
    operator()
    kube.create("late", {"topic": "Late", "code": slow_scene_code(60), "render": {"quality": "low"}, "activeDeadlineSeconds": 2})
    status = kube.wait_phase("late", "Failed", "Succeeded", timeout=60)["status"]
    assert status["phase"] == "Failed"
    assert condition(status, "Succeeded")["reason"] == "DeadlineExceeded"
    assert condition(status, "Stalled")["status"] == "True"
    assert {s["name"]: s["phase"] for s in status["stages"]}["Rendering"] == "Failed"
    kube.wait_events("late", lambda events: ("Warning", "DeadlineExceeded") in [(e["type"], e["reason"]) for e in events])
