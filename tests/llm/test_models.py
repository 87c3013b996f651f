"""Model selection and the call policy: provider:model, credentials as client arguments, missing
extras, timeouts, the single retry layer, fallbacks, the response cache and usage accounting."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import HumanMessage

from videojob.api.models import LLMSpec
from videojob.config import Settings
from videojob.pipeline import llm as llm_mod
from videojob.pipeline.errors import LLMNotConfigured, PipelineError, TransientError
from videojob.pipeline.llm import ChatLLM, ModelEndpoint, RetryPolicy
from videojob.pipeline.llm_cache import ResponseCache
from videojob.run import run_videojob

from tests.llm.conftest import ScriptedChatModel, answer, make_job, metric

QUICK = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.05)


class RateLimited(Exception):
    """Shaped like the provider SDKs' errors: a status code on the exception."""

    status_code = 429


class BadRequest(Exception):
    status_code = 400


def test_openai_model_gets_credentials_timeout_and_no_client_retries():
    spec = LLMSpec(model="openai:gpt-4o-mini", temperature=0.1, maxTokens=321, requestTimeoutSeconds=17,
                   baseUrl="http://127.0.0.1:9/v1")
    chat = llm_mod.resolve_model(spec, None, {"OPENAI_API_KEY": "sk-from-secret", "UNRELATED": "x"})
    model = chat.endpoints[0].model
    assert type(model).__name__ == "ChatOpenAI"
    assert model.model_name == "gpt-4o-mini"
    assert model.openai_api_key.get_secret_value() == "sk-from-secret"
    assert model.max_retries == 0  # our tenacity layer is the only one
    assert model.request_timeout == 17
    assert model.max_tokens == 321 and model.temperature == 0.1
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert chat.timeout_seconds == 17
    assert "sk-from-secret" not in os.environ.get("OPENAI_API_KEY", "")
    assert "sk-from-secret" not in repr(chat) and "sk-from-secret" not in repr(model)


def test_bedrock_arguments_carry_aws_keys_region_and_disable_botocore_retries():
    spec = LLMSpec(model="bedrock_converse:anthropic.claude-3-5-sonnet-20240620-v1:0", requestTimeoutSeconds=30)
    creds = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_SESSION_TOKEN": "tok",
             "AWS_REGION": "eu-west-1", "OPENAI_API_KEY": "not-for-bedrock"}
    provider, model = llm_mod.split_model(spec.model)
    assert (provider, model) == ("bedrock_converse", "anthropic.claude-3-5-sonnet-20240620-v1:0")
    kwargs = llm_mod.client_kwargs(provider, spec, creds, None)
    assert kwargs["aws_access_key_id"] == "AKIAEXAMPLE"
    assert kwargs["aws_secret_access_key"] == "s3cr3t"
    assert kwargs["aws_session_token"] == "tok"
    assert kwargs["region_name"] == "eu-west-1"
    assert "api_key" not in kwargs
    assert kwargs["config"].retries == {"total_max_attempts": 1}
    assert kwargs["config"].read_timeout == 30
    # Without a Secret, boto3's own chain (IAM role, IRSA) decides: no keys passed at all.
    assert not any(k.startswith("aws_") for k in llm_mod.client_kwargs(provider, spec, None, None))


def test_ollama_and_anthropic_arguments():
    spec = LLMSpec(model="ollama:llama3.1", maxTokens=900, requestTimeoutSeconds=40)
    ollama = llm_mod.client_kwargs("ollama", spec, None, "http://127.0.0.1:11434")
    assert ollama["num_predict"] == 900 and ollama["client_kwargs"] == {"timeout": 40.0}
    assert ollama["base_url"] == "http://127.0.0.1:11434"
    anthropic = llm_mod.client_kwargs("anthropic", spec, {"ANTHROPIC_API_KEY": "sk-ant-x"}, None)
    assert anthropic["api_key"] == "sk-ant-x" and anthropic["max_retries"] == 0 and anthropic["timeout"] == 40.0


# provider -> (its package, the extra that installs it, a model id)
OPTIONAL_PROVIDERS = {
    "anthropic": ("langchain_anthropic", "anthropic", "claude-3-5-sonnet-latest"),
    "bedrock_converse": ("langchain_aws", "bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    "ollama": ("langchain_ollama", "ollama", "llama3.1"),
}
MISSING = {p: v for p, v in OPTIONAL_PROVIDERS.items() if importlib.util.find_spec(v[0]) is None}


def test_missing_provider_package_names_the_extra():
    # Whichever optional provider packages this environment lacks (in CI: all but openai).
    for provider, (_, extra, model) in MISSING.items():
        with pytest.raises(LLMNotConfigured, match=re.escape(f"videojob-operator[{extra}]")):
            llm_mod.resolve_model(LLMSpec(model=f"{provider}:{model}"), None, {"ANTHROPIC_API_KEY": "k"})
    # A provider that is no extra of ours: the message names its LangChain package.
    with pytest.raises(LLMNotConfigured, match=r"pip install langchain-groq"):
        llm_mod.resolve_model(LLMSpec(model="groq:llama-3.1-8b-instant"), None)


@pytest.mark.parametrize("name", ["gpt-4o-mini", "Open AI:gpt", "openai:"])
def test_model_must_be_provider_colon_model(name):
    with pytest.raises(LLMNotConfigured, match="provider:model"):
        llm_mod.resolve_model(LLMSpec(model=name), None)


def test_unknown_provider_is_a_clear_error():
    with pytest.raises(LLMNotConfigured, match="nosuchprovider"):
        llm_mod.resolve_model(LLMSpec(model="nosuchprovider:model-x"), None)


def test_default_model_comes_from_settings_and_fallback_is_built():
    chat = llm_mod.resolve_model(
        LLMSpec(fallbackModel="openai:gpt-4o"), "openai:gpt-4o-mini", {"OPENAI_API_KEY": "sk-1"}
    )
    assert [e.name for e in chat.endpoints] == ["openai:gpt-4o-mini", "openai:gpt-4o"]
    assert llm_mod.resolve_model(None, None) is None


async def test_missing_extra_fails_the_run_with_the_extra_named(tmp_path):
    provider, (_, extra, model) = next(iter(MISSING.items()), ("groq", (None, None, "llama-3.1-8b-instant")))
    job = make_job(llm={"model": f"{provider}:{model}"})
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path)
    assert result.status.phase == "Failed"
    assert (f"videojob-operator[{extra}]" if extra else "langchain-groq") in result.status.message
    assert result.error.reason == "LLMNotConfigured"
    stalled = next(c for c in result.status.conditions if c.type == "Stalled")
    assert stalled.status == "True"


async def test_rate_limits_are_retried_then_answered():
    model = ScriptedChatModel(script=[RateLimited("slow down"), RateLimited("slow down"), answer("hi", 3, 2)])
    chat = ChatLLM([ModelEndpoint("fake:rl", model)], retry=QUICK)
    usage: dict[str, int] = {}
    before = metric("videojob_retries_total", stage="Planning", reason="RateLimited")
    reply = await chat.ainvoke([HumanMessage("hello")], usage=usage, stage="Planning")
    assert reply.content == "hi"
    assert len(model.calls) == 3
    assert usage == {"llm_calls": 1, "prompt_tokens": 3, "completion_tokens": 2}
    assert metric("videojob_retries_total", stage="Planning", reason="RateLimited") - before == 2


async def test_retries_stop_at_the_bound_with_a_transient_error():
    model = ScriptedChatModel(script=[RateLimited("slow down")] * 5)
    chat = ChatLLM([ModelEndpoint("fake:rl", model)], retry=QUICK)
    with pytest.raises(TransientError, match=r"fake:rl: .*429.* after 3 attempt") as info:
        await chat.ainvoke([HumanMessage("hello")], usage={}, stage="Planning")
    assert info.value.reason == "LLMUnavailable"
    assert len(model.calls) == 3


async def test_client_errors_are_not_retried():
    model = ScriptedChatModel(script=[BadRequest("bad request"), answer("never")])
    chat = ChatLLM([ModelEndpoint("fake:bad", model)], retry=QUICK)
    with pytest.raises(PipelineError) as info:
        await chat.ainvoke([HumanMessage("hello")], usage={}, stage="Planning")
    assert not isinstance(info.value, TransientError)
    assert info.value.reason == "LLMRequestFailed"
    assert len(model.calls) == 1


async def test_per_call_timeout_then_retry():
    class Slow(ScriptedChatModel):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
            if len(self.calls) == 0:
                self.calls.append(None)
                import asyncio

                await asyncio.sleep(5)
            return self._generate(messages, stop, run_manager, **kwargs)

    model = Slow(script=[answer("in time")])
    chat = ChatLLM([ModelEndpoint("fake:slow", model)], retry=QUICK, timeout_seconds=0.2)
    before = metric("videojob_llm_request_duration_seconds_count", model="fake:slow", result="timeout")
    reply = await chat.ainvoke([HumanMessage("hello")], usage={}, stage="Planning")
    assert reply.content == "in time"
    assert metric("videojob_llm_request_duration_seconds_count", model="fake:slow", result="timeout") - before == 1


async def test_fallback_model_answers_when_the_primary_fails():
    primary = ScriptedChatModel(script=[RateLimited("quota")] * 3)
    backup = GenericFakeChatModel(messages=iter([answer("from the backup", 4, 4)]))
    chat = ChatLLM([ModelEndpoint("fake:primary", primary), ModelEndpoint("fake:backup", backup)], retry=QUICK)
    usage: dict[str, int] = {}
    before = metric("videojob_llm_tokens_total", model="fake:backup", direction="completion")
    reply = await chat.ainvoke([HumanMessage("hello")], usage=usage, stage="GeneratingCode")
    assert reply.content == "from the backup"
    assert reply.response_metadata["videojob_model"] == "fake:backup"
    assert len(primary.calls) == 3  # the primary had its retries before the fallback took over
    assert usage["llm_calls"] == 1 and usage["completion_tokens"] == 4
    assert metric("videojob_llm_tokens_total", model="fake:backup", direction="completion") - before == 4


async def test_each_call_reports_only_its_own_failures():
    # The fallback chain is built once and reused: what went wrong in one call must not leak
    # into the next one's error.
    primary = ScriptedChatModel(script=[BadRequest("first failure"), BadRequest("second failure")])
    backup = ScriptedChatModel(script=[answer("from the backup"), BadRequest("backup down")])
    chat = ChatLLM([ModelEndpoint("fake:a", primary), ModelEndpoint("fake:b", backup)], retry=QUICK)
    assert (await chat.ainvoke([HumanMessage("one")], usage={}, stage="Planning")).content == "from the backup"
    with pytest.raises(PipelineError) as failed:
        await chat.ainvoke([HumanMessage("two")], usage={}, stage="Planning")
    assert "second failure" in failed.value.message and "backup down" in failed.value.message
    assert "first failure" not in failed.value.message


async def test_all_models_failing_names_each_of_them():
    primary = ScriptedChatModel(script=[BadRequest("no such model")])
    backup = ScriptedChatModel(script=[BadRequest("also broken")])
    chat = ChatLLM([ModelEndpoint("fake:a", primary), ModelEndpoint("fake:b", backup)], retry=QUICK)
    with pytest.raises(PipelineError, match=r"fake:a: .*no such model.*fallback fake:b: .*also broken"):
        await chat.ainvoke([HumanMessage("hello")], usage={}, stage="Planning")


async def test_response_cache_answers_a_repeated_prompt_without_a_call(tmp_path):
    model = ScriptedChatModel(script=[answer("first", 5, 5)])
    chat = ChatLLM([ModelEndpoint("fake:cached", model)], cache=ResponseCache(tmp_path))
    usage: dict[str, int] = {}
    one = await chat.ainvoke([HumanMessage("same prompt")], usage=usage, stage="Planning")
    two = await chat.ainvoke([HumanMessage("same prompt")], usage=usage, stage="Planning")
    assert one.content == two.content == "first"
    assert len(model.calls) == 1
    assert usage["llm_calls"] == 1  # a cached answer costs nothing
    # A different prompt, or the same prompt to another model, is a different entry.
    other = ChatLLM([ModelEndpoint("fake:other", ScriptedChatModel(script=[answer("other")]))], cache=ResponseCache(tmp_path))
    assert (await other.ainvoke([HumanMessage("same prompt")], usage=usage, stage="Planning")).content == "other"
    assert len(ResponseCache(tmp_path)) == 2


def test_error_messages_are_scrubbed_of_credentials():
    chat = ChatLLM([ModelEndpoint("fake:x", ScriptedChatModel())], secrets=["sk-very-secret-value"])
    assert chat.redact("Incorrect API key provided: sk-very-secret-value.") == "Incorrect API key provided: ***."
