"""A Kubernetes API server for tests: `kmock.KubernetesEmulator` plus what Kopf and kubectl rely on.

KMock 0.8 keeps objects, serves discovery, lists, watch streams, merge/json patches and
finalizers, but it does not behave like an API server in the ways an operator depends on.
`KubeAPIServer` fills exactly those gaps, and nothing else:

- `metadata.resourceVersion`: an opaque token (`versions.ResourceVersions`: not a number, not
  in write order, as clients must assume), new on every real change (a no-op patch keeps it, as
  on a real server); a merge patch carrying a stale resourceVersion gets 409. Kopf's finalizer
  json-patch starts with `test /metadata/resourceVersion`: without it no handler ever runs.
  Watches resume from a resourceVersion out of a window of recent events (`versions.WatchWindow`,
  the watch cache); one too old (`compact()`) gets 410 Gone; `bookmark()` sends BOOKMARK
  events, `drop_watches()` ends every open watch (an API server restart, a load balancer's idle
  timeout). `order(token)` gives tests the write order behind a token.
- `metadata.uid`, `metadata.creationTimestamp`, `metadata.generation` (1 on create, +1 whenever
  anything outside metadata and status changes).
- `metadata.generateName` (Kopf's Events use it; a second Event would conflict without it).
- status as a subresource: PATCH on the object ignores `.status`; PATCH on `/status` changes
  only `.status`; create drops `.status`.
- a failed json-patch `test` op (or a bad path) is 422 Unprocessable, not 500.
- list responses carry `kind`/`apiVersion` and a real `metadata.resourceVersion`
  (kubectl needs `kind` to decode a list).
- discovery of `v1/namespaces`, `v1/events`, `v1/secrets`, `coordination.k8s.io/v1` `leases`
  (leader election) and the VideoJob CRD's group
  (Kopf waits for `v1/namespaces` even with `-A`).
- object history is trimmed to the last `history_limit` versions (KMock keeps every version
  of every object, which dominates memory in the 1,000-object benchmark).
- `workloads=True` serves `batch/v1` `jobs`, `v1` `pods` (both with a status subresource),
  `v1` `serviceaccounts`, `rolebindings` and `networkpolicies`, for the Job executor,
  with the part of the Job controller that refuses
  pods (`kube_controllers.JobController`: a FailedCreate Event and no pod when the pod's
  ServiceAccount does not exist). Nothing else runs a Job's pod, sets its conditions or
  garbage-collects by ownerReferences; tests (`tests/jobexec/conftest.py`'s `JobControl`) and
  the benchmark play the job controller and the kubelet with PATCHes on `/status`.
- field selectors on `metadata.*` and, for Events, `involvedObject.*`, `reason` and `type`.
- `admission`: checks run on every create; a refusal is a 403, as from a validating webhook.
- `kueue=True` (or `enable_kueue()`) emulates Kueue: its mutating webhook creates a Job naming a
  queue suspended, and its controller (`kube_controllers.KueueController`) gives the Job a
  Workload (`kueue.x-k8s.io/v1beta1` `workloads`), admits it (unsuspends the Job) and undoes
  anyone else's suspend of an admitted Job; `spec.active: false` on the Workload stops it.
- all annotations of an object share 256 KiB (keys and values, UTF-8 bytes), as on a real API
  server: a create or patch beyond that is 422 Invalid (`annotation_rejections` lists the
  (namespace, name, resourceVersion) each refused change was made against).
  Kopf keeps the whole spec in an annotation, so a large spec meets this.
- `requests_by_agent` counts requests by (User-Agent, verb, resource, subresource), so a test
  tells the operator's requests from its own; `watches` records each watch's resource and
  labelSelector.
- `GET /api/v1/namespaces/NAME` (a Namespace object; KMock misparses the path).
- lists honour equality-based `labelSelector`s and `Accept: ...;as=PartialObjectMetadataList`
  (metadata only), as a real API server does; the operator reads Secrets only through them.

Mutations (create, patch, delete) and reads (get, list) are therefore served here; watches and
discovery stay KMock's (its dispatch re-filters every request served so far for each new one, so a
read left to it costs O(requests): quadratic time in the 1,000-object benchmark). Everything runs on KMock's own lock, bus and object store, so `server.objects[...]`
and the watch streams see the same state.
"""

from __future__ import annotations

import collections
import copy
import datetime
import random
import string
import uuid
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
from kmock._internal import enums  # the action enum KMock's request parser produces

from tests.controller import versions as rv

VIDEOJOBS = "videogen.io/v1alpha1/videojobs"
ALL_VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
ANNOTATIONS_LIMIT = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB
FIELD_SELECTABLE = {"metadata", "involvedObject", "reason", "type"}  # fieldSelector paths served (Events' too)
WORKLOADS = {
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", singular="job", namespaced=True, verbs=ALL_VERBS, subresources={"status"}),
    "v1/pods": kmock.ResourceInfo(kind="Pod", singular="pod", namespaced=True, verbs=ALL_VERBS, subresources={"status"}),
    "v1/serviceaccounts": kmock.ResourceInfo(kind="ServiceAccount", singular="serviceaccount", namespaced=True,
                                             verbs=ALL_VERBS, shortnames={"sa"}),
    # The rest of a worker identity, which the operator makes in all-namespaces mode.
    "rbac.authorization.k8s.io/v1/rolebindings": kmock.ResourceInfo(
        kind="RoleBinding", singular="rolebinding", namespaced=True, verbs=ALL_VERBS),
    "networking.k8s.io/v1/networkpolicies": kmock.ResourceInfo(
        kind="NetworkPolicy", singular="networkpolicy", namespaced=True, verbs=ALL_VERBS, shortnames={"netpol"}),
}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={})


@attrs.define(kw_only=True)
class KubeAPIServer(rv.VersionedWatches, kmock.KubernetesEmulator):
    history_limit: int = 60
    crd: bool = True  # serve the VideoJob resource (False: as if the CRD were not installed)
    workloads: bool = False  # serve batch/v1 jobs and v1 pods (the Job executor)
    kueue: bool = False  # emulate Kueue's Job webhook (see _create)
    requests_by_agent: collections.Counter = attrs.field(factory=collections.Counter, init=False)
    watches: list = attrs.field(factory=list, init=False)  # (plural, labelSelector) of each watch request
    annotation_rejections: list = attrs.field(factory=list, init=False)
    # Emulated controllers (`changed(server, resource, old, new)` after every create and update,
    # under the lock): what a cluster does beside the API server, e.g. `kube_controllers.JobController`.
    controllers: list = attrs.field(factory=list)
    # Admission: `check(resource, body) -> refusal message | None` for every create through the
    # API; a refusal is 403 Forbidden, as a validating webhook's denial (or an admission plugin's).
    admission: list = attrs.field(factory=list)
    kueue_controller: Any = attrs.field(default=None, init=False)
    versions: rv.ResourceVersions = attrs.field(factory=rv.ResourceVersions, init=False)
    window: rv.WatchWindow = attrs.field(factory=rv.WatchWindow, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources["v1/namespaces"] = kmock.ResourceInfo(
            kind="Namespace", singular="namespace", namespaced=False, verbs=ALL_VERBS, shortnames={"ns"})
        self.resources["v1/events"] = kmock.ResourceInfo(
            kind="Event", singular="event", namespaced=True, verbs=ALL_VERBS, shortnames={"ev"})
        self.resources["v1/secrets"] = kmock.ResourceInfo(
            kind="Secret", singular="secret", namespaced=True, verbs=ALL_VERBS)
        self.resources["coordination.k8s.io/v1/leases"] = kmock.ResourceInfo(
            kind="Lease", singular="lease", namespaced=True, verbs=ALL_VERBS)
        if self.crd:
            self.resources[VIDEOJOBS] = kmock.ResourceInfo(
                kind="VideoJob", singular="videojob", namespaced=True, verbs=ALL_VERBS,
                shortnames={"vj"}, subresources={"status"})
        if self.workloads:
            for name, info in WORKLOADS.items():
                self.resources[name] = info
            from tests.controller.kube_controllers import JobController, KueueController

            self.controllers.append(JobController())
            self.kueue_controller = KueueController()
            self.controllers.append(self.kueue_controller)
            if self.kueue:
                self.enable_kueue()

    # ------------------------------------------------------------------------------ helpers

    def enable_kueue(self) -> None:
        """Kueue is installed: its webhook, its Workload CRD and its Job controller."""
        from tests.controller.kube_controllers import WORKLOAD_INFO, WORKLOADS

        self.kueue = True
        self.resources[WORKLOADS] = WORKLOAD_INFO

    def _next_rv(self) -> str:
        return self.versions.next()

    async def _emit(self, resource: Any, event: dict[str, Any]) -> None:
        """Publish a watch event of the write just made (the caller holds the lock)."""
        self.window.record(resource, self.versions.seq, event)
        await self._buses[resource].put(event)

    def _info(self, resource: Any) -> kmock.ResourceInfo | None:
        return self.resources[resource] if resource in self.resources else None

    def _has_status(self, resource: Any) -> bool:
        info = self._info(resource)
        return bool(info and "status" in info.subresources)

    def _check_annotations(self, meta: dict[str, Any], rv: str | None = None) -> None:
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in (meta.get("annotations") or {}).items())
        if size > ANNOTATIONS_LIMIT:
            self.annotation_rejections.append((meta.get("namespace"), meta.get("name"), rv))
            raise _error(422, "Invalid", f"metadata.annotations: Too long: must have at most {ANNOTATIONS_LIMIT} bytes")

    def _store(self, key: Any, body: dict[str, Any]) -> None:
        obj = self.objects[key]
        obj.history.append(body)
        if len(obj.history) > self.history_limit:
            del obj.history[: len(obj.history) - self.history_limit]

    # ---------------------------------------------------------------------------- dispatch

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        agent = str(request.headers.get("User-Agent") or "").split("/")[0]
        plural = request.resource.plural if request.resource is not None else "-"
        self.requests_by_agent[(agent, str(request.method).split(".")[-1].upper(), plural, request.subresource or "")] += 1
        if str(request.params.get("watch", "")).lower() in ("true", "1"):
            self.watches.append((plural, request.params.get("labelSelector")))
        if request.resource is not None and request.subresource in (None, "status"):
            if request.action == enums.action.CREATE and request.subresource is None:
                return await self._create(request)
            if request.action == enums.action.UPDATE and request.name:
                return await self._patch(request)
            if request.action == enums.action.DELETE and request.name:
                return await self._delete(request)
            if request.action in (enums.action.FETCH, enums.action.LIST) and request.resource.plural is None and request.namespace:
                return await self._get_namespace(request.namespace)
            # Reads are served here too: KMock's dispatch matches every request against its
            # reactions by re-filtering every request ever served (O(requests) each, so a
            # 1,000-object benchmark took quadratic time). No test adds reactions of its own.
            if request.action == enums.action.FETCH and request.name and request.subresource is None:
                return await self._fetch(request)
            if request.action == enums.action.LIST and request.resource.plural:
                return aiohttp.web.json_response(await self._serve_list(request))
        return await super()._handle(request)

    async def _fetch(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        info = self._info(request.resource)
        namespace = request.namespace if info is None or info.namespaced is not False else None
        async with self._lock:
            key = (request.resource, namespace, request.name)
            if key not in self.objects or self.objects[key].deleted:
                raise _error(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")
            return aiohttp.web.json_response(self.objects[key].raw)

    async def _get_namespace(self, name: str) -> aiohttp.web.StreamResponse:
        # KMock parses GET /api/v1/namespaces/NAME as "namespace NAME, no resource".
        async with self._lock:
            key = (kmock.resource("v1/namespaces"), None, name)
            if key not in self.objects or self.objects[key].deleted:
                raise _error(404, "NotFound", f"namespaces {name!r} not found")
            return aiohttp.web.json_response(copy.deepcopy(self.objects[key].raw))

    async def _create(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if not isinstance(request.data, dict):
            raise _error(400, "BadRequest", "the body must be a JSON object")
        body = copy.deepcopy(request.data)
        meta = body.setdefault("metadata", {})
        if self.kueue and request.resource.plural == "jobs" and (meta.get("labels") or {}).get(QUEUE_LABEL):
            # Kueue's mutating webhook creates every Job that names a queue suspended; Kueue
            # unsuspends it on admission (tests play that part).
            body.setdefault("spec", {})["suspend"] = True
        for check in self.admission:
            refusal = check(request.resource, body)
            if refusal:
                raise _error(403, "Forbidden", refusal)
        async with self._lock:
            body = await self.insert(request.resource, request.namespace, body)
        return aiohttp.web.json_response(body, status=201)

    async def insert(self, resource: Any, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object as the API server does (name, uid, resourceVersion, ADDED event); the
        caller holds the lock. Emulated controllers create their objects (Events) with it too."""
        meta = body.setdefault("metadata", {})
        info = self._info(resource)
        namespaced = info is None or info.namespaced is not False
        namespace = (namespace or meta.get("namespace")) if namespaced else None
        if namespaced:
            meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            while True:
                suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
                candidate = meta["generateName"] + suffix
                key = (resource, namespace, candidate)
                if key not in self.objects or self.objects[key].deleted:
                    meta["name"] = candidate
                    break
        if not meta.get("name"):
            raise _error(422, "Invalid", "metadata.name or metadata.generateName is required")
        self._check_annotations(meta)
        key = (resource, namespace, meta["name"])
        if key in self.objects and not self.objects[key].deleted:
            raise _error(409, "AlreadyExists", f"{resource.plural} {meta['name']!r} already exists")
        if self._has_status(resource):
            body.pop("status", None)
        meta.update(uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), generation=1, creationTimestamp=_now())
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(transient, None)
        if key in self.objects:
            self.objects[key].create(body)
        else:
            self.objects[key] = body
        await self._emit(resource, {"type": "ADDED", "object": copy.deepcopy(body)})
        for controller in self.controllers:
            await controller.changed(self, resource, None, body)
        return body

    async def update(self, resource: Any, key: Any, body: dict[str, Any]) -> dict[str, Any]:
        """Store a new version of an object as an emulated controller's write (a new
        resourceVersion, a MODIFIED event, the controllers told); the caller holds the lock."""
        old = copy.deepcopy(self.objects[key].raw)
        new = copy.deepcopy(body)
        content = lambda obj: {k: v for k, v in obj.items() if k not in ("metadata", "status")}  # noqa: E731
        if content(new) != content(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._store(key, new)
        await self._emit(resource, {"type": "MODIFIED", "object": copy.deepcopy(new)})
        for controller in self.controllers:
            await controller.changed(self, resource, old, new)
        return new

    async def remove(self, resource: Any, key: Any) -> None:
        """Delete an object at once as an emulated controller does (no finalizers); holds the lock."""
        body = copy.deepcopy(self.objects[key].raw)
        body["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key].delete()
        await self._emit(resource, {"type": "DELETED", "object": body})

    async def _patch(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                raise _error(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")
            old = copy.deepcopy(self.objects[key].raw)
            data = request.data
            if isinstance(data, list):
                try:
                    patched = jsonpatch.apply_patch(copy.deepcopy(old), data)
                except jsonpatch.JsonPatchTestFailed as exc:
                    raise _error(422, "Invalid", f"the json patch test failed: {exc}") from None
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                    raise _error(422, "Invalid", f"the json patch cannot be applied: {exc}") from None
            elif isinstance(data, dict):
                wanted_rv = (data.get("metadata") or {}).get("resourceVersion")
                if wanted_rv is not None and wanted_rv != old["metadata"].get("resourceVersion"):
                    raise _error(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again")
                patched = merge_patch(old, data)
            else:
                raise _error(400, "BadRequest", "the patch must be a JSON object or a JSON-patch list")

            new = self._admit(request, old, patched)
            self._check_annotations(new["metadata"], old["metadata"].get("resourceVersion"))
            if new == old:
                return aiohttp.web.json_response(old)
            new["metadata"]["resourceVersion"] = self._next_rv()
            meta = new["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                self._store(key, new)
                self.objects[key].delete()
                await self._emit(request.resource, {"type": "DELETED", "object": copy.deepcopy(new)})
            else:
                self._store(key, new)
                await self._emit(request.resource, {"type": "MODIFIED", "object": copy.deepcopy(new)})
                for controller in self.controllers:
                    await controller.changed(self, request.resource, old, new)
        return aiohttp.web.json_response(new)

    def _admit(self, request: kmock.Request, old: dict[str, Any], patched: dict[str, Any]) -> dict[str, Any]:
        """What the API server keeps of a patch: subresource split, server-owned metadata."""
        if self._has_status(request.resource):
            if request.subresource == "status":
                new = copy.deepcopy(old)
                if "status" in patched:
                    new["status"] = patched["status"]
                else:
                    new.pop("status", None)
                return new
            patched = dict(patched)
            if "status" in old:
                patched["status"] = old["status"]
            else:
                patched.pop("status", None)
        new = copy.deepcopy(patched)
        meta = new.setdefault("metadata", {})
        for owned in ("uid", "name", "namespace", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp"):
            if owned in old["metadata"]:
                meta[owned] = old["metadata"][owned]
            else:
                meta.pop(owned, None)
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)
        if not meta.get("annotations"):
            meta.pop("annotations", None)
        content = lambda body: {k: v for k, v in body.items() if k not in ("metadata", "status")}  # noqa: E731
        if content(new) != content(old):
            meta["generation"] = int(old["metadata"].get("generation") or 0) + 1
        return new

    async def _delete(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                raise _error(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")
            body = copy.deepcopy(self.objects[key].raw)
            meta = body["metadata"]
            if meta.get("finalizers"):
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = _now()
                    meta["resourceVersion"] = self._next_rv()
                    self._store(key, body)
                    await self._emit(request.resource, {"type": "MODIFIED", "object": copy.deepcopy(body)})
                return aiohttp.web.json_response(body, status=202)
            meta["resourceVersion"] = self._next_rv()
            self.objects[key].delete()
            await self._emit(request.resource, {"type": "DELETED", "object": copy.deepcopy(body)})
        return aiohttp.web.json_response(body)

    @staticmethod
    def _selected(request: kmock.Request, body: dict[str, Any]) -> bool:
        """Namespace, name, `metadata.name`/`metadata.namespace` field selectors, equality label selectors."""
        meta = body.get("metadata", {})
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        for term in filter(None, (request.params.get("fieldSelector") or "").split(",")):
            field, _, value = term.partition("=")
            if field.split(".")[0] not in FIELD_SELECTABLE:
                continue
            found: Any = body
            for part in field.split("."):
                found = found.get(part) if isinstance(found, dict) else None
            if str(found if found is not None else "") != value.lstrip("="):
                return False
        labels = meta.get("labels") or {}
        for term in filter(None, (request.params.get("labelSelector") or "").split(",")):
            # Equality-based terms: key=value, key==value, key!=value, key, !key.
            if "!=" in term:
                key, _, value = term.partition("!=")
                if labels.get(key.strip()) == value.strip():
                    return False
            elif "=" in term:
                key, _, value = term.partition("=")
                if labels.get(key.strip()) != value.lstrip("=").strip():
                    return False
            elif term.startswith("!"):
                if term[1:].strip() in labels:
                    return False
            elif term.strip() not in labels:
                return False
        return True

    async def release_kueue(self) -> None:
        """Kueue's queue admits again (see `KueueController.held`)."""
        async with self._lock:
            await self.kueue_controller.release(self)

    async def kueue_catch_up(self) -> None:
        """Kueue sees the Jobs made while it lagged (see `KueueController.lagging`)."""
        async with self._lock:
            await self.kueue_controller.catch_up(self)

    async def _serve_list(self, request: kmock.Request) -> Any:
        payload = await super()._serve_list(request)
        payload["items"] = [item for item in payload["items"] if self._selected(request, item)]
        info = self._info(request.resource)
        kind = info.kind if info and info.kind else (request.resource.plural or "").capitalize()
        group, version = request.resource.group, request.resource.version
        payload["apiVersion"] = f"{group}/{version}" if group else version
        payload["kind"] = f"{kind}List"
        payload["metadata"] = {"resourceVersion": self.versions.current()}
        payload["items"] = [
            {"apiVersion": payload["apiVersion"], "kind": kind, **item} for item in payload["items"]
        ]
        if "as=PartialObjectMetadataList" in (request.headers.get("Accept") or ""):
            # Metadata only, as a real API server answers this Accept header (no data, no spec).
            payload.update(apiVersion="meta.k8s.io/v1", kind="PartialObjectMetadataList")
            payload["items"] = [
                {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": item.get("metadata", {})}
                for item in payload["items"]
            ]
        return payload
