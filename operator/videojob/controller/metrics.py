"""`videojob_jobs{namespace,phase}`, computed at scrape time, and the /metrics HTTP server.

The operator keeps a `JobBook`: the phase of every live VideoJob it watches, fed from the watch
stream (Kopf's event handler). The collector counts it when Prometheus scrapes, so the gauge can
never drift from what exists (no inc/dec bookkeeping to get wrong on deletions or restarts).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Iterator

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Suspended", "AwaitingInput")


class JobBook:
    """uid -> (namespace, phase) of every VideoJob the operator sees; thread-safe for scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[str, str]] = {}
        self._versions: dict[str, tuple[str, str, int]] = {}  # uid -> (namespace, name, version)

    def observe(self, event_type: str | None, body: Any) -> None:
        meta = body.get("metadata", {})
        uid = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
        with self._lock:
            if event_type == "DELETED":
                self._jobs.pop(uid, None)
                self._versions.pop(uid, None)
            else:
                status = body.get("status") or {}
                self._jobs[uid] = (meta.get("namespace") or "", status.get("phase") or "Pending")
                if status.get("version") is not None:
                    self._versions[uid] = (meta.get("namespace") or "", meta.get("name") or "", int(status["version"]))

    def counts(self) -> Counter:
        with self._lock:
            return Counter(self._jobs.values())

    def versions(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return sorted(self._versions.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)


class JobsCollector(Collector):
    def __init__(self, book: JobBook, info: bool = False):
        self.book = book
        self.info = info  # videojob_info{namespace,name,version}: one series per object (opt-in)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("videojob_jobs", "VideoJobs by namespace and phase", labels=["namespace", "phase"])
        counts = self.book.counts()
        namespaces = sorted({ns for ns, _ in counts})
        for namespace in namespaces:
            for phase in PHASES:  # zeros too, so a phase that empties drops to 0 instead of vanishing
                gauge.add_metric([namespace, phase], counts.get((namespace, phase), 0))
        yield gauge
        if self.info:
            info = GaugeMetricFamily("videojob_info", "The latest version of each VideoJob", labels=["namespace", "name", "version"])
            for namespace, name, version in self.book.versions():
                info.add_metric([namespace, name, str(version)], 1)
            yield info

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # computed at scrape time; nothing to check for duplicates up front


class MetricsServer:
    """Registers the collector and serves the default registry on `port` (0: any free port)."""

    def __init__(self, book: JobBook, port: int, host: str = "0.0.0.0", info: bool = False):
        self.collector = JobsCollector(book, info)
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        REGISTRY.register(self.collector)
        self._server, self._thread = start_http_server(self.port, addr=self.host)
        self.port = self._server.server_address[1]
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        try:
            REGISTRY.unregister(self.collector)
        except KeyError:
            pass
