"""A replayed `videojob run` (cli/replay.py): an unchanged VideoJob whose last run took every
scene from the render cache gets the next version without loading pydantic or the pipeline, with
exactly what the pipeline would have written and printed; anything that could change the result
(the manifest, a setting, a cached file) takes the full path again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import yaml

from tests.pipeline.conftest import storyboard, videojob
from tests.pipeline.test_startup import run_in_subprocess as run, without_run_facts
from videojob.cli import fingerprint, replay
from videojob.storage.local import LocalVersionStore
from videojob.storage.records import VersionRecord

pytestmark = pytest.mark.render

HEAVY = {"pydantic", "pydantic_core", "pydantic_settings", "langgraph", "langchain_core", "manim", "av", "numpy",
         "prometheus_client", "rich", "boto3"}


def replayed(loaded: set[str]) -> bool:
    return "pydantic" not in loaded


def test_an_unchanged_rerun_is_replayed_with_what_the_pipeline_writes(write_manifest, tmp_path):
    manifest = write_manifest(videojob(storyboard(1, 1)))
    out = tmp_path / "out"
    assert run(manifest, out)[0].returncode == 0  # renders
    cached, loaded_cached = run(manifest, out)  # every scene from the cache: leaves a replay record
    assert cached.returncode == 0, cached.stderr
    assert not replayed(loaded_cached)

    again, loaded = run(manifest, out)
    assert again.returncode == 0, again.stderr
    assert loaded.isdisjoint(HEAVY), loaded & HEAVY
    assert again.stderr == cached.stderr  # the same stage lines
    before, after = yaml.safe_load(cached.stdout)["status"], yaml.safe_load(again.stdout)["status"]
    assert after["version"] == 3 and after["outputs"]["videoURI"].endswith("/v3/demo-video.mp4")
    assert after["message"] == f"version 3 ready: {after['outputs']['videoURI']}"
    assert without_run_facts(after) == without_run_facts(before)

    video = out / "tests" / "demo-video"
    v2, v3 = video / "v2", video / "v3"
    assert sorted(p.relative_to(v3) for p in v3.rglob("*")) == sorted(p.relative_to(v2) for p in v2.rglob("*"))
    for path in v2.rglob("*"):
        if path.is_file() and path.name != "record.json":
            assert (v3 / path.relative_to(v2)).read_bytes() == path.read_bytes(), path
    assert (v3 / "demo-video.mp4").samefile(v2 / "demo-video.mp4")  # both links to the cached join
    text = (v3 / "record.json").read_text()
    record = VersionRecord.model_validate_json(text)
    assert text == record.model_dump_json(indent=2)  # byte for byte what the store writes
    previous = VersionRecord.model_validate_json((v2 / "record.json").read_text())
    changed = {"version", "video_uri", "code_uri", "created_at"}
    assert record.model_dump(exclude=changed) == previous.model_dump(exclude=changed)
    assert record.version == 3 and record.video_uri == after["outputs"]["videoURI"]
    assert [r.version for r in LocalVersionStore(out).list_versions("tests", "demo-video")] == [1, 2, 3]
    assert not list(video.glob(".v*"))  # no reservation left behind


def test_anything_that_could_change_the_result_takes_the_full_path(write_manifest, tmp_path):
    spec = storyboard(1)
    manifest = write_manifest(videojob(spec))
    original = manifest.read_bytes()
    out = tmp_path / "out"
    assert run(manifest, out)[0].returncode == 0
    assert run(manifest, out)[0].returncode == 0
    assert replayed(run(manifest, out)[1])

    # A setting the replay cannot check: the full path refuses it, naming the variable.
    bad, loaded = run(manifest, out, env={"VIDEOJOB_SCENE_PARALLELISM": "0"})
    assert bad.returncode == 2 and "VIDEOJOB_SCENE_PARALLELISM" in bad.stderr and not replayed(loaded)
    bad, loaded = run(manifest, out, env={"AWS_S3_VIDEO_BUCKET": "x"})
    assert bad.returncode == 2 and "AWS_S3_VIDEO_BUCKET" in bad.stderr and not replayed(loaded)

    # A valid new setting: the full path once, which records a replay for it.
    env = {"VIDEOJOB_RENDER_CACHE_MB": "512"}
    assert not replayed(run(manifest, out, env=env)[1])
    assert replayed(run(manifest, out, env=env)[1])

    # A broken manifest is reported by field; the same bytes as before replay again.
    spec["storyboard"]["scenes"][0]["durationSeconds"] = 100
    write_manifest(videojob(spec))
    bad, loaded = run(manifest, out)
    assert bad.returncode == 2 and "spec.storyboard.scenes[0].durationSeconds" in bad.stderr and not replayed(loaded)
    manifest.write_bytes(original)
    assert replayed(run(manifest, out)[1])

    # Another topic: a new result (the topic heads the combined code and is recorded).
    spec["storyboard"]["scenes"][0]["durationSeconds"] = 1
    spec["topic"] = "Other shapes"
    write_manifest(videojob(spec))
    edited, loaded = run(manifest, out)
    assert edited.returncode == 0 and not replayed(loaded)
    version = yaml.safe_load(edited.stdout)["status"]["version"]
    record = json.loads((out / "tests" / "demo-video" / f"v{version}" / "record.json").read_text())
    assert record["topic"] == "Other shapes"
    manifest.write_bytes(original)

    # A cached file altered: not replayed (the full path looks at the cache itself).
    renders = out / ".cache" / "renders"
    joined = next(p for p in renders.glob("*/*.mp4") if p.with_suffix(".facts.json").exists())
    kept = joined.read_bytes()
    joined.write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))
    assert not replayed(run(manifest, out)[1])
    joined.write_bytes(kept)

    # A scene gone from the cache: rendered again, through the graph.
    for scene in renders.glob("*/*.mp4"):
        if not scene.with_suffix(".facts.json").exists():
            scene.unlink()
    rendered, loaded = run(manifest, out)
    assert rendered.returncode == 0 and {"pydantic", "langgraph"} <= loaded
    assert yaml.safe_load(rendered.stdout)["status"]["sandbox"] == "bubblewrap"


def test_a_run_that_printed_or_rendered_more_leaves_no_replay(write_manifest, run_cli, tmp_path):
    manifest = write_manifest(videojob(storyboard(1)))
    records = tmp_path / "out" / ".cache" / "runs"
    assert run_cli(manifest).code == 0  # rendered: a replay would not print what it printed
    assert not records.exists()
    assert run_cli(manifest, "--metrics-file", str(tmp_path / "metrics.prom")).code == 0  # a metrics file: not replayable
    assert not records.exists()
    assert run_cli(manifest).code == 0
    assert len(list(records.glob("*.json"))) == 1


def test_a_job_with_a_kubernetes_uid_is_never_replayed(write_manifest, run_cli, tmp_path):
    # A restarted run of the same (uid, generation) gets its own version back instead of a new one.
    manifest = write_manifest(videojob(storyboard(1), uid="0b7c-uid", generation=3))
    runs = [run_cli(manifest) for _ in range(3)]
    assert [r.code for r in runs] == [0, 0, 0]
    assert [r.status["version"] for r in runs] == [1, 1, 1]
    assert not (tmp_path / "out" / ".cache" / "runs").exists()


def test_a_damaged_or_foreign_replay_record_is_ignored(write_manifest, run_cli, tmp_path):
    manifest = write_manifest(videojob(storyboard(1)))
    assert run_cli(manifest).code == 0 and run_cli(manifest).code == 0
    [record] = (tmp_path / "out" / ".cache" / "runs").glob("*.json")
    good = json.loads(record.read_text())

    record.write_text(record.read_text()[:-10])  # cut short
    again = run_cli(manifest)
    assert again.code == 0 and again.status["version"] == 3
    assert json.loads(record.read_text()) == good  # the full run wrote it again

    record.write_text(json.dumps({**good, "video_dir": "tests/../../escape", "video_id": "../../escape"}))
    again = run_cli(manifest)
    assert again.code == 0 and again.status["version"] == 4
    assert not (tmp_path / "escape").exists() and not (tmp_path / "escape.mp4").exists()
    assert json.loads(record.read_text()) == good


# ----------------------------------------------------------------------- the fingerprint's parts


def args(**given) -> Namespace:
    return Namespace(**{"manifest": "job.yaml", "quality": None, "parallel": None, "sandbox": None,
                        "log_format": "text", "no_progress": True, "metrics_file": None, **given})


def test_the_fingerprint_covers_manifest_options_settings_and_place(monkeypatch, tmp_path):
    monkeypatch.delenv("VIDEOJOB_LLM_MODEL", raising=False)
    base = fingerprint.fingerprint(args(), b"spec: 1\n", tmp_path)
    assert fingerprint.fingerprint(args(), b"spec: 1\n", tmp_path) == base
    assert fingerprint.fingerprint(args(), b"spec: 2\n", tmp_path) != base
    assert fingerprint.fingerprint(args(quality="high"), b"spec: 1\n", tmp_path) != base
    assert fingerprint.fingerprint(args(), b"spec: 1\n", tmp_path / "elsewhere") != base
    monkeypatch.setenv("VIDEOJOB_LLM_MODEL", "openai:gpt-4o-mini")
    assert fingerprint.fingerprint(args(), b"spec: 1\n", tmp_path) != base
    monkeypatch.delenv("VIDEOJOB_LLM_MODEL")
    monkeypatch.setenv("aws_region", "eu-west-1")  # AWS settings are read case-insensitively
    assert fingerprint.fingerprint(args(), b"spec: 1\n", tmp_path) != base


def test_the_code_stamp_changes_with_any_edited_file(tmp_path):
    package = tmp_path / "videojob"
    shutil.copytree(Path(replay.__file__).parent, package / "cli")
    (package / "cli" / "__pycache__").mkdir(exist_ok=True)
    stamp = fingerprint.code_stamp(package)
    (package / "cli" / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert fingerprint.code_stamp(package) == stamp  # byte code is not code
    edited = package / "cli" / "run.py"
    edited.write_text(edited.read_text() + "\n")
    assert fingerprint.code_stamp(package) != stamp


def test_templates_give_back_the_value_with_the_new_version_and_refuse_a_stray_number():
    uri = "file:///data/out/p/v/v2"
    status = {
        "version": 2, "attempt": 2, "startTime": "2026-01-01T00:00:00Z",
        "outputs": {"videoURI": f"{uri}/v.mp4"}, "message": f"version 2 ready: {uri}/v.mp4",
        "stages": [{"name": "Uploading", "message": "version 2 stored"}],
    }
    shaped = replay.template(status, 2, uri)
    assert not replay.leftover(shaped, 2)
    assert replay.filled(shaped, 2, uri, "T") == replay.with_times(status, "T")
    assert replay.filled(shaped, 10, "file:///data/out/p/v/v10", "T") == {
        "version": 10, "attempt": 2, "startTime": "T",
        "outputs": {"videoURI": "file:///data/out/p/v/v10/v.mp4"},
        "message": "version 10 ready: file:///data/out/p/v/v10/v.mp4",
        "stages": [{"name": "Uploading", "message": "version 10 stored"}],
    }
    titled = {"stages": [{"message": "code for scene 1 ('What changed in version 2') ready"}]}
    assert replay.leftover(replay.template(titled, 2, uri), 2)  # such a run leaves no replay record


def run_on_a_terminal(manifest: Path, out: Path) -> tuple[int, str, set[str]]:
    """`videojob run` with stderr on a pseudo-terminal (so it draws its progress bar): exit
    code, what the terminal showed (import lines aside), top-level packages imported."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "videojob.cli.main", "run", str(manifest), "--output-dir", str(out)],
        stdout=subprocess.DEVNULL, stderr=follower, stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    shown = b""
    while True:  # read until the terminal closes (EIO once the process and its children are gone)
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    code = process.wait(timeout=600)
    lines = shown.decode(errors="replace").replace("\r\n", "\n").split("\n")
    imported = {line.split("|")[2].strip().split(".")[0] for line in lines
                if line.startswith("import time:") and line.count("|") == 2}
    return code, "\n".join(line for line in lines if not line.startswith("import time:")), imported


def test_a_replay_on_a_terminal_draws_the_last_frame_of_the_bar(write_manifest, tmp_path):
    manifest = write_manifest(videojob(storyboard(1)))
    out = tmp_path / "out"
    assert run_on_a_terminal(manifest, out)[0] == 0
    code, cached, loaded = run_on_a_terminal(manifest, out)
    assert code == 0 and "pydantic" in loaded
    code, again, loaded = run_on_a_terminal(manifest, out)
    assert code == 0 and loaded.isdisjoint(HEAVY - {"rich"}), loaded & HEAVY
    last = cached.rsplit("\x1b[2K", 1)[-1]  # the bar as it was left: the final frame
    assert "demo-video" in last and "Recording" in last and "100%" in last
    assert again.rsplit("\x1b[2K", 1)[-1] == last
