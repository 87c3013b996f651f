"""The tenancy policy's decisions as plain functions: which field, which rule, what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from videojob import policy
from videojob.api.manifest import parse_videojob
from videojob.config import ConfigError, Settings, load_settings
from videojob.pipeline.budget import BudgetExceeded, UsageBudget


def job(namespace: str = "team-a", **spec: Any):
    spec.setdefault("prompt", "Explain circles")
    return parse_videojob({
        "apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob",
        "metadata": {"name": "v", "namespace": namespace}, "spec": {"topic": "Circles", **spec},
    })


def settings(**values: Any) -> policy.TenancyPolicy:
    return policy.TenancyPolicy.from_settings(Settings(**values))


def decide(j, pol=None, annotations=None, default_model="openai:gpt-4o-mini"):
    return policy.check(j, j.metadata.namespace, pol or settings(), default_model=default_model,
                        namespace_annotations=annotations)


def test_defaults_allow_a_plain_job_and_refuse_any_base_url():
    assert decide(job(llm={"model": "openai:gpt-4o"})) is None
    denial = decide(job(llm={"model": "openai:gpt-4o", "baseUrl": "http://127.0.0.1:9/v1"}))
    assert (denial.field, denial.rule) == ("spec.llm.baseUrl", "allowed_base_urls")
    assert "VIDEOJOB_LLM_ALLOWED_BASE_URLS" in denial.message and "none are allowed" in denial.message


def test_base_url_allowlist_compares_urls_not_strings():
    pol = settings(llm_allowed_base_urls="HTTP://vllm.team-a.svc:80/v1/")
    assert decide(job(llm={"model": "openai:llama", "baseUrl": "http://vllm.team-a.svc/v1"}), pol) is None
    assert decide(job(llm={"model": "openai:llama", "baseUrl": "http://vllm.team-a.svc/v2"}), pol).rule == "allowed_base_urls"
    assert decide(job(llm={"model": "openai:llama", "baseUrl": "http://vllm.team-a.svc.evil/v1"}), pol) is not None


def test_a_base_url_only_with_a_provider_that_can_be_kept_from_the_operators_credentials():
    pol = settings(llm_allowed_base_urls="http://endpoint/v1")
    denial = decide(job(llm={"model": "bedrock_converse:anthropic.claude", "baseUrl": "http://endpoint/v1"}), pol)
    assert (denial.field, denial.rule) == ("spec.llm.model", "endpoint_provider")
    # The operator's default model goes to the job's baseUrl when spec.llm.model is empty.
    denial = decide(job(llm={"baseUrl": "http://endpoint/v1"}), pol, default_model="anthropic:claude-3")
    assert denial.rule == "endpoint_provider"


def test_model_globs():
    pol = settings(llm_allowed_models="openai:gpt-4o-mini, bedrock_converse:anthropic.claude-3-haiku*")
    assert decide(job(llm={"model": "openai:gpt-4o-mini"}), pol) is None
    assert decide(job(llm={"model": "bedrock_converse:anthropic.claude-3-haiku-20240307-v1:0"}), pol) is None
    denial = decide(job(llm={"model": "openai:gpt-4o-mini", "fallbackModel": "openai:o1-pro"}), pol)
    assert (denial.field, denial.rule) == ("spec.llm.fallbackModel", "allowed_models")
    # The operator's own default model is its own choice: not checked.
    assert decide(job(), pol, default_model="openai:gpt-4.1") is None


def test_project_is_the_namespace_unless_the_namespace_is_granted_it():
    assert decide(job(projectId="team-a")) is None
    denial = decide(job(projectId="team-b"))
    assert (denial.field, denial.rule) == ("spec.projectId", "namespace_projects")
    assert "videogen.io/projects" in denial.message
    assert decide(job(projectId="team-b"), annotations={"videogen.io/projects": "shared, team-b"}) is None
    assert decide(job(projectId="team-b"), annotations={"videogen.io/projects": "team-b2"}) is not None
    assert policy.project_needs_namespace(job(projectId="team-b"), "team-a")
    assert not policy.project_needs_namespace(job(), "team-a")


def test_storyboard_scenes_are_capped_before_anything_runs():
    scenes = [{"title": f"s{i}"} for i in range(4)]
    denial = decide(job(storyboard={"scenes": scenes}), settings(max_scenes_per_job=3))
    assert (denial.field, denial.rule) == ("spec.storyboard.scenes", "max_scenes_per_job")
    assert decide(job(storyboard={"scenes": scenes}), settings(max_scenes_per_job=4)) is None


def test_only_the_chosen_providers_secret_keys_are_kept():
    j = job(llm={"model": "openai:gpt-4o", "fallbackModel": "anthropic:claude-3-5-sonnet-latest",
                 "credentialsSecretRef": {"name": "keys"}})
    keys = policy.secret_keys(j, None)
    data = {"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b", "AWS_SECRET_ACCESS_KEY": "c", "DATABASE_PASSWORD": "d"}
    assert policy.chosen_keys(data, keys) == {"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b"}


def test_settings_fail_fast_on_a_base_url_that_is_not_a_url(monkeypatch):
    monkeypatch.setenv("VIDEOJOB_LLM_ALLOWED_BASE_URLS", "http://ok/v1,ftp://nope")
    with pytest.raises(ConfigError, match="VIDEOJOB_LLM_ALLOWED_BASE_URLS"):
        load_settings()


def test_token_budget_stops_after_the_answer_that_crosses_it_and_before_the_next_call():
    budget = UsageBudget(policy.JobCaps(max_tokens=100))
    usage = {"prompt_tokens": 40, "completion_tokens": 20}
    budget.before_llm_call(usage)
    budget.after_llm_call(usage)
    usage["prompt_tokens"] += 50
    with pytest.raises(BudgetExceeded) as raised:
        budget.after_llm_call(usage, "GeneratingCode")
    assert raised.value.reason == "PolicyDenied" and raised.value.permanent
    assert "VIDEOJOB_MAX_TOKENS_PER_JOB (100)" in raised.value.message
    usage = {"prompt_tokens": 100, "completion_tokens": 0}
    with pytest.raises(BudgetExceeded):
        budget.before_llm_call(usage)


def test_tts_budget_counts_what_was_already_spoken():
    budget = UsageBudget(policy.JobCaps(max_tts_characters=50))
    budget.before_tts({"tts_characters": 20}, 30)
    with pytest.raises(BudgetExceeded, match="VIDEOJOB_MAX_TTS_CHARACTERS_PER_JOB"):
        budget.before_tts({"tts_characters": 20}, 31)
