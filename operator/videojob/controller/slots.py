"""The run slots (inline runs, or worker Jobs with the Job executor), shared fairly between
namespaces (tenants) by their recent usage.

At most `limit` runs hold a slot at once, and at most `per_namespace` of one namespace. A freed
slot goes, among the namespaces with someone waiting and room under their own limit, to the one
with the least recent usage; ties go to the namespace served least recently (round-robin), then
to the smallest queue key. Within a namespace the slot goes to its waiter with the smallest queue
key (creation time, then arrival). asyncio.Semaphore would wake waiters in arrival order, which
differs from creation order after a restart (objects come back in list order) and when a spec
edit re-queues a job.

Usage is fair share as in Kueue's Admission Fair Sharing and Slurm's fair-share factor: recent
use counts, older use fades. Here a namespace's usage is the number of slots it was granted
(runs started, and runs found under way at start-up), and every namespace's usage is halved at
each boundary of USAGE_HALF_LIFE_SECONDS. So a namespace that has just started 200 runs yields
the next free slots to one that started none until their usages meet, and from there they
alternate; nobody is starved, since a slot never stays free while someone may take it.

Why grants and not slot-seconds: the grant is the decision being shared and its cost is known
when it is made (a run's length is not; Kueue likewise charges a workload at admission), a
namespace's usage changes only when it is granted a slot or all usages are halved together, so
ties are exact and the order can be explained ("team-a started 12 runs in the last ten minutes, team-b 3"). A namespace whose
runs are long holds slots longer per grant; VIDEOJOB_MAX_CONCURRENT_PER_NAMESPACE bounds that,
and the per-job caps bound a run's size. The decay is a step (halving at fixed boundaries, not a
continuous exponential): usages stay sums of halved whole numbers, computed the same way for every
namespace, so two namespaces with the same history tie exactly, whatever the clock reads.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any, Callable

# Ten minutes, as AWS Batch's minimum share-decay window: a few runs' time, so a burst weighs on
# its namespace while the burst is under way and is forgotten soon after (the usage is the
# operator's memory only: a restart forgets it anyway).
USAGE_HALF_LIFE_SECONDS = 600.0
# Usage this small (one grant after ten half-lives) is forgotten with the namespace, unless it is
# waiting or holding a slot, so a stream of short-lived namespaces does not grow the tables.
FORGOTTEN_USAGE = 1 / 1024


class FairSlots:
    def __init__(self, limit: int, per_namespace: int | None = None, *,
                 half_life: float = USAGE_HALF_LIFE_SECONDS, clock: Callable[[], float] = time.monotonic):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if per_namespace is not None and per_namespace < 1:
            raise ValueError("per_namespace must be at least 1 (or None: no limit)")
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        self.limit = limit
        self.per_namespace = per_namespace
        self.half_life = half_life
        self.busy = 0
        self.busy_by_namespace: dict[str, int] = {}
        self._queues: dict[str, list[tuple[Any, int, asyncio.Future]]] = {}
        self._usage: dict[str, float] = {}  # namespace -> grants, halved at every half-life
        self._served: dict[str, int] = {}  # namespace -> turn of its last grant (tie-break)
        self._seq = itertools.count()
        self._turn = itertools.count(1)
        self._clock = clock
        self._origin = clock()
        self._half_lives = 0  # half-lives since _origin applied to _usage

    @property
    def waiting(self) -> int:
        return sum(1 for queue in self._queues.values() for _, _, fut in queue if not fut.done())

    def usage(self, namespace: str = "") -> float:
        """The namespace's recent usage: slots granted, halved at every half-life since."""
        self._decay()
        return self._usage.get(namespace, 0.0)

    def try_acquire(self, namespace: str = "") -> bool:
        """Take a slot at once if one is free for `namespace` and no namespace is waiting for it
        (a waiting namespace is owed a free slot whatever its usage)."""
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
        slot until released like any other, and counts as usage like a grant."""
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
        self._decay()
        self.busy += 1
        self.busy_by_namespace[namespace] = self.busy_by_namespace.get(namespace, 0) + 1
        self._usage[namespace] = self._usage.get(namespace, 0.0) + 1
        self._served[namespace] = next(self._turn)

    def _decay(self) -> None:
        """Halve every usage once per half-life boundary passed since the last look (exact: a
        float times a power of two), and forget namespaces whose usage has faded out."""
        half_lives = int((self._clock() - self._origin) // self.half_life)
        if half_lives <= self._half_lives:
            return
        factor = 0.5 ** (half_lives - self._half_lives)  # underflows to 0.0 after long idleness
        self._half_lives = half_lives
        for namespace, used in list(self._usage.items()):
            used *= factor
            if used < FORGOTTEN_USAGE and namespace not in self._queues and namespace not in self.busy_by_namespace:
                del self._usage[namespace]
                self._served.pop(namespace, None)
            else:
                self._usage[namespace] = used

    def _head(self, namespace: str) -> tuple[Any, int, asyncio.Future] | None:
        queue = self._queues.get(namespace)
        while queue and queue[0][2].done():
            heapq.heappop(queue)  # cancelled (withdrawn) places
        if not queue:
            self._queues.pop(namespace, None)
            return None
        return queue[0]

    def _next_namespace(self) -> str | None:
        """The namespace owed the next slot, among those waiting with room under their own
        limit: least recent usage, then served least recently (never served first), then its
        first waiter's queue key."""
        self._decay()
        best: tuple[float, int, Any, int] | None = None
        chosen = None
        for namespace in list(self._queues):
            head = self._head(namespace)
            if head is None or not self._room(namespace):
                continue
            rank = (self._usage.get(namespace, 0.0), self._served.get(namespace, 0), head[0], head[1])
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
