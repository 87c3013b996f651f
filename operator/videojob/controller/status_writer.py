"""Throttled status writes for one VideoJob: at most one PATCH per second, plus prompt writes at
stage and phase changes (DESIGN.md: "progress writes are throttled").

The writer does not hold a copy of the status: it asks `source()` for the current one when it
actually writes, so ten progress events inside one second cost one PATCH. Every write sends the
whole status, and null for any field the previous write (or the object) had and this one has not:
a JSON merge patch would otherwise keep, say, last generation's `completionTime`.

Ownership: two processes write one status in Job mode (the worker, and the operator for what
the worker cannot report), and a merge patch alone lets the last writer win, so a stopping
worker's `Running` could land after the operator's `Suspended`. Every write therefore carries
the resourceVersion the writer last saw (`metadata.resourceVersion` in the patch: the API server
answers 409 Conflict if the object changed since). On a conflict the writer reads the object
and asks its `on_conflict(current_status, last_written)` what to do: True, write again on top
of it (the source may have rebuilt its status from `current_status` meanwhile); False, the status
belongs to someone else now: stop writing (`yielded`). Without `on_conflict` it writes again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Protocol

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0  # seconds between throttled writes of one job
COALESCE = 0.05  # an "important" write waits this long, so a stage end and the next start go together
RETRY_AFTER = 2.0  # after a failed PATCH


MAX_CONFLICTS = 5  # conflicts in a row before the write is retried later like any failure
Conflict = Callable[[dict[str, Any], dict[str, Any]], bool]


class StatusSink(Protocol):
    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any] | None: ...

    async def read_videojob(self, namespace: str, name: str) -> dict[str, Any] | None: ...


def is_conflict(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == 409


def nulls_for_removed(old: Any, new: Any) -> Any:
    """`new`, plus None for every key of `old` (recursively, in dicts) that `new` lacks."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        out[key] = nulls_for_removed(old.get(key), value)
    return out


class StatusWriter:
    def __init__(
        self,
        sink: StatusSink,
        namespace: str,
        name: str,
        source: Callable[[], dict[str, Any] | None],
        *,
        previous: dict[str, Any] | None = None,
        resource_version: str | None = None,
        on_conflict: Conflict | None = None,
        min_interval: float = MIN_INTERVAL,
        coalesce: float = COALESCE,
    ):
        """`previous`/`resource_version`: the object as the writer's owner last read it (None:
        the first write is unconditional)."""
        self.sink = sink
        self.namespace = namespace
        self.name = name
        self.source = source
        self.min_interval = min_interval
        self.coalesce = coalesce
        self.patches = 0  # PATCH requests sent (for the benchmark and tests)
        self.gone = False  # the object was deleted: stop writing
        self.yielded = False  # someone else owns the status now: stop writing
        self.conflicts = 0  # 409s met (for tests and the benchmark)
        self.on_conflict = on_conflict
        self._rv = resource_version
        self._written: dict[str, Any] = dict(previous or {})
        self._last_write = float("-inf")
        self._due: float | None = None
        # Made with the loop task: most writers only ever flush (an Event costs ~0.7 KB, and an
        # operator holds a writer per live VideoJob).
        self._wake: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------------------ public

    @property
    def stopped(self) -> bool:
        return self.gone or self.yielded

    @property
    def pending(self) -> bool:
        """A write is still due (throttled, or to be retried after a failed PATCH)."""
        return self._due is not None and not self.stopped

    def update(self, *, important: bool = False) -> None:
        """The status changed; write it soon (important) or within the throttle interval."""
        if self.stopped:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = now + self.coalesce if important else max(now + self.coalesce, self._last_write + self.min_interval)
        if self._due is None or due < self._due:
            self._due = due
            self._poke()
        self._start_loop()

    async def flush(self) -> None:
        """Write the current status now (phase changes, the end of a run)."""
        self._due = None
        await self._write()

    def rebase(self, status: dict[str, Any], resource_version: str | None = None) -> None:
        """The object's status as just read: the next write clears relative to it (and, given its
        resourceVersion, is refused if the object changed since)."""
        self._written = dict(status)
        if resource_version is not None:
            self._rv = resource_version

    async def close(self, *, flush: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if flush and self._due is not None:
            await self.flush()

    # ----------------------------------------------------------------------------- private

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _start_loop(self) -> None:
        if self._task is None:
            self._wake = self._wake or asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name=f"status-writer:{self.namespace}/{self.name}")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None  # made with the task
        while not self.stopped:
            if self._due is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self._due - loop.time()
            if delay > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            self._due = None
            await self._write()

    async def _write(self) -> None:
        async with self._lock:
            for _ in range(MAX_CONFLICTS):
                if self.stopped:
                    return
                status = self.source()
                if status is None:  # the source has nothing to say any more (a cancelled run)
                    return
                try:
                    result = await self._patch(status)
                except Exception as exc:
                    if not is_conflict(exc):
                        self._retry_later(exc)
                        return
                    try:
                        if await self._resolve_conflict():
                            continue
                    except Exception as read_failed:
                        self._retry_later(read_failed)
                    return
                if result is None:
                    self.gone = True
                    return
                self._written = status
                self._rv = ((result.get("metadata") or {}).get("resourceVersion")) or None
                return
            self._retry_later(RuntimeError(f"{MAX_CONFLICTS} conflicting writes in a row"))

    async def _patch(self, status: dict[str, Any]) -> dict[str, Any] | None:
        body = nulls_for_removed(self._written, status)
        self._last_write = asyncio.get_running_loop().time()
        self.patches += 1
        if self._rv is None:  # sinks without preconditions (tests' fakes) take three arguments
            return await self.sink.patch_status(self.namespace, self.name, body)
        return await self.sink.patch_status(self.namespace, self.name, body, self._rv)

    async def _resolve_conflict(self) -> bool:
        """The object changed since we last saw it: True to write again on top of it."""
        self.conflicts += 1
        current = await self.sink.read_videojob(self.namespace, self.name)
        if current is None:
            self.gone = True
            return False
        status = current.get("status") or {}
        keep = self.on_conflict(status, self._written) if self.on_conflict is not None else True
        self.rebase(status, (current.get("metadata") or {}).get("resourceVersion"))
        if not keep:
            log.info("status of %s/%s is written by someone else now; this writer stops", self.namespace, self.name)
            self.yielded = True
        return keep

    def _retry_later(self, exc: BaseException) -> None:
        """The API server is down or refused: keep the run going, write again in a while."""
        log.warning("status write for %s/%s failed: %s", self.namespace, self.name, exc)
        loop = asyncio.get_running_loop()
        retry = loop.time() + RETRY_AFTER
        self._due = retry if self._due is None else min(self._due, retry)
        self._poke()
        self._start_loop()
