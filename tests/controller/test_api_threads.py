"""The operator's Kubernetes calls never wait for renders: they have threads of their own.

Renders (and a publish's file work) each hold a thread of asyncio's default pool for their whole
length; that pool has only min(32, CPUs + 4) threads. When status writes shared it, a burst of
VideoJobs queued a run's write seconds behind other runs' calls, and with as many renders under
way as threads no status reached the API server until a render ended.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from videojob.controller.kube import KubeClient


def test_status_reads_and_writes_go_through_while_renders_hold_every_default_thread(apiserver, kube, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(apiserver.kubeconfig))
    kube.create("busy", {"topic": "Busy", "code": "x = 1"})
    client = KubeClient.from_environment()
    render_ends = threading.Event()
    rendering = threading.Semaphore(0)

    def render() -> None:
        rendering.release()
        render_ends.wait()

    async def scenario() -> str:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2))
        renders = asyncio.gather(*(asyncio.to_thread(render) for _ in range(2)))
        try:
            for _ in range(2):  # both default threads are rendering
                while not rendering.acquire(blocking=False):
                    await asyncio.sleep(0.01)
            await asyncio.wait_for(client.patch_status("default", "busy", {"phase": "Pending"}), 30)
            body = await asyncio.wait_for(client.read_videojob("default", "busy"), 30)
            return body["status"]["phase"]
        finally:
            render_ends.set()
            await renders

    try:
        assert asyncio.run(scenario()) == "Pending"
    finally:
        render_ends.set()
        client.close()
