"""Fixtures for the sandbox suite: secrets planted in the parent, a real sandbox, OCR of a video.

The parent process (this test) holds credentials the way `videojob run` or the operator would:
sentinel AWS/LLM variables in its environment and secret files in its HOME and elsewhere. Scene
code then tries, as an attacker would, to get them out.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from videojob.pipeline.sandbox import Sandbox, SandboxLimits

# OCR-friendly sentinels: if one ever reached a video, tesseract would read it back.
AWS_SENTINEL = "ZEBRAQUARTZAWS"
OPENAI_SENTINEL = "MANGOFJORDKEY"
FILE_SENTINEL = "WALRUSPIANOFILE"
HOME_SENTINEL = "OTTERBANJOHOME"
SENTINELS = (AWS_SENTINEL, OPENAI_SENTINEL, FILE_SENTINEL, HOME_SENTINEL)


@dataclass
class Planted:
    secret_file: Path
    home_secret: Path
    home: Path


@pytest.fixture
def planted(tmp_path, monkeypatch) -> Planted:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SENTINEL)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_SENTINEL)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SENTINEL)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    secret_file = secrets_dir / "token"
    secret_file.write_text(FILE_SENTINEL)
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    home_secret = home / ".aws" / "credentials"
    home_secret.write_text(f"[default]\naws_secret_access_key = {HOME_SENTINEL}\n")
    monkeypatch.setenv("HOME", str(home))
    return Planted(secret_file, home_secret, home)


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path / "work", SandboxLimits(timeout_seconds=60), mode="bubblewrap")
    yield box
    box.close()


SCENE = "from manim import *\n{prelude}\n\nclass A(Scene):\n    def construct(self):\n{body}\n"


def scene(body: str, prelude: str = "") -> str:
    """Scene code: `prelude` at module level (runs when the code is executed), `body` in construct."""
    return SCENE.format(prelude=prelude, body="\n".join("        " + line for line in body.splitlines()))


def ocr(video: Path) -> str:
    """The text tesseract reads on the last frame of `video`."""
    with av.open(str(video), format="mp4") as container:
        frame = None
        for frame in container.decode(container.streams.video[0]):
            pass
    assert frame is not None
    png = video.with_suffix(".png")
    frame.to_image().save(png)
    return subprocess.run(["tesseract", str(png), "stdout"], capture_output=True, text=True, check=True).stdout


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
