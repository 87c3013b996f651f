"""Restart safety: the operator dies mid-render and comes back."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

from tests.controller.conftest import slow_scene_code


def cached_renders() -> float:
    return REGISTRY.get_sample_value("videojob_render_attempts_total", {"result": "cached"}) or 0.0


def test_restart_mid_render_resumes_into_exactly_one_version(operator, kube, workdir):
    first = operator()
    code = slow_scene_code(60)
    kube.create("survivor", {"topic": "Survivor", "code": code, "render": {"quality": "low"}})
    # Scene 1 of 2 rendered (plan, 2 codes, 1 render = 4 of 8 steps), scene 2 rendering.
    kube.wait("survivor", lambda o: (o.get("status") or {}).get("progress") == "4/8", timeout=60)
    first.stop()
    stopped = kube.status("survivor")
    assert stopped["phase"] == "Running" and stopped["currentStage"] == "Rendering"

    cached_before = cached_renders()
    operator()
    obj = kube.wait("survivor", lambda o: o["status"].get("phase") in ("Succeeded", "Failed"), timeout=120)
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["observedGeneration"] == 1 and status["version"] == 1
    assert status["progress"] == "8/8" and status["outputs"]["scenes"] == 2
    assert status["startTime"] == stopped["startTime"]  # the same run, continued
    assert all(stage["phase"] == "Succeeded" for stage in status["stages"])
    records = [json.loads(p.read_text()) for p in workdir.glob("default/survivor/v*/record.json")]
    assert [r["version"] for r in records] == [1]
    assert cached_renders() - cached_before >= 1  # scene 1 came from the render cache
    # One Started, one Succeeded: the restart did not restart the story.
    reasons = lambda events: [e["reason"] for e in events if e["component"] == "videojob-operator"]  # noqa: E731
    events = kube.wait_events("survivor", lambda events: "Succeeded" in reasons(events))
    assert reasons(events) == ["Started", "Succeeded"]


def test_restart_while_suspended_keeps_the_version_of_the_run(operator, kube, workdir):
    first = operator()
    kube.create("sleeper", {"topic": "Sleeper", "code": slow_scene_code(15), "render": {"quality": "low"}})
    kube.wait("sleeper", lambda o: (o.get("status") or {}).get("currentStage") == "Rendering")
    kube.patch_spec("sleeper", {"suspend": True})  # generation 2, same content
    obj = kube.wait("sleeper", lambda o: o["status"].get("phase") == "Suspended")
    assert obj["metadata"]["annotations"]["videogen.io/content-generation"] == "1"
    first.stop()

    operator()
    kube.patch_spec("sleeper", {"suspend": False})  # generation 3
    status = kube.wait("sleeper", lambda o: o["status"].get("phase") in ("Succeeded", "Failed"), timeout=120)["status"]
    assert status["phase"] == "Succeeded" and status["observedGeneration"] == 3
    records = [json.loads(p.read_text()) for p in workdir.glob("default/sleeper/v*/record.json")]
    assert [(r["version"], r["k8s_generation"]) for r in records] == [(1, 1)]
