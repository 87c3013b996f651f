"""The real operator against an emulated Kubernetes API server (KMock), driven by real clients.

Fixtures:
- `apiserver`: `tests.controller.apiserver.KubeAPIServer` (a thin `kmock.KubernetesEmulator`
  subclass, the one emulator of every operator test) on 127.0.0.1 in its own thread and loop
  (`server_thread.ServerThread`), with a kubeconfig pointing at it.
- `operator`: a factory that starts the real operator (`run_operator`, i.e. Kopf with our
  handlers, settings and executor) in its own thread and event loop; stopped at teardown.
  `operator(wait=False)` does not wait for Kopf to be ready (a standby replica never is).
- `kube`: the official kubernetes client (CustomObjectsApi/CoreV1Api) talking to the emulator,
  with `wait`/`wait_phase`/`wait_events`: tests wait for what they assert (`tests/helpers.py`).

What KMock 0.8 / Kopf 1.45 lacked here, and the workaround (see `apiserver.py` for the code):
- no resourceVersion, uid, generation, creationTimestamp: Kopf's finalizer json-patch starts with
  `test /metadata/resourceVersion`, so without one no handler ever ran. The subclass serves
  create/patch/delete itself with opaque resourceVersion tokens (`versions.py`: not numbers,
  not in write order, as on any cluster clients must assume), 409 on a stale one, uid,
  creationTimestamp and generation bumps on changes outside metadata/status.
- no generateName: Kopf's own Events use it (the second Event conflicted). Implemented.
- status kept inside the object: implemented the status subresource split (PATCH on the object
  ignores .status, PATCH on /status changes only .status), which the operator relies on.
- a failed json-patch `test` op was a 500; Kopf expects 422 to retry on the next cycle. Fixed.
- list responses had no `kind` (kubectl cannot decode them) and a fake resourceVersion. Fixed.
- Kopf waits for `v1/namespaces` to be discoverable even with a fixed namespace: declared, along
  with `v1/events`, `v1/secrets` and the VideoJob resource (kind, short name, status subresource).
- `kopf.operator()` cancels every task created in its loop after it starts (pytest-asyncio's
  too), so the operator runs in its own thread and loop with `ready_flag`/`stop_flag`, and the
  API server in a third thread; tests are plain synchronous functions using blocking clients.
- KMock keeps every version of every object; the subclass trims history (`history_limit`) but
  keeps enough for tests to read the sequence of status writes.
- KMock ignores watch `timeoutSeconds`; Kopf's client-side watch timeout still ends streams.
- KMock's watch subscribed to its event bus only after streaming the existing objects, so an
  event caused by a client reacting to those (Kopf adding its finalizer) was lost and the object
  was never handled. The subclass marks the bus and snapshots under one lock, and honours
  `?resourceVersion=` (no duplicate ADDED events after a list) and `metadata.name` field
  selectors (`kubectl wait`).
- KMock's path parser fails (500) on `GET /api/v1/namespaces` (a cluster-scoped list), which
  Kopf sends with `-n NS` when scanning namespaces. The operator disables scanning for literal
  namespace names (it needs no namespace RBAC then); the benchmark's minimal Kopf operator runs
  with `--all-namespaces`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import kubernetes
import pytest

from tests.controller.server_thread import ServerThread
from tests.helpers import condition, free_port, status_writes, wait_until  # noqa: F401  (shared helpers)
from videojob.config import Settings
from videojob.controller.main import OperatorOptions, run_operator

GROUP, VERSION, PLURAL = "videogen.io", "v1alpha1", "videojobs"
NAMESPACE = "default"

# One short Manim scene; renders in about a second at low quality.
SCENE = """from manim import *

class Hello(Scene):
    def construct(self):
        self.play(Create(Circle()), run_time={seconds})
"""


def scene_code(seconds: float = 1) -> str:
    return SCENE.format(seconds=seconds)


# A scene that takes real time to render (about a fifth of its length at low quality).
SLOW_SCENE = """

class Slow(Scene):
    def construct(self):
        rings = VGroup(*[Circle(radius=0.1 * i) for i in range(1, 40)])
        self.play(Rotate(rings, angle=6.28), run_time={seconds})
"""


def slow_scene_code(seconds: float = 60) -> str:
    """A quick first scene, then a slow second one."""
    return scene_code(1) + SLOW_SCENE.format(seconds=seconds)


class OperatorThread:
    """The operator (Kopf + our handlers) in a thread with its own event loop."""

    def __init__(self, settings: Settings, options: OperatorOptions):
        self.settings = settings
        self.options = options
        self.ready = threading.Event()
        self.stop_flag = threading.Event()
        self.controller: Any = None
        self.metrics: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="operator", daemon=True)

    def _started(self, controller: Any, metrics: Any) -> None:
        self.controller, self.metrics = controller, metrics

    def _main(self) -> None:
        try:
            asyncio.run(run_operator(self.options, self.settings, ready_flag=self.ready,
                                     stop_flag=self.stop_flag, on_started=self._started))
        except BaseException as exc:  # surfaced by start()/stop()
            self.error = exc
            self.ready.set()

    def start(self, *, wait: bool = True) -> "OperatorThread":
        """Start; with `wait`, until Kopf is ready (a standby replica never is until it leads)."""
        self._thread.start()
        if not wait:
            return self
        if not self.ready.wait(60):
            raise RuntimeError("the operator did not become ready")
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self.stop_flag.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the operator did not stop"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics.port}/metrics"

    @property
    def liveness_url(self) -> str:
        return f"http://127.0.0.1:{self.options.liveness_port}/healthz"


@pytest.fixture()
def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh emulated API server (KMock + `KubeAPIServer`, see this module's docstring for what
    it adds and why) with namespace `default`, and KUBECONFIG pointing at it."""
    yield from serve_api(ServerThread(), tmp_path, monkeypatch)


def serve_api(thread: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run an emulated API server thread with namespace `default`, KUBECONFIG pointing at it."""
    with thread as server:
        server.call(_add_namespace, NAMESPACE)
        kubeconfig = tmp_path / "kubeconfig"
        server.write_kubeconfig(kubeconfig)
        server.kubeconfig = kubeconfig
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        yield server


def _add_namespace(server: Any, name: str) -> None:
    server.objects["v1/namespaces", None, name] = {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": f"ns-{name}", "resourceVersion": "1"},
    }


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture()
def operator(apiserver: ServerThread, workdir: Path):
    """`operator(**settings)` starts an operator; all are stopped at teardown."""
    started: list[OperatorThread] = []

    def start(*, namespaces: list[str] | None = None, wait: bool = True, options: dict[str, Any] | None = None,
              **overrides: Any) -> OperatorThread:
        settings = Settings(**{"workdir": workdir, "max_concurrent_jobs": 2, "scene_parallelism": 1, **overrides})
        chosen = OperatorOptions(
            namespaces=[NAMESPACE] if namespaces is None else namespaces,
            metrics_port=0, liveness_port=free_port(), host="127.0.0.1", **(options or {}),
        )
        op = OperatorThread(settings, chosen).start(wait=wait)
        started.append(op)
        return op

    yield start
    for op in started:
        if op._thread.is_alive():
            op.stop()


class Kube:
    """Blocking helpers over the official client, as a user's script would use it."""

    def __init__(self, url: str):
        config = kubernetes.client.Configuration()
        config.host = url
        config.api_key = {"authorization": "Bearer test-token"}
        self.client = kubernetes.client.ApiClient(config)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)

    def create(self, name: str, spec: dict[str, Any], namespace: str = NAMESPACE) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob", "metadata": {"name": name}, "spec": spec}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def get(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def exists(self, name: str, namespace: str = NAMESPACE) -> bool:
        try:
            self.get(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def patch_spec(self, name: str, spec: dict[str, Any], namespace: str = NAMESPACE) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}, _content_type="application/merge-patch+json"
        )

    def delete(self, name: str, namespace: str = NAMESPACE) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def events(self, name: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_event(namespace).items
        return [
            {"type": e.type, "reason": e.reason, "message": e.message, "component": e.source.component if e.source else None}
            for e in items
            if e.involved_object and e.involved_object.name == name
        ]

    def status(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        return self.get(name, namespace).get("status") or {}

    def wait(self, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 90, namespace: str = NAMESPACE) -> dict[str, Any]:
        """Poll until `predicate(object)` holds; returns the object."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                last = self.get(name, namespace)
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise
                last = {}
            if predicate(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"{name}: condition not reached in {timeout}s; last status: {last.get('status')}")

    def wait_phase(self, name: str, *phases: str, timeout: float = 90) -> dict[str, Any]:
        return self.wait(name, lambda obj: (obj.get("status") or {}).get("phase") in phases, timeout)

    def wait_events(
        self, name: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 30, namespace: str = NAMESPACE
    ) -> list[dict[str, Any]]:
        """Poll until `predicate(events about the object)` holds; returns the events. An Event is
        posted after the status write it explains: read status first, then wait for its Event."""
        found: list[dict[str, Any]] = []

        def ready() -> bool:
            nonlocal found
            found = self.events(name, namespace)
            return predicate(found)

        try:
            wait_until(ready, timeout, f"{name}: Events")
        except AssertionError:
            raise AssertionError(f"{name}: Events not as expected in {timeout}s: {[e['reason'] for e in found]}") from None
        return found


@pytest.fixture()
def kube(apiserver: ServerThread) -> Kube:
    client = Kube(apiserver.url)
    yield client
    client.client.close()
