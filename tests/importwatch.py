"""The real `videojob operator` process under `python -X importtime`, which names every module
the process imports, whenever it does: what a footprint test reads to see what got loaded."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.controller.test_real_cluster import answers
from tests.helpers import free_port, wait_until


def imported_modules(importtime_log: str) -> set[str]:
    """The modules `-X importtime` reported (lines `import time: self | cumulative | name`)."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines() if line.startswith("import time:")} - {"package"}


def loaded(modules: set[str], names: set[str]) -> list[str]:
    """Those of `modules` that are one of `names` or inside one of those packages."""
    return sorted(m for m in modules if m in names or m.split(".")[0] in names)


@contextmanager
def operator_under_importtime(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """The operator watching namespace `default`, up (its liveness endpoint answers) for the
    block; then stopped cleanly, since the shutdown path counts too. Its log is at `log_path`."""
    port = free_port()
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
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            finally:
                proc.kill()  # nothing to do once it has exited
