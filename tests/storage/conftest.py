"""Fixtures for the S3/DynamoDB tests: a moto server on 127.0.0.1, AWS env pointing at it, and a
fault-injecting HTTP proxy in front of it. Every boto3 call crosses real HTTP."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import pytest
from moto.server import ThreadedMotoServer

from videojob.storage.records import Artifacts

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def moto_url():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_environment(endpoint: str, suffix: str) -> dict[str, str]:
    """Env for a run against `endpoint` with fresh bucket/table names (tests never share them)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_S3_VIDEO_BUCKET": f"videos-{suffix}",
        "AWS_S3_CODE_BUCKET": f"code-{suffix}",
        "AWS_DYNAMODB_TABLE": f"VideoMetadata-{suffix}",
    }


_AWS_VARS = [
    "AWS_PROFILE", "AWS_KMS_KEY_ID", "AWS_REQUIRE_UPLOAD", "AWS_ENABLE_ENCRYPTION", "AWS_MULTIPART_THRESHOLD",
    "AWS_CHUNK_SIZE", "AWS_MAX_CONCURRENT_UPLOADS", "AWS_MAX_RETRIES", "AWS_RETRY_MODE",
]


@pytest.fixture
def aws_env(moto_url, monkeypatch) -> dict[str, str]:
    for name in _AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    env = aws_environment(moto_url, uuid.uuid4().hex[:10])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def make_service(aws_env):
    """Build an AWSIntegrationService from the current env (plus overrides) with resources created."""
    from videojob.storage.aws_config import load_aws_config
    from videojob.storage.aws_service import AWSIntegrationService

    async def make(create: bool = True, **overrides) -> AWSIntegrationService:
        service = AWSIntegrationService(load_aws_config(**overrides))
        if create:
            await service.ensure_resources()
        return service

    return make


@pytest.fixture
def s3_client(aws_env):
    import boto3

    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def dynamodb_client(aws_env):
    import boto3

    return boto3.client("dynamodb", region_name="us-east-1")


def _artifacts(tmp_path, *, video_id="fourier", topic="Fourier series", uid=None, generation=None, parent=None, code="x = 1", **kw):
    video = tmp_path / f"{video_id}-{uid}-{generation}-{code.__hash__()}.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + code.encode() * 100)
    scene = tmp_path / f"scene-{video.name}"
    scene.write_bytes(b"scene")
    return Artifacts(
        project_id="demo", video_id=video_id, topic=topic, video=video, scene_videos=[scene],
        scene_codes=[f"from manim import *\nclass Scene1(Scene):\n    pass  # {code}\n"],
        combined_code=f"from manim import *\n# {code}\n", duration_seconds=3.0, size_bytes=video.stat().st_size,
        sha256=hashlib.sha256(video.read_bytes()).hexdigest(), plan={"scenes": [{"title": "Intro"}]},
        k8s_uid=uid, k8s_generation=generation, parent_version=parent, **kw,
    )



@pytest.fixture
def make_artifacts(tmp_path):
    """Artifacts of a small fake run (a few bytes of "video"), as the pipeline hands them over."""
    return lambda **kw: _artifacts(tmp_path, **kw)


# ------------------------------------------------------------------------- fault proxy


@dataclass
class SeenRequest:
    method: str
    path: str
    query: str
    target: str  # X-Amz-Target (DynamoDB operation), '' for S3
    status: int = 0

    @property
    def dynamodb_operation(self) -> str:
        return self.target.rsplit(".", 1)[-1] if self.target else ""


@dataclass
class Fault:
    match: Callable[[SeenRequest], bool]
    times: int
    status: int
    code: str
    dynamodb: bool = False


@dataclass
class FaultProxy:
    """Forwards to moto; answers matching requests with an error the first N times."""

    upstream: str
    requests: list[SeenRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def fail(self, times: int, status: int, code: str, match: Callable[[SeenRequest], bool] = lambda r: True) -> None:
        self.faults.append(Fault(match, times, status, code))

    def count(self, match: Callable[[SeenRequest], bool]) -> int:
        with self.lock:
            return sum(1 for r in self.requests if match(r))

    def _fault_for(self, req: SeenRequest) -> Fault | None:
        with self.lock:
            self.requests.append(req)
            for fault in self.faults:
                if fault.times > 0 and fault.match(req):
                    fault.times -= 1
                    return fault
        return None


def _handler(proxy: FaultProxy):
    up = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self):
            body = self._body()
            path, _, query = self.path.partition("?")
            req = SeenRequest(self.command, path, query, self.headers.get("X-Amz-Target", ""))
            fault = proxy._fault_for(req)
            if fault is not None:
                req.status = fault.status
                if req.target:
                    payload = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{fault.code}", "message": "injected"}).encode()
                    ctype = "application/x-amz-json-1.0"
                else:
                    payload = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                        f"<Message>injected {fault.code}</Message><RequestId>proxy</RequestId></Error>"
                    ).encode()
                    ctype = "application/xml"
                self.send_response(fault.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
            headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            req.status = resp.status
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    self.send_header(k, v)
            # HEAD answers carry the object's length without a body.
            length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    return Handler


@pytest.fixture
def fault_proxy(moto_url, aws_env, monkeypatch):
    """A FaultProxy in front of moto; AWS_ENDPOINT_URL points at it for this test."""
    proxy = FaultProxy(moto_url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    server.shutdown()
    server.server_close()


def cli_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment for a `videojob` subprocess: this one without AWS_*, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra)
    return env
