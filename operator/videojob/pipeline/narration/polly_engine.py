"""Amazon Polly: neural voices, through the same AWS configuration, retry layer (botocore's) and error
classes as S3 and DynamoDB (`storage.aws_config`, `storage.retry`).

One scene is two `SynthesizeSpeech` requests over the same SSML document: the audio (16 kHz PCM)
and its word speech marks (JSON lines with the time and the byte offset of every word). Each
of *our* sentences — the ones the subtitle cues follow — starts at the first word mark inside it,
so cue times come from Polly's own timing. (Polly's `sentence` marks follow Polly's own
segmentation, which may split differently from the cues; word marks line up with any split.)
Polly bills the characters of both requests (SSML tags excluded); `characters` counts them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from videojob import metrics
from videojob.pipeline.errors import PipelineError
from videojob.pipeline.narration.errors import NarrationInvalid, NarrationUnavailable
from videojob.pipeline.narration.speech import LEAD_IN_SECONDS, TAIL_SECONDS, Speech
from videojob.storage.aws_config import AWSConfig
from videojob.storage.retry import AWSError, botocore_config, error_code, is_retryable

DEFAULT_VOICE = "Joanna"
SAMPLE_RATE = 16000  # neural voices give PCM at 8 or 16 kHz
# Errors that mean "this voice cannot speak this": bad input, named as spec.narration.voice.
_VOICE_ERRORS = {"InvalidParameterValue", "ValidationException", "EngineNotSupportedException",
                 "LanguageNotSupportedException", "InvalidSsmlException"}


def build_ssml(sentences: list[str], speed: float) -> tuple[str, list[int]]:
    """The SSML document and the UTF-8 byte offset of each sentence in it."""
    head = f'<speak><prosody rate="{round(speed * 100)}%">'
    parts, offsets, position = [head], [], len(head.encode())
    for i, sentence in enumerate(sentences):
        piece = (" " if i else "") + escape(sentence)
        offsets.append(position + (1 if i else 0))
        parts.append(piece)
        position += len(piece.encode())
    parts.append("</prosody></speak>")
    return "".join(parts), offsets


def parse_word_marks(body: bytes) -> list[dict[str, Any]]:
    """Polly's speech marks: one JSON object per line."""
    marks = []
    for line in body.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                marks.append(json.loads(line))
            except json.JSONDecodeError:
                raise NarrationUnavailable(f"Polly returned unreadable speech marks: {line[:80]!r}") from None
    return [m for m in marks if m.get("type") == "word"]


def sentence_starts(marks: list[dict[str, Any]], offsets: list[int]) -> list[float]:
    """Start time (s) of each sentence: its first word mark; a sentence without words starts
    where the previous one did."""
    starts, previous = [], 0.0
    for i, offset in enumerate(offsets):
        end = offsets[i + 1] if i + 1 < len(offsets) else float("inf")
        times = [m["time"] for m in marks if offset <= m.get("start", -1) < end]
        previous = min(times) / 1000 if times else previous
        starts.append(previous)
    return starts


def speech_from_polly(pcm: bytes, marks: list[dict[str, Any]], offsets: list[int], characters: int) -> Speech:
    """Polly's audio with the common lead-in and tail, sentence spans from the word marks."""
    audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.int16)
    lead = round(LEAD_IN_SECONDS * SAMPLE_RATE)
    starts = [lead + min(len(audio), round(t * SAMPLE_RATE)) for t in sentence_starts(marks, offsets)]
    ends = starts[1:] + [lead + len(audio)]
    samples = np.concatenate([np.zeros(lead, np.int16), audio, np.zeros(round(TAIL_SECONDS * SAMPLE_RATE), np.int16)])
    return Speech(samples, SAMPLE_RATE, list(zip(starts, ends)), characters)


class PollyEngine:
    name = "polly"

    def __init__(self, voice: str | None, speed: float, aws: AWSConfig):
        self.voice = voice or DEFAULT_VOICE
        self.speed = speed
        self.aws = aws
        self._client = None

    @property
    def identity(self) -> str:
        return f"polly:{self.voice}:neural"

    @property
    def client(self):
        if self._client is None:
            import boto3

            config = botocore_config(self.aws.max_retries, self.aws.retry_mode)
            self._client = boto3.client("polly", region_name=self.aws.region, config=config)
        return self._client

    def request(self, ssml: str, output_format: str) -> dict[str, Any]:
        """The SynthesizeSpeech parameters for the audio ("pcm") or the word marks ("json")."""
        params: dict[str, Any] = {"Engine": "neural", "VoiceId": self.voice, "Text": ssml, "TextType": "ssml",
                                  "OutputFormat": output_format, "SampleRate": str(SAMPLE_RATE)}
        if output_format == "json":
            params["SpeechMarkTypes"] = ["word"]
        return params

    async def synthesize(self, params: dict[str, Any]) -> bytes:
        """One SynthesizeSpeech call. Retries are botocore's (the one AWS retry layer: throttling,
        5xx and connection errors, `AWS_MAX_RETRIES`); what still fails is classified."""
        def call() -> bytes:
            response = self.client.synthesize_speech(**params)
            with response["AudioStream"] as stream:
                return stream.read()

        try:
            return await asyncio.to_thread(call)
        except Exception as exc:  # noqa: BLE001 - classified below, never raised raw to the user
            metrics.record_aws_error("polly", "SynthesizeSpeech", is_retryable(exc))
            raise self._classify(AWSError("polly", "SynthesizeSpeech", exc)) from None

    def _classify(self, error: AWSError) -> PipelineError:
        if error_code(error.cause) in _VOICE_ERRORS:
            return NarrationInvalid(f"spec.narration.voice: Polly cannot speak with voice {self.voice!r}: {str(error)[:300]}")
        if is_retryable(error.cause):
            return NarrationUnavailable(str(error))
        return PipelineError(str(error), reason="NarrationFailed")

    async def speak(self, sentences: list[str]) -> Speech:
        ssml, offsets = build_ssml(sentences, self.speed)
        pcm, marks = await asyncio.gather(self.synthesize(self.request(ssml, "pcm")),
                                          self.synthesize(self.request(ssml, "json")))
        billed = 2 * sum(len(s) for s in sentences)
        return speech_from_polly(pcm, parse_word_marks(marks), offsets, billed)
