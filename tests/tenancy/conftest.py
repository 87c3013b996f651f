"""Fixtures for the tenancy tests: the real operator against the emulated API server (from
tests/controller), tenants' namespaces, and a local OpenAI-compatible listener (tests/llm's
`FakeOpenAI`) served from its own thread, since these tests are synchronous like a user's script.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
from aiohttp import web

from tests.controller.conftest import apiserver, kube, operator, workdir  # noqa: F401 - shared fixtures
from tests.llm.conftest import Completion, FakeOpenAI, fenced, good_code, plan_json

OPERATOR_KEY = "sk-operator-7c1d9e2f4a6b8c0d"  # the platform's own key, in the operator's environment
TENANT_KEY = "sk-team-a-3e5f7a9b1c2d4e6f"
CREDENTIALS_LABEL = {"videogen.io/credentials": "true"}


class ListenerThread:
    """A FakeOpenAI (POST /v1/chat/completions, every request recorded with its headers) on
    127.0.0.1 in its own thread and event loop."""

    def __init__(self) -> None:
        self.api = FakeOpenAI()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="openai-listener", daemon=True)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.api.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        self.api.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        assert self._ready.wait(30), "the listener did not start"
        return self.api

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def answer_videojob_prompts(body: dict[str, Any], *, plan_tokens: tuple[int, int] = (11, 7)) -> Completion:
    """What a helpful model answers the pipeline: a one-scene plan, then a scene that renders."""
    prompt = "\n".join(str(m.get("content")) for m in body.get("messages", []))
    if "plan short educational videos" in prompt:
        return Completion(plan_json("A circle", duration=1), prompt_tokens=plan_tokens[0], completion_tokens=plan_tokens[1])
    return Completion(fenced(good_code()))


@pytest.fixture()
def listener():
    with ListenerThread() as api:
        api.respond = answer_videojob_prompts
        yield api


def add_namespace(apiserver: Any, name: str, annotations: dict[str, str] | None = None) -> None:
    """Create (or replace) a Namespace in the emulated API server, as a cluster admin would."""
    meta: dict[str, Any] = {"name": name, "uid": f"ns-{name}", "resourceVersion": "1"}
    if annotations:
        meta["annotations"] = annotations

    def _put(server: Any) -> None:
        server.objects["v1/namespaces", None, name] = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}

    apiserver.call(_put)


def secret_requests(apiserver: Any, namespace: str) -> list[dict[str, Any]]:
    """Every request the API server received for Secrets in `namespace`."""

    def _read(server: Any) -> list[dict[str, Any]]:
        return [
            {"method": str(getattr(r.method, "value", r.method)).upper(), "name": r.name, "params": dict(r.params),
             "accept": (r.headers or {}).get("Accept", "")}
            for r in server._requests
            if r.resource is not None and r.resource.plural == "secrets" and r.namespace == namespace
        ]

    return apiserver.call(_read)
