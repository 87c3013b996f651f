"""The operator as a process and a service: start-up errors, metrics, liveness."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from tests.controller.server_thread import ServerThread
from tests.controller.conftest import scene_code
from tests.helpers import wait_until


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "videojob.cli.main", "operator", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )


def test_bad_setting_is_named_at_start(tmp_path):
    proc = run_cli("-n", "default", env={"VIDEOJOB_MAX_CONCURRENT_JOBS": "zero", "KUBECONFIG": str(tmp_path / "none")})
    assert proc.returncode == 2
    assert "VIDEOJOB_MAX_CONCURRENT_JOBS" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_crd_is_a_clear_start_up_error(tmp_path):
    with ServerThread(crd=False) as server:
        kubeconfig = tmp_path / "kubeconfig"
        server.write_kubeconfig(kubeconfig)
        proc = run_cli("-n", "default", "--metrics-port", "0", "--liveness-port", "0",
                       env={"KUBECONFIG": str(kubeconfig), "VIDEOJOB_WORKDIR": str(tmp_path)})
    assert proc.returncode == 2
    assert "videojobs.videogen.io" in proc.stderr and "crds/videojob.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr


def liveness(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except OSError:
        return None


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_metrics_count_jobs_by_phase_and_liveness_answers(operator, kube):
    op = operator()
    wait_until(lambda: liveness(op.liveness_url) == 200, timeout=30, message="liveness endpoint")

    kube.create("counted", {"topic": "Counted", "code": scene_code(1), "render": {"quality": "low"}})
    kube.create("invalid", {"topic": "Invalid", "prompt": "needs a model"})
    kube.wait_phase("counted", "Succeeded")
    kube.wait_phase("invalid", "Failed")

    def sample(text: str, phase: str) -> str:
        prefix = f'videojob_jobs{{namespace="default",phase="{phase}"}} '
        return next((line[len(prefix):] for line in text.splitlines() if line.startswith(prefix)), "absent")

    # The gauge follows the operator's watch, which may lag the reads above: wait for it.
    counts = lambda text: (sample(text, "Succeeded"), sample(text, "Failed"), sample(text, "Running"))  # noqa: E731
    text = wait_until(lambda: (lambda t: t if counts(t) == ("1.0", "1.0", "0.0") else None)(scrape(op.metrics_url)),
                      timeout=30, message="videojob_jobs counts Succeeded 1, Failed 1, Running 0")
    assert 'videojob_phase_transitions_total{namespace="default",phase="Succeeded"}' in text
    assert "videojob_build_info" in text

    kube.delete("counted")
    kube.wait("counted", lambda obj: obj == {})
    wait_until(lambda: sample(scrape(op.metrics_url), "Succeeded") == "0.0", timeout=30,
               message="videojob_jobs drops the deleted VideoJob")
