"""A real Prometheus scrapes the operator under test while jobs run; every dashboard query answers.

The operator (Kopf + our handlers) runs against the emulated API server with the AWS publisher
on a moto server and a prompt job's LLM on a local OpenAI-compatible endpoint, so every metric
family the dashboard reads is fed by the code that feeds it in production.
"""

from __future__ import annotations

import math
import time
import urllib.request

import kubernetes
import pytest

from tests.observability.conftest import load_dashboard, panel_queries, promtool_check_metrics, scene_code_of

pytestmark = [pytest.mark.render, pytest.mark.slow, pytest.mark.timeout(120)]

NAMESPACE = "default"
LLM_SECRET = "sk-obs-test-0123456789abcdefXYZ"


def substitute(expr: str, range_: str) -> str:
    """Grafana's variables as Grafana would expand them for one namespace and a short range."""
    return (
        expr.replace("$namespace", NAMESPACE)
        .replace("$__rate_interval", "10s")
        .replace("$__range", range_)
        .replace("$__interval", "1s")
    )


def run_jobs(kube, openai_url: str) -> list[str]:
    kube.core.create_namespaced_secret(
        NAMESPACE, kubernetes.client.V1Secret(metadata={"name": "llm-keys", "labels": {"videogen.io/credentials": "true"}}, string_data={"OPENAI_API_KEY": LLM_SECRET})
    )
    storyboard = {"scenes": [{"title": "A circle", "shape": "circle", "durationSeconds": 1}]}
    jobs = {
        "board": {"topic": "Circles", "storyboard": storyboard, "render": {"quality": "low"}},
        "prompted": {"topic": "Circles", "prompt": "Show a circle", "render": {"quality": "low"},
                     "llm": {"model": "openai:gpt-obs", "baseUrl": openai_url, "credentialsSecretRef": {"name": "llm-keys"}}},
        "broken": {"topic": "Broken", "code": scene_code_of("raise ValueError('this scene breaks')"),
                   "render": {"quality": "low", "maxSceneAttempts": 1}},
        "board-again": {"topic": "Circles", "storyboard": storyboard, "render": {"quality": "low"}},  # render cache
    }
    for name, spec in jobs.items():
        kube.create(name, spec)
    return list(jobs)


def test_every_dashboard_query_returns_series_from_a_real_prometheus(
    operator, kube, prometheus, fake_openai, moto_aws
):
    op = operator(max_concurrent_jobs=1, llm_allowed_base_urls=fake_openai.base_url)
    prom = prometheus([op.metrics_url.removeprefix("http://").removesuffix("/metrics")])
    prom.wait(lambda: prom.value('up{job="videojob-operator"}') == 1, "the operator's /metrics scraped")
    started = time.time()

    names = run_jobs(kube, fake_openai.base_url)
    phases = {name: kube.wait_phase(name, "Succeeded", "Failed", timeout=90)["status"]["phase"] for name in names}
    assert phases == {"board": "Succeeded", "prompted": "Succeeded", "broken": "Failed", "board-again": "Succeeded"}

    # Prometheus has scraped the final state, and twice more since (rates see the last increase).
    prom.wait(lambda: prom.value(f'sum(videojob_jobs{{namespace="{NAMESPACE}",phase="Succeeded"}})') == 3
              and prom.value(f'sum(videojob_jobs{{namespace="{NAMESPACE}",phase="Failed"}})') == 1, "final phases scraped")
    final = prom.last_scrape()
    prom.wait(lambda: prom.last_scrape() >= final + 2, "two more scrapes")
    window = f"{int(time.time() - started) + 5}s"

    queries = panel_queries(load_dashboard())
    empty, blank = [], []
    for title, expr in queries:
        promql = substitute(expr, window)
        if not prom.query(promql):
            empty.append(f"{title}: {promql}")
        # The graph Grafana would draw over the run shows at least one number.
        result = prom.api("query_range", query=promql, start=started, end=time.time(), step=1)["result"]
        if not any(math.isfinite(float(v)) for series in result for _, v in series["values"]):
            blank.append(f"{title}: {promql}")
    assert not empty, "queries without series:\n" + "\n".join(empty)
    assert not blank, "queries without a finite value over the run:\n" + "\n".join(blank)

    # What Prometheus scraped passes the exposition linter too.
    with urllib.request.urlopen(op.metrics_url, timeout=5) as response:
        check = promtool_check_metrics(response.read().decode())
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr
    # The LLM job's key was used (so it was read from the Secret), and retried after the 429.
    assert f"Bearer {LLM_SECRET}" in fake_openai.authorization
