"""Narration errors. Bad input names the spec field; engine failures say whether a retry may help."""

from __future__ import annotations

from videojob.pipeline.errors import InvalidContent, TransientError


class NarrationInvalid(InvalidContent):
    """The narration settings or text cannot be spoken as written (unknown voice, ...)."""

    reason = "InvalidNarration"


class NarrationUnavailable(TransientError):
    """The speech engine failed for a reason outside the spec (throttling, network)."""

    reason = "NarrationFailed"
