"""A counting semaphore that hands free slots out in queue-key order (creation time), then arrival.

asyncio.Semaphore wakes waiters in arrival order; the operator wants creation order, which
differs after a restart (objects come back in list order) and when a spec edit re-queues a job.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any


class FairSlots:
    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.busy = 0
        self._waiters: list[tuple[Any, int, asyncio.Future]] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    def try_acquire(self) -> bool:
        """Take a slot at once if one is free and nobody is waiting for it."""
        if self.busy < self.limit and not self.waiting:
            self.busy += 1
            return True
        return False

    def enqueue(self, key: Any) -> asyncio.Future:
        """Take a place in line now; the future resolves when the slot is ours."""
        fut = asyncio.get_running_loop().create_future()
        if self.try_acquire():
            fut.set_result(None)
        else:
            heapq.heappush(self._waiters, (key, next(self._seq), fut))
        return fut

    def withdraw(self, fut: asyncio.Future) -> None:
        """Leave the line; a slot granted meanwhile is passed on."""
        if fut.done() and not fut.cancelled():
            self.release()
        else:
            fut.cancel()

    async def acquire(self, key: Any) -> None:
        fut = self.enqueue(key)
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            self.withdraw(fut)
            raise

    def release(self) -> None:
        self.busy = max(0, self.busy - 1)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.busy < self.limit and self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if fut.done():
                continue
            self.busy += 1
            fut.set_result(None)
