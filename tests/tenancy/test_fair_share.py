"""Fair share and quotas against the real operator: namespaces share the run slots by recent usage
(equal ones take turns), and a per-job token cap stops a model that would spend more."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controller.conftest import condition, scene_code, slow_scene_code, wait_until
from tests.llm.conftest import Completion, fenced, good_code, plan_json
from tests.tenancy.conftest import add_namespace

pytestmark = pytest.mark.render


def first_running(apiserver: Any, namespace: str, name: str) -> int | None:
    """When the VideoJob's first status write in phase Running happened, in the server's write
    order (resourceVersions are opaque: only the server knows their order)."""
    for version in apiserver.history(namespace, name):
        if (version.get("status") or {}).get("phase") == "Running":
            return apiserver.write_order(version)
    return None


def test_namespaces_take_turns_and_each_keeps_creation_order(operator, kube, apiserver):
    for ns in ("team-a", "team-b", "blocker"):
        add_namespace(apiserver, ns)
    operator(namespaces=["team-a", "team-b", "blocker"], max_concurrent_jobs=1)
    # A long job holds the only slot while both teams queue up: team-a first, all at once.
    kube.create("hog", {"topic": "Hog", "code": slow_scene_code(60), "render": {"quality": "low"}}, namespace="blocker")
    kube.wait("hog", lambda o: (o.get("status") or {}).get("phase") == "Running", namespace="blocker")
    jobs = [("team-a", f"a{i}") for i in (1, 2, 3)] + [("team-b", f"b{i}") for i in (1, 2, 3)]
    for ns, name in jobs:
        kube.create(name, {"topic": name, "code": scene_code(1), "render": {"quality": "low"}}, namespace=ns)
    for ns, name in jobs:
        kube.wait(name, lambda o: (o.get("status") or {}).get("phase") == "Pending", namespace=ns)

    kube.delete("hog", namespace="blocker")  # its run is stopped and the slot freed
    for ns, name in jobs:
        kube.wait(name, lambda o: (o.get("status") or {}).get("phase") == "Succeeded", namespace=ns)
    order = sorted(jobs, key=lambda job: first_running(apiserver, *job))
    assert [name for _, name in order] == ["a1", "b1", "a2", "b2", "a3", "b3"]


def test_a_namespace_arriving_after_another_ran_a_burst_gets_the_next_slots(operator, kube, apiserver):
    for ns in ("team-a", "team-b"):
        add_namespace(apiserver, ns)
    operator(namespaces=["team-a", "team-b"], max_concurrent_jobs=1)
    # team-a runs two jobs and holds the slot with a third (long) one, a fourth in line.
    team_a = [("a1", scene_code(1)), ("a2", scene_code(1)), ("a3", slow_scene_code(60)), ("a4", scene_code(1))]
    for name, code in team_a:
        kube.create(name, {"topic": name, "code": code, "render": {"quality": "low"}}, namespace="team-a")
    kube.wait("a3", lambda o: (o.get("status") or {}).get("phase") == "Running", namespace="team-a")
    team_b = [("team-b", f"b{i}") for i in (1, 2, 3)]
    for ns, name in team_b:
        kube.create(name, {"topic": name, "code": scene_code(1), "render": {"quality": "low"}}, namespace=ns)
    for ns, name in team_b:
        kube.wait(name, lambda o: (o.get("status") or {}).get("phase") == "Pending", namespace=ns)

    kube.delete("a3", namespace="team-a")  # its run is stopped and the slot freed
    jobs = team_b + [("team-a", "a4")]
    for ns, name in jobs:
        kube.wait(name, lambda o: (o.get("status") or {}).get("phase") == "Succeeded", namespace=ns)
    order = sorted(jobs, key=lambda job: first_running(apiserver, *job))
    # team-a has started three runs, team-b none: team-b gets the next three slots (round-robin
    # would have put a4 second), and at even usage a4 goes first, as served less recently.
    assert [name for _, name in order] == ["b1", "b2", "b3", "a4"]


def test_a_per_namespace_limit_leaves_slots_for_other_namespaces(operator, kube, apiserver):
    for ns in ("team-a", "team-b"):
        add_namespace(apiserver, ns)
    operator(namespaces=["team-a", "team-b"], max_concurrent_jobs=2, max_concurrent_per_namespace=1)
    kube.create("a-long", {"topic": "A", "code": slow_scene_code(60), "render": {"quality": "low"}}, namespace="team-a")
    kube.wait("a-long", lambda o: (o.get("status") or {}).get("phase") == "Running", namespace="team-a")
    kube.create("a-next", {"topic": "A", "code": scene_code(1), "render": {"quality": "low"}}, namespace="team-a")
    kube.create("b-first", {"topic": "B", "code": scene_code(1), "render": {"quality": "low"}}, namespace="team-b")
    # team-b gets the free slot and finishes while team-a's second job waits for its own.
    kube.wait("b-first", lambda o: (o.get("status") or {}).get("phase") == "Succeeded", namespace="team-b")
    assert kube.status("a-next", namespace="team-a")["phase"] == "Pending"
    kube.delete("a-long", namespace="team-a")
    kube.wait("a-next", lambda o: (o.get("status") or {}).get("phase") == "Succeeded", namespace="team-a")


def test_a_token_cap_stops_a_model_that_would_exceed_it(operator, kube, apiserver, listener):
    add_namespace(apiserver, "team-a")

    def respond(body: dict[str, Any]) -> Completion:
        prompt = "\n".join(str(m.get("content")) for m in body["messages"])
        if "plan short educational videos" in prompt:  # the plan alone spends the whole budget
            return Completion(plan_json("One", "Two", duration=1), prompt_tokens=60, completion_tokens=40)
        return Completion(fenced(good_code()), prompt_tokens=60, completion_tokens=40)

    listener.respond = respond
    operator(namespaces=["team-a"], llm_allowed_base_urls=listener.base_url, max_tokens_per_job=100)
    kube.create("chatty", {"topic": "Circles", "prompt": "Show two circles", "render": {"quality": "low"},
                           "llm": {"model": "openai:scripted", "baseUrl": listener.base_url}}, namespace="team-a")
    status = kube.wait("chatty", lambda o: (o.get("status") or {}).get("phase") == "Failed", namespace="team-a")["status"]
    assert condition(status, "Succeeded")["reason"] == "PolicyDenied"
    assert condition(status, "Stalled")["status"] == "True"
    assert "VIDEOJOB_MAX_TOKENS_PER_JOB (100)" in status["message"] and "max_tokens_per_job" in status["message"]
    assert status["usage"]["promptTokens"] + status["usage"]["completionTokens"] == 100
    assert len(listener.requests) == 1  # no code-generation call was made with the budget spent
    assert status["attempt"] == 1  # permanent: not retried
    wait_until(lambda: [e["reason"] for e in kube.events("chatty", "team-a") if e["type"] == "Warning"] == ["PolicyDenied"],
               message="one PolicyDenied Warning")
