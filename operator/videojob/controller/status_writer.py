"""Throttled status writes for one VideoJob: at most one PATCH per second, plus prompt writes at
stage and phase changes (DESIGN.md: "progress writes are throttled").

The writer does not hold a copy of the status: it asks `source()` for the current one when it
actually writes, so ten progress events inside one second cost one PATCH. Every write sends the
whole status, and null for any field the previous write (or the object) had and this one has not:
a JSON merge patch would otherwise keep, say, last generation's `completionTime`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Protocol

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0  # seconds between throttled writes of one job
COALESCE = 0.05  # an "important" write waits this long, so a stage end and the next start go together
RETRY_AFTER = 2.0  # after a failed PATCH


class StatusSink(Protocol):
    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any] | None: ...


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
        min_interval: float = MIN_INTERVAL,
        coalesce: float = COALESCE,
    ):
        self.sink = sink
        self.namespace = namespace
        self.name = name
        self.source = source
        self.min_interval = min_interval
        self.coalesce = coalesce
        self.patches = 0  # PATCH requests sent (for the benchmark and tests)
        self.gone = False  # the object was deleted: stop writing
        self._written: dict[str, Any] = dict(previous or {})
        self._last_write = float("-inf")
        self._due: float | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------------------ public

    def update(self, *, important: bool = False) -> None:
        """The status changed; write it soon (important) or within the throttle interval."""
        if self.gone:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = now + self.coalesce if important else max(now + self.coalesce, self._last_write + self.min_interval)
        if self._due is None or due < self._due:
            self._due = due
            self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"status-writer:{self.namespace}/{self.name}")

    async def flush(self) -> None:
        """Write the current status now (phase changes, the end of a run)."""
        self._due = None
        await self._write()

    def rebase(self, status: dict[str, Any]) -> None:
        """The object's status as just read: the next write clears relative to it."""
        self._written = dict(status)

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

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.gone:
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
        if self.gone:
            return
        async with self._lock:
            status = self.source()
            if status is None:  # the source has nothing to say any more (a cancelled run)
                return
            body = nulls_for_removed(self._written, status)
            loop = asyncio.get_running_loop()
            self._last_write = loop.time()
            self.patches += 1
            try:
                result = await self.sink.patch_status(self.namespace, self.name, body)
            except Exception as exc:  # the API server is down or refused: keep the run going
                log.warning("status write for %s/%s failed: %s", self.namespace, self.name, exc)
                retry = loop.time() + RETRY_AFTER
                self._due = retry if self._due is None else min(self._due, retry)
                self._wake.set()
                if self._task is None:
                    self._task = asyncio.create_task(self._loop())
                return
            if result is None:
                self.gone = True
                return
            self._written = status
