"""The types shared by every way of running a prepared scratch directory.

Kept free of heavy imports: the CLI and the operator import these at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

# The value of status.sandbox for each kind of isolation (DESIGN: bubblewrap | pod | none).
Isolation = Literal["bubblewrap", "pod", "none"]


class SandboxUnavailable(RuntimeError):
    """No OS sandbox can be made here; untrusted code is refused. The message is ONE line that
    names the fix (install bubblewrap, allow user namespaces, or opt out with VIDEOJOB_SANDBOX=none)."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_seconds: float = 300
    memory_mb: int = 3072
    max_output_mb: int = 2048
    max_open_files: int = 1024
    max_processes: int = 256

    @property
    def cpu_seconds(self) -> int:
        # CPU time counts every thread; the encoder uses a few. The wall clock is the tighter bound.
        return int(self.timeout_seconds * 2) + 10

    def as_request(self) -> dict[str, int]:
        """The limits as written into request.json (what the executor applies as rlimits)."""
        return {
            "memory_bytes": self.memory_mb * 1024 * 1024,
            "cpu_seconds": self.cpu_seconds,
            "max_output_bytes": self.max_output_mb * 1024 * 1024,
            "max_open_files": self.max_open_files,
            "max_processes": self.max_processes,
        }


@dataclass
class RenderOutcome:
    ok: bool
    movie: Path | None = None
    error: str | None = None
    # Exception class of the scene code, or one of: Refused, Timeout, CPULimit, MemoryLimit,
    # OutputLimit, Killed, Crashed, NoOutput, BadOutput, SandboxUnavailable.
    kind: str | None = None
    # Layout problems of a rendered scene (object outside the frame, text over text): the video
    # is fine to use; they are reported. Read from result.json as a capped list of capped strings.
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Execution:
    """How executing one scratch directory ended, as the runner saw it from outside.

    `ended`: "exited" (the executor finished; `wait_status` is its wait status when known),
    "timeout" (killed at the wall-clock limit), "lost" (the sandbox died or was closed)."""

    ended: Literal["exited", "timeout", "lost"]
    wait_status: int | None = None
    detail: str = ""


class RunnerInstance(Protocol):
    """One single-use sandbox that belongs to ONE job. Scenes of that job run in it one at a
    time; it is closed (everything in it killed, its directory removed) when the job is done
    with it or when a scene timed out in it."""

    root: Path  # host directory; scene scratch directories are created under it by the parent

    def execute(self, scratch: Path, timeout_seconds: float) -> Execution:
        """Execute the prepared scratch directory `scratch` (a child of `root`). Blocks until the
        executor has finished, the timeout passed (the whole sandbox is then killed), or the
        instance was closed from another thread. Never raises for anything the scene did."""
        ...

    def close(self) -> None:
        """Kill everything this instance started and remove `root`. Idempotent, thread-safe."""
        ...


class Runner(Protocol):
    """A way to execute prepared scratch directories: bubblewrap, none, or (in a cluster) pod."""

    isolation: Isolation

    def check(self) -> None:
        """Raise SandboxUnavailable (one line naming the fix) when this runner cannot work here."""
        ...

    def prewarm(self, count: int) -> None:
        """Start up to `count` instances ahead of need (a speed-up; may do nothing)."""
        ...

    def replenish(self) -> None:
        """Bring the warm pool back to its configured size (after a job let its instances go)."""
        ...

    def wait_warm(self, timeout: float) -> bool:
        """True once every pooled instance is ready (benchmarks and tests)."""
        ...

    def acquire(self) -> RunnerInstance:
        """A fresh instance for one job (pre-warmed when one is ready). Never handed to another job."""
        ...

    def close(self) -> None:
        """Stop the warm pool."""
        ...
