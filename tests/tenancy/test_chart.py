"""The chart carries every tenancy setting to the operator, and grants what the policy reads."""

from __future__ import annotations

import pytest

from videojob import policy
from videojob.config import load_settings
from videojob.controller.jobspec import build_job

from tests.deploy.conftest import FULL_VALUES, HelmError, helm, render  # noqa: F401 - the chart fixtures


def test_tenancy_values_reach_the_operators_settings(render, monkeypatch):  # noqa: F811
    env = render(FULL_VALUES, set_=["grafanaDashboard.enabled=false"]).env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tenancy = policy.TenancyPolicy.from_settings(load_settings())
    assert tenancy.allowed_base_urls == ("http://vllm.models.svc.cluster.local:8000/v1",)
    assert tenancy.allowed_models == ("bedrock_converse:anthropic.claude-3-5-*", "openai:llama-3.1-*")
    assert tenancy.max_concurrent_per_namespace == 2
    assert tenancy.caps == policy.JobCaps(max_scenes=12, max_tokens=200000, max_tts_characters=20000)


def test_defaults_allow_no_base_url_and_any_model(render):  # noqa: F811
    env = render().env()
    assert "VIDEOJOB_LLM_ALLOWED_BASE_URLS" not in env and "VIDEOJOB_LLM_ALLOWED_MODELS" not in env
    assert env["VIDEOJOB_MAX_CONCURRENT_PER_NAMESPACE"] == "0"


def test_operator_may_read_namespaces_and_only_list_secrets(render):  # noqa: F811
    inline = ["operator.executor=inline", "grafanaDashboard.enabled=false"]
    for role, executor in ((render().one("ClusterRole", "videojob-operator"), "job"),
                           (render(FULL_VALUES).one("Role", "videojob-operator", "videos"), "job"),
                           (render(set_=inline).one("ClusterRole", "videojob-operator"), "inline"),
                           (render(FULL_VALUES, set_=inline).one("Role", "videojob-operator", "videos"), "inline")):
        rules = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
        assert rules[("", "namespaces")] == {"get"}
        # Job mode: the worker reads its Secret; the operator holds no Secret right at all.
        assert rules.get(("", "secrets")) == ({"list"} if executor == "inline" else None)


def test_schema_refuses_a_base_url_that_is_not_a_url(render):  # noqa: F811
    with pytest.raises(HelmError, match="allowedBaseUrls"):
        render(set_=["tenancy.allowedBaseUrls={ftp://x}"])


def test_worker_jobs_carry_the_per_job_caps(render, monkeypatch):  # noqa: F811
    env = render(FULL_VALUES, set_=["grafanaDashboard.enabled=false"]).env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    videojob = {"metadata": {"name": "fourier", "namespace": "videos", "generation": 1, "uid": "u-1"},
                "spec": {"topic": "Fourier"}}
    (container,) = build_job(videojob, 1, load_settings(), environ=env)["spec"]["template"]["spec"]["containers"]
    worker_env = {e["name"]: e.get("value") for e in container["env"]}
    assert worker_env["VIDEOJOB_MAX_TOKENS_PER_JOB"] == "200000"
    assert worker_env["VIDEOJOB_MAX_SCENES_PER_JOB"] == "12"
    assert worker_env["VIDEOJOB_MAX_TTS_CHARACTERS_PER_JOB"] == "20000"
