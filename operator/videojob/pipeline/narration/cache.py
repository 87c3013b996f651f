"""The narration cache: identical sentences with the same engine, voice and speed come from disk.

Like the render cache, entries are written atomically by trusted pipeline code only (a WAV and
a JSON of sentence spans under `{cache_dir}/narration/`), so a re-run or an edit that keeps a
scene's narration costs no synthesis (and no Polly characters).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads when a narration is read, not with the pipeline's state
    from videojob.pipeline.narration.speech import Speech

# Bump when the audio layout changes (lead-in, pauses, sample format): old entries stop matching.
FORMAT = 1


def narration_key(engine: str, voice: str, speed: float, sentences: list[str]) -> str:
    payload = json.dumps({"f": FORMAT, "engine": engine, "voice": voice, "speed": speed, "sentences": sentences})
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class NarrationCache:
    def __init__(self, cache_dir: Path):
        self.dir = cache_dir / "narration"

    def audio_path(self, key: str) -> Path:
        return self.dir / f"{key}.wav"

    def get(self, key: str) -> Speech | None:
        """The cached speech (characters 0: nothing was synthesized), or None."""
        from videojob.pipeline.narration.speech import Speech, read_wav

        meta = self.dir / f"{key}.json"
        try:
            spans = [tuple(s) for s in json.loads(meta.read_text())["spans"]]
            samples, rate = read_wav(self.audio_path(key))
        except (OSError, ValueError, KeyError, EOFError):
            return None
        return Speech(samples, rate, spans, 0)

    def put(self, key: str, speech: Speech) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        wav_tmp, meta_tmp = self.dir / f".{key}.{tag}.wav", self.dir / f".{key}.{tag}.json"
        speech.write_wav(wav_tmp)
        meta_tmp.write_text(json.dumps({"spans": speech.spans, "sample_rate": speech.sample_rate}))
        # Audio first: a reader that finds the JSON always finds its audio.
        os.replace(wav_tmp, self.audio_path(key))
        os.replace(meta_tmp, self.dir / f"{key}.json")
        return self.audio_path(key)
