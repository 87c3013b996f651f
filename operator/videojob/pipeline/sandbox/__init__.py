"""Render untrusted scene code behind the kernel's fence.

Every VideoJob executes code we did not write (an LLM's, or a user's). The fence is the operating
system, never the interpreter the code runs in: see docs/security.md for what each layer stops.

How a scene renders
-------------------
1. The parent prepares a per-scene scratch directory (`scratch.prepare_scratch`):
   `scene.py` and `request.json` = {"scene_class", "quality", "limits": SandboxLimits.as_request()}.
2. A `RunnerInstance` executes it (`instance.execute(scratch, timeout)`). Whatever executes it —
   a zygote child inside bubblewrap here, a render container in the Job pod there — calls
   `execute.execute_scratch(scratch)`, which writes into that directory `result.json`
   ({"ok", "movie": a file name relative to the scratch directory, "error", "kind"}),
   `render.log` and the movie.
3. The parent reads it back with ONE hostile-result reader, `scratch.read_outcome` (directory fd,
   O_NOFOLLOW, capped sizes, the movie copied into a parent-made file and demuxed as MP4), which
   returns a `RenderOutcome`. Only the parent writes the render cache, from that copy.

Runners (the pluggable step 2)
------------------------------
`Runner` (protocol.py): `isolation` ("bubblewrap" | "pod" | "none", shown in status.sandbox),
`check()` (raise `SandboxUnavailable` with one line naming the fix), `prewarm(n)`, `replenish()`,
`wait_warm(timeout)`, `acquire() -> RunnerInstance` (fresh, for ONE job), `close()`.
`RunnerInstance`: `root` (host directory under which the parent creates scratch directories),
`execute(scratch, timeout_seconds) -> Execution` (blocking; kills the whole instance at the
timeout), `close()` (kill everything, remove root). Implementations: `runners.BubblewrapRunner`
(`VIDEOJOB_SANDBOX=auto|bubblewrap`), `runners.UnconfinedRunner` (`none`); another mode is added
with `register_runner("pod", factory)` where `factory(root: Path, pool_size: int) -> Runner`.

Fail closed: when no runner can work, `JobSandbox.render` raises `SandboxUnavailable`; the render
step fails the job with that one line. `isolation_report()` tells a process at start-up which
isolation it has.
"""

from videojob.pipeline.sandbox.protocol import (
    Execution,
    Isolation,
    RenderOutcome,
    Runner,
    RunnerInstance,
    SandboxLimits,
    SandboxUnavailable,
)
from videojob.pipeline.sandbox.scratch import prepare_scratch, read_outcome
from videojob.pipeline.sandbox.service import (
    SANDBOX_MODES,
    JobSandbox,
    Sandbox,
    isolation_report,
    make_runner,
    register_runner,
)


def execute_scratch(scratch) -> None:
    """Render one prepared scratch directory in this process (see execute.execute_scratch)."""
    from videojob.pipeline.sandbox.execute import execute_scratch as run

    run(scratch)


__all__ = [
    "Execution", "Isolation", "JobSandbox", "RenderOutcome", "Runner", "RunnerInstance", "SANDBOX_MODES", "Sandbox",
    "SandboxLimits", "SandboxUnavailable", "execute_scratch", "isolation_report", "make_runner", "prepare_scratch",
    "read_outcome", "register_runner",
]
