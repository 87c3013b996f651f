"""In Job mode the operator is a controller only: its process never loads the pipeline.

The worker pods run LangGraph, Manim, PyAV and the LLM clients; the operator that creates their
Jobs must stay as small as a plain Kopf operator. The real `videojob operator` runs as a process
under `python -X importtime`, which names every module the process imports, whenever it does.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.controller.test_real_cluster import answers
from tests.helpers import free_port, wait_until
from tests.jobexec.conftest import JOB_MODE, spec

# What a Job-mode operator must never import (the pipeline and what only it needs).
PIPELINE = {"langgraph", "langchain_core", "manim", "av", "numpy", "PIL", "boto3",
            "videojob.run", "videojob.pipeline.graph", "videojob.pipeline.render", "videojob.pipeline.media",
            "videojob.pipeline.narration", "videojob.pipeline.sandbox", "videojob.pipeline.llm"}


def imported_modules(importtime_log: str) -> set[str]:
    """The modules `-X importtime` reported (lines `import time: self | cumulative | name`)."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines() if line.startswith("import time:")} - {"package"}


def test_job_mode_operator_never_imports_the_pipeline(apiserver, kube, jobs, tmp_path):
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "VIDEOJOB_EXECUTOR": "job",
           "VIDEOJOB_WORKER_IMAGE": JOB_MODE["worker_image"], "VIDEOJOB_WORKDIR": str(tmp_path / "work")}
    log_path = tmp_path / "operator.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "videojob.cli.main", "operator", "-n", "default",
             "--metrics-port", "0", "--liveness-port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz") or proc.poll() is not None,
                       timeout=60, message="the operator's liveness endpoint")
            assert proc.poll() is None, log_path.read_text()[-3000:]
            # Every path a controller takes: a run (its Job, the Job's outcome mirrored into the
            # status), a spec the operator rejects, and a deletion (the Job goes with it).
            kube.create("done", spec())
            jobs.wait_for("done-g1-a1")
            jobs.finish("done-g1-a1", "Complete")
            kube.wait_phase("done", "Succeeded")
            kube.create("needs-model", {"topic": "No model", "prompt": "a video about circles"})
            assert "needs an LLM" in kube.wait_phase("needs-model", "Failed")["status"]["message"]
            kube.create("deleted", spec())
            jobs.wait_for("deleted-g1-a1")
            kube.delete("deleted")
            jobs.wait_gone("deleted-g1-a1")
        finally:
            proc.terminate()  # a clean stop: the shutdown path must not import the pipeline either
            try:
                proc.wait(30)
            finally:
                proc.kill()  # nothing to do once it has exited
    modules = imported_modules(log_path.read_text())
    assert "videojob.controller.job_executor" in modules  # the log is the operator's, in Job mode
    loaded = sorted(m for m in modules if m in PIPELINE or m.split(".")[0] in PIPELINE)
    assert loaded == [], f"the Job-mode operator imported {loaded}"
