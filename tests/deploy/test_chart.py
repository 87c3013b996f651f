"""The Helm chart as a platform team meets it: `helm lint`, `helm template` with the default and the full
values, the RBAC it grants, the pod it runs, and the values it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import CHART, FULL_VALUES, NAMESPACE, ROOT, HelmError, run_helm

# The oldest Kubernetes the chart admits (Chart.yaml kubeVersion) and the newest schemas we have.
KUBE_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version() + ".0"]
BUILTIN_GROUPS = ("v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1", "apiextensions.k8s.io/v1",
                  "networking.k8s.io/v1")


def rules_of(role: dict) -> dict[tuple[str, str], set[str]]:
    """{(apiGroup, resource): verbs} of a Role or ClusterRole."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


@pytest.fixture(scope="module")
def default(render):
    return render()


@pytest.fixture(scope="module")
def chart_with_dashboard(tmp_path_factory) -> Path:
    """A copy of the chart that surely has files/dashboard.json (the real one once it exists)."""
    chart = tmp_path_factory.mktemp("chart") / "videojob-operator"
    shutil.copytree(CHART, chart)
    dashboard = chart / "files" / "dashboard.json"
    if not dashboard.exists():
        dashboard.parent.mkdir(exist_ok=True)
        dashboard.write_text(json.dumps({"title": "VideoJob", "uid": "videojob", "panels": []}, indent=2))
    return chart


@pytest.fixture(scope="module")
def full(render, chart_with_dashboard):
    return render(FULL_VALUES, chart=chart_with_dashboard)


# ----------------------------------------------------------------------------------- lint, kinds


def test_helm_lint_passes_with_default_and_full_values(helm, chart_with_dashboard):
    for args in ([str(CHART)], [str(chart_with_dashboard), "--values", str(FULL_VALUES)]):
        proc = run_helm(helm, "lint", "--strict", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "0 chart(s) failed" in proc.stdout


def test_default_install_renders_operator_rbac_worker_and_metrics_service(default):
    assert default.kinds() == sorted([
        "ServiceAccount", "ServiceAccount",          # operator, worker
        "ClusterRole", "ClusterRoleBinding",         # operator (all namespaces)
        "ClusterRole",                               # worker rights, bound per namespace
        "RoleBinding",                               # worker in the release namespace
        "NetworkPolicy",                             # worker pods in the release namespace
        "Role", "RoleBinding",                       # leader election Lease
        "ClusterRole", "ClusterRole",                # editor, viewer aggregated into user roles
        "Deployment", "Service",
    ])


def test_full_values_render_role_mode_servicemonitor_and_dashboard(full):
    assert full.kinds() == sorted([
        "ServiceAccount",                            # operator
        "Role", "RoleBinding", "Role", "RoleBinding",  # operator, per watched namespace
        "ClusterRole",                               # worker rights
        "ServiceAccount", "RoleBinding", "ServiceAccount", "RoleBinding",  # worker, per namespace
        "NetworkPolicy", "NetworkPolicy",            # worker pods, per namespace
        "Role", "RoleBinding",                       # leader election Lease
        "ClusterRole", "ClusterRole",                # editor, viewer
        "Deployment", "Service", "ServiceMonitor", "ConfigMap",
    ])


def test_crd_ships_in_chart_crds_dir_identical_to_top_level_file():
    assert (CHART / "crds" / "videojob.yaml").read_bytes() == (ROOT / "crds" / "videojob.yaml").read_bytes()
    assert not list((CHART / "templates").glob("*crd*")), "CRDs belong in crds/, not templates/"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_rendered_manifests_and_crd_validate_against_kubernetes_schemas(default, full, crd, kube_version):
    not_builtin = []
    for doc in default.docs + full.docs + [crd]:
        if doc["apiVersion"] in BUILTIN_GROUPS:
            kubernetes_validate.validate(doc, kube_version, strict=True)  # raises on any unknown field
        else:
            not_builtin.append(doc["kind"])
    assert not_builtin == ["ServiceMonitor"]  # checked field by field below


def test_servicemonitor_selects_the_metrics_service_port(full):
    monitor = full.one("ServiceMonitor")
    service = full.one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"


# ------------------------------------------------------------------------------------- the pod


def test_deployment_is_one_replica_recreated_with_restricted_security_context(default):
    deployment = default.one("Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = default.container()["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in sc


def test_writable_paths_are_emptydirs_for_workdir_and_tmp(default):
    pod = default.one("Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in default.container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    workdir = default.env()["VIDEOJOB_WORKDIR"]
    assert set(mounts) == {workdir, "/tmp"}
    for path in (workdir, "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert volumes[mounts[workdir]]["emptyDir"]["sizeLimit"] == "20Gi"


def test_liveness_probe_hits_kopf_healthz_on_the_liveness_port(default):
    container = default.container()
    probe = container["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "liveness"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8000, "liveness": 8080}
    assert "--liveness-port=8080" in container["args"]
    assert "--metrics-port=8000" in container["args"]


def test_resources_are_set_with_a_memory_limit(default):
    resources = default.container()["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_default_watches_all_namespaces_with_job_executor_and_local_storage(default):
    container = default.container()
    assert container["args"][0] == "operator"
    assert "--all-namespaces" in container["args"]
    assert not any(a.startswith("--namespace") for a in container["args"])
    env = default.env()
    assert env["VIDEOJOB_EXECUTOR"] == "job"
    assert env["VIDEOJOB_WORKER_IMAGE"] == container["image"]
    assert env["VIDEOJOB_WORKER_SERVICE_ACCOUNT"] == "videojob-worker"
    assert env["VIDEOJOB_JOB_TTL_SECONDS_AFTER_FINISHED"] == "3600"
    assert json.loads(env["VIDEOJOB_JOB_POD_DEFAULTS"]) == {}
    assert "AWS_S3_VIDEO_BUCKET" not in env  # AWS off until a bucket is given
    assert env["AWS_DYNAMODB_TABLE"] == "VideoMetadata"
    assert "envFrom" not in container


def test_every_operator_and_aws_setting_reaches_the_environment(full):
    env = full.env()
    expected = {
        "VIDEOJOB_EXECUTOR": "job",
        "VIDEOJOB_MAX_CONCURRENT_JOBS": "8",
        "VIDEOJOB_LLM_MODEL": "bedrock_converse:anthropic.claude-3-5-sonnet-20240620-v1:0",
        "VIDEOJOB_WORKDIR": "/var/lib/videojob",
        "VIDEOJOB_SCENE_PARALLELISM": "2",
        "VIDEOJOB_RENDER_MEMORY_MB": "3072",
        "VIDEOJOB_RENDER_MAX_OUTPUT_MB": "2048",
        "VIDEOJOB_REPAIR_MEMORY": "5",
        "VIDEOJOB_JOB_TTL_SECONDS_AFTER_FINISHED": "1800",
        "VIDEOJOB_WORKER_SERVICE_ACCOUNT": "videojob-worker",
        "AWS_REGION": "eu-west-1",
        "AWS_S3_VIDEO_BUCKET": "acme-videojob-videos",
        "AWS_S3_CODE_BUCKET": "acme-videojob-code",
        "AWS_DYNAMODB_TABLE": "VideoMetadata",
        "AWS_REQUIRE_UPLOAD": "true",
        "AWS_ENABLE_ENCRYPTION": "true",
        "AWS_KMS_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555",
        "AWS_MULTIPART_THRESHOLD": "67108864",  # not 6.7108864e+07
        "AWS_CHUNK_SIZE": "16MiB",
        "AWS_MAX_CONCURRENT_UPLOADS": "4",
        "AWS_MAX_RETRIES": "0",  # zero is a value, not "unset"
        "AWS_RETRY_MODE": "adaptive",
        "TZ": "UTC",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert json.loads(env["VIDEOJOB_JOB_POD_DEFAULTS"])["nodeSelector"] == {"workload": "render"}
    assert "AWS_ENDPOINT_URL" not in env
    container = full.container()
    assert container["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert env["VIDEOJOB_WORKER_IMAGE"] == container["image"]
    assert "--info-metric" in container["args"] and "--log-format=json" in container["args"]


def test_llm_credentials_come_from_an_existing_secret(full, render):
    assert full.container()["envFrom"] == [{"secretRef": {"name": "videojob-llm", "optional": False}}]
    optional = render(set_=["llm.existingSecret=keys", "llm.optional=true"])
    assert optional.container()["envFrom"] == [{"secretRef": {"name": "keys", "optional": True}}]
    # No Secret of ours is rendered: keys never pass through Helm values.
    assert not full.all("Secret")


def test_irsa_annotations_land_on_operator_and_worker_service_accounts(full):
    operator_sa = full.one("ServiceAccount", "videojob-operator")
    assert operator_sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/videojob-operator"
    }
    deployment = full.one("Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "videojob-operator"
    for ns in ("videos", "videos-staging"):
        worker = full.one("ServiceAccount", "videojob-worker", ns)
        assert worker["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/videojob-worker")


def test_worker_image_can_differ_from_operator_image(render):
    rendered = render(set_=["worker.image.repository=example.com/worker", "worker.image.tag=2.0"])
    assert rendered.env()["VIDEOJOB_WORKER_IMAGE"] == "example.com/worker:2.0"


# -------------------------------------------------------------------------------------------- RBAC


def test_cluster_mode_operator_clusterrole_is_least_privilege(default):
    role = default.one("ClusterRole", "videojob-operator")
    assert rules_of(role) == {
        ("videogen.io", "videojobs"): {"get", "list", "watch", "patch"},
        ("videogen.io", "videojobs/status"): {"patch"},
        ("", "events"): {"create", "list"},  # list: why a worker pod never started
        ("", "namespaces"): {"get"},  # tenancy: the videogen.io/projects annotation
        # No Secrets in job mode: the worker reads its VideoJob's Secret in its own namespace.
        ("batch", "jobs"): {"create", "get", "list", "watch", "delete", "patch"},
        ("", "pods"): {"list", "watch"},
        ("kueue.x-k8s.io", "workloads"): {"list", "patch"},  # suspend with Kueue: Workload.spec.active
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
        # The worker identity in VideoJob namespaces (worker.serviceAccount.operatorManaged).
        ("", "serviceaccounts"): {"get", "create", "patch"},
        ("rbac.authorization.k8s.io", "rolebindings"): {"get", "create"},
        ("rbac.authorization.k8s.io", "clusterroles"): {"bind"},
        ("networking.k8s.io", "networkpolicies"): {"get", "create", "patch"},
    }
    (bind,) = [r for r in role["rules"] if r["verbs"] == ["bind"]]
    assert bind["resourceNames"] == ["videojob-operator-worker"]  # it can grant only the worker's rights
    binding = default.one("ClusterRoleBinding", "videojob-operator")
    assert binding["roleRef"]["name"] == "videojob-operator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "videojob-operator", "namespace": NAMESPACE}]
    assert [r["metadata"]["name"] for r in default.all("Role")] == ["videojob-operator-leader-election"]
    for r in default.all("ClusterRole"):
        for rule in r["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]


def test_inline_executor_drops_jobs_pods_and_worker_objects(render):
    rendered = render(set_=["operator.executor=inline"])
    rules = rules_of(rendered.one("ClusterRole", "videojob-operator"))
    assert ("batch", "jobs") not in rules and ("", "pods") not in rules
    assert ("", "serviceaccounts") not in rules and ("rbac.authorization.k8s.io", "clusterroles") not in rules
    assert rules[("", "secrets")] == {"list"}  # the inline executor reads spec.llm.credentialsSecretRef itself (by name and label)
    assert [sa["metadata"]["name"] for sa in rendered.all("ServiceAccount")] == ["videojob-operator"]
    assert [b["metadata"]["name"] for b in rendered.all("RoleBinding")] == ["videojob-operator-leader-election"]
    assert not rendered.all("NetworkPolicy")
    env = rendered.env()
    assert env["VIDEOJOB_EXECUTOR"] == "inline"
    assert "VIDEOJOB_WORKER_IMAGE" not in env


def test_namespaced_mode_uses_roles_and_only_cluster_scoped_reads(full):
    args = full.container()["args"]
    assert "--namespace=videos" in args and "--namespace=videos-staging" in args
    assert "--all-namespaces" not in args
    for ns in ("videos", "videos-staging"):
        role = full.one("Role", "videojob-operator", ns)
        rules = rules_of(role)
        assert rules[("videogen.io", "videojobs")] == {"get", "list", "watch", "patch"}
        assert rules[("batch", "jobs")] == {"create", "get", "list", "watch", "delete", "patch"}
        binding = full.one("RoleBinding", "videojob-operator", ns)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "videojob-operator"}
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    # Nothing cluster-wide for the operator: with literal namespaces it turns Kopf's scanning off.
    assert not full.all("ClusterRoleBinding")
    operator_cluster_roles = [r["metadata"]["name"] for r in full.all("ClusterRole")]
    assert sorted(operator_cluster_roles) == [
        "videojob-operator-editor", "videojob-operator-viewer", "videojob-operator-worker"]


def test_crd_discovery_rule_can_be_dropped_in_cluster_mode(render):
    rules = rules_of(render(set_=["rbac.discovery=false"]).one("ClusterRole", "videojob-operator"))
    assert ("apiextensions.k8s.io", "customresourcedefinitions") not in rules
    assert ("videogen.io", "videojobs") in rules


def test_secret_access_can_be_scoped_by_name_or_removed(full, render):
    # Job mode: only the worker reads Secrets, in its own namespace.
    assert ("", "secrets") not in rules_of(full.one("Role", "videojob-operator", "videos"))
    inline = render(FULL_VALUES, set_=["operator.executor=inline", "grafanaDashboard.enabled=false"])
    for rules_owner in (inline.one("Role", "videojob-operator", "videos"), full.one("ClusterRole", "videojob-operator-worker")):
        (rule,) = [r for r in rules_owner["rules"] if r["resources"] == ["secrets"]]
        assert rule["resourceNames"] == ["videojob-llm", "llm-keys"]
        assert rule["verbs"] == ["list"]  # by metadata.name and the credentials label
    rendered = render(set_=["rbac.secrets.enabled=false"])
    for role in rendered.all("ClusterRole"):
        assert ("", "secrets") not in rules_of(role), role["metadata"]["name"]


def test_worker_serviceaccount_is_narrow_and_bound_per_namespace(default, full):
    worker_role = default.one("ClusterRole", "videojob-operator-worker")
    assert rules_of(worker_role) == {
        ("videogen.io", "videojobs"): {"get"},
        ("videogen.io", "videojobs/status"): {"patch"},
        ("", "events"): {"create"},
        ("", "secrets"): {"list"},
    }
    # Bound with RoleBindings only: the worker has no rights outside its namespace.
    assert not [b for b in default.all("ClusterRoleBinding") if b["roleRef"]["name"].endswith("-worker")]
    binding = default.one("RoleBinding", "videojob-operator-worker", NAMESPACE)
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "videojob-worker", "namespace": NAMESPACE}]
    for ns in ("videos", "videos-staging"):
        b = full.one("RoleBinding", "videojob-operator-worker", ns)
        assert b["subjects"][0]["namespace"] == ns


def test_worker_namespaces_can_be_listed_explicitly(render):
    rendered = render(set_=["worker.namespaces={team-a,team-b}"])
    assert sorted(sa["metadata"]["namespace"] for sa in rendered.all("ServiceAccount") if sa["metadata"]["name"] == "videojob-worker") == ["team-a", "team-b"]


def test_user_roles_aggregate_into_edit_admin_and_view(default):
    editor = default.one("ClusterRole", "videojob-operator-editor")
    viewer = default.one("ClusterRole", "videojob-operator-viewer")
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-edit" not in viewer["metadata"]["labels"]
    assert rules_of(editor)[("videogen.io", "videojobs")] >= {"create", "update", "patch", "delete"}
    # Users read status but never write it: only the operator and its workers do.
    assert rules_of(editor)[("videogen.io", "videojobs/status")] == {"get"}
    assert rules_of(viewer) == {
        ("videogen.io", "videojobs"): {"get", "list", "watch"},
        ("videogen.io", "videojobs/status"): {"get", "list", "watch"},
    }


def test_rbac_create_false_renders_no_rbac(render):
    rendered = render(set_=["rbac.create=false"])
    assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} & set(rendered.kinds())


# ------------------------------------------------------------------------------- optional objects


def test_servicemonitor_and_dashboard_are_off_by_default(default):
    assert not default.all("ServiceMonitor")
    assert not default.all("ConfigMap")


def test_dashboard_configmap_carries_the_charts_dashboard_json(render, chart_with_dashboard):
    rendered = render(set_=["grafanaDashboard.enabled=true"], chart=chart_with_dashboard)
    cm = rendered.one("ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == NAMESPACE
    expected = json.loads((chart_with_dashboard / "files" / "dashboard.json").read_text())
    assert json.loads(cm["data"]["videojob.json"]) == expected


def test_dashboard_enabled_without_the_file_fails_loudly(render, tmp_path):
    chart = tmp_path / "videojob-operator"
    shutil.copytree(CHART, chart)
    shutil.rmtree(chart / "files", ignore_errors=True)
    with pytest.raises(HelmError, match="files/dashboard.json"):
        render(set_=["grafanaDashboard.enabled=true"], chart=chart)


def test_chart_dashboard_is_a_copy_of_the_top_level_dashboard():
    top = ROOT / "dashboards" / "videojob.json"
    copy = CHART / "files" / "dashboard.json"
    if top.exists():
        assert copy.exists(), "cp dashboards/videojob.json helm/videojob-operator/files/dashboard.json"
        assert json.loads(copy.read_text()) == json.loads(top.read_text())
        assert copy.read_bytes() == top.read_bytes()
    else:
        assert not copy.exists(), "the chart's dashboard has no source in dashboards/videojob.json"


def test_servicemonitor_without_service_is_refused(render):
    with pytest.raises(HelmError, match="metrics.service.enabled"):
        render(set_=["metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"])


# ---------------------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        (["replicaCount=11"], "replicaCount"),
        (["replicaCount=one"], "replicaCount"),
        (["operator.executor=pods"], "executor"),
        (["operator.maxConcurrentJobs=0"], "maxConcurrentJobs"),
        (["operator.metricsPort=http"], "metricsPort"),
        (["operator.logFormat=xml"], "logFormat"),
        (["operator.workdir=relative/path"], "workdir"),
        (["aws.requireUpload=maybe"], "requireUpload"),
        (["aws.videoBucket=Not_A_Bucket"], "videoBucket"),
        (["aws.chunkSize=1024"], "chunkSize"),
        (["aws.maxRetries=11"], "maxRetries"),
        (["image.tag=10"], "tag"),  # --set makes 10 a number: tags must be strings
        (["image.digest=latest"], "digest"),
        (["watch.namespaces={Bad_Namespace}"], "namespaces"),
        (["securityContext.runAsNonroot=true"], "runAsNonroot"),  # a typo is not silently ignored
        (["unknownKey=1"], "unknownKey"),
        (["aws.bucket=videos"], "bucket"),
        (["metrics.serviceMonitor.interval=often"], "interval"),
        (["worker.podDefaults.env[0].name=X"], "env"),
        (["resources.limits.memory=lots"], "memory"),
    ],
)
def test_schema_rejects_bad_values(render, setting, complaint):
    with pytest.raises(HelmError) as err:
        render(set_=setting)
    assert "schema" in str(err.value)
    assert complaint in str(err.value)


def test_schema_rejects_unknown_keys_in_a_values_file(render, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"aws": {"videoBucket": "ok-bucket", "s3Bucket": "typo"}}))
    with pytest.raises(HelmError, match="s3Bucket"):
        render(values)


def test_every_object_carries_the_chart_labels(default, full):
    for doc in default.docs + full.docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "videojob-operator", doc["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
