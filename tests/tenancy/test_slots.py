"""The inline queue's slots: round-robin across namespaces, creation order within one, and a
per-namespace limit (pure asyncio, no operator)."""

from __future__ import annotations

import asyncio

import pytest

from videojob.controller.slots import FairSlots


async def grant_order_from(slots: FairSlots, waiters, futures) -> list[str]:
    """Free one slot at a time; the order in which the queued `(namespace, key)` got one."""
    order: list[str] = []
    for _ in range(len(futures)):
        await asyncio.sleep(0)
        done = [i for i, f in enumerate(futures) if f.done() and f"{waiters[i][0]}/{waiters[i][1]}" not in order]
        assert len(done) == 1, "exactly one slot is free at a time"
        ns, key = waiters[done[0]]
        order.append(f"{ns}/{key}")
        slots.release(ns)
    return order


async def test_a_freed_slot_goes_to_the_namespace_served_least_recently():
    slots = FairSlots(1)
    assert slots.try_acquire("big")  # a big namespace's first job runs
    waiters = [("big", f"{i:03d}") for i in range(1, 6)] + [("small", "001"), ("small", "002")]
    futures = [slots.enqueue(key, ns) for ns, key in waiters]
    slots.release("big")
    order = await grant_order_from(slots, waiters, futures)
    assert order == ["small/001", "big/001", "small/002", "big/002", "big/003", "big/004", "big/005"]


async def test_namespaces_alternate_and_each_keeps_creation_order():
    slots = FairSlots(1)
    assert slots.try_acquire("blocker")
    # Arrival order differs from creation order (keys) inside each namespace.
    waiters = [("a", "3"), ("a", "1"), ("a", "2"), ("b", "2"), ("b", "1"), ("b", "3")]
    futures = [slots.enqueue(key, ns) for ns, key in waiters]
    slots.release("blocker")
    order = await grant_order_from(slots, waiters, futures)
    assert order == ["a/1", "b/1", "a/2", "b/2", "a/3", "b/3"]


async def test_per_namespace_limit_leaves_slots_to_other_namespaces():
    slots = FairSlots(3, per_namespace=1)
    a1, a2 = slots.enqueue("1", "a"), slots.enqueue("2", "a")
    b1 = slots.enqueue("1", "b")
    await asyncio.sleep(0)
    assert a1.done() and b1.done() and not a2.done()  # a third slot is free, but not for `a`
    assert slots.busy == 2 and slots.busy_by_namespace == {"a": 1, "b": 1}
    assert not slots.try_acquire("a") and slots.try_acquire("c")
    slots.release("a")
    await asyncio.sleep(0)
    assert a2.done()


async def test_a_withdrawn_place_does_not_hold_back_its_namespace():
    slots = FairSlots(1)
    assert slots.try_acquire("x")
    first, second = slots.enqueue("1", "a"), slots.enqueue("2", "a")
    slots.withdraw(first, "a")  # e.g. suspended while waiting
    slots.release("x")
    await asyncio.sleep(0)
    assert second.done() and slots.busy_by_namespace == {"a": 1}


async def test_a_slot_granted_while_leaving_is_passed_on():
    slots = FairSlots(1)
    assert slots.try_acquire("a")
    waiting = slots.enqueue("1", "b")
    other = slots.enqueue("1", "c")
    slots.release("a")
    await asyncio.sleep(0)
    assert waiting.done()
    slots.withdraw(waiting, "b")  # cancelled just after its grant: the slot goes on
    await asyncio.sleep(0)
    assert other.done() and slots.busy == 1


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        FairSlots(0)
    with pytest.raises(ValueError):
        FairSlots(2, per_namespace=0)
