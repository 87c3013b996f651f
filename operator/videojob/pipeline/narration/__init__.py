"""Narration: spoken text per scene, synthesized by trusted pipeline code (never in the sandbox).

    narrator = Narrator.for_spec(job.spec, cache_dir)     # None when the video is silent
    track = await narrator.narrate("A Fourier series ...")  # audio file + one cue per sentence

Engines: `piper` (offline, default), `polly` (Amazon Polly), `none`. Identical text with the same
engine, voice and speed comes from the narration cache. Subtitles (WebVTT, SRT) are written from
the cues of all scenes once the scenes' start times in the video are known (see `media.py`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from videojob.api.models import VideoJobSpec
from videojob.pipeline.narration.cache import NarrationCache, narration_key
from videojob.pipeline.narration.errors import NarrationInvalid, NarrationUnavailable
from videojob.pipeline.narration.subtitles import Cue, to_srt, to_webvtt
from videojob.pipeline.narration.text import split_sentences

__all__ = [
    "Cue", "NarrationInvalid", "NarrationTrack", "NarrationUnavailable", "Narrator", "engine_name",
    "to_srt", "to_webvtt",
]


class NarrationTrack(BaseModel):
    """One scene's narration: a mono WAV and its cues (seconds from the start of the scene)."""

    audio_path: str
    sample_rate: int
    duration_seconds: float
    cues: list[Cue]
    characters: int = 0  # sent to the engine (0 when it came from the cache)
    cached: bool = False


def engine_name(spec: VideoJobSpec, any_narration: bool) -> str:
    """The engine in effect: the spec's, else piper when some scene has narration, else none."""
    if spec.narration is not None and spec.narration.engine is not None:
        return str(spec.narration.engine)
    return "piper" if any_narration else "none"


def _make_engine(name: str, voice: str | None, speed: float, aws_config=None):
    if name == "piper":
        from videojob.pipeline.narration.piper_engine import PiperEngine

        return PiperEngine(voice, speed)
    if name == "polly":
        from videojob.config import ConfigError
        from videojob.pipeline.errors import PipelineError
        from videojob.pipeline.narration.polly_engine import PollyEngine
        from videojob.storage.aws_config import load_aws_config

        try:
            return PollyEngine(voice, speed, aws_config or load_aws_config())
        except ConfigError as exc:  # the operator's AWS_* settings, not the spec
            raise PipelineError(f"invalid configuration: {exc}", reason="InvalidConfiguration") from None
    raise NarrationInvalid(f"spec.narration.engine: unknown engine {name!r}")


class Narrator:
    def __init__(self, engine, cache_dir: Path):
        self.engine = engine
        self.cache = NarrationCache(cache_dir)

    @classmethod
    def for_spec(cls, spec: VideoJobSpec, cache_dir: Path, *, any_narration: bool = True, aws_config=None) -> "Narrator | None":
        """The narrator for a job, or None when the video stays silent. Raises NarrationInvalid
        (naming the field) for a voice the engine does not have."""
        name = engine_name(spec, any_narration)
        if name == "none":
            return None
        settings = spec.narration
        voice = settings.voice if settings else None
        speed = settings.speed if settings else 1.0
        return cls(_make_engine(name, voice, speed, aws_config), cache_dir)

    def characters_to_synthesize(self, text: str) -> int:
        """What speaking `text` would send to the engine: 0 when it is in the cache (Polly counts
        each scene's characters twice: audio and speech marks)."""
        sentences = split_sentences(text)
        key = narration_key(self.engine.name, self.engine.identity, self.engine.speed, sentences)
        if self.cache.get(key) is not None:
            return 0
        return sum(len(s) for s in sentences) * (2 if self.engine.name == "polly" else 1)

    async def narrate(self, text: str, field: str = "narration") -> NarrationTrack:
        """Speak `text` (from the cache when possible). `field` names the text in error messages."""
        sentences = split_sentences(text)
        if not sentences:
            raise NarrationInvalid(f"{field}: there is nothing to speak")
        key = narration_key(self.engine.name, self.engine.identity, self.engine.speed, sentences)
        speech = self.cache.get(key)
        cached = speech is not None
        if speech is None:
            speech = await self.engine.speak(sentences)
            self.cache.put(key, speech)
        rate = speech.sample_rate
        cues = [Cue(start=a / rate, end=b / rate, text=s) for s, (a, b) in zip(sentences, speech.spans)]
        return NarrationTrack(
            audio_path=str(self.cache.audio_path(key)), sample_rate=rate, duration_seconds=speech.duration_seconds,
            cues=cues, characters=speech.characters, cached=cached,
        )
