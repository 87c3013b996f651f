"""Bad input to `videojob run`: exit 2 and a message that names the field, never a traceback."""

from __future__ import annotations

import pytest

from tests.pipeline.conftest import storyboard, videojob


def assert_invalid(result, *fragments: str) -> None:
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err, result.err
    assert result.out == ""  # no status for a job that never started


def test_not_yaml(write_manifest, run_cli):
    result = run_cli(write_manifest("spec: [unclosed\n  topic: x"))
    assert_invalid(result, "not valid YAML", "line")


def test_wrong_kind(write_manifest, run_cli):
    doc = videojob(storyboard(2))
    doc["kind"] = "Deployment"
    assert_invalid(run_cli(write_manifest(doc)), "kind: expected 'VideoJob'")


def test_wrong_api_version(write_manifest, run_cli):
    doc = videojob(storyboard(2))
    doc["apiVersion"] = "videogen.io/v2"
    assert_invalid(run_cli(write_manifest(doc)), "apiVersion")


def test_unknown_field_is_named(write_manifest, run_cli):
    spec = storyboard(2)
    spec["render"]["qualty"] = "low"
    assert_invalid(run_cli(write_manifest(videojob(spec))), "spec.render.qualty: unknown field")


def test_missing_topic(write_manifest, run_cli):
    spec = storyboard(2)
    del spec["topic"]
    assert_invalid(run_cli(write_manifest(videojob(spec))), "spec.topic: required field is missing")


def test_storyboard_without_scenes(write_manifest, run_cli):
    spec = storyboard()
    assert_invalid(run_cli(write_manifest(videojob(spec))), "spec.storyboard.scenes", "at least 1")


def test_storyboard_with_500_scenes(write_manifest, run_cli):
    spec = storyboard(*([2] * 500))
    assert_invalid(run_cli(write_manifest(videojob(spec))), "spec.storyboard.scenes: too many items: 500")


@pytest.mark.parametrize("duration", [0, 61, -3])
def test_duration_out_of_range(write_manifest, run_cli, duration):
    spec = storyboard(2, duration)
    assert_invalid(run_cli(write_manifest(videojob(spec))), "spec.storyboard.scenes[1].durationSeconds")


def test_ten_megabyte_prompt(write_manifest, run_cli):
    spec = {"topic": "Huge", "prompt": "x" * 10_000_000}
    assert_invalid(run_cli(write_manifest(videojob(spec))), "spec.prompt: too long")


def test_non_utf8_bytes(write_manifest, run_cli):
    raw = "apiVersion: videogen.io/v1alpha1\nkind: VideoJob\nmetadata: {name: x}\nspec: {topic: caf\xe9}\n".encode("latin-1")
    assert_invalid(run_cli(write_manifest(raw)), "not UTF-8", "offset")


def test_invalid_project_id(write_manifest, run_cli):
    spec = storyboard(2)
    spec["projectId"] = "My Project"
    assert_invalid(run_cli(write_manifest(videojob(spec))), "spec.projectId")


def test_name_unusable_as_video_id(write_manifest, run_cli):
    assert_invalid(run_cli(write_manifest(videojob(storyboard(2), name="Demo.Video"))), "metadata.name", "spec.videoId")


def test_no_content_source(write_manifest, run_cli):
    assert_invalid(run_cli(write_manifest(videojob({"topic": "Nothing"}))), "spec: needs one content source")


def test_prompt_without_model_names_the_field(write_manifest, run_cli, monkeypatch):
    monkeypatch.delenv("VIDEOJOB_LLM_MODEL", raising=False)
    result = run_cli(write_manifest(videojob({"topic": "Fourier", "prompt": "Explain Fourier series"})))
    assert result.code == 2
    assert "spec.prompt" in result.err and "VIDEOJOB_LLM_MODEL" in result.err
    assert result.status["phase"] == "Failed"
    stalled = next(c for c in result.status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"


def test_import_of_a_missing_module_is_refused_before_rendering(write_manifest, run_cli):
    code = "import manimgl\nfrom manim import *\nclass A(Scene):\n    def construct(self):\n        pass\n"
    result = run_cli(write_manifest(videojob({"topic": "Missing", "code": code, "render": {"quality": "low"}})))
    assert result.code == 2
    assert "spec.code: line 1: module 'manimgl' is not installed where scenes render" in result.err


def test_code_without_scene_class(write_manifest, run_cli):
    result = run_cli(write_manifest(videojob({"topic": "Nothing", "code": "x = 1\n"})))
    assert result.code == 2
    assert "spec.code: defines no Scene subclass" in result.err


def test_missing_file(run_cli, tmp_path):
    result = run_cli(tmp_path / "nope.yaml")
    assert_invalid(result, "cannot read")


def test_bad_setting_names_the_variable(write_manifest, run_cli, monkeypatch):
    monkeypatch.setenv("VIDEOJOB_SCENE_PARALLELISM", "lots")
    result = run_cli(write_manifest(videojob(storyboard(2))))
    assert result.code == 2
    assert "VIDEOJOB_SCENE_PARALLELISM" in result.err
