"""Join narrated scenes: the scenes' pictures with one AAC narration track, padded or re-encoded
when a voice outlasts its scene, with subtitles burned in on request (see `combine_narrated`).

Silent videos are joined by `videojob.pipeline.media.concat` (no numpy, no audio).
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from videojob.pipeline.media import remux
from videojob.pipeline.narration.burnin import CuePainter
from videojob.pipeline.narration.speech import read_wav
from videojob.pipeline.narration.subtitles import Cue


@dataclass
class SceneClip:
    """One rendered scene and its narration (a mono 16-bit WAV starting with the scene)."""

    video: Path
    audio: Path | None = None
    cues: list[Cue] = field(default_factory=list)  # seconds from the scene's start


@dataclass
class Soundtrack:
    cues: list[Cue]  # seconds from the start of the video, in order
    scene_starts: list[float]  # where each scene starts in the video, in seconds
    padded_frames: int  # frames added to scenes shorter than their narration


def _scene_audio(clip: SceneClip, rate: int | None) -> tuple[np.ndarray, int | None]:
    if clip.audio is None:
        return np.zeros(0, np.int16), rate
    samples, clip_rate = read_wav(clip.audio)
    if rate is not None and clip_rate != rate:  # one engine per video, so only for foreign WAVs
        positions = np.linspace(0, len(samples) - 1, round(len(samples) * rate / clip_rate))
        samples = np.interp(positions, np.arange(len(samples)), samples).astype(np.int16)
    return samples, rate or clip_rate


def _encode_audio(out, stream, track: np.ndarray, rate: int) -> None:
    for start in range(0, len(track), 1024):
        chunk = track[start:start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def combine_narrated(clips: list[SceneClip], output: Path, *, burn_in: bool = False) -> Soundtrack:
    """Join scenes into one MP4 with an AAC narration track (written atomically).

    Every scene lasts at least its narration: a scene that comes out shorter is padded with its
    last frame, never cut. Each scene's audio starts exactly at its first frame (starts are
    counted in frames), so audio and pictures never drift apart at scene boundaries. Scenes long
    enough for their voice are remuxed as they are (no re-encoding: fast and lossless); padding
    or burned-in subtitles make new pictures, so then the video is re-encoded (H.264, same size
    and frame rate).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.{uuid.uuid4().hex[:8]}{output.suffix}")
    audios, rate = [], None
    for clip in clips:
        samples, rate = _scene_audio(clip, rate)
        audios.append(samples)
    rate = rate or 22050
    with av.open(str(clips[0].video)) as first:
        template = first.streams.video[0]
        fps = Fraction(template.average_rate or template.guessed_rate or 30)
        needed = [math.ceil(Fraction(len(samples), rate) * fps) for samples in audios]
        reencode = burn_in or any(n > _frame_count(c.video) for c, n in zip(clips, needed))
        size = (template.codec_context.width, template.codec_context.height)
        with av.open(str(tmp), "w", format="mp4") as out:
            # Every stream exists before the first packet is written (the header goes out then).
            video = _h264_stream(out, fps, size) if reencode else out.add_stream_from_template(template)
            audio = out.add_stream("aac", rate=rate, layout="mono")
            if reencode:
                starts, padded = _reencode(out, video, clips, needed, fps, size, burn_in)
            else:
                starts, padded = remux(out, video, [c.video for c in clips]), 0
            _encode_audio(out, audio, _soundtrack(audios, starts, rate), rate)
    os.replace(tmp, output)
    cues = [Cue(start=float(start + Fraction(c.start)), end=float(start + Fraction(c.end)), text=c.text)
            for clip, start in zip(clips, starts) for c in clip.cues]
    return Soundtrack(cues, [float(s) for s in starts[:-1]], padded)


def _soundtrack(audios: list[np.ndarray], starts: list[Fraction], rate: int) -> np.ndarray:
    """The whole video's audio: each scene's narration from its first frame, silence elsewhere."""
    track = np.zeros(round(starts[-1] * rate), np.int16)
    for start, samples in zip(starts, audios):
        at = round(start * rate)
        piece = samples[: max(0, len(track) - at)]
        track[at:at + len(piece)] = piece
    return track


def _h264_stream(out, fps: Fraction, size: tuple[int, int]):
    video = out.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "veryfast"})
    video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
    return video


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as src:
        return sum(1 for p in src.demux(src.streams.video[0]) if p.dts is not None)


def _reencode(out, video, clips: list[SceneClip], needed: list[int], fps: Fraction, size: tuple[int, int],
              burn_in: bool) -> tuple[list[Fraction], int]:
    """Encode every scene's frames, padded to `needed`; (scene starts + end in seconds, frames padded)."""
    painter = CuePainter(*size) if burn_in else None
    starts, padded, frame_index = [], 0, 0
    for clip, frames in zip(clips, needed):
        start = Fraction(frame_index) / fps
        starts.append(start)
        cues = [Cue(start=float(start) + c.start, end=float(start) + c.end, text=c.text) for c in clip.cues]
        frame_index, pad = _encode_scene(out, video, clip.video, frame_index, frames, fps, size, painter, cues)
        padded += pad
    out.mux(video.encode(None))
    return starts + [Fraction(frame_index) / fps], padded


def _encode_scene(out, stream, path: Path, first_index: int, min_frames: int, fps: Fraction,
                  size: tuple[int, int], painter, cues: list[Cue]) -> tuple[int, int]:
    """Re-encode one scene's frames from `first_index`, padding with the last frame up to
    `min_frames`; returns (the next frame index, frames padded)."""
    index, last, padded = first_index, None, 0

    def emit(frame) -> None:
        nonlocal index
        if painter is not None:
            frame = painter.paint(frame, float(Fraction(index) / fps), cues)
        frame.pts, frame.time_base = index, Fraction(1) / fps
        out.mux(stream.encode(frame))
        index += 1

    with av.open(str(path)) as src:
        for frame in src.decode(video=0):
            last = frame.reformat(size[0], size[1], "yuv420p")
            emit(last)
    while last is not None and index - first_index < min_frames:
        emit(last)
        padded += 1
    return index, padded
