"""Fixtures for the observability tests: the dashboard's PromQL, promtool, the real CLI in-process."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

# The operator under test against the emulated API server: tests/controller owns these fixtures.
from tests.controller.conftest import apiserver, kube, operator, workdir  # noqa: F401
from tests.helpers import free_port, sample, wait_until  # noqa: F401  (shared helpers)
from tests.pipeline.conftest import CliResult

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "videojob.json"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_TIME_METRICS = {"videojob_jobs"}  # computed by the operator's collector at scrape time

# ------------------------------------------------------------------------------ dashboard


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every Prometheus target of every panel."""
    return [(p["title"], t["expr"]) for p in all_panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


# ---------------------------------------------------------------------------------- PromQL

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords,
    label names (inside {...} or grouping clauses), durations or Grafana variables."""
    text = re.sub(r"\$\{?\w+\}?", " ", expr)  # $__rate_interval, ${datasource}, $namespace
    text = _STRING.sub('""', text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range / subquery windows
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        following = text[match.end():].lstrip()
        if following.startswith("("):
            continue  # a function or aggregation
        if match.group().lower() in _KEYWORDS:
            continue
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or suffix of a number (1e3, 0.5)
        names.add(match.group())
    return names


def exported_metric_names() -> set[str]:
    """Every series name videojob.metrics exposes (counters' _total, histograms' _bucket/_sum/_count)
    plus the scrape-time gauge."""
    from videojob import metrics

    names = set(SCRAPE_TIME_METRICS)
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name, kind = value._name, value._type
        if kind == "counter":
            names |= {f"{name}_total"}
        elif kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


# ------------------------------------------------------------------------------- promtool


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess:
    """`promtool check metrics` (the exposition linter) on `text`."""
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


# ----------------------------------------------------------------------------- manifests


def videojob(spec: dict[str, Any], name: str = "obs-video", **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob", "metadata": {"name": name, **metadata}, "spec": spec}


def one_scene(seconds: float = 1) -> dict[str, Any]:
    return {
        "topic": "Shapes",
        "projectId": "obs",
        "render": {"quality": "low"},
        "storyboard": {"scenes": [{"title": "A circle", "text": "Short.", "shape": "circle", "durationSeconds": seconds}]},
    }


def failing_code(message: str) -> dict[str, Any]:
    code = (
        "from manim import *\n\n"
        "class Broken(Scene):\n"
        "    def construct(self):\n"
        "        self.add(Square())\n"
        f"        raise ValueError({message!r})\n"
    )
    return {"topic": "Broken", "projectId": "obs", "code": code, "render": {"quality": "low", "maxSceneAttempts": 1}}


@pytest.fixture
def run_cli(capsys, tmp_path: Path):
    """`videojob run MANIFEST ...` in this process; returns exit code, stdout, stderr."""
    from videojob.cli.main import main

    counter = iter(range(1000))

    def run(document: dict[str, Any], *extra: str) -> CliResult:
        manifest = tmp_path / f"job-{next(counter)}.yaml"
        manifest.write_text(yaml.safe_dump(document))
        code = main(["run", str(manifest), "--output-dir", str(tmp_path / "out"), "--no-progress", *extra])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# ------------------------------------------------------------------- Prometheus, fake LLM

class PrometheusServer:
    """The real Prometheus server (Debian's `prometheus` package) on 127.0.0.1, scraping `targets`
    every second, with its TSDB under `root`. Started and stopped by PID."""

    def __init__(self, root: Path, targets: list[str]):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "videojob-operator", "static_configs": [{"targets": targets}]}],
        }
        self.config = root / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = root / "prometheus.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrometheusServer":
        check = subprocess.run([PROMTOOL, "check", "config", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.root / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        self.wait(lambda: self._get("/-/ready") is not None, "Prometheus ready")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def _get(self, path: str) -> bytes | None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.read()
        except OSError:
            return None

    def api(self, endpoint: str, **params: Any) -> Any:
        body = self._get(f"/api/v1/{endpoint}?{urllib.parse.urlencode(params)}")
        assert body is not None, f"no answer from {endpoint} {params}"
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str, **params: Any) -> list[dict[str, Any]]:
        return self.api("query", query=expr, **params)["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait(self, predicate: Any, what: str, timeout: float = 45) -> None:
        wait_until(predicate, timeout, what)

    def last_scrape(self) -> float:
        """When Prometheus last scraped the operator (Unix seconds; 0 before the first scrape)."""
        return self.value('timestamp(up{job="videojob-operator"})') or 0.0


@pytest.fixture
def prometheus(tmp_path: Path):
    """`prometheus(targets)` starts a Prometheus server; it is stopped at teardown."""
    started: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        root = tmp_path / f"prometheus-{len(started)}"
        root.mkdir()
        server = PrometheusServer(root, targets)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


class FakeOpenAI:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 in a thread: the first request is answered
    429 (Retry-After: 0), then plans for planning prompts and Manim code for code prompts."""

    PLAN = {"scenes": [{"title": "A circle", "goal": "show a circle", "visual_elements": ["circle"],
                        "narration": "A circle.", "duration_seconds": 1}]}
    CODE = "from manim import *\n\n\nclass {cls}(Scene):\n    def construct(self):\n        self.add(Circle())\n        self.wait(0.5)\n"

    def __init__(self, code_delay: float = 1.5, reject_keys: bool = False) -> None:
        self.code_delay = code_delay
        self.reject_keys = reject_keys
        self.requests: list[dict[str, Any]] = []
        self.authorization: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.requests.append(body)
                fake.authorization.append(self.headers.get("Authorization", ""))
                status, answer, headers = fake.answer(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-openai", daemon=True)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.reject_keys:  # as some providers do: the rejected key, echoed in the error
            key = self.authorization[-1].removeprefix("Bearer ")
            return 401, {"error": {"message": f"Incorrect API key provided: {key}", "type": "invalid_request_error"}}, {}
        if len(self.requests) == 1:
            return 429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"Retry-After": "0"}
        prompt = "\n".join(str(m.get("content")) for m in body.get("messages", []))
        match = re.search(r"class `(\w+)\(Scene\)`", prompt)
        if match:
            # The code answer comes a scrape interval after the plan's, so Prometheus sees the
            # latency histogram grow (a series' first value is its start, not an increase).
            time.sleep(self.code_delay)
        content = (
            "```python\n" + self.CODE.format(cls=match.group(1)) + "```" if match else json.dumps(self.PLAN)
        )
        return 200, {
            "id": "chatcmpl-obs", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
        }, {}

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def rejecting_openai():
    """An endpoint answering every request 401, echoing the API key it was given."""
    with FakeOpenAI(reject_keys=True) as server:
        yield server


@pytest.fixture
def moto_aws(monkeypatch):
    """A moto server on 127.0.0.1 with the video bucket and table created; AWS_* env points at it.
    The code bucket does not exist, so code uploads fail (NoSuchBucket) and runs degrade gracefully."""
    import asyncio
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name in ("AWS_PROFILE", "AWS_KMS_KEY_ID", "AWS_REQUIRE_UPLOAD", "AWS_MULTIPART_THRESHOLD", "AWS_CHUNK_SIZE"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_S3_VIDEO_BUCKET": "obs-videos", "AWS_S3_CODE_BUCKET": "obs-videos", "AWS_DYNAMODB_TABLE": "ObsVideos",
        "AWS_MAX_RETRIES": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from videojob.storage.aws_config import load_aws_config
    from videojob.storage.aws_service import AWSIntegrationService

    asyncio.run(AWSIntegrationService(load_aws_config()).ensure_resources())
    monkeypatch.setenv("AWS_S3_CODE_BUCKET", "obs-missing-code")
    yield env
    server.stop()


def scene_code_of(statement: str) -> str:
    """User Manim code whose one scene runs `statement` after adding a square."""
    return f"from manim import *\n\nclass Broken(Scene):\n    def construct(self):\n        self.add(Square())\n        {statement}\n"
