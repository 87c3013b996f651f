"""Untrusted scene code: contained by the OS sandbox, killed and reported; the launching process
is unharmed. (The attacker's-eye suite is tests/sandbox/.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from videojob.pipeline.codecheck import check_code, scene_classes
from videojob.pipeline.sandbox import Sandbox, SandboxLimits

pytestmark = pytest.mark.render

SCENE = "from manim import *\n\nclass A(Scene):\n    def construct(self):\n{body}\n"


def scene(body: str) -> str:
    return SCENE.format(body="\n".join("        " + line for line in body.splitlines()))


GOOD = scene("self.play(Create(Circle()), run_time=0.5)")


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path / "work", SandboxLimits(timeout_seconds=60), mode="bubblewrap")
    yield box
    box.close()


@pytest.mark.parametrize(
    "code, message",
    [
        ("class A(Scene)\n    pass", "syntax error"),
        ("import manimgl", "module 'manimgl' is not installed where scenes render"),
        ("from . import secrets", "relative imports cannot work"),
    ],
)
def test_static_check_explains_code_that_cannot_render(code, message):
    problems = check_code(code)
    assert any(message in str(p) for p in problems), problems


def test_static_check_admits_ordinary_manim_code():
    # The kind of code in Manim's own documentation examples, and words that are only words.
    code = (
        "from manim import *\nimport numpy as np\nimport math, random, itertools, os.path, pathlib\n"
        "from scipy.special import comb\nimport networkx as nx\n\nclass SineCurve(MovingCameraScene):\n"
        "    def construct(self):\n        input = Text('fork'); open = Text('system')\n"
        "        axes = Axes(x_range=[0, 2 * PI], y_range=[-1.5, 1.5])\n"
        "        graph = axes.plot(lambda x: np.sin(x) * math.cos(random.random()), color=BLUE)\n"
        "        self.play(Create(axes), Create(graph))\n"
    )
    assert check_code(code) == []
    assert scene_classes(code) == ["SineCurve"]


async def test_a_shell_command_runs_but_cannot_touch_the_host(sandbox, tmp_path):
    target = tmp_path / "pwned"
    code = "import os\n" + scene(f"os.system('touch {target}')\nraise RuntimeError(os.path.exists('{target}'))")
    outcome = await sandbox.render(code, "A", "low", tmp_path / "a.mp4")
    assert not outcome.ok and "RuntimeError: False" in outcome.error
    assert not target.exists()


async def test_host_files_are_not_there(sandbox, tmp_path):
    code = "import numpy as np\n" + scene("np.loadtxt('/etc/passwd', dtype=str, delimiter='\\n')")
    outcome = await sandbox.render(code, "A", "low", tmp_path / "a.mp4")
    assert not outcome.ok
    assert "FileNotFoundError" in outcome.error


async def test_credentials_never_reach_the_child(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-456")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret-value-789")
    code = "import os\n" + scene("raise RuntimeError(repr(dict(os.environ)))")
    outcome = await sandbox.render(code, "A", "low", tmp_path / "a.mp4")
    assert not outcome.ok and "RuntimeError" in outcome.error and "PATH" in outcome.error
    for secret in ("aws-secret-value-123", "sk-secret-value-456", "ghp-secret-value-789"):
        assert secret not in outcome.error


async def test_infinite_loop_is_killed_at_the_timeout(sandbox, tmp_path):
    outcome = await sandbox.render(scene("while True:\n    pass"), "A", "low", tmp_path / "a.mp4", SandboxLimits(timeout_seconds=3))
    assert not outcome.ok and outcome.kind == "Timeout"
    assert "timed out after 3 s" in outcome.error


async def test_four_gigabyte_allocation_hits_the_memory_limit(sandbox, tmp_path):
    outcome = await sandbox.render(scene("x = bytearray(4 * 1024 ** 3)"), "A", "low", tmp_path / "a.mp4")
    assert not outcome.ok and outcome.kind == "MemoryLimit"


async def test_launching_process_is_unharmed(sandbox, tmp_path):
    async with sandbox.job(1) as job:
        for body in ("while True:\n    pass", "x = bytearray(4 * 1024 ** 3)", "raise SystemExit(3)"):
            await job.render(scene(body), "A", "low", tmp_path / "bad.mp4", SandboxLimits(timeout_seconds=3))
        outcome = await job.render(GOOD, "A", "low", tmp_path / "good.mp4")
    assert outcome.ok and Path(outcome.movie).stat().st_size > 0


async def test_nothing_is_left_behind(sandbox, tmp_path):
    sandbox.prewarm(1)
    await sandbox.render(GOOD, "A", "low", tmp_path / "good.mp4")
    sandbox.close()
    assert list((tmp_path / "work" / "sandbox").iterdir()) == []


async def test_two_jobs_never_share_a_sandbox(sandbox, tmp_path):
    # Scenes of one job may share a sandbox; another job starts from a fresh one.
    leave = "import os\n" + scene("open('/sandbox/left-by-job', 'w').write('x')\nself.add(Circle())\nself.wait(0.1)")
    look = "import os\n" + scene("raise RuntimeError(os.path.exists('/sandbox/left-by-job'))")
    async with sandbox.job(1) as first:
        assert (await first.render(leave, "A", "low", tmp_path / "a.mp4")).ok
        same_job = await first.render(look, "A", "low", tmp_path / "b.mp4")
    async with sandbox.job(1) as second:
        other_job = await second.render(look, "A", "low", tmp_path / "c.mp4")
    assert "RuntimeError: True" in same_job.error
    assert "RuntimeError: False" in other_job.error
