"""The Job pod's render container, for real: `videojob render-server` as its own process on a spool
directory, and the worker's `pod` runner rendering real Manim scenes through it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from videojob.pipeline.sandbox import Sandbox, SandboxLimits, SandboxUnavailable
from videojob.pipeline.sandbox.pod import CLOSED_MARKER, SERVER_MARKER, SPOOL_ENV, PodRunner, pod_runner_from_environment

SCENE = """
from manim import *

class Hello(Scene):
    def construct(self):
        self.play(Create(Circle()), run_time=0.5)
"""


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def spool(tmp_path):
    """A spool served by a real `videojob render-server` process with the render container's
    environment: nothing but PATH and a scratch TMPDIR (no credentials, no token)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    render_tmp = tmp_path / "render-tmp"
    render_tmp.mkdir()
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(render_tmp), "HOME": str(render_tmp), "LANG": "C.UTF-8"}
    proc = subprocess.Popen([sys.executable, "-m", "videojob.cli.main", "render-server", "--spool", str(spool)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield spool
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
        # Nothing it started outlives it: no zygote left behind in its private directory.
        assert not list(render_tmp.glob("videojob-render-*")), "the render server left its directory behind"


def render(spool: Path, tmp_path: Path, code: str, timeout: float = 120):
    sandbox = Sandbox(tmp_path / "worker", SandboxLimits(timeout_seconds=timeout), runner=PodRunner(spool))
    out = tmp_path / "out" / f"{time.monotonic_ns()}.mp4"
    try:
        return asyncio.run(sandbox.render(code, "Hello", "low", out)), sandbox
    finally:
        sandbox.close()


def test_a_scene_renders_in_the_render_server_and_comes_back_to_the_worker(spool, tmp_path):
    outcome, sandbox = render(spool, tmp_path, SCENE)
    assert outcome.ok, outcome.error
    assert sandbox.isolation == "pod"
    # The worker's copy is a real video (read_outcome demuxed it; check it once more here).
    with av.open(str(outcome.movie), format="mp4") as container:
        assert container.streams.video and container.duration > 0
    # Nothing of the scene stays in the spool once the worker let the instance go: at most the
    # markers (the render container may not remove the worker's own directory).
    def leftovers():
        return sorted(p.name for p in spool.rglob("*") if p.is_file() and p.name not in (SERVER_MARKER, CLOSED_MARKER))
    wait_for(lambda: leftovers() == [], 30, "spool cleanup")


def test_an_error_in_the_scene_comes_back_with_its_kind_and_line(spool, tmp_path):
    broken = SCENE.replace("Create(Circle())", "Create(Circle(radius=undefined_name))")
    outcome, _ = render(spool, tmp_path, broken)
    assert not outcome.ok
    assert outcome.kind == "NameError"
    assert "undefined_name" in outcome.error


def test_a_scene_past_its_timeout_is_killed_and_the_next_one_still_renders(spool, tmp_path):
    endless = SCENE.replace("self.play(Create(Circle()), run_time=0.5)", "while True:\n            pass")
    outcome, _ = render(spool, tmp_path, endless, timeout=5)
    assert (outcome.ok, outcome.kind) == (False, "Timeout")
    again, _ = render(spool, tmp_path, SCENE)
    assert again.ok, again.error


def test_a_hostile_result_pointing_at_a_worker_file_is_refused(spool, tmp_path):
    secret = tmp_path / "worker-secret.txt"
    secret.write_text("s3cr3t")
    # The scene writes its own result.json naming a symlink to a file of the worker's.
    hostile = f"""
import json, os
from manim import *

class Hello(Scene):
    def construct(self):
        os.symlink({str(secret)!r}, "movie.mp4")
        with open("result.json", "w") as f:
            json.dump({{"ok": True, "movie": "movie.mp4"}}, f)
        os._exit(0)
"""
    outcome, _ = render(spool, tmp_path, hostile)
    assert not outcome.ok and outcome.kind == "NoOutput"
    assert "s3cr3t" not in (outcome.error or "")


def test_without_a_render_server_the_worker_refuses_with_one_line_naming_the_container(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    runner = PodRunner(spool, server_timeout=0.2)
    with pytest.raises(SandboxUnavailable, match="render container"):
        runner.check()
    with pytest.raises(SandboxUnavailable, match=SPOOL_ENV):
        PodRunner(tmp_path / "missing").check()


def test_the_worker_picks_the_pod_runner_when_the_job_sets_the_spool_variable(tmp_path):
    assert pod_runner_from_environment({SPOOL_ENV: str(tmp_path)}).isolation == "pod"
    assert pod_runner_from_environment({}) is None


async def test_the_worker_renders_in_the_render_container_when_the_job_sets_the_spool(kube, spool, tmp_path, monkeypatch):
    """`videojob worker` as in the Job's pod: VIDEOJOB_RENDER_SPOOL set, the render server beside it."""
    from tests.controller.conftest import NAMESPACE, scene_code
    from videojob.config import Settings
    from videojob.controller.kube import KubeClient
    from videojob.controller.worker import EXIT_OK, run_worker

    monkeypatch.setenv(SPOOL_ENV, str(spool))
    kube.create("podded", {"topic": "Pod", "code": scene_code(1), "render": {"quality": "low"}})
    client = KubeClient(kube.client)
    settings = Settings(workdir=tmp_path / "pod", scene_parallelism=1)
    code = await run_worker(NAMESPACE, "podded", 1, 1, settings=settings, kube=client, min_write_interval=0.2)
    assert code == EXIT_OK, kube.status("podded").get("message")
    status = kube.status("podded")
    assert status["phase"] == "Succeeded" and status["sandbox"] == "pod"
    assert Path(status["outputs"]["videoURI"].removeprefix("file://")).stat().st_size == status["outputs"]["sizeBytes"] > 0


def test_a_restarted_render_server_answers_the_scene_it_lost_at_once(tmp_path):
    """The render container restarts when its server dies (say, killed by the scene it ran): the new
    server answers the scene in flight as lost instead of running that code again."""
    from videojob.pipeline.sandbox.pod import DONE, SUBMIT, PodInstance, read_small_json
    from videojob.pipeline.sandbox.spool_server import SpoolServer

    spool = tmp_path / "spool"
    spool.mkdir()
    instance = PodInstance(spool)
    scene = instance.root / "scene-1"
    scene.mkdir()
    (scene / SUBMIT).write_text('{"timeout_seconds": 60}')
    server = SpoolServer(spool)
    server.abandon_unfinished()
    fd = os.open(scene, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_small_json(fd, DONE)["ended"] == "lost"
    finally:
        os.close(fd)
    instance.close()
    shutil.rmtree(server.private)
