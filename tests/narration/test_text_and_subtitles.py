"""Sentences, cue lines and the WebVTT/SRT sidecars, checked with independent parsers."""

from __future__ import annotations

import html
import io

import pysrt
import webvtt

from videojob.pipeline.narration import Cue, to_srt, to_webvtt
from videojob.pipeline.narration.text import split_sentences, wrap_cue


def test_sentences_respect_abbreviations_decimals_and_non_latin_punctuation():
    text = "Dr. Smith measured 3.14 metres, e.g. by hand.  Then he left!\nDid he? 日本語の文です。次の文。"
    assert split_sentences(text) == [
        "Dr. Smith measured 3.14 metres, e.g. by hand.", "Then he left!", "Did he?", "日本語の文です。", "次の文。",
    ]
    assert split_sentences("   \n ") == []


def test_long_cues_wrap_into_short_lines_even_without_spaces():
    assert all(len(line) <= 42 for line in wrap_cue("word " * 30))
    assert len(wrap_cue("傅" * 100)) == 3


CUES = [
    Cue(start=0.3, end=2.25, text="A Fourier series adds sines & cosines."),
    Cue(start=2.6, end=3661.5, text="Terms like <a_n> --> weights " + "and more " * 8),
]


def test_webvtt_parses_with_one_cue_per_sentence_in_order():
    parsed = webvtt.from_buffer(io.StringIO(to_webvtt(CUES)))
    assert [c.start for c in parsed] == ["00:00:00.300", "00:00:02.600"]
    assert parsed[1].end == "01:01:01.500"
    # Payloads are escaped as WebVTT requires ("&", "<" start markup); a player shows the original.
    assert parsed[0].raw_text == "A Fourier series adds sines &amp; cosines."
    assert html.unescape(parsed[1].raw_text).replace("\n", " ").startswith("Terms like <a_n> --> weights and more")


def test_srt_parses_with_the_same_cues():
    parsed = pysrt.from_string(to_srt(CUES))
    assert len(parsed) == 2
    assert parsed[0].start.ordinal == 300 and parsed[0].end.ordinal == 2250
    assert parsed[1].end.ordinal == 3_661_500
    assert parsed[1].text.replace("\n", " ").startswith("Terms like <a_n> --> weights and more")
