"""`videojob render-server --spool DIR`: the render container of a Job pod.

Renders the scene scratch directories the worker drops into the spool (an emptyDir shared with
the worker container, see `pipeline/sandbox/pod.py`) and answers in place. It needs no Kubernetes
access and no credentials; the pod gives it none. Runs until SIGTERM (the kubelet stops this
native sidecar once the worker has exited), then stops every render it started.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any


def render_server_command(args: Any) -> int:
    from videojob.logs import configure_logging
    from videojob.pipeline.sandbox.spool_server import SpoolServer

    configure_logging(getattr(args, "log_format", "text"))
    spool = Path(args.spool)
    try:
        server = SpoolServer(spool, poll_interval=args.poll_interval)
    except OSError as exc:
        sys.stderr.write(f"videojob render-server: cannot prepare a private directory: {exc}\n")
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop())
    try:
        server.serve_forever()
    except OSError as exc:
        sys.stderr.write(f"videojob render-server: cannot serve spool {spool}: {exc}\n")
        return 2
    logging.getLogger(__name__).info("render server stopped")
    return 0
