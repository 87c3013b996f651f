"""Untrusted scene code: refused, or killed and reported; the launching process is unharmed."""

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
    box = Sandbox(tmp_path / "work", SandboxLimits(timeout_seconds=60))
    yield box
    box.close()


@pytest.mark.parametrize(
    "code, message",
    [
        ("import os\nos.system('touch /tmp/pwned')", "import of 'os' is not allowed"),
        (scene("print(open('/etc/passwd').read())"), "use of 'open' is not allowed"),
        (scene("__import__('socket').create_connection(('127.0.0.1', 22))"), "use of '__import__' is not allowed"),
        ("import subprocess", "import of 'subprocess' is not allowed"),
        (scene("x = ().__class__.__bases__[0].__subclasses__()"), "'__subclasses__'"),
        (scene("f = getattr(Scene, '__globals__')"), "'__globals__'"),
        ("from . import secrets", "relative imports"),
    ],
)
def test_static_check_refuses_hostile_code(code, message):
    problems = check_code(code)
    assert any(message in str(p) for p in problems), problems


def test_static_check_admits_ordinary_manim_code():
    # The kind of code in Manim's own documentation examples.
    code = (
        "from manim import *\nimport numpy as np\nimport math, random, itertools\nfrom scipy.special import comb\n"
        "import networkx as nx\n\nclass SineCurve(MovingCameraScene):\n    def construct(self):\n"
        "        axes = Axes(x_range=[0, 2 * PI], y_range=[-1.5, 1.5])\n"
        "        graph = axes.plot(lambda x: np.sin(x) * math.cos(random.random()), color=BLUE)\n"
        "        self.play(Create(axes), Create(graph))\n        super().construct() if False else None\n"
    )
    assert check_code(code) == []
    assert scene_classes(code) == ["SineCurve"]


async def test_runtime_fence_blocks_what_the_static_check_cannot_see(sandbox, tmp_path):
    # Reaching `os` through a module Manim re-exports, with names spelled at run time.
    target = tmp_path / "pwned"
    code = scene(f"o = getattr(utils.file_ops, 'o' + 's')\ngetattr(o, 'sys' + 'tem')('touch {target}')")
    outcome = await sandbox.render(code, "A", "low", tmp_path / "a.mp4")
    assert not outcome.ok
    assert "os.system is not allowed" in outcome.error
    assert not target.exists()


async def test_reading_host_files_is_refused(sandbox, tmp_path):
    code = scene("import numpy as np\nnp.loadtxt('/etc/passwd', dtype=str, delimiter='\\n')").replace(
        "        import numpy as np\n", ""
    )
    code = "import numpy as np\n" + code
    outcome = await sandbox.render(code, "A", "low", tmp_path / "a.mp4")
    assert not outcome.ok
    assert "access to '/etc/passwd' is not allowed" in outcome.error


async def test_credentials_never_reach_the_child(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-456")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret-value-789")
    code = scene("o = getattr(utils.file_ops, 'o' + 's')\nraise RuntimeError(repr(dict(getattr(o, 'envi' + 'ron'))))")
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
    for body in ("while True:\n    pass", "x = bytearray(4 * 1024 ** 3)", "raise SystemExit(3)"):
        await sandbox.render(scene(body), "A", "low", tmp_path / "bad.mp4", SandboxLimits(timeout_seconds=3))
    outcome = await sandbox.render(GOOD, "A", "low", tmp_path / "good.mp4")
    assert outcome.ok and Path(outcome.movie).stat().st_size > 0


async def test_children_get_no_leftover_scratch(sandbox, tmp_path):
    await sandbox.render(GOOD, "A", "low", tmp_path / "good.mp4")
    leftovers = [p for p in (tmp_path / "work" / "sandbox").iterdir() if p.name.startswith("scene-")]
    assert leftovers == []


RANDOM_SCENE = scene("import random\nself.add(Square().shift(RIGHT * random.uniform(-3, 3)))\nself.wait(0.3)").replace(
    "        import random\n", ""
)
RANDOM_SCENE = "import random\n" + RANDOM_SCENE


async def test_a_scene_started_early_is_rendered_once(sandbox, tmp_path):
    # Each render of this scene draws a different frame, so its bytes tell renders apart.
    early = sandbox.start_early(RANDOM_SCENE, "A", "low")
    early_bytes = Path(early.result(timeout=60).movie).read_bytes()
    claimed = await sandbox.render(RANDOM_SCENE, "A", "low", tmp_path / "claimed.mp4")
    assert claimed.ok and claimed.movie.read_bytes() == early_bytes  # taken over, not rendered again
    fresh = await sandbox.render(RANDOM_SCENE, "A", "low", tmp_path / "fresh.mp4")
    assert fresh.ok and fresh.movie.read_bytes() != early_bytes  # a second request renders anew


async def test_unclaimed_early_renders_leave_nothing_behind(tmp_path):
    box = Sandbox(tmp_path / "work")
    box.start_early(RANDOM_SCENE, "A", "low").result(timeout=60)
    box.close()
    assert list((tmp_path / "work" / "sandbox").iterdir()) == []  # no video, no zygote directory
