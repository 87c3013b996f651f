"""`videojob run` end to end with real Manim renders (quality low, scenes of 1-2 s)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import av
import pytest

from tests.pipeline.conftest import storyboard, videojob

pytestmark = pytest.mark.render


def video_facts(uri: str) -> tuple[int, int, float]:
    path = urlparse(uri).path
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))  # decodes every frame: the file is sound
        duration = float(stream.duration * stream.time_base)
        assert frames > 0
        return stream.codec_context.width, stream.codec_context.height, duration


def test_storyboard_becomes_a_real_mp4(write_manifest, run_cli, tmp_path):
    manifest = write_manifest(videojob(storyboard(2, 1.5, bullets=["one", "two"])))
    result = run_cli(manifest)
    assert result.code == 0, result.err
    status = result.status
    assert status["phase"] == "Succeeded"
    assert status["currentStage"] == "Done"
    assert status["progress"] == "8/8" and status["progressPercent"] == 100
    assert status["version"] == 1
    assert [s["phase"] for s in status["stages"]] == ["Succeeded"] * 6
    width, height, duration = video_facts(status["outputs"]["videoURI"])
    assert (width, height) == (854, 480)  # low quality
    assert abs(duration - 3.5) <= 0.35  # within 10% of the storyboard's sum
    assert status["outputs"]["scenes"] == 2
    assert status["upload"]["status"] == "skipped"

    version_dir = tmp_path / "out" / "tests" / "demo-video" / "v1"
    assert sorted(p.name for p in (version_dir / "scenes").iterdir()) == [
        "scene_01.mp4", "scene_01.py", "scene_02.mp4", "scene_02.py",
    ]
    record = json.loads((version_dir / "record.json").read_text())
    assert record["video_key"] == "tests/demo-video"
    assert record["version"] == 1
    assert record["scene_count"] == 2
    assert record["sha256"] == status["outputs"]["sha256"]
    combined = (version_dir / "demo-video.py").read_text()
    assert "class Scene01(Scene)" in combined and "class Scene02(Scene)" in combined


def test_rerun_makes_next_version_from_the_render_cache(write_manifest, run_cli, tmp_path):
    manifest = write_manifest(videojob(storyboard(1)))
    first = run_cli(manifest)
    second = run_cli(manifest)
    assert first.code == 0 and second.code == 0
    assert second.status["version"] == 2
    rendering = next(s for s in second.status["stages"] if s["name"] == "Rendering")
    assert "taken from the render cache" in rendering["message"]
    # The cached scene is the very same file content: nothing was rendered again.
    v1 = tmp_path / "out" / "tests" / "demo-video" / "v1" / "scenes" / "scene_01.mp4"
    v2 = tmp_path / "out" / "tests" / "demo-video" / "v2" / "scenes" / "scene_01.mp4"
    assert v1.read_bytes() == v2.read_bytes()
    assert second.status["outputs"]["sha256"] == first.status["outputs"]["sha256"]


def test_user_code_with_two_scenes_renders_both_in_order(write_manifest, run_cli):
    code = (
        "from manim import *\n\n"
        "class First(Scene):\n    def construct(self):\n        self.play(Create(Circle()), run_time=1)\n\n"
        "class Second(Scene):\n    def construct(self):\n        self.play(FadeIn(Square()), run_time=1)\n        self.wait(1)\n"
    )
    result = run_cli(write_manifest(videojob({"topic": "Two", "code": code, "render": {"quality": "low"}})))
    assert result.code == 0, result.err
    assert result.status["outputs"]["scenes"] == 2
    _, _, duration = video_facts(result.status["outputs"]["videoURI"])
    assert abs(duration - 3.0) <= 0.3


def test_code_that_never_renders_names_the_scene_and_error(write_manifest, run_cli):
    code = "from manim import *\n\nclass Broken(Scene):\n    def construct(self):\n        self.play(Create(Circel()))\n"
    result = run_cli(write_manifest(videojob({"topic": "Broken", "code": code, "render": {"quality": "low"}})))
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "scene 1 ('Broken')" in result.err and "NameError" in result.err and "Circel" in result.err
    status = result.status
    assert status["phase"] == "Failed"
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "False" and succeeded["reason"] == "RenderFailed"
    rendering = next(s for s in status["stages"] if s["name"] == "Rendering")
    assert rendering["phase"] == "Failed"


def test_quality_override(write_manifest, run_cli):
    spec = storyboard(1)
    spec["render"]["quality"] = "high"
    result = run_cli(write_manifest(videojob(spec)), "--quality", "low")
    assert result.code == 0
    width, height, _ = video_facts(result.status["outputs"]["videoURI"])
    assert (width, height) == (854, 480)


def test_concurrent_runs_get_distinct_versions(write_manifest, tmp_path):
    import subprocess
    import sys

    manifest = write_manifest(videojob(storyboard(1)))
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "videojob.cli.main", "run", str(manifest), "--output-dir", str(out), "--no-progress"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    versions = sorted(int(Path(d).name[1:]) for d in (out / "tests" / "demo-video").iterdir() if d.name.startswith("v"))
    assert versions == [1, 2]
