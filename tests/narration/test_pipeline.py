"""Narrated VideoJobs end to end: `videojob run` with real Piper, Manim and PyAV; AWS on moto."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import av
import pysrt
import pytest
import webvtt

from videojob.api.manifest import load_manifest
from videojob.config import Settings
from videojob.pipeline.narration.text import split_sentences
from videojob.run import run_videojob

from tests.narration.conftest import decoded_audio, rms, stream_durations
from tests.pipeline.conftest import videojob

pytestmark = pytest.mark.render
REPO = Path(__file__).resolve().parents[2]

NARRATIONS = ["A circle is round. Every point is equally far from the centre.", "A square has four equal sides."]


def narrated(**narration) -> dict:
    spec = {
        "topic": "Shapes", "projectId": "tests", "render": {"quality": "low"},
        "storyboard": {"scenes": [
            {"title": "Circles", "text": "Round.", "shape": "circle", "durationSeconds": 1, "narration": NARRATIONS[0]},
            {"title": "Squares", "bullets": ["four sides"], "shape": "square", "durationSeconds": 1, "narration": NARRATIONS[1]},
        ]},
    }
    if narration:
        spec["narration"] = narration
    return videojob(spec, name="shapes")


def test_a_narrated_storyboard_has_voice_subtitles_and_a_narrating_stage(write_manifest, run_cli, tmp_path):
    result = run_cli(write_manifest(narrated()))
    assert result.code == 0, result.err
    status = result.status
    assert [s["name"] for s in status["stages"]][:3] == ["Planning", "Narrating", "GeneratingCode"]
    assert all(s["phase"] == "Succeeded" for s in status["stages"])
    assert status["progressPercent"] == 100 and status["progress"] == "10/10"  # Narrating counts a step a scene
    assert status["usage"]["ttsCharacters"] == sum(len(t) for t in NARRATIONS) - 1  # the space between sentences
    version = tmp_path / "out" / "tests" / "shapes" / "v1"
    assert status["outputs"]["subtitlesURI"] == (version / "shapes.vtt").as_uri()
    video = Path(urlparse(status["outputs"]["videoURI"]).path)
    durations = stream_durations(video)
    assert set(durations) == {"video", "audio"} and abs(durations["audio"] - durations["video"]) < 1 / 15
    assert durations["video"] > 6  # both 1 s scenes grew to fit their narration
    cues = list(webvtt.read(str(version / "shapes.vtt")))
    assert [c.text.replace("\n", " ") for c in cues] == [
        "A circle is round.", "Every point is equally far from the centre.", "A square has four equal sides."]
    assert len(pysrt.open(str(version / "shapes.srt"))) == 3
    audio, rate = decoded_audio(video)
    for cue in cues:
        assert rms(audio[round(cue.start_in_seconds * rate):round(cue.end_in_seconds * rate)]) > 0.03
    assert json.loads((version / "record.json").read_text())["subtitles_uri"] == status["outputs"]["subtitlesURI"]

    again = run_cli(write_manifest(narrated()))
    assert again.code == 0 and again.status["version"] == 2
    assert again.status["usage"]["ttsCharacters"] == 0  # same text and voice: from the narration cache


def test_engine_none_keeps_the_video_silent_and_skips_the_stage(write_manifest, run_cli):
    result = run_cli(write_manifest(narrated(engine="none")))
    assert result.code == 0, result.err
    assert "Narrating" not in [s["name"] for s in result.status["stages"]]
    assert "subtitlesURI" not in result.status["outputs"]
    with av.open(urlparse(result.status["outputs"]["videoURI"]).path) as container:
        assert [s.type for s in container.streams] == ["video"]


def test_subtitles_false_gives_a_voice_without_sidecars(write_manifest, run_cli, tmp_path):
    result = run_cli(write_manifest(narrated(subtitles=False)))
    assert result.code == 0, result.err
    assert "subtitlesURI" not in result.status["outputs"]
    assert not list((tmp_path / "out" / "tests" / "shapes" / "v1").glob("shapes.*t"))
    assert "audio" in stream_durations(Path(urlparse(result.status["outputs"]["videoURI"]).path))


@pytest.mark.parametrize(
    ("narration", "scene", "expected"),
    [
        ({"voice": "en_US-nobody-low"}, {}, "spec.narration.voice: unknown Piper voice 'en_US-nobody-low'"),
        ({}, {"narration": "word " * 500}, "spec.storyboard.scenes[0].narration: too long: 2500 characters, at most 2000"),
        ({}, {"narration": "   "}, "spec.storyboard.scenes[0].narration: Value error, must not be blank"),
        ({"subtitles": "maybe"}, {}, "spec.narration.subtitles: Value error, must be true, false or burnIn"),
        ({"speed": 5}, {}, "spec.narration.speed: input should be less than or equal to 2 (got 5)"),
    ],
)
def test_bad_narration_input_is_refused_naming_the_field(narration, scene, expected, write_manifest, run_cli):
    document = narrated(**narration)
    document["spec"]["storyboard"]["scenes"][0].update(scene)
    result = run_cli(write_manifest(document))
    assert result.code == 2
    assert expected in result.err + result.out


async def test_subtitles_go_to_s3_beside_the_video_and_into_the_dynamodb_item(
        aws_env, make_service, s3_client, dynamodb_client, tmp_path):
    await make_service()
    job = load_manifest(str(REPO / "examples" / "narrated.yaml"))
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, quality="low")
    assert result.succeeded, result.status.message
    bucket = aws_env["AWS_S3_VIDEO_BUCKET"]
    prefix = "videos/demo/euler/v1/"
    assert result.status.outputs.subtitles_uri == f"s3://{bucket}/{prefix}euler.vtt"
    vtt = s3_client.get_object(Bucket=bucket, Key=prefix + "euler.vtt")
    srt = s3_client.get_object(Bucket=bucket, Key=prefix + "euler.srt")
    assert vtt["ContentType"].startswith("text/vtt") and srt["ContentType"].startswith("application/x-subrip")
    assert vtt["Body"].read().decode().startswith("WEBVTT")
    item = dynamodb_client.get_item(TableName=aws_env["AWS_DYNAMODB_TABLE"],
                                    Key={"video_key": {"S": "demo/euler"}, "version": {"N": "1"}})["Item"]
    assert item["subtitles_uri"] == {"S": f"s3://{bucket}/{prefix}euler.vtt"}
    local = tmp_path / "demo" / "euler" / "v1"
    assert (local / "euler.vtt").read_bytes() == s3_client.get_object(Bucket=bucket, Key=prefix + "euler.vtt")["Body"].read()
    assert result.status.usage.tts_characters > 100


async def test_the_per_job_speech_cap_stops_the_run_before_it_speaks(tmp_path):
    job = load_manifest(str(REPO / "examples" / "narrated.yaml"))
    first_scene = sum(len(s) for s in split_sentences(job.spec.storyboard.scenes[0].narration))
    settings = Settings(max_tts_characters_per_job=first_scene + 10)  # room for scene 1, not scene 2
    result = await run_videojob(job, settings=settings, store_root=tmp_path, quality="low")
    assert not result.succeeded
    assert result.status.phase == "Failed"
    assert "VIDEOJOB_MAX_TTS_CHARACTERS_PER_JOB" in result.status.message
    assert result.status.usage.tts_characters == first_scene  # scene 2 was never synthesized
    narrating = next(s for s in result.status.stages if s.name == "Narrating")
    assert narrating.phase == "Failed"


def test_narrated_scenes_are_not_rendered_ahead_of_their_voice():
    """The prefetch renders scenes known before planning; a narrated scene's length (so its code)
    is known only after Narrating, so only its silent neighbours are prefetched."""
    from videojob.pipeline.render_cache import known_scenes

    document = narrated()
    document["spec"]["storyboard"]["scenes"][1].pop("narration")
    job = load_manifest_from(document)
    assert [name for _, name in known_scenes(job)] == ["Scene02"]
    document["spec"]["narration"] = {"engine": "none"}
    assert [name for _, name in known_scenes(load_manifest_from(document))] == ["Scene01", "Scene02"]


def load_manifest_from(document: dict):
    from videojob.api.manifest import parse_videojob

    return parse_videojob(document)
