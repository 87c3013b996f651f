"""The real langchain-openai client against a scripted OpenAI-compatible server on 127.0.0.1:
HTTP path, retries (429, 5xx, malformed bodies, timeouts), fallbacks, token accounting, the
response cache, and an end-to-end `run_videojob` from spec.prompt to an MP4."""

from __future__ import annotations

import socket

import pytest
from langchain_core.messages import HumanMessage

from videojob.api.models import LLMSpec
from videojob.config import Settings
from videojob.pipeline import llm as llm_mod
from videojob.pipeline.errors import PipelineError, TransientError
from videojob.run import run_videojob

from tests.llm.conftest import Completion, Raw, Status, fenced, good_code, make_job, metric, plan_json

KEY = "sk-test-0123456789abcdef"


def chat_for(server, model: str, **spec):
    return llm_mod.resolve_model(
        LLMSpec(model=f"openai:{model}", baseUrl=server.base_url, requestTimeoutSeconds=spec.pop("timeout", 10), **spec),
        None, {"OPENAI_API_KEY": KEY},
    )


async def ask(chat, usage=None):
    return await chat.ainvoke([HumanMessage("hello")], usage=usage if usage is not None else {}, stage="Planning")


async def test_rate_limit_then_success(openai_server):
    openai_server.script = [Status(429, message="rate limited"), Completion("hi", prompt_tokens=12, completion_tokens=3)]
    chat = chat_for(openai_server, "m-ratelimit", temperature=0.3, maxTokens=77)
    usage: dict[str, int] = {}
    before = metric("videojob_retries_total", stage="Planning", reason="RateLimited")
    reply = await ask(chat, usage)
    assert reply.content == "hi"
    assert len(openai_server.requests) == 2  # one retry: ours, not the client's as well
    assert usage == {"llm_calls": 1, "prompt_tokens": 12, "completion_tokens": 3}
    assert metric("videojob_retries_total", stage="Planning", reason="RateLimited") - before == 1
    assert metric("videojob_llm_tokens_total", model="openai:m-ratelimit", direction="prompt") == 12
    assert metric("videojob_llm_request_duration_seconds_count", model="openai:m-ratelimit", result="rate_limited") == 1
    request = openai_server.requests[-1]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "m-ratelimit" and request.body["temperature"] == 0.3
    assert 77 in (request.body.get("max_tokens"), request.body.get("max_completion_tokens"))


async def test_rate_limits_exhaust_the_single_retry_layer(openai_server):
    openai_server.script = [Status(429)] * 6
    chat = chat_for(openai_server, "m-exhaust")
    with pytest.raises(TransientError, match=r"openai:m-exhaust: .*429.*after 4 attempt") as info:
        await ask(chat)
    assert info.value.reason == "LLMUnavailable"
    assert len(openai_server.requests) == 4  # 4 attempts, not 4 x (1 + the client's own retries)


async def test_server_error_is_retried_after_a_backoff(openai_server):
    openai_server.script = [Status(503, retry_after=None), Completion("recovered")]
    reply = await ask(chat_for(openai_server, "m-5xx"))
    assert reply.content == "recovered"
    first, second = openai_server.requests
    assert second.at - first.at >= 0.45  # exponential backoff with jitter: at least half the 1 s step


async def test_malformed_body_is_retried(openai_server):
    openai_server.script = [Raw(), Completion("fine now", prompt_tokens=5, completion_tokens=2)]
    usage: dict[str, int] = {}
    before = metric("videojob_retries_total", stage="Planning", reason="MalformedResponse")
    reply = await ask(chat_for(openai_server, "m-malformed"), usage)
    assert reply.content == "fine now"
    assert usage["prompt_tokens"] == 5
    assert metric("videojob_retries_total", stage="Planning", reason="MalformedResponse") - before == 1


async def test_body_that_is_not_a_completion_fails_clearly(openai_server):
    openai_server.script = [Raw('{"result": "this is not a chat completion"}')]
    with pytest.raises(PipelineError, match=r"openai:m-shape: .*choices") as info:
        await ask(chat_for(openai_server, "m-shape"))
    assert info.value.reason == "LLMRequestFailed"
    assert len(openai_server.requests) == 1


async def test_timeout_then_success(openai_server):
    openai_server.script = [Completion("too late", delay=3), Completion("in time")]
    before = metric("videojob_retries_total", stage="Planning", reason="Timeout")
    reply = await ask(chat_for(openai_server, "m-timeout", timeout=1))
    assert reply.content == "in time"
    assert len(openai_server.requests) == 2
    assert metric("videojob_retries_total", stage="Planning", reason="Timeout") - before == 1


async def test_bad_key_is_not_retried_and_never_echoed(openai_server):
    openai_server.script = [Status(401, retry_after=None, message=f"Incorrect API key provided: {KEY}")]
    with pytest.raises(PipelineError) as info:
        await ask(chat_for(openai_server, "m-auth"))
    assert info.value.reason == "LLMRequestFailed" and info.value.permanent
    assert len(openai_server.requests) == 1
    assert "401" in info.value.message and KEY not in info.value.message and "***" in info.value.message


async def test_fallback_model_over_http(openai_server):
    def respond(body):
        return Status(500, message="primary is down") if body["model"] == "m-primary" else Completion("backup here")

    openai_server.respond = respond
    chat = chat_for(openai_server, "m-primary", fallbackModel="openai:m-backup")
    reply = await ask(chat)
    assert reply.content == "backup here"
    assert reply.response_metadata["videojob_model"] == "openai:m-backup"
    assert len(openai_server.for_model("m-primary")) == 4 and len(openai_server.for_model("m-backup")) == 1


def _video_server(openai_server, *, rate_limit_first: bool = True):
    """Answers like a model: a plan, then a docs lookup, then scene code. The first request gets a 429."""
    state = {"first": rate_limit_first}

    def respond(body):
        if state["first"]:
            state["first"] = False
            return Status(429)
        system = body["messages"][0]["content"]
        if "plan short educational videos" in system:
            return Completion(plan_json("The circle"), prompt_tokens=100, completion_tokens=40)
        if not any(m["role"] == "tool" for m in body["messages"]):
            return Completion("", prompt_tokens=200, completion_tokens=10,
                              tool_calls=[{"id": "call_docs", "name": "manim_docs", "args": {"name": "Circle"}}])
        return Completion(fenced(good_code()), prompt_tokens=250, completion_tokens=60)

    openai_server.respond = respond


@pytest.mark.render
async def test_prompt_job_end_to_end_over_http(openai_server, tmp_path):
    _video_server(openai_server)
    job = make_job(llm={"model": "openai:m-e2e", "baseUrl": openai_server.base_url, "requestTimeoutSeconds": 10})
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, credentials={"OPENAI_API_KEY": KEY})
    assert result.succeeded, result.status.message
    video = tmp_path / "tests" / "demo" / "v1" / "demo.mp4"
    assert video.stat().st_size > 0 and result.status.outputs.video_uri == video.resolve().as_uri()
    assert len(openai_server.requests) == 4  # 429, plan, tool call, code
    codegen = [r for r in openai_server.requests if "Manim Community Edition" in r.prompt]
    assert {t["function"]["name"] for t in codegen[0].body["tools"]} == {"manim_docs", "check_code"}
    tool_result = [m for m in codegen[-1].body["messages"] if m["role"] == "tool"][0]
    assert "class Circle" in tool_result["content"]
    usage = result.status.usage
    assert (usage.llm_calls, usage.prompt_tokens, usage.completion_tokens) == (3, 550, 110)
    assert metric("videojob_llm_tokens_total", model="openai:m-e2e", direction="completion") == 110
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in openai_server.requests)


@pytest.mark.render
async def test_repeated_run_is_answered_from_the_response_cache(openai_server, tmp_path):
    _video_server(openai_server, rate_limit_first=False)
    spec = {"llm": {"model": "openai:m-cache", "baseUrl": openai_server.base_url}}
    first = await run_videojob(make_job(**spec), settings=Settings(), store_root=tmp_path, credentials={"OPENAI_API_KEY": KEY})
    assert first.succeeded, first.status.message
    paid = len(openai_server.requests)
    assert paid == 3
    again = await run_videojob(make_job(generation=2, **spec), settings=Settings(), store_root=tmp_path,
                               credentials={"OPENAI_API_KEY": KEY})
    assert again.succeeded, again.status.message
    assert len(openai_server.requests) == paid  # nothing paid twice
    assert again.status.usage.llm_calls == 0
    assert again.status.version == 2
    assert (tmp_path / ".cache" / "llm").is_dir()


async def test_refused_connection_is_transient():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    spec = LLMSpec(model="openai:m-refused", baseUrl=f"http://127.0.0.1:{port}/v1", requestTimeoutSeconds=5)
    model = llm_mod.build_chat_model(spec.model, spec, {"OPENAI_API_KEY": KEY}, spec.base_url)
    chat = llm_mod.ChatLLM([llm_mod.ModelEndpoint(spec.model, model)], retry=llm_mod.RetryPolicy(3, 0.01, 0.05))
    before = metric("videojob_retries_total", stage="Planning", reason="ConnectionError")
    with pytest.raises(TransientError, match="after 3 attempt"):
        await ask(chat)
    assert metric("videojob_retries_total", stage="Planning", reason="ConnectionError") - before == 2


@pytest.mark.render
async def test_run_falls_back_to_the_secondary_model(openai_server, tmp_path):
    _video_server(openai_server, rate_limit_first=False)
    answer_like_a_model = openai_server.respond
    openai_server.respond = lambda body: (
        Status(503, message="overloaded") if body["model"] == "m-down" else answer_like_a_model(body)
    )
    job = make_job(llm={"model": "openai:m-down", "fallbackModel": "openai:m-standby", "baseUrl": openai_server.base_url})
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, credentials={"OPENAI_API_KEY": KEY})
    assert result.succeeded, result.status.message
    assert len(openai_server.for_model("m-standby")) == 3  # plan, tool call, code
    assert len(openai_server.for_model("m-down")) == 3 * 4  # each call: 4 attempts at the primary first
    assert result.status.usage.llm_calls == 3
    assert metric("videojob_llm_tokens_total", model="openai:m-standby", direction="prompt") == 550
    assert metric("videojob_llm_tokens_total", model="openai:m-down", direction="prompt") == 0
