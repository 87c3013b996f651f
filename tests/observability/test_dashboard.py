"""The Grafana dashboard is well-formed and only queries metrics videojob exports."""

from __future__ import annotations

import pytest

from tests.observability.conftest import (
    all_panels,
    exported_metric_names,
    load_dashboard,
    metric_names,
    panel_queries,
)

REQUIRED_PANELS = [
    "Jobs by phase", "Throughput", "Success rate", "Job duration", "Stage duration", "Queue wait",
    "Render attempts", "Failures by stage and reason", "Retries", "Upload throughput", "AWS errors",
    "LLM tokens by model", "LLM request duration p95",
]


def test_metric_name_parser_reads_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le, stage) (rate(videojob_stage_duration_seconds_bucket'
        '{namespace=~"$namespace", phase="a_b"}[$__rate_interval]))) / ignoring(x) group_left(y) '
        "sum without (pod) (videojob_jobs offset 5m) * 1e3 + on(namespace) up"
    )
    assert metric_names(expr) == {"videojob_stage_duration_seconds_bucket", "videojob_jobs", "up"}


def test_schema_version_and_template_variables():
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    namespace = variables["namespace"]
    assert namespace["query"]["query"] == "label_values(videojob_jobs, namespace)"
    assert namespace["multi"] is True and namespace["includeAll"] is True


def test_every_panel_uses_the_datasource_variable():
    for panel in all_panels(load_dashboard()):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_required_panels_exist():
    titles = [p["title"] for p in all_panels(load_dashboard())]
    for wanted in REQUIRED_PANELS:
        assert any(title.startswith(wanted) for title in titles), wanted


@pytest.mark.parametrize("title, expr", panel_queries(load_dashboard()))
def test_expression_uses_only_exported_metrics(title, expr):
    names = metric_names(expr)
    assert names, f"{title}: no metric in {expr}"
    unknown = names - exported_metric_names()
    assert not unknown, f"{title}: {sorted(unknown)} are not exported by videojob.metrics"


def test_namespaced_metrics_are_filtered_by_the_namespace_variable():
    namespaced = {"videojob_jobs", "videojob_phase_transitions_total", "videojob_duration_seconds_bucket"}
    for title, expr in panel_queries(load_dashboard()):
        if metric_names(expr) & namespaced:
            assert 'namespace=~"$namespace"' in expr, title


def test_quantiles_aggregate_buckets_by_le():
    for title, expr in panel_queries(load_dashboard()):
        if "histogram_quantile" in expr:
            assert "_bucket" in expr and "by (le" in expr, title


def documented_alert_rules() -> tuple[str, dict]:
    import re

    import yaml

    from tests.observability.conftest import ROOT

    text = (ROOT / "docs" / "observability.md").read_text()
    section = text[text.index("## Example alerts"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    return block, yaml.safe_load(block)


def test_documented_alerts_pass_promtool_and_use_exported_metrics(tmp_path):
    import subprocess

    from tests.observability.conftest import PROMTOOL

    block, rules = documented_alert_rules()
    path = tmp_path / "rules.yml"
    path.write_text(block)
    check = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 4
    for expr in exprs:
        unknown = metric_names(expr) - exported_metric_names() - {"up"}
        assert not unknown, f"{expr}: {sorted(unknown)}"
