"""In Job mode the operator is a controller only: its process never loads the pipeline.

The worker pods run LangGraph, Manim, PyAV and the LLM clients; the operator that creates their
Jobs must stay as small as a plain Kopf operator. The real `videojob operator` runs as a process
under `python -X importtime`, which names every module the process imports, whenever it does.
"""

from __future__ import annotations

import os

from tests.importwatch import imported_modules, loaded, operator_under_importtime
from tests.jobexec.conftest import JOB_MODE, spec

# What a Job-mode operator must never import (the pipeline and what only it needs).
PIPELINE = {"langgraph", "langchain_core", "manim", "av", "numpy", "PIL", "boto3",
            "videojob.run", "videojob.pipeline.graph", "videojob.pipeline.render", "videojob.pipeline.media",
            "videojob.pipeline.narration", "videojob.pipeline.sandbox", "videojob.pipeline.llm"}


def test_job_mode_operator_never_imports_the_pipeline(apiserver, kube, jobs, tmp_path):
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "VIDEOJOB_EXECUTOR": "job",
           "VIDEOJOB_WORKER_IMAGE": JOB_MODE["worker_image"], "VIDEOJOB_WORKDIR": str(tmp_path / "work")}
    log_path = tmp_path / "operator.log"
    # A clean stop at the end: the shutdown path must not import the pipeline either.
    with operator_under_importtime(env, log_path):
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
    modules = imported_modules(log_path.read_text())
    assert "videojob.controller.job_executor" in modules  # the log is the operator's, in Job mode
    assert loaded(modules, PIPELINE) == [], "the Job-mode operator imported these"
