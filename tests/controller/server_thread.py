"""`ServerThread`: the emulated API server (`apiserver.KubeAPIServer`) on 127.0.0.1 in its own
thread and event loop, with helpers to read its state from a test."""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from typing import Any

import kmock

from tests.controller.apiserver import VIDEOJOBS, KubeAPIServer


class ServerThread:
    """Runs a `KubeAPIServer` on 127.0.0.1 in its own thread and event loop.

    Tests and the operator both talk to it over HTTP, so neither shares a loop with it:
    synchronous clients (kubernetes, kubectl) work from the test body without `to_thread`.
    """

    def __init__(self, **options: Any):
        self.options = options
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: KubeAPIServer | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="kube-apiserver", daemon=True)

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the emulated API server did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.loop and self._stop:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _main(self) -> None:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with KubeAPIServer(**self.options) as handler, kmock.Server(handler) as server:
            self.server = handler
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(server, *args)` on the server's loop (where its state may be read safely)."""

        async def _call() -> Any:
            async with self.server._lock:
                return fn(self.server, *args)

        return asyncio.run_coroutine_threadsafe(_call(), self.loop).result(30)

    def run(self, method: str) -> Any:
        """Await the server's coroutine method `method` (`compact`, `bookmark`, `drop_watches`)."""
        return asyncio.run_coroutine_threadsafe(getattr(self.server, method)(), self.loop).result(30)

    def write_order(self, version: dict[str, Any]) -> int:
        """Where a stored version of an object stands in the server's write sequence: the order
        behind its opaque resourceVersion, which only the server knows."""
        order = self.call(lambda server: server.order(version["metadata"]["resourceVersion"]))
        assert order is not None, "a resourceVersion this server did not issue"
        return order

    def history(self, namespace: str, name: str, resource: str = VIDEOJOBS) -> list[dict[str, Any]]:
        """Every stored version of one object (oldest first), as plain dicts."""

        def _read(server: KubeAPIServer) -> list[dict[str, Any]]:
            key = (kmock.resource(resource), namespace, name)
            if key not in server.objects:
                return []
            return [copy.deepcopy(dict(v.raw)) for v in server.objects[key].history if v is not None]

        return self.call(_read)

    def status_patches(self, namespace: str, name: str) -> int:
        """How many PATCH requests hit this object's /status subresource."""

        def _count(server: KubeAPIServer) -> int:
            return sum(
                1 for r in server._requests
                if str(getattr(r.method, "value", r.method)).upper() == "PATCH"
                and r.subresource == "status" and r.name == name and r.namespace == namespace
            )

        return self.call(_count)

    def write_kubeconfig(self, path: Any) -> None:
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: emulator\n"
            f"clusters:\n- name: emulator\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: tester\n  user:\n    token: test-token\n"
            "contexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: tester\n    namespace: default\n"
        )
