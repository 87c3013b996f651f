"""Amazon Polly: the SynthesizeSpeech requests against moto's Polly in server mode (real HTTP),
speech-mark timing, and errors through the shared AWS retry layer and error classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videojob.api.models import NarrationSpec, VideoJobSpec
from videojob.pipeline.errors import TransientError
from videojob.pipeline.narration import NarrationInvalid, Narrator
from videojob.pipeline.narration.polly_engine import (
    SAMPLE_RATE,
    PollyEngine,
    build_ssml,
    parse_word_marks,
    speech_from_polly,
)
from videojob.pipeline.narration.speech import LEAD_IN_SECONDS
from videojob.storage.aws_config import load_aws_config

SENTENCES = ["Fourier & friends say 1 < 2.", "Ça marche très bien."]


def _engine(voice="Joanna", speed=1.0) -> PollyEngine:
    spec = VideoJobSpec(topic="t", narration=NarrationSpec(engine="polly", voice=voice, speed=speed))
    return Narrator.for_spec(spec, Path("/nonexistent")).engine


def _capture(engine: PollyEngine) -> list[dict]:
    sent = []
    engine.client.meta.events.register("before-send.polly.SynthesizeSpeech",
                                       lambda request, **_: sent.append(json.loads(request.body)))
    return sent


async def test_audio_and_word_mark_requests_are_accepted_by_polly(aws_env):
    engine = _engine(speed=1.25)
    sent = _capture(engine)
    ssml, _ = build_ssml(SENTENCES, engine.speed)
    audio = await engine.synthesize(engine.request(ssml, "pcm"))
    marks = await engine.synthesize(engine.request(ssml, "json"))
    assert audio and marks  # moto validated both requests and answered 200
    assert sent[0] == {"Engine": "neural", "VoiceId": "Joanna", "OutputFormat": "pcm", "SampleRate": "16000",
                       "TextType": "ssml", "Text": '<speak><prosody rate="125%">Fourier &amp; friends say 1 &lt; 2. '
                                                   "Ça marche très bien.</prosody></speak>"}
    assert sent[1]["OutputFormat"] == "json" and sent[1]["SpeechMarkTypes"] == ["word"]
    assert sent[1]["Text"] == sent[0]["Text"]


async def test_a_voice_polly_does_not_have_is_refused_naming_the_field(aws_env):
    engine = _engine(voice="Nobody")
    with pytest.raises(NarrationInvalid) as err:
        await engine.synthesize(engine.request("<speak>Hi.</speak>", "pcm"))
    assert err.value.message.startswith("spec.narration.voice: Polly cannot speak with voice 'Nobody'")
    assert "InvalidParameterValue" in err.value.message


async def test_an_unreachable_polly_is_a_transient_failure_after_the_shared_retries(monkeypatch):
    for name, value in {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
                        "AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    engine = PollyEngine("Joanna", 1.0, load_aws_config(max_retries=1))
    with pytest.raises(TransientError, match="polly SynthesizeSpeech failed"):
        await engine.synthesize(engine.request("<speak>Hi.</speak>", "pcm"))


def test_word_marks_time_each_sentence_by_its_byte_offset_in_the_ssml():
    ssml, offsets = build_ssml(SENTENCES, 1.0)
    raw = ssml.encode()
    assert raw[offsets[0]:].startswith(b"Fourier") and raw[offsets[1]:].startswith("Ça".encode())
    word = lambda t, at, value: {"time": t, "type": "word", "start": at, "end": at + len(value.encode()), "value": value}
    body = "\n".join(json.dumps(m) for m in [
        word(6, offsets[0], "Fourier"), word(420, offsets[0] + 19, "say"),
        word(1730, offsets[1], "Ça"), word(1900, offsets[1] + 4, "marche"),
    ]).encode()
    pcm = np.full(SAMPLE_RATE * 3, 1000, "<i2").tobytes()  # 3 s of "voice"
    speech = speech_from_polly(pcm, parse_word_marks(body), offsets, characters=2 * sum(map(len, SENTENCES)))
    starts = [start / SAMPLE_RATE - LEAD_IN_SECONDS for start, _ in speech.spans]
    assert starts == pytest.approx([0.006, 1.730])
    assert speech.spans[0][1] == speech.spans[1][0]
    assert speech.spans[1][1] == round(LEAD_IN_SECONDS * SAMPLE_RATE) + SAMPLE_RATE * 3
    assert speech.characters == 2 * (len(SENTENCES[0]) + len(SENTENCES[1]))
