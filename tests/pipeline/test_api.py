"""The CRD generated from the models, and the models' defaults."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from videojob.api.crd import crd, crd_yaml
from videojob.api.manifest import parse_videojob
from videojob.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_crd_file_matches_the_models():
    assert (ROOT / "crds" / "videojob.yaml").read_text() == crd_yaml(), "run: videojob crd > crds/videojob.yaml"


def test_videojob_crd_prints_the_crd(capsys):
    assert main(["crd"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == crd()


def _walk(node, path="schema"):
    yield path, node
    for key, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural():
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        # Kubernetes allows an untyped node only with int-or-string or preserve-unknown-fields.
        assert "type" in node or node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "title", "const"):
            assert forbidden not in node, f"{path} has {forbidden}"
        assert node.get("additionalProperties", {}) is not False, f"{path}: additionalProperties false is not structural"
    assert version["subresources"] == {"status": {}}
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names == ["Phase", "Stage", "Progress", "Version", "Video", "Age"]
    assert crd()["spec"]["names"]["shortNames"] == ["vj"]


def test_schema_declares_every_status_field():
    status = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for field in ("observedGeneration", "phase", "currentStage", "progress", "progressPercent", "stages", "version",
                  "attempt", "startTime", "completionTime", "lastHeartbeatTime", "outputs", "record", "upload",
                  "codeUpload", "usage", "message", "conditions"):
        assert field in status, field
    assert set(status["outputs"]["properties"]) >= {"videoURI", "codeURI", "sizeBytes", "durationSeconds", "sha256", "scenes"}
    assert status["phase"]["enum"] == ["Pending", "Running", "Succeeded", "Failed", "Suspended", "AwaitingInput"]


def test_schema_limits_and_defaults():
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["topic"]
    assert spec["properties"]["topic"]["maxLength"] == 200
    assert spec["properties"]["render"]["properties"]["quality"]["default"] == "medium"
    assert spec["properties"]["render"]["properties"]["quality"]["enum"] == ["low", "medium", "high", "production"]
    scene = spec["properties"]["storyboard"]["properties"]["scenes"]["items"]
    assert scene["properties"]["durationSeconds"]["minimum"] == 1
    assert scene["properties"]["durationSeconds"]["maximum"] == 60


def test_examples_validate_against_the_crd_schema_and_the_models():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "VideoJob":
                jsonschema.validate(doc, schema)
                parse_videojob(doc)


def test_spec_defaults():
    job = parse_videojob({"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob",
                          "metadata": {"name": "fourier", "namespace": "team-a"},
                          "spec": {"topic": "Fourier", "storyboard": {"scenes": [{"title": "Hi"}]}}})
    assert job.project_id == "team-a" and job.video_id == "fourier"
    assert job.spec.render.quality == "medium" and job.spec.render.max_scene_attempts == 3
    assert job.spec.storyboard.scenes[0].duration_seconds == 4
    assert job.spec.source == "storyboard"
