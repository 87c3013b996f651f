"""Narrated videos: an AAC track in step with the pictures, scenes padded to their narration,
subtitle cues where the voice is, optionally burned in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import ImageOps

from videojob.pipeline.media import probe
from videojob.pipeline.narration.mux import SceneClip, combine_narrated

from tests.narration.conftest import FPS, decoded_audio, frame_duration, rms, stream_durations

SCENE_1 = "Waves add up. Their sum can take any periodic shape."
SCENE_3 = "Euler's identity links five constants. It is short, but it takes a while to say out loud."


@pytest.fixture
async def narrated(narrator, clip, tmp_path):
    """Three scenes: narrated (video longer than the voice), silent, narrated (video far shorter)."""
    first, third = await narrator.narrate(SCENE_1), await narrator.narrate(SCENE_3)
    clips = [
        SceneClip(clip(first.duration_seconds + 1.0), Path(first.audio_path), first.cues),
        SceneClip(clip(2.0, shade=120)),
        SceneClip(clip(1.0, shade=200), Path(third.audio_path), third.cues),
    ]
    output = tmp_path / "out" / "video.mp4"
    soundtrack = combine_narrated(clips, output)
    return output, soundtrack, (first, third)


async def test_the_video_has_h264_pictures_and_an_aac_track_of_the_same_length(narrated):
    output, _, _ = narrated
    with av.open(str(output)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
    assert kinds == {"video": "h264", "audio": "aac"}
    durations = stream_durations(output)
    assert abs(durations["audio"] - durations["video"]) <= float(frame_duration(output))


async def test_scenes_last_at_least_their_narration_and_start_on_frame_boundaries(narrated, narrator):
    output, soundtrack, (first, third) = narrated
    starts = soundtrack.scene_starts
    assert starts[0] == 0
    assert starts[1] == pytest.approx(round((first.duration_seconds + 1.0) * FPS) / FPS, abs=1e-9)
    assert starts[2] == pytest.approx(starts[1] + 2.0, abs=1e-9)
    # The third clip lasts 1 s; its voice much longer: padded with its last frame, never cut.
    total = probe(output).duration_seconds
    assert total - starts[2] >= third.duration_seconds - float(frame_duration(output))
    assert soundtrack.padded_frames >= round((third.duration_seconds - 1.0) * FPS) - 1
    with av.open(str(output)) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    tail = [int(f.mean()) for f in frames[round(starts[2] * FPS) + FPS:]]
    assert len(tail) > 10 and len(set(tail)) == 1  # the padding repeats one picture


async def test_audio_is_voice_where_narration_is_and_silence_elsewhere(narrated):
    output, soundtrack, _ = narrated
    audio, rate = decoded_audio(output)
    for cue in soundtrack.cues:
        assert rms(audio[round(cue.start * rate):round(cue.end * rate)]) > 0.03, cue.text
    silent_scene = audio[round(soundtrack.scene_starts[1] * rate) + rate // 10:round(soundtrack.scene_starts[2] * rate) - rate // 10]
    assert len(silent_scene) > rate and rms(silent_scene) < 0.001


def _onset(audio: np.ndarray, rate: int, after: float, threshold: float = 0.02) -> float:
    """First time from `after` on where 10 ms of audio gets louder than `threshold`."""
    window = rate // 100
    start = max(0, round(after * rate))
    for i in range(start, len(audio) - window, window):
        if rms(audio[i:i + window]) > threshold:
            return i / rate
    raise AssertionError(f"no voice after {after:.2f} s")


async def test_one_cue_per_sentence_ordered_inside_the_video_and_on_its_voice(narrated):
    output, soundtrack, _ = narrated
    cues = soundtrack.cues
    assert [c.text for c in cues] == [
        "Waves add up.", "Their sum can take any periodic shape.", "Euler's identity links five constants.",
        "It is short, but it takes a while to say out loud."]
    duration = probe(output).duration_seconds
    assert all(0 <= c.start < c.end <= duration for c in cues)
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
    audio, rate = decoded_audio(output)
    for cue in cues:
        assert abs(_onset(audio, rate, cue.start - 0.25) - cue.start) <= 0.25, cue.text


async def test_burned_in_subtitles_show_the_spoken_sentence(narrator, clip, tmp_path):
    track = await narrator.narrate("Subtitles are drawn into the picture.")
    output = tmp_path / "burned.mp4"
    soundtrack = combine_narrated([SceneClip(clip(1.0), Path(track.audio_path), track.cues)],
                                  output, burn_in=True)
    middle = (soundtrack.cues[0].start + soundtrack.cues[0].end) / 2
    with av.open(str(output)) as container:
        frame = next(f for f in container.decode(video=0) if f.time >= middle)
    picture = ImageOps.invert(frame.to_image().convert("L"))
    picture.save(tmp_path / "frame.png")
    text = subprocess.run(["tesseract", str(tmp_path / "frame.png"), "-", "--psm", "6"], capture_output=True,
                          text=True, timeout=60).stdout
    assert "Subtitles are drawn into the picture" in " ".join(text.split())


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


async def test_scenes_long_enough_for_their_voice_are_copied_not_re_encoded(narrator, clip, tmp_path):
    track = await narrator.narrate("Short and sweet. Two sentences.")
    clips = [SceneClip(clip(track.duration_seconds + 0.5), Path(track.audio_path), track.cues),
             SceneClip(clip(track.duration_seconds + 0.2, shade=90), Path(track.audio_path), track.cues)]
    output = tmp_path / "copied.mp4"
    soundtrack = combine_narrated(clips, output)
    assert soundtrack.padded_frames == 0
    assert _packets(output) == _packets(clips[0].video) + _packets(clips[1].video)  # lossless
    durations = stream_durations(output)
    assert abs(durations["audio"] - durations["video"]) <= float(frame_duration(output))
    assert soundtrack.scene_starts[1] == pytest.approx(round((track.duration_seconds + 0.5) * FPS) / FPS)
    audio, rate = decoded_audio(output)
    for cue in soundtrack.cues:
        assert abs(_onset(audio, rate, cue.start - 0.25) - cue.start) <= 0.25, cue.text
