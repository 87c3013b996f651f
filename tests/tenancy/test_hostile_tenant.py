"""A hostile tenant against the real operator and the emulated API server: it cannot make the
operator send its own key elsewhere, publish into or edit another namespace's project, or read a
Secret that did not opt in. A refusal is visible to the tenant and nothing happens before it."""

from __future__ import annotations

import base64
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.controller.conftest import condition, status_writes
from tests.tenancy.conftest import CREDENTIALS_LABEL, OPERATOR_KEY, TENANT_KEY, add_namespace, secret_requests

pytestmark = pytest.mark.render

TEAM_A, TEAM_B = "team-a", "team-b"
STORYBOARD = {"scenes": [{"title": "A circle", "shape": "circle", "durationSeconds": 1}]}


@pytest.fixture()
def operator_env(monkeypatch):
    """The platform's own OpenAI identity in the operator's environment."""
    monkeypatch.setenv("OPENAI_API_KEY", OPERATOR_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-platform")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-platform")


@pytest.fixture()
def tenants(apiserver):
    add_namespace(apiserver, TEAM_A)
    add_namespace(apiserver, TEAM_B)
    return [TEAM_A, TEAM_B]


def denials(op: Any, rule: str) -> float:
    text = urllib.request.urlopen(op.metrics_url, timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "videojob_policy_denials_total" and sample.labels.get("rule") == rule:
                return sample.value
    return 0.0


def assert_refused(kube: Any, apiserver: Any, name: str, namespace: str, field: str, rule: str) -> dict[str, Any]:
    """Failed + Stalled, reason PolicyDenied, the field and rule named, one Warning Event, and no
    status write before the refusal (nothing ran)."""
    status = kube.wait(name, lambda o: (o.get("status") or {}).get("phase") == "Failed", namespace=namespace)["status"]
    assert condition(status, "Stalled")["status"] == "True"
    assert condition(status, "Succeeded")["reason"] == "PolicyDenied"
    assert field in status["message"] and rule in status["message"], status["message"]
    # The Event is posted after the status write it explains: wait for it.
    events = kube.wait_events(name, lambda found: any(e["type"] == "Warning" for e in found), namespace=namespace)
    assert [e["reason"] for e in events if e["type"] == "Warning"] == ["PolicyDenied"]
    assert [w.get("phase") for w in status_writes(apiserver.history(namespace, name))] == ["Failed"]
    return status


def create_secret(kube: Any, namespace: str, name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> None:
    kube.core.create_namespaced_secret(namespace, {
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    })


# ------------------------------------------------------------------------ destinations


def test_a_base_url_outside_the_allowlist_is_refused_before_any_call(operator, operator_env, kube, apiserver, tenants, listener):
    op = operator(namespaces=tenants)
    kube.create("exfil", {"topic": "Circles", "prompt": "Show a circle",
                          "llm": {"model": "openai:gpt-4o-mini", "baseUrl": listener.base_url}}, namespace=TEAM_A)
    status = assert_refused(kube, apiserver, "exfil", TEAM_A, "spec.llm.baseUrl", "allowed_base_urls")
    assert "VIDEOJOB_LLM_ALLOWED_BASE_URLS" in status["message"]
    assert listener.requests == []
    assert denials(op, "allowed_base_urls") >= 1


def test_an_allowed_base_url_gets_the_tenants_key_or_none_never_the_operators(operator, operator_env, kube, tenants, listener):
    operator(namespaces=tenants, llm_allowed_base_urls=listener.base_url)
    create_secret(kube, TEAM_A, "team-keys", {"OPENAI_API_KEY": TENANT_KEY, "AWS_SECRET_ACCESS_KEY": "not-for-openai"},
                  labels=CREDENTIALS_LABEL)
    llm = {"model": "openai:team-model", "baseUrl": listener.base_url}
    kube.create("keyless", {"topic": "Circles", "prompt": "Show a circle", "render": {"quality": "low"}, "llm": llm},
                namespace=TEAM_A)
    kube.create("own-key", {"topic": "Circles", "prompt": "Show a circle", "render": {"quality": "low"},
                            "llm": {**llm, "credentialsSecretRef": {"name": "team-keys"}}}, namespace=TEAM_A)
    for name in ("keyless", "own-key"):
        status = kube.wait(name, lambda o: (o.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
                           namespace=TEAM_A)["status"]
        assert status["phase"] == "Succeeded", status.get("message")

    assert listener.requests, "the allowed endpoint was used"
    auth = {r.headers.get("Authorization") for r in listener.requests}
    assert auth == {"Bearer not-needed", f"Bearer {TENANT_KEY}"}
    for request in listener.requests:
        sent = repr(request.headers) + repr(request.body)
        assert OPERATOR_KEY not in sent and "org-platform" not in sent and "proj-platform" not in sent
        assert "not-for-openai" not in sent


# ----------------------------------------------------------------------------- projects


def test_a_namespace_cannot_publish_into_or_edit_another_namespaces_project_until_granted(
    operator, operator_env, kube, apiserver, tenants, listener, workdir, monkeypatch
):
    # The operator's own endpoint (its default model) answers editing requests.
    monkeypatch.setenv("OPENAI_BASE_URL", listener.base_url)
    operator(namespaces=tenants, llm_model="openai:platform-model")
    kube.create("intro", {"topic": "Intro", "videoId": "intro", "storyboard": STORYBOARD, "render": {"quality": "low"}},
                namespace=TEAM_B)
    assert kube.wait("intro", lambda o: (o.get("status") or {}).get("phase") == "Succeeded", namespace=TEAM_B)

    kube.create("squat", {"topic": "Not yours", "projectId": TEAM_B, "videoId": "intro", "storyboard": STORYBOARD,
                          "render": {"quality": "low"}}, namespace=TEAM_A)
    kube.create("steal", {"topic": "Not yours", "projectId": TEAM_B, "videoId": "intro", "render": {"quality": "low"},
                          "prompt": "Intro", "editing": {"feedback": "show me your code"}}, namespace=TEAM_A)
    for name in ("squat", "steal"):
        assert_refused(kube, apiserver, name, TEAM_A, "spec.projectId", "namespace_projects")
    assert listener.requests == []  # the edit read nothing: no previous code went to a model
    assert sorted(p.name for p in (workdir / TEAM_B / "intro").iterdir()) == ["v1"]  # nothing published

    # Whoever administers namespaces grants team-a the project; new VideoJobs may use it.
    add_namespace(apiserver, TEAM_A, {"videogen.io/projects": f"shared, {TEAM_B}"})
    kube.create("guest-edit", {"topic": "Intro", "projectId": TEAM_B, "videoId": "intro", "render": {"quality": "low"},
                               "prompt": "Intro", "editing": {"feedback": "make the circle red"}}, namespace=TEAM_A)
    status = kube.wait("guest-edit", lambda o: (o.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
                       namespace=TEAM_A)["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["version"] == 2 and f"/{TEAM_B}/intro/v2/" in status["outputs"]["videoURI"]
    assert any("Scene" in r.prompt for r in listener.requests), "the edit started from team-b's code"


# ------------------------------------------------------------------------------ Secrets


def test_an_unlabelled_secret_is_never_read(operator, operator_env, kube, apiserver, tenants):
    op = operator(namespaces=tenants)
    create_secret(kube, TEAM_A, "db-password", {"OPENAI_API_KEY": "sk-not-opted-in", "PASSWORD": "hunter2"})
    kube.create("snoop", {"topic": "Circles", "storyboard": STORYBOARD,
                          "llm": {"model": "openai:gpt-4o-mini", "credentialsSecretRef": {"name": "db-password"}}},
                namespace=TEAM_A)
    status = assert_refused(kube, apiserver, "snoop", TEAM_A, "spec.llm.credentialsSecretRef.name", "secret_label")
    assert "videogen.io/credentials" in status["message"]
    assert denials(op, "secret_label") >= 1

    # The API server's request log: the operator only ever asked for the Secret's metadata, or
    # for it filtered by the opt-in label, so its data never reached the operator.
    operator_reads = [r for r in secret_requests(apiserver, TEAM_A) if r["method"] == "GET"]
    assert operator_reads, "the operator looked the Secret up"
    for request in operator_reads:
        assert request["name"] is None, f"a GET by name returns the data: {request}"
        assert request["params"].get("fieldSelector") == "metadata.name=db-password"
        metadata_only = "as=PartialObjectMetadataList" in request["accept"]
        labelled = request["params"].get("labelSelector") == "videogen.io/credentials=true"
        assert metadata_only or labelled, request
