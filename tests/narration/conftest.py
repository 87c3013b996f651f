"""Fixtures for narration tests: the bundled Piper voice, short real H.264 clips, audio analysis."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from videojob.api.models import VideoJobSpec
from videojob.pipeline.narration import Narrator

# The CLI runner and the moto-backed AWS fixtures of the pipeline and storage tests.
from tests.pipeline.conftest import run_cli, write_manifest  # noqa: F401
from tests.storage.conftest import aws_env, dynamodb_client, make_service, moto_url, s3_client  # noqa: F401

FPS = 15


@pytest.fixture
def narrator(tmp_path) -> Narrator:
    """Piper with the bundled voice and a fresh narration cache."""
    return Narrator.for_spec(VideoJobSpec(topic="test"), tmp_path / "cache")


def make_clip(path: Path, seconds: float, fps: int = FPS, shade: int = 40) -> Path:
    """A real H.264 clip like Manim's (854x480, yuv420p) whose picture changes every frame."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 854, 480, "yuv420p"
        for i in range(round(seconds * fps)):
            picture = np.full((480, 854, 3), (shade + 2 * i) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture
def clip(tmp_path):
    counter = iter(range(1000))
    return lambda seconds, **kw: make_clip(tmp_path / f"clip{next(counter)}.mp4", seconds, **kw)


def decoded_audio(path: Path) -> tuple[np.ndarray, int]:
    """The file's audio track as float mono samples in [-1, 1] and its sample rate."""
    chunks, rate = [], None
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            chunks.append(frame.to_ndarray().astype(np.float64).mean(axis=0))
    samples = np.concatenate(chunks)
    if np.abs(samples).max() > 1.5:  # integer sample formats
        samples = samples / 32768
    return samples, rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0


def stream_durations(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        return {s.type: float(s.duration * s.time_base) for s in container.streams}


def frame_duration(path: Path) -> Fraction:
    with av.open(str(path)) as container:
        return 1 / Fraction(container.streams.video[0].average_rate)
