"""Start-up cost is part of the design (issue 14): an unchanged VideoJob starts no sandbox, and
a sandbox loads only what scenes need."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

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
