"""Subtitle sidecars: WebVTT (the web's format, HTML5 <track>) and SubRip (players, editors).

One cue per sentence, in playback order, times in seconds from the start of the video.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from videojob.pipeline.narration.text import wrap_cue


class Cue(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    text: str


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _escape_vtt(line: str) -> str:
    # In a WebVTT cue payload '&' and '<' start entities and tags; "-->" would end the timing line.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(cues: list[Cue]) -> str:
    blocks = ["WEBVTT"]
    for i, cue in enumerate(cues, 1):
        lines = "\n".join(_escape_vtt(line) for line in wrap_cue(cue.text))
        blocks.append(f"{i}\n{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n{lines}")
    return "\n\n".join(blocks) + "\n"


def to_srt(cues: list[Cue]) -> str:
    blocks = []
    for i, cue in enumerate(cues, 1):
        # A blank line ends an SRT cue, so cue text never contains one (wrap_cue gives none).
        lines = "\n".join(wrap_cue(cue.text))
        blocks.append(f"{i}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n{lines}")
    return "\n\n".join(blocks) + "\n"
