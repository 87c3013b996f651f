"""Start-up cost is part of the design (issue 14): an unchanged VideoJob starts no sandbox and
loads neither LangGraph nor Manim nor PyAV, yet gives the same result; a sandbox loads only what
scenes need."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pipeline.conftest import storyboard, videojob

pytestmark = pytest.mark.render


def test_an_unchanged_rerun_starts_no_sandbox(write_manifest, run_cli, tmp_path):
    manifest = write_manifest(videojob(storyboard(1)))
    first = run_cli(manifest)
    assert first.code == 0, first.err
    work = tmp_path / "out" / ".work"
    assert (work / "sandbox").is_dir()  # where a run's sandbox instances live while it renders
    shutil.rmtree(work)

    again = run_cli(manifest)
    assert again.code == 0, again.err
    assert again.status["version"] == 2
    rendering = next(s for s in again.status["stages"] if s["name"] == "Rendering")
    assert "taken from the render cache" in rendering["message"]
    assert not (work / "sandbox").exists()  # no sandbox instance was ever made for it


def test_the_sandbox_zygote_loads_none_of_the_parents_side():
    # What `python -m videojob.pipeline.sandbox.zygote` imports besides Manim: its package, the
    # zygote and the executor. Not asyncio, the code check or the hostile-result reader.
    probe = (
        "import json, sys\n"
        "import videojob.pipeline.sandbox.zygote, videojob.pipeline.sandbox.execute\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('videojob') or m == 'asyncio')))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, check=True,
                                       text=True).stdout)
    assert "asyncio" not in loaded
    assert {"videojob.pipeline.sandbox.service", "videojob.pipeline.sandbox.scratch",
            "videojob.pipeline.codecheck"}.isdisjoint(loaded)
    assert "videojob.pipeline.sandbox.execute" in loaded


def run_in_subprocess(manifest: Path, out: Path, *extra: str,
                      env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`videojob run` as a user runs it, in its own interpreter (`env`: variables added to the
    environment); returns the process and the top-level packages it imported (from
    `python -X importtime`, which lists every import)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "videojob.cli.main", "run", str(manifest), "--output-dir", str(out),
         "--no-progress", *extra], capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )
    imported = {line.split("|")[2].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:") and line.count("|") == 2}
    messages = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, messages), imported


def without_run_facts(status: Any) -> Any:
    """A status without what differs between two runs of the same job by design: times, the
    version number (in URIs and messages too) and which scene was reported last."""
    if isinstance(status, dict):
        return {key: "N" if key == "version" else without_run_facts(value) for key, value in status.items()
                if key not in ("message", "sandbox") or "ready" in str(value)}  # `sandbox`: only renders use one
    if isinstance(status, list):
        return [without_run_facts(item) for item in status]
    if isinstance(status, str):
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", status)
        return re.sub(r"version \d+", "version N", re.sub(r"/v\d+/", "/vN/", text))
    return status


def test_an_unchanged_rerun_loads_neither_langgraph_nor_manim_nor_pyav_and_gives_the_same_result(write_manifest, tmp_path):
    manifest = write_manifest(videojob(storyboard(1, 1)))
    out = tmp_path / "out"
    first, loaded_first = run_in_subprocess(manifest, out)
    assert first.returncode == 0, first.stderr
    assert {"langgraph", "av"} <= loaded_first  # the first run renders through the graph and joins with PyAV
    shutil.rmtree(out / ".work")

    again, loaded = run_in_subprocess(manifest, out)
    assert again.returncode == 0, again.stderr
    assert loaded.isdisjoint({"langgraph", "langchain_core", "langsmith", "manim", "av", "numpy", "boto3", "rich"})
    assert not (out / ".work" / "sandbox").exists()  # no sandbox was started
    assert again.stderr == first.stderr  # the same stage lines
    before, after = yaml.safe_load(first.stdout)["status"], yaml.safe_load(again.stdout)["status"]
    assert after["version"] == 2 and after["phase"] == "Succeeded"
    assert without_run_facts(after) == without_run_facts(before)
    v1, v2 = out / "tests" / "demo-video" / "v1", out / "tests" / "demo-video" / "v2"
    assert sorted(p.relative_to(v2) for p in v2.rglob("*")) == sorted(p.relative_to(v1) for p in v1.rglob("*"))
    for name in ("demo-video.mp4", "demo-video.py", "scenes/scene_01.mp4", "scenes/scene_02.py"):
        assert (v2 / name).read_bytes() == (v1 / name).read_bytes(), name
    record1, record2 = (json.loads((v / "record.json").read_text()) for v in (v1, v2))
    assert record2["version"] == 2 and record2["sha256"] == record1["sha256"] == before["outputs"]["sha256"]


def test_an_edited_scene_after_a_cached_run_is_the_only_one_rendered_again(write_manifest, tmp_path):
    spec = storyboard(1, 1)
    manifest = write_manifest(videojob(spec))
    out = tmp_path / "out"
    assert run_in_subprocess(manifest, out)[0].returncode == 0
    assert run_in_subprocess(manifest, out)[0].returncode == 0  # cached: v2

    spec["storyboard"]["scenes"][1]["text"] = "Edited text."
    write_manifest(videojob(spec))
    edited, loaded = run_in_subprocess(manifest, out)
    assert edited.returncode == 0, edited.stderr
    assert "langgraph" in loaded  # a scene renders: the run goes through the graph again
    status = yaml.safe_load(edited.stdout)["status"]
    assert status["version"] == 3 and status["sandbox"] == "bubblewrap"
    video = out / "tests" / "demo-video"
    # The unchanged scene is the cached file itself (the same hard-linked inode), the edited one is new.
    assert (video / "v3" / "scenes" / "scene_01.mp4").samefile(video / "v2" / "scenes" / "scene_01.mp4")
    assert not (video / "v3" / "scenes" / "scene_02.mp4").samefile(video / "v2" / "scenes" / "scene_02.mp4")
    assert "Edited text." in (video / "v3" / "scenes" / "scene_02.py").read_text()
    assert status["outputs"]["sha256"] != json.loads((video / "v2" / "record.json").read_text())["sha256"]
