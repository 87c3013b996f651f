"""`videojob run --metrics-file`: node-exporter textfile-collector output that promtool accepts."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.conftest import failing_code, one_scene, promtool_check_metrics, sample, videojob

pytestmark = pytest.mark.render


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


def test_metrics_file_of_a_successful_run(run_cli, tmp_path):
    path = tmp_path / "textfile" / "videojob.prom"
    before_jobs = sample("videojob_duration_seconds_count", namespace="batch", result="success")
    before_renders = sample("videojob_render_attempts_total", result="success")
    before_done = sample("videojob_phase_transitions_total", namespace="batch", phase="Succeeded")

    result = run_cli(videojob(one_scene(1), namespace="batch"), "--metrics-file", str(path))

    assert result.code == 0, result.err
    text = path.read_text()
    check = promtool_check_metrics(text)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr
    parsed = samples(text)
    assert value(parsed, "videojob_duration_seconds_count", namespace="batch", result="success") == before_jobs + 1
    assert value(parsed, "videojob_render_attempts_total", result="success") == before_renders + 1
    assert value(parsed, "videojob_phase_transitions_total", namespace="batch", phase="Succeeded") == before_done + 1
    assert value(parsed, "videojob_stage_duration_seconds_count", stage="Rendering", result="success") >= 1
    # Only videojob_* families: process_*/python_* would clash with node-exporter's own.
    assert parsed and all(name.startswith("videojob_") for name, _ in parsed)
    assert not list(path.parent.glob("*.tmp*")), "the temporary file was renamed into place"


def test_metrics_file_of_a_failed_run_names_stage_and_reason(run_cli, tmp_path):
    path = tmp_path / "videojob.prom"
    before = sample("videojob_duration_seconds_count", namespace="local", result="failure")
    before_failures = sample("videojob_failures_total", stage="Rendering", reason="RenderFailed")

    result = run_cli(videojob(failing_code("the scene breaks"), name="broken"), "--metrics-file", str(path))

    assert result.code != 0
    parsed = samples(path.read_text())
    assert value(parsed, "videojob_duration_seconds_count", namespace="local", result="failure") == before + 1
    assert value(parsed, "videojob_phase_transitions_total", namespace="local", phase="Failed") >= 1
    assert value(parsed, "videojob_failures_total", stage="Rendering", reason="RenderFailed") == before_failures + 1
    assert value(parsed, "videojob_render_attempts_total", result="failure") >= 1
    check = promtool_check_metrics(path.read_text())
    assert check.returncode == 0, check.stdout + check.stderr


def test_full_scrape_after_a_job_passes_promtool(run_cli):
    """The whole default registry, as /metrics serves it (process and Python metrics included)."""
    assert run_cli(videojob(one_scene(1), name="scraped")).code == 0
    check = promtool_check_metrics(generate_latest(REGISTRY).decode())
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr
