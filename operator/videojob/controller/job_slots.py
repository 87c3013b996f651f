"""A Job-mode run's claim on the operator's run slots (VIDEOJOB_MAX_CONCURRENT_JOBS and
VIDEOJOB_MAX_CONCURRENT_PER_NAMESPACE, `slots.FairSlots`, the same queue as the inline executor).

A worker Job may run only while its run holds a slot: the slot is taken before the Job is
created (or unsuspended) and given back when the Job ends or is suspended, so at most that many
worker Jobs run at once, fairly shared between namespaces, oldest VideoJob first. A Job waiting
for Kueue's admission holds its slot: Kueue decides within the Jobs the operator let through.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from videojob import metrics
from videojob.controller.slots import FairSlots


class RunSlot:
    def __init__(self, slots: FairSlots, namespace: str, queue_key: Any):
        self.slots = slots
        self.namespace = namespace
        self.queue_key = queue_key
        self.held = False
        self._created = time.monotonic()
        self._granted_before = False  # videojob_queue_wait_seconds counts the first wait only

    @property
    def waiting_message(self) -> str:
        return f"waiting for a free slot ({self.slots.limit} worker Jobs at once, VIDEOJOB_MAX_CONCURRENT_JOBS)"

    def enqueue(self) -> asyncio.Future:
        """A place in line now (before any await, so the order is the queue key's)."""
        return self.slots.enqueue(self.queue_key, self.namespace)

    def take_over(self) -> None:
        """A slot counted for this run's Job at start-up (it was already running)."""
        self.held = True

    async def wait(self, place: asyncio.Future, suspended: Callable[[], bool], wake: asyncio.Event) -> bool:
        """Until `place` is granted (True), or `suspended()` turns true (False: the place is
        given up); `wake` is set whenever that may have changed."""
        # The grant sets `wake` too, so a run in line waits on one Event (no second task each).
        granted = lambda _place: wake.set()  # noqa: E731
        place.add_done_callback(granted)
        try:
            while not place.done():
                if suspended():
                    self.slots.withdraw(place, self.namespace)
                    return False
                wake.clear()
                await wake.wait()
        except BaseException:  # cancelled while in line: a slot granted meanwhile is passed on
            self.slots.withdraw(place, self.namespace)
            raise
        finally:
            place.remove_done_callback(granted)
        if place.cancelled():
            return False
        self.held = True
        if not self._granted_before:
            self._granted_before = True
            metrics.record_queue_wait(time.monotonic() - self._created)
        return True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release(self.namespace)
