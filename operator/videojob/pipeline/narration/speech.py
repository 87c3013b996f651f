"""What an engine returns for one scene's narration: mono 16-bit audio and where each sentence is.

Every engine pads the same way: a short lead-in before the first sentence (the title appears
first), a pause between sentences, and a tail after the last one, so scenes do not cut off
the voice and one sentence does not run into the next.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEAD_IN_SECONDS = 0.3
PAUSE_SECONDS = 0.35
TAIL_SECONDS = 0.5


@dataclass
class Speech:
    samples: np.ndarray  # int16, mono
    sample_rate: int
    spans: list[tuple[int, int]]  # (first sample, end sample) of each sentence
    characters: int = 0  # characters sent to the engine for this speech (0 when cached)

    @property
    def duration_seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    def write_wav(self, path: Path) -> None:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(self.sample_rate)
            out.writeframes(self.samples.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as src:
        if src.getnchannels() != 1 or src.getsampwidth() != 2:
            raise ValueError(f"{path}: narration audio must be mono 16-bit PCM")
        return np.frombuffer(src.readframes(src.getnframes()), dtype="<i2").astype(np.int16), src.getframerate()


def assemble(pieces: list[np.ndarray], sample_rate: int, characters: int) -> Speech:
    """Join per-sentence audio with the lead-in, pauses and tail; record each sentence's span."""
    lead = np.zeros(round(LEAD_IN_SECONDS * sample_rate), np.int16)
    pause = np.zeros(round(PAUSE_SECONDS * sample_rate), np.int16)
    tail = np.zeros(round(TAIL_SECONDS * sample_rate), np.int16)
    parts, spans, position = [lead], [], len(lead)
    for i, piece in enumerate(pieces):
        if i:
            parts.append(pause)
            position += len(pause)
        parts.append(piece.astype(np.int16))
        spans.append((position, position + len(piece)))
        position += len(piece)
    parts.append(tail)
    return Speech(np.concatenate(parts), sample_rate, spans, characters)
