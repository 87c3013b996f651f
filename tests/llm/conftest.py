"""Fixtures for the LLM tests: scripted chat models, a local OpenAI-compatible server, jobs.

Only the model itself is fake. Renders are real (Manim, quality low, sub-second scenes), HTTP is
real (aiohttp on 127.0.0.1 answered through the real langchain-openai client).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from aiohttp import web
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from prometheus_client import REGISTRY

from videojob.api.manifest import parse_videojob
from videojob.api.models import VideoJob

# ----------------------------------------------------------------------------- scene code

GOOD_SCENE = """\
from manim import *


class {cls}(Scene):
    def construct(self):
        circle = Circle(radius=1, color={color})
        self.add(circle)
        self.wait(0.3)
"""

FAILING_SCENE = """\
from manim import *


class {cls}(Scene):
    def construct(self):
        self.add(Square())
        raise ValueError("{message}")
"""


def good_code(cls: str = "Scene01", color: str = "BLUE") -> str:
    return GOOD_SCENE.format(cls=cls, color=color)


def failing_code(message: str, cls: str = "Scene01") -> str:
    return FAILING_SCENE.format(cls=cls, message=message)


def fenced(code: str) -> str:
    return f"Here is the scene:\n```python\n{code}```\n"


def plan_json(*titles: str, duration: float = 2) -> str:
    titles = titles or ("A circle",)
    return json.dumps(
        {
            "scenes": [
                {"title": t, "goal": f"show {t}", "visual_elements": ["circle"], "narration": f"This is {t}.",
                 "duration_seconds": duration}
                for t in titles
            ]
        }
    )


def answer(content: str = "", prompt_tokens: int = 10, completion_tokens: int = 5, tool_calls: list | None = None) -> AIMessage:
    return AIMessage(
        content=content,
        tool_calls=tool_calls or [],
        usage_metadata={"input_tokens": prompt_tokens, "output_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens},
    )


def text(messages: list[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


# ------------------------------------------------------------------------- scripted models


@dataclass
class Call:
    messages: list[BaseMessage]
    tools: list[str]

    @property
    def text(self) -> str:
        return text(self.messages)


class ScriptedChatModel(BaseChatModel):
    """A chat model answering from a script (AIMessage, str or an exception to raise, in order)
    or from `respond(messages)`. It records every call with the tools bound to it; with
    `tool_calling=False` it cannot bind tools, like many small local models."""

    script: list[Any] = []
    respond: Callable[[list[BaseMessage]], Any] | None = None
    calls: list[Call] = []
    tool_calling: bool = True

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, **kwargs):
        if not self.tool_calling:
            raise NotImplementedError("this model has no tool calling")
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls.append(Call(list(messages), [t["function"]["name"] for t in kwargs.get("tools", [])]))
        reply = self.respond(list(messages)) if self.respond else self.script.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            reply = answer(reply)
        return ChatResult(generations=[ChatGeneration(message=reply.model_copy(deep=True))])


def codegen_calls(model: ScriptedChatModel) -> list[Call]:
    return [c for c in model.calls if "Manim Community Edition" in str(c.messages[0].content)]


# ------------------------------------------------------------------------------------ jobs


def make_job(name: str = "demo", **spec: Any) -> VideoJob:
    render = {"quality": "low", "maxSceneAttempts": 3, "sceneTimeoutSeconds": 60, **spec.pop("render", {})}
    doc = {
        "apiVersion": "videogen.io/v1alpha1",
        "kind": "VideoJob",
        "metadata": {"name": name, "namespace": "tests", "uid": f"uid-{name}", "generation": spec.pop("generation", 1)},
        "spec": {"topic": "Circles", "render": render, **spec},
    }
    if not any(k in doc["spec"] for k in ("code", "storyboard", "prompt")):
        doc["spec"]["prompt"] = "Show a circle"
    return parse_videojob(doc)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ------------------------------------------------------------- OpenAI-compatible server


@dataclass
class Recorded:
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content")) for m in self.body.get("messages", []))


@dataclass
class Completion:
    content: str = ""
    prompt_tokens: int = 11
    completion_tokens: int = 7
    tool_calls: list[dict[str, Any]] | None = None
    delay: float = 0.0

    async def response(self, body: dict[str, Any]) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                for c in self.tool_calls
            ]
        return web.json_response(
            {
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if self.tool_calls else "stop"}],
                "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                          "total_tokens": self.prompt_tokens + self.completion_tokens},
            }
        )


@dataclass
class Status:
    status: int
    retry_after: str | None = "0"
    message: str = "try again"

    async def response(self, body: dict[str, Any]) -> web.Response:
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
        return web.json_response({"error": {"message": self.message, "type": "test"}}, status=self.status, headers=headers)


@dataclass
class Raw:
    """A 200 whose body is not a chat completion (a proxy's error page, a truncated body)."""

    body: str = "<html><body>502 Bad Gateway</body>"

    async def response(self, body: dict[str, Any]) -> web.Response:
        return web.Response(text=self.body, content_type="application/json")


class FakeOpenAI:
    """Replays scripted replies to POST /v1/chat/completions, in order (`script`) or by request
    (`respond(body) -> reply`), and records every request with its headers."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.respond: Callable[[dict[str, Any]], Any] | None = None
        self.requests: list[Recorded] = []
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.text())
        self.requests.append(Recorded(dict(request.headers), body))
        reply = self.respond(body) if self.respond else self.script.pop(0)
        return await reply.response(body)

    def for_model(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if r.body.get("model") == model]


@pytest.fixture
async def openai_server():
    server = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    server.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    try:
        yield server
    finally:
        await runner.cleanup()
