"""Helpers every test package uses: waiting for a condition, reading conditions and status
history, free ports, metric samples. Tests wait for what they assert, never for a time: a read
right after a transition may come before the write it is looking for (issue 12, flaky tests)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Callable, TypeVar

from prometheus_client import REGISTRY

T = TypeVar("T")
POLL = 0.05  # seconds between two looks at the condition


def wait_until(predicate: Callable[[], T], timeout: float = 60, message: str = "condition") -> T:
    """Poll until `predicate()` is truthy; returns its value. Fails naming `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not reached in {timeout}s")
        time.sleep(POLL)


async def wait_for(predicate: Callable[[], T], timeout: float = 10, message: str = "condition") -> T:
    """`wait_until` for tests that share the event loop with the code under test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"{message} not reached in {timeout}s")
        await asyncio.sleep(POLL / 5)


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition of `type_` in a VideoJob status ({} when absent)."""
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def status_writes(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct `.status` values an object went through, in order."""
    out: list[dict[str, Any]] = []
    for version in history:
        status = version.get("status")
        if status and (not out or out[-1] != status):
            out.append(status)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample(name: str, **labels: str) -> float:
    """A metric's value in this process's default registry (0 when it has no such series)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
