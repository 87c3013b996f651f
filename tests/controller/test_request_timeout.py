"""A silent API server (a partition, a dead load balancer) never hangs the operator's calls."""

from __future__ import annotations

import asyncio
import socket

import kubernetes
import pytest
import urllib3

from videojob.controller import kube
from videojob.controller.job_client import JobsClient


@pytest.fixture()
def silent_server():
    """Accepts connections and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def client(url: str) -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    config.host = url
    config.retries = 0  # urllib3 would try a read timeout again; one is enough to show it ends
    return kubernetes.client.ApiClient(config)


def test_status_reads_and_job_calls_give_up_on_a_silent_api_server(silent_server, monkeypatch):
    monkeypatch.setattr(kube, "REQUEST_TIMEOUT", (1.0, 1.0))  # the operator's own knob, shortened
    api = client(silent_server)

    async def calls() -> list[BaseException]:
        found = []
        for call in (kube.KubeClient(api).read_videojob("default", "hello"),
                     JobsClient(api).read_job("default", "videojob-hello-1-1")):
            try:
                await asyncio.wait_for(call, 30)  # a safety net for the test: a hang fails it
            except asyncio.TimeoutError:
                raise AssertionError("the call hung on a silent API server")
            except Exception as exc:  # what the caller's retry sees
                found.append(exc)
        return found

    errors = asyncio.run(calls())
    assert len(errors) == 2
    assert all(isinstance(e, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.MaxRetryError)) for e in errors), errors
