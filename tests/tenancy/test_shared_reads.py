"""Admission reads of one namespace that overlap share one request, and nothing is kept after it."""

from __future__ import annotations

import asyncio

from videojob.controller.tenancy import SharedReads


def test_overlapping_reads_of_one_namespace_share_one_request_and_keep_nothing():
    async def scenario() -> tuple[list[str], list[dict], list[str], dict]:
        reads: list[str] = []
        release = asyncio.Event()
        shared = SharedReads()

        async def read_team_a() -> dict:
            reads.append("team-a")
            await release.wait()
            return {"videogen.io/projects": "shared"}

        callers = [asyncio.create_task(shared.get("team-a", read_team_a)) for _ in range(5)]
        await asyncio.sleep(0)
        release.set()
        answers = await asyncio.gather(*callers)
        during = list(reads)
        later = await shared.get("team-a", read_team_a)  # after the read returned: read again
        return during, answers, reads, later

    during, answers, reads, later = asyncio.run(scenario())
    assert during == ["team-a"]
    assert answers == [{"videogen.io/projects": "shared"}] * 5
    assert reads == ["team-a", "team-a"] and later == {"videogen.io/projects": "shared"}


def test_a_caller_that_gives_up_does_not_cancel_the_read_of_the_others():
    async def scenario() -> dict:
        release = asyncio.Event()
        shared = SharedReads()

        async def read() -> dict:
            await release.wait()
            return {"a": "b"}

        quitter = asyncio.create_task(shared.get("ns", read))
        stayer = asyncio.create_task(shared.get("ns", read))
        await asyncio.sleep(0)
        quitter.cancel()
        await asyncio.sleep(0)
        release.set()
        return await stayer

    assert asyncio.run(scenario()) == {"a": "b"}
