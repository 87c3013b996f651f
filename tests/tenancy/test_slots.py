"""The run slots: fair share across namespaces by recent usage (slots granted, halved every
half-life; ties round-robin), creation order within one, and a per-namespace limit (pure asyncio,
no operator; a fake clock for the half-life)."""

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


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def granted(waiters, futures) -> list[str]:
    return [f"{ns}/{key}" for (ns, key), fut in zip(waiters, futures) if fut.done() and not fut.cancelled()]


async def release_one(slots: FairSlots, namespace: str, waiters, futures) -> str:
    """Free one slot of `namespace`; who got it."""
    before = set(granted(waiters, futures))
    slots.release(namespace)
    await asyncio.sleep(0)
    after = [w for w in granted(waiters, futures) if w not in before]
    assert len(after) == 1, f"one grant per freed slot, got {after}"
    return after[0]


async def test_a_newcomer_gets_the_next_slot_then_equal_namespaces_alternate():
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


async def test_a_namespace_arriving_behind_a_busy_one_gets_the_next_freed_slots():
    slots = FairSlots(2)
    assert slots.try_acquire("big") and slots.try_acquire("big")  # both slots, usage 2
    waiters = [("big", f"{i:03d}") for i in range(1, 8)] + [("small", f"{i:03d}") for i in range(1, 4)]
    futures = [slots.enqueue(key, ns) for ns, key in waiters]
    holders = ["big", "big"]  # who holds each slot, oldest grant first
    order = []
    for _ in range(6):
        got = await release_one(slots, holders.pop(0), waiters, futures)
        holders.append(got.split("/")[0])
        order.append(got)
    # Round-robin would give big/001 the second freed slot; by usage small (0, then 1) is owed
    # both, and from even usage (2 each) they alternate, the one served least recently first.
    assert order == ["small/001", "small/002", "big/001", "small/003", "big/002", "big/003"]
    assert slots.usage("small") == 3 and slots.usage("big") == 5


async def test_usage_halves_every_half_life_and_a_faded_burst_is_no_longer_held_against_its_namespace():
    async def order_after_burst(seconds_later: float) -> list[str]:
        clock = FakeClock()
        slots = FairSlots(1, half_life=600, clock=clock)
        for _ in range(6):  # team-a's burst: six runs, one after the other
            assert slots.try_acquire("a")
            slots.release("a")
        clock.now = seconds_later
        assert slots.try_acquire("blocker")
        waiters = [("a", f"{i}") for i in range(1, 5)] + [("b", f"{i}") for i in range(1, 5)]
        futures = [slots.enqueue(key, ns) for ns, key in waiters]
        order = [await release_one(slots, "blocker", waiters, futures)]
        for _ in range(len(waiters) - 1):
            order.append(await release_one(slots, order[-1].split("/")[0], waiters, futures))
        return order

    # Within the half-life the burst counts in full (6): b is owed all four of its runs first.
    assert await order_after_burst(599) == ["b/1", "b/2", "b/3", "b/4", "a/1", "a/2", "a/3", "a/4"]
    # One half-life later it counts 3: b catches up after three runs, then they alternate
    # (a first: served less recently).
    assert await order_after_burst(600) == ["b/1", "b/2", "b/3", "a/1", "b/4", "a/2", "a/3", "a/4"]
    # Ten half-lives later (6/1024) it hardly counts: plain alternation, the newcomer first.
    assert await order_after_burst(6000) == ["b/1", "a/1", "b/2", "a/2", "b/3", "a/3", "b/4", "a/4"]


def test_usage_is_forgotten_once_it_has_faded_out():
    clock = FakeClock()
    slots = FairSlots(1, half_life=600, clock=clock)
    assert slots.try_acquire("a")
    slots.release("a")
    clock.now = 1800
    assert slots.usage("a") == 0.125  # halved exactly, three times
    clock.now = 600 * 11
    assert slots.usage("a") == 0.0
    assert slots.try_acquire("a") and slots.usage("a") == 1.0


async def test_the_per_namespace_limit_holds_even_for_the_namespace_owed_the_most():
    slots = FairSlots(2, per_namespace=1)
    for _ in range(5):
        assert slots.try_acquire("a")
        slots.release("a")
    assert slots.try_acquire("b")  # b: usage 1 against a's 5, but it holds its one slot
    b2, b3 = slots.enqueue("2", "b"), slots.enqueue("3", "b")
    a1 = slots.enqueue("1", "a")
    await asyncio.sleep(0)
    assert a1.done() and not b2.done()  # the free slot goes to a, whose usage is higher
    slots.release("a")
    await asyncio.sleep(0)
    assert not b2.done() and slots.busy == 1  # work-conserving only within the limits
    slots.release("b")
    await asyncio.sleep(0)
    assert b2.done() and not b3.done() and slots.busy_by_namespace == {"b": 1}


def test_runs_found_under_way_count_as_usage():
    slots = FairSlots(1)
    slots.occupy("a")
    slots.occupy("a")  # beyond the limit: both were running before the restart
    assert slots.usage("a") == 2 and slots.busy == 2 and not slots.try_acquire("b")


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        FairSlots(0)
    with pytest.raises(ValueError):
        FairSlots(2, per_namespace=0)
    with pytest.raises(ValueError):
        FairSlots(2, half_life=0)
