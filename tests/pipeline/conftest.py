"""Fixtures for the local pipeline: manifests on disk and the real `videojob` CLI in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from videojob.cli.main import main


def videojob(spec: dict[str, Any], name: str = "demo-video", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "videogen.io/v1alpha1",
        "kind": "VideoJob",
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def storyboard(*durations: float, **scene_fields: Any) -> dict[str, Any]:
    return {
        "topic": "Shapes",
        "projectId": "tests",
        "render": {"quality": "low"},
        "storyboard": {
            "scenes": [
                {"title": f"Scene {i + 1}", "text": "Short text.", "shape": "circle", "durationSeconds": d, **scene_fields}
                for i, d in enumerate(durations)
            ]
        },
    }


@pytest.fixture
def write_manifest(tmp_path: Path):
    def write(document: Any, name: str = "job.yaml") -> Path:
        path = tmp_path / name
        if isinstance(document, bytes):
            path.write_bytes(document)
        elif isinstance(document, str):
            path.write_text(document)
        else:
            path.write_text(yaml.safe_dump(document))
        return path

    return write


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def status(self) -> dict[str, Any]:
        return yaml.safe_load(self.out)["status"]


@pytest.fixture
def run_cli(capsys, tmp_path: Path):
    """Run `videojob run MANIFEST` in this process; returns exit code, stdout, stderr."""

    def run(manifest: Path, *extra: str, output_dir: Path | None = None) -> CliResult:
        out_dir = output_dir or tmp_path / "out"
        code = main(["run", str(manifest), "--output-dir", str(out_dir), "--no-progress", *extra])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
