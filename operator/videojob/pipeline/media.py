"""Video files: join scene videos into one MP4 and read facts about a video, with PyAV.

Manim writes every scene with the same codec, resolution and frame rate for a given quality, so
scenes are joined by remuxing packets (no re-encoding: fast, lossless). Joining scenes with a
narration track is `narration/mux.py` (it needs numpy and the subtitle painter; this does not).
PyAV is imported by the functions that use it: a re-run whose joined video comes from the render
cache only hashes files, and should not pay ~0.1 s for a library it does not call.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class VideoFacts:
    width: int
    height: int
    duration_seconds: float
    frames: int
    size_bytes: int


def probe(path: Path) -> VideoFacts:
    """Facts about a video file; raises ValueError if it has no decodable video stream."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None
                else float(container.duration or 0) / av.time_base
            )
            return VideoFacts(
                stream.codec_context.width, stream.codec_context.height, duration, stream.frames, path.stat().st_size
            )
    except (av.FFmpegError, IndexError) as exc:
        raise ValueError(f"{path}: not a readable video ({exc})") from exc


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def concat(inputs: list[Path], output: Path) -> Path:
    """Join videos end to end into `output` (written atomically). Video streams only."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.{uuid.uuid4().hex[:8]}{output.suffix}")
    if len(inputs) == 1:
        shutil.copyfile(inputs[0], tmp)
        os.replace(tmp, output)
        return output
    import av

    with av.open(str(tmp), "w", format="mp4") as out:
        with av.open(str(inputs[0])) as first:
            out_stream = out.add_stream_from_template(first.streams.video[0])
        remux(out, out_stream, inputs)
    os.replace(tmp, output)
    return output


def remux(out, out_stream, inputs: list[Path]) -> list[Fraction]:
    """Copy the inputs' video packets end to end into `out_stream`; returns where each input
    starts and, last, where the whole ends (seconds)."""
    import av

    offsets = [Fraction(0)]
    for path in inputs:
        offset = offsets[-1]
        with av.open(str(path)) as src:
            stream = src.streams.video[0]
            tb = stream.time_base
            last_end = offset
            for packet in src.demux(stream):
                if packet.dts is None:
                    continue
                shift = int(offset / tb)
                packet.pts = packet.pts + shift if packet.pts is not None else None
                packet.dts = packet.dts + shift
                end = (packet.pts or packet.dts) * tb + (packet.duration or 0) * tb
                last_end = max(last_end, Fraction(end))
                packet.stream = out_stream
                out.mux(packet)
        offsets.append(last_end)
    return offsets
