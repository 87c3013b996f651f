"""Narration text: sentence splitting (one subtitle cue per sentence) and line wrapping for cues.

Sentences come from pysbd, a rule-based splitter that knows abbreviations ("Dr.", "e.g."), decimals
and non-Latin punctuation ("。", "？"), so a cue never ends inside "3.14".
"""

from __future__ import annotations

import textwrap
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pysbd loads with the first sentence split, not with the state's models
    import pysbd

# Subtitle lines: ~42 characters is the common broadcast guideline (BBC, Netflix).
CUE_LINE_CHARS = 42


@lru_cache(maxsize=4)
def _segmenter(language: str) -> pysbd.Segmenter:
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


def normalize(text: str) -> str:
    """Collapse whitespace (YAML block scalars bring newlines) and normalise Unicode (NFC)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def split_sentences(text: str, language: str = "en") -> list[str]:
    """The sentences of `text`, in order, stripped; never empty strings."""
    cleaned = normalize(text)
    if not cleaned:
        return []
    return [s.strip() for s in _segmenter(language).segment(cleaned) if s.strip()]


def wrap_cue(sentence: str, width: int = CUE_LINE_CHARS) -> list[str]:
    """Lines of one cue. Text without spaces (Chinese, Japanese) is cut every `width` characters."""
    lines = textwrap.wrap(sentence, width, break_long_words=True, break_on_hyphens=False)
    return lines or [sentence]
