"""The controller tests' emulated API server (`tests/controller/apiserver.py`) plus what the Job
executor needs. Used by `tests/jobexec/conftest.py` and `bench/job_executor.py`.

- `batch/v1` `jobs` and `v1` `pods` are declared for discovery, both with a status subresource,
  so a test marks a Job Failed or a pod OOMKilled the way the job controller and the kubelet do:
  a PATCH on `/status`. KMock has no controllers: nothing runs a Job's pod, sets its conditions
  or garbage-collects by ownerReferences; tests and the benchmark play those parts.
- KMock's watch replays every existing object as ADDED even when the watch starts from the
  resourceVersion of a list (Kopf lists, then watches from there). An object created just before
  the operator's list was then seen twice at the same resourceVersion; Kopf's second finalizer
  patch failed its `test` op (422) and, now and then, the create handler never ran.
  `JobsAPIServer` drops replayed ADDED events at or below the requested resourceVersion, as a
  real API server never sends them.
- KMock ignores `labelSelector`; the executor filters pods by their job-name label itself.
- `kueue = True` emulates Kueue's webhook: Jobs naming a queue are created suspended.
- `requests_by_agent` counts requests by User-Agent prefix (the benchmark tells the operator's
  requests from its own); `watches` records each watch request's resource and labelSelector.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import attrs
import kmock

from tests.controller.apiserver import ALL_VERBS, KubeAPIServer, ServerThread

JOB_RESOURCES = {
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", singular="job", namespaced=True, verbs=ALL_VERBS, subresources={"status"}),
    "v1/pods": kmock.ResourceInfo(kind="Pod", singular="pod", namespaced=True, verbs=ALL_VERBS, subresources={"status"}),
}


@attrs.define(kw_only=True)
class JobsAPIServer(KubeAPIServer):
    requests_by_agent: collections.Counter = attrs.field(factory=collections.Counter, init=False)
    watches: list = attrs.field(factory=list, init=False)  # (plural, labelSelector) of each watch request
    kueue: bool = attrs.field(default=False, init=False)  # emulate Kueue's Job webhook (see _create)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for name, info in JOB_RESOURCES.items():
            self.resources[name] = info

    async def _handle(self, request: kmock.Request) -> Any:
        agent = str(request.headers.get("User-Agent") or "").split("/")[0]
        resource = request.resource.plural if request.resource is not None else "-"
        self.requests_by_agent[(agent, str(request.method).split(".")[-1].upper(), resource, request.subresource or "")] += 1
        if str(request.params.get("watch", "")).lower() in ("true", "1"):
            self.watches.append((resource, request.params.get("labelSelector")))
        return await super()._handle(request)

    async def _create(self, request: kmock.Request) -> Any:
        # Kueue's mutating webhook creates every Job that names a queue suspended; Kueue unsuspends
        # it on admission (tests play that part).
        if self.kueue and request.resource is not None and request.resource.plural == "jobs" and isinstance(request.data, dict):
            labels = (request.data.get("metadata") or {}).get("labels") or {}
            if labels.get("kueue.x-k8s.io/queue-name"):
                request.data.setdefault("spec", {})["suspend"] = True
        return await super()._create(request)

    async def _serve_watch(self, request: kmock.Request) -> Any:
        since = str(request.params.get("resourceVersion") or "")
        async for item in super()._serve_watch(request):
            if since.isdigit() and isinstance(item, dict) and item.get("type") == "ADDED":
                rv = str(((item.get("object") or {}).get("metadata") or {}).get("resourceVersion") or "")
                if rv.isdigit() and int(rv) <= int(since):
                    continue  # already in the list the watcher started from
            yield item


class JobsServerThread(ServerThread):
    """`ServerThread` serving a `JobsAPIServer`."""

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with JobsAPIServer(**self.options) as handler, kmock.Server(handler) as server:
            self.server = handler
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
