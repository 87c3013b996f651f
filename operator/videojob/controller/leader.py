"""Lease-based leader election (coordination.k8s.io/v1), for more than one operator replica.

Two operators watching the same VideoJobs would both run them (and a partitioned pod replaced by
its ReplicaSet is two operators for a while). With VIDEOJOB_LEADER_ELECTION=true an operator
handles nothing until it holds the Lease `videojob-operator` (in POD_NAMESPACE), as client-go's
leaderelection does:

- acquire: create the Lease, or take it over when it has no holder or its holder has not renewed
  it for `lease_seconds` (measured on this side's clock, from when the record last changed, so
  clock skew between nodes does not matter); every write carries the resourceVersion it read,
  so of two candidates exactly one wins;
- hold: renew every `renew_seconds`; when renewing has failed for `lease_seconds` (or someone
  else holds the Lease), leadership is lost and the operator stops (its pod restarts and
  stands by), before another candidate can take over;
- release: on a clean stop the Lease is handed back (no holder), so a standby takes over at its
  next try instead of after the lease duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp.web
import kubernetes
from kubernetes.client.rest import ApiException

from videojob.controller.kube import MERGE_PATCH, api_call

log = logging.getLogger(__name__)

LEASE_NAME = "videojob-operator"


def _now() -> str:
    """MicroTime, as Lease timestamps are written."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        namespace: str,
        identity: str,
        *,
        name: str = LEASE_NAME,
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
        retry_seconds: float = 2.0,
    ):
        self.api = kubernetes.client.CoordinationV1Api(api_client)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_seconds, self.renew_seconds, self.retry_seconds = lease_seconds, renew_seconds, retry_seconds
        self._observed: tuple[Any, ...] | None = None  # (holder, renewTime, transitions) last seen
        self._observed_at = 0.0  # monotonic time it last changed
        self._rv: str | None = None

    # ------------------------------------------------------------------------------ public

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this operator holds the Lease (True), or `stop` is set (False)."""
        while not stop.is_set():
            try:
                if await self._try_acquire():
                    log.info("leader election: %s holds Lease %s/%s", self.identity, self.namespace, self.name)
                    return True
            except ApiException as exc:
                log.warning("leader election: Lease %s/%s: HTTP %s", self.namespace, self.name, exc.status)
            try:
                await asyncio.wait_for(stop.wait(), self.retry_seconds)
            except asyncio.TimeoutError:
                pass
        return False

    async def hold(self, stop: asyncio.Event) -> None:
        """Renew the Lease until `stop` is set (then release it) or leadership is lost (return)."""
        renewed = time.monotonic()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.renew_seconds)
                break
            except asyncio.TimeoutError:
                pass
            try:
                if await self._renew():
                    renewed = time.monotonic()
                    continue
                log.error("leader election: Lease %s/%s is held by someone else now", self.namespace, self.name)
                return
            except ApiException as exc:
                log.warning("leader election: cannot renew Lease %s/%s: HTTP %s", self.namespace, self.name, exc.status)
            if time.monotonic() - renewed >= self.lease_seconds:
                log.error("leader election: Lease %s/%s not renewed for %gs; stepping down",
                          self.namespace, self.name, self.lease_seconds)
                return
        await self._release()

    # ----------------------------------------------------------------------------- private

    async def _read(self) -> dict[str, Any] | None:
        try:
            lease = await api_call(self.api.read_namespaced_lease, self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        body: dict[str, Any] = self.api.api_client.sanitize_for_serialization(lease)
        spec = body.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        self._rv = (body.get("metadata") or {}).get("resourceVersion")
        return body

    async def _try_acquire(self) -> bool:
        lease = await self._read()
        now = _now()
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_seconds),
                "acquireTime": now, "renewTime": now}
        if lease is None:
            body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": {**spec, "leaseTransitions": 0}}
            try:
                await api_call(self.api.create_namespaced_lease, self.namespace, body)
                return True
            except ApiException as exc:
                if exc.status == 409:  # another candidate created it first
                    return False
                raise
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        expired = time.monotonic() - self._observed_at >= float(current.get("leaseDurationSeconds") or self.lease_seconds)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(current.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        return await self._patch({**spec, "leaseTransitions": transitions})

    async def _renew(self) -> bool:
        lease = await self._read()
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return False
        return await self._patch({"renewTime": _now()})

    async def _release(self) -> None:
        try:
            lease = await self._read()
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                await self._patch({"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": _now()})
        except ApiException as exc:  # the standby takes over after the lease duration instead
            log.warning("leader election: cannot release Lease %s/%s: HTTP %s", self.namespace, self.name, exc.status)

    async def _patch(self, spec: dict[str, Any]) -> bool:
        """Write `spec` only if the Lease is still as we read it; False if someone wrote first."""
        body = {"metadata": {"resourceVersion": self._rv}, "spec": spec}
        try:
            await api_call(
                self.api.patch_namespaced_lease, self.name, self.namespace, body, _content_type=MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True


class LeadershipLost(RuntimeError):
    """The Lease was lost while the operator ran: it stopped so that another replica leads."""


async def lead(
    elector: LeaseElector,
    work: Callable[[asyncio.Event], Awaitable[None]],
    *,
    stop_flag: Any = None,
    liveness: tuple[str, int] | None = None,
) -> None:
    """Run `work(stop)` while this operator holds the Lease; stand by until then (answering
    liveness probes on `liveness`, so a standby pod is not restarted for waiting). Returns when
    `stop_flag` is set; raises LeadershipLost if the Lease was lost (`stop` is set first)."""
    stop = asyncio.Event()
    follower = asyncio.create_task(_follow(stop_flag, stop))
    try:
        async with _standby_liveness(liveness):
            if not await elector.acquire(stop):
                return
        lost = asyncio.Event()

        def ended(_task: asyncio.Task) -> None:
            if not stop.is_set():  # hold() returned on its own: the Lease is gone
                lost.set()
                stop.set()

        holding = asyncio.create_task(elector.hold(stop))
        holding.add_done_callback(ended)
        try:
            await work(stop)
        finally:
            stop.set()
            await holding  # releases the Lease on a clean stop
        if lost.is_set():
            raise LeadershipLost(f"lost Lease {elector.namespace}/{elector.name}; stopping so that another replica leads")
    finally:
        follower.cancel()


async def _follow(flag: Any, stop: asyncio.Event) -> None:
    """Set `stop` when the caller's stop flag (asyncio or threading Event, or None) is set."""
    if flag is None:
        return
    if isinstance(flag, asyncio.Event):
        await flag.wait()
    else:
        while not flag.is_set():  # a threading.Event: waiting in a thread would outlive the loop
            await asyncio.sleep(0.1)
    stop.set()


@contextlib.asynccontextmanager
async def _standby_liveness(where: tuple[str, int] | None) -> AsyncIterator[None]:
    """/healthz answers 200 while standing by; Kopf serves it once this operator leads."""
    if where is None:
        yield
        return
    app = aiohttp.web.Application()
    app.router.add_get("/healthz", lambda _request: aiohttp.web.json_response({"standby": True}))
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, where[0], where[1]).start()
    try:
        yield
    finally:
        await runner.cleanup()
