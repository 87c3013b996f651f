"""The inline executor's run slots, shared fairly between namespaces (tenants).

At most `limit` runs hold a slot at once, and at most `per_namespace` of one namespace. A freed
slot goes to the namespace served least recently among those with someone waiting and room
under their own limit (round-robin: one namespace's 500 VideoJobs cannot make another's wait
behind all of them); within a namespace, to its waiter with the smallest queue key (creation
time, then arrival). asyncio.Semaphore would wake waiters in arrival order, which differs from
creation order after a restart (objects come back in list order) and when a spec edit re-queues
a job.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any


class FairSlots:
    def __init__(self, limit: int, per_namespace: int | None = None):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if per_namespace is not None and per_namespace < 1:
            raise ValueError("per_namespace must be at least 1 (or None: no limit)")
        self.limit = limit
        self.per_namespace = per_namespace
        self.busy = 0
        self.busy_by_namespace: dict[str, int] = {}
        self._queues: dict[str, list[tuple[Any, int, asyncio.Future]]] = {}
        self._served: dict[str, int] = {}  # namespace -> turn of its last grant (RR order)
        self._seq = itertools.count()
        self._turn = itertools.count(1)

    @property
    def waiting(self) -> int:
        return sum(1 for queue in self._queues.values() for _, _, fut in queue if not fut.done())

    def try_acquire(self, namespace: str = "") -> bool:
        """Take a slot at once if one is free for `namespace` and nobody it owes one is waiting."""
        if not self._room(namespace) or self._next_namespace() is not None:
            return False
        self._grant(namespace)
        return True

    def enqueue(self, key: Any, namespace: str = "") -> asyncio.Future:
        """Take a place in line now; the future resolves when the slot is ours."""
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queues.setdefault(namespace, []), (key, next(self._seq), fut))
        self._dispatch()
        return fut

    def withdraw(self, fut: asyncio.Future, namespace: str = "") -> None:
        """Leave the line; a slot granted meanwhile is passed on."""
        if fut.done() and not fut.cancelled():
            self.release(namespace)
        else:
            fut.cancel()
            self._dispatch()  # a cancelled head may have been holding back its namespace

    async def acquire(self, key: Any, namespace: str = "") -> None:
        fut = self.enqueue(key, namespace)
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            self.withdraw(fut, namespace)
            raise

    def occupy(self, namespace: str = "") -> None:
        """Count a run already under way (found at start-up), even beyond the limit: it holds a
        slot until released like any other."""
        self._grant(namespace)

    def release(self, namespace: str = "") -> None:
        self.busy = max(0, self.busy - 1)
        left = self.busy_by_namespace.get(namespace, 0) - 1
        if left > 0:
            self.busy_by_namespace[namespace] = left
        else:
            self.busy_by_namespace.pop(namespace, None)
        self._dispatch()

    # ------------------------------------------------------------------------------ inside

    def _room(self, namespace: str) -> bool:
        if self.busy >= self.limit:
            return False
        return self.per_namespace is None or self.busy_by_namespace.get(namespace, 0) < self.per_namespace

    def _grant(self, namespace: str) -> None:
        self.busy += 1
        self.busy_by_namespace[namespace] = self.busy_by_namespace.get(namespace, 0) + 1
        self._served[namespace] = next(self._turn)

    def _head(self, namespace: str) -> tuple[Any, int, asyncio.Future] | None:
        queue = self._queues.get(namespace)
        while queue and queue[0][2].done():
            heapq.heappop(queue)  # cancelled (withdrawn) places
        if not queue:
            self._queues.pop(namespace, None)
            return None
        return queue[0]

    def _next_namespace(self) -> str | None:
        """The namespace owed the next slot: served least recently (never served first; ties by
        its first waiter's queue key), among those waiting with room under their own limit."""
        best: tuple[int, Any, int] | None = None
        chosen = None
        for namespace in list(self._queues):
            head = self._head(namespace)
            if head is None or not self._room(namespace):
                continue
            rank = (self._served.get(namespace, 0), head[0], head[1])
            if best is None or rank < best:
                best, chosen = rank, namespace
        return chosen

    def _dispatch(self) -> None:
        while self.busy < self.limit:
            namespace = self._next_namespace()
            if namespace is None:
                return
            _, _, fut = heapq.heappop(self._queues[namespace])
            self._grant(namespace)
            fut.set_result(None)
