"""Burned-in subtitles (`spec.narration.subtitles: burnIn`): the active cue drawn onto each frame.

Drawn with Pillow while the narrated video is re-encoded anyway (see `media.combine_narrated`):
white text on a translucent dark box at the bottom, lines wrapped like the sidecar cues. Each
cue's overlay is drawn once and composited onto the frames it covers.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache

import av
from PIL import Image, ImageDraw, ImageFont

from videojob.pipeline.narration.subtitles import Cue
from videojob.pipeline.narration.text import wrap_cue


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    """A sans-serif TrueType font from fontconfig (the fonts Manim's text uses), else Pillow's own."""
    if shutil.which("fc-match"):
        try:
            path = subprocess.run(["fc-match", "-f", "%{file}", "sans"], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
            return ImageFont.truetype(path, size)
        except (OSError, subprocess.SubprocessError):
            pass
    return ImageFont.load_default(size)


class CuePainter:
    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self.font = _font(max(12, height // 22))
        self._overlays: dict[Cue, Image.Image] = {}

    def _overlay(self, cue: Cue) -> Image.Image:
        overlay = self._overlays.get(cue)
        if overlay is None:
            width, height = self.size
            overlay = Image.new("RGBA", self.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(overlay)
            text = "\n".join(wrap_cue(cue.text))
            box = draw.multiline_textbbox((0, 0), text, font=self.font, align="center")
            text_w, text_h = box[2] - box[0], box[3] - box[1]
            pad = max(4, height // 90)
            x, y = (width - text_w) // 2, height - text_h - height // 14
            draw.rectangle((x - 2 * pad, y - pad, x + text_w + 2 * pad, y + text_h + 2 * pad), fill=(0, 0, 0, 170))
            draw.multiline_text((x - box[0], y - box[1]), text, font=self.font, fill=(255, 255, 255, 255), align="center")
            self._overlays[cue] = overlay
        return overlay

    def paint(self, frame: av.VideoFrame, seconds: float, cues: list[Cue]) -> av.VideoFrame:
        """The frame with the cue active at `seconds` drawn on it (the frame itself when none is)."""
        cue = next((c for c in cues if c.start <= seconds < c.end), None)
        if cue is None:
            return frame
        image = frame.to_image().convert("RGBA")
        image.alpha_composite(self._overlay(cue))
        return av.VideoFrame.from_image(image.convert("RGB")).reformat(format="yuv420p")
