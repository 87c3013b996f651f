"""`videojob operator`: settings, Kopf configuration, and the operator's life cycle.

Kopf's own state lives in annotations under `videogen.io/` (handler progress and the diff base),
never in `.status`, which belongs to the VideoJob's users. Standalone by default (no peering
CRD needed). One operator per namespace set handles VideoJobs: with more than one replica, set
VIDEOJOB_LEADER_ELECTION=true and only the holder of a Lease does (`leader.py`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kopf

from videojob.api.models import API_GROUP
from videojob.config import ConfigError, Settings, load_settings
from videojob.controller import handlers
from videojob.controller.events import COMPONENT, EventRecorder
from videojob.controller.executor import RunEnvironment, make_executor
from videojob.controller.kube import CRDMissing, KubeClient
from videojob.controller.leader import LeadershipLost, LeaseElector, lead
from videojob.controller.metrics import JobBook, MetricsServer
from videojob.controller.slots import FairSlots
from videojob.policy import TenancyPolicy

if TYPE_CHECKING:
    from videojob.pipeline.sandbox import Sandbox

log = logging.getLogger(__name__)

# A watch request lasts at most this long on the server; the client gives up a bit later and
# re-lists, so a silently dead connection (a proxy, a restarted API server) costs minutes, not hours.
WATCH_SERVER_TIMEOUT = 600
WATCH_CLIENT_TIMEOUT = 660
CONNECT_TIMEOUT = 30
REQUEST_TIMEOUT = 60


@dataclass
class OperatorOptions:
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    metrics_port: int | None = 8000  # None: no metrics server; 0: any free port
    liveness_port: int | None = 8080  # None: no liveness endpoint
    host: str = "0.0.0.0"  # where the metrics and liveness servers listen
    standalone: bool = True
    log_format: str = "text"
    status_interval: float = 1.0  # minimum seconds between throttled status writes of one job
    info_metric: bool = False
    # Leader election (VIDEOJOB_LEADER_ELECTION): who this replica is, and where its Lease lives.
    identity: str = field(default_factory=lambda: os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}")
    lease_namespace: str | None = None  # default: POD_NAMESPACE, else the first watched namespace, else "default"

    @classmethod
    def from_args(cls, args: Any) -> "OperatorOptions":
        return cls(
            namespaces=list(args.namespaces or []),
            metrics_port=args.metrics_port if args.metrics_port and args.metrics_port > 0 else None,
            liveness_port=args.liveness_port if args.liveness_port and args.liveness_port > 0 else None,
            standalone=args.standalone,
            log_format=args.log_format,
            info_metric=bool(getattr(args, "info_metric", False)),
        )

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def lease_in(self) -> str:
        literal = [ns for ns in self.namespaces if not any(ch in ns for ch in "*?[!")]
        return self.lease_namespace or os.environ.get("POD_NAMESPACE") or (literal[0] if literal else "default")


def kopf_settings(options: OperatorOptions) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # No handler needs a finalizer (handlers.register); naming the one earlier versions added makes
    # Kopf remove it from such objects, so an upgrade strands none of them.
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.connect_timeout = CONNECT_TIMEOUT
    settings.networking.request_timeout = REQUEST_TIMEOUT
    settings.networking.connect_timeout = CONNECT_TIMEOUT
    # Kopf's per-handler Events ("Handler 'create' succeeded") would double ours; keep its warnings.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = COMPONENT
    settings.peering.standalone = options.standalone
    settings.peering.mandatory = False
    settings.peering.name = COMPONENT
    # With literal namespaces there is nothing to discover: no need to list namespaces (and no
    # RBAC for it). Globs ("team-*") still need the scan.
    if options.namespaces and not any(ch in ns for ns in options.namespaces for ch in "*?[!"):
        settings.scanning.disabled = True
    return settings


def run_environment(settings: Settings, kube: KubeClient, options: OperatorOptions) -> RunEnvironment:
    """What every run of this operator shares: the queue's slots, Events, the store, and (inline
    executor only: Job-mode workers render in their own pods) one sandbox."""
    store_root = Path(settings.workdir)
    store_root.mkdir(parents=True, exist_ok=True)
    return RunEnvironment(
        settings=settings,
        kube=kube,
        slots=FairSlots(settings.max_concurrent_jobs, TenancyPolicy.from_settings(settings).max_concurrent_per_namespace),
        events=EventRecorder(kube),
        store_root=store_root,
        min_write_interval=options.status_interval,
        namespaces=list(options.namespaces),
        sandbox=_inline_sandbox(settings, store_root) if settings.executor == "inline" else None,
    )


def _inline_sandbox(settings: Settings, store_root: Path) -> "Sandbox":
    # Imported here: a Job-mode operator is a controller only and never loads the render side.
    from videojob.pipeline.sandbox import Sandbox, SandboxLimits

    limits = SandboxLimits(memory_mb=settings.render_memory_mb, max_output_mb=settings.render_max_output_mb)
    return Sandbox(store_root / ".work", limits)


def _say_isolation(sandbox: Sandbox) -> None:
    """The inline executor renders untrusted code in this pod: say at start-up which fence it has
    (or that untrusted code will be refused, and how to fix that)."""
    from videojob.pipeline.sandbox import isolation_report

    isolation, line = isolation_report(root=sandbox.root)
    if isolation is None:
        log.error("inline executor: %s", line)
    elif isolation == "none":
        log.warning("inline executor: %s", line)
    else:
        log.info("inline executor: %s", line)


async def run_operator(
    options: OperatorOptions,
    settings: Settings,
    *,
    kube: KubeClient | None = None,
    ready_flag: Any = None,
    stop_flag: Any = None,
    on_started: Any = None,
) -> None:
    """Run the operator until `stop_flag` (or a signal, when run in the main thread)."""
    kube = kube or KubeClient.from_environment()
    await asyncio.to_thread(kube.check_crd)
    book = JobBook()
    env = run_environment(settings, kube, options)
    if settings.executor == "inline":
        _say_isolation(env.sandbox)
    executor = make_executor(settings, env)
    controller = handlers.Controller(settings, kube, executor, env.events, book)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, controller)
    executor.register(registry)  # the Job executor watches its Jobs and their pods

    metrics_server = MetricsServer(book, options.metrics_port, options.host, options.info_metric) if options.metrics_port is not None else None
    if metrics_server is not None:
        metrics_server.start()
    if on_started is not None:
        on_started(controller, metrics_server)
    liveness = f"http://{options.host}:{options.liveness_port}/healthz" if options.liveness_port else None

    async def operate(stop: Any) -> None:
        await kopf.operator(
            registry=registry,
            settings=kopf_settings(options),
            standalone=options.standalone,
            clusterwide=options.clusterwide,
            namespaces=options.namespaces,
            liveness_endpoint=liveness,
            ready_flag=ready_flag,
            stop_flag=stop,
            memo=kopf.Memo(controller=controller),
        )

    try:
        if settings.leader_election:
            elector = LeaseElector(kube.api_client, options.lease_in, options.identity)
            standby = (options.host, options.liveness_port) if options.liveness_port else None
            await lead(elector, operate, stop_flag=stop_flag, liveness=standby)
        else:
            await operate(stop_flag)
    finally:
        await executor.shutdown()
        if env.sandbox is not None:
            env.sandbox.close()
        if metrics_server is not None:
            metrics_server.stop()


def operator_command(args: Any) -> int:
    """`videojob operator`: exit 2 with one clear line for bad settings, no cluster, or no CRD."""
    options = OperatorOptions.from_args(args)
    from videojob.logs import configure_logging

    configure_logging(options.log_format)  # JSON lines carry each VideoJob's identity; secrets masked
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"videojob operator: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        kube = KubeClient.from_environment()
    except Exception as exc:
        print(f"videojob operator: no cluster credentials (in-cluster or kubeconfig): {exc}", file=sys.stderr)
        return 2
    try:
        kube.check_crd()
    except CRDMissing as exc:
        print(f"videojob operator: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"videojob operator: cannot reach the API server at {kube.api_client.configuration.host}: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_operator(options, settings, kube=kube))
    except KeyboardInterrupt:
        pass
    except LeadershipLost as exc:
        print(f"videojob operator: {exc}", file=sys.stderr)
        return 1
    finally:
        kube.close()
    return 0
