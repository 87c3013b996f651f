"""`videojob run MANIFEST`: one VideoJob on this machine, with a progress bar.

Exit codes: 0 succeeded, 1 failed, 2 invalid input (manifest, spec or configuration).
The final status goes to stdout as YAML (the same shape as `.status` in the cluster); progress
and messages go to stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _log():
    """This module's logger (logging loads only on the paths that log: not on a replay)."""
    import logging

    return logging.getLogger(__name__)


def _error(message: str) -> None:
    sys.stderr.write(f"videojob: {message}\n")


def run_command(args) -> int:
    output_dir = Path(args.output_dir).resolve()
    # An unchanged VideoJob whose last run took every scene from the render cache is replayed
    # without loading the pipeline (cli/replay.py); any other run records one when it can.
    from videojob.cli.replay import Replay

    replay = Replay.of(args, output_dir)
    if replay is None:
        return _sandboxed_run(args, output_dir)
    try:
        code = replay.run()
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    return code if code is not None else _recorded_run(args, output_dir, replay)


def _recorded_run(args, output_dir: Path, replay) -> int:
    """The full run, with what it prints kept for a replay record."""
    from videojob.cli.replay import transcribed

    with transcribed() as (out, err):
        code = _sandboxed_run(args, output_dir, replay)
    if code == EXIT_OK:
        try:
            replay.remember(out.text(), err.text())
        except OSError as exc:  # a cache that cannot be written costs the next run its speed only
            _log().debug("no replay record: %s", exc)
    return code


def _sandboxed_run(args, output_dir: Path, replay=None) -> int:
    # Renders run in sandboxes started for this run only (single-use); none at all when every
    # scene is already in the render cache. (Nothing heavy is imported at the top of this module.)
    from videojob.pipeline.sandbox import Sandbox

    sandbox = Sandbox(output_dir / ".work", mode=getattr(args, "sandbox", None))
    if _cache_is_empty(output_dir):
        # Nothing is cached here yet, so this run renders (or stops at invalid input, and the
        # sandbox is killed unused): its first sandbox boots and imports Manim while this
        # process reads the manifest and settings.
        sandbox.prewarm(1)
    try:
        return _validated_run(args, output_dir, sandbox, replay)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    finally:
        sandbox.close()


def _validated_run(args, output_dir: Path, sandbox, replay=None) -> int:
    from videojob.api.manifest import InvalidVideoJob, load_manifest

    try:
        job = load_manifest(args.manifest)
    except InvalidVideoJob as exc:
        _error(f"invalid VideoJob {args.manifest}:")
        for line in exc.problems:
            sys.stderr.write(f"  {line}\n")
        return EXIT_INVALID
    needed = _uncached_scenes(job, output_dir, args.quality)
    sandbox.prewarm(min(needed, 1))  # the first scene's sandbox, before the settings load
    from videojob.config import ConfigError, load_settings

    try:
        settings = load_settings()
        from videojob.storage.aws_config import load_aws_config

        load_aws_config()  # a bad AWS_* value is reported here, naming the variable
    except ConfigError as exc:
        _error(f"invalid configuration: {exc}")
        return EXIT_INVALID
    if args.parallel is not None:
        if args.parallel < 1:
            _error("--parallel: must be at least 1")
            return EXIT_INVALID
        settings.scene_parallelism = args.parallel
    sandbox.prewarm(min(needed, settings.scene_parallelism))
    from videojob.pipeline.sandbox import SandboxLimits

    sandbox.limits = SandboxLimits(memory_mb=settings.render_memory_mb, max_output_mb=settings.render_max_output_mb)
    import logging

    from videojob.logs import configure_logging, job_context

    json_logs = getattr(args, "log_format", "text") == "json"
    configure_logging("json" if json_logs else "text", logging.INFO if json_logs else logging.WARNING)
    import asyncio  # after the sandboxes started: nothing the CLI imports delays them

    with job_context(job.metadata.namespace or "local", job.metadata.name, job.metadata.generation):
        result, frame, above_bar = asyncio.run(_prefetch_and_run(job, settings, output_dir, args, sandbox))
        if replay is not None:
            replay.observe(job, result, needed == 0, frame, above_bar)
        return _report(job, result, args)


async def _prefetch_and_run(job, settings, output_dir: Path, args, sandbox):
    """Scenes known from the manifest start rendering (in the pipeline's prefetch, through the
    same sandbox, reader and cache as the render step) while LangGraph and friends load."""
    import asyncio
    import importlib

    from videojob.pipeline.prefetch import Prefetch
    from videojob.pipeline.render_cache import RenderCache
    from videojob.pipeline.sandbox import SandboxLimits

    limits = SandboxLimits(timeout_seconds=job.spec.render.scene_timeout_seconds, memory_mb=settings.render_memory_mb,
                           max_output_mb=settings.render_max_output_mb)
    work = output_dir / ".work"
    work.mkdir(parents=True, exist_ok=True)
    cache = RenderCache(output_dir / ".cache" / "renders", settings.render_cache_mb * 1024 * 1024)
    prefetch = Prefetch.start(job, sandbox, cache, work, args.quality, limits, settings.scene_parallelism)
    try:
        await asyncio.to_thread(importlib.import_module, "videojob.run")
        return await _run(job, settings, output_dir, args, sandbox)
    finally:
        await prefetch.aclose()


def _cache_is_empty(output_dir: Path) -> bool:
    try:
        with os.scandir(output_dir / ".cache" / "renders") as entries:
            return next(entries, None) is None
    except (FileNotFoundError, NotADirectoryError):
        return True


def _uncached_scenes(job, output_dir: Path, quality: str | None) -> int:
    """How many sandboxes the job's first scenes need (started ahead of need, so Manim's import
    in them overlaps the pipeline's own start-up): none when every known scene is cached, one
    when only planning can tell."""
    from videojob.pipeline.render_cache import uncached_known_scenes

    needed = uncached_known_scenes(job, output_dir / ".cache" / "renders", quality)
    return 1 if needed is None else needed


async def _run(job, settings, output_dir: Path, args, sandbox):
    """Run the pipeline with the progress display or stage lines. Returns the RunResult, the
    progress bar's last (percent, stage, detail) (None without a bar), and whether anything was
    printed above the bar."""
    from videojob.run import run_videojob

    callbacks = []
    metrics = None
    if getattr(args, "metrics_file", None):
        from videojob.metrics.textfile import RunMetrics

        metrics = RunMetrics(namespace=job.metadata.namespace)
        callbacks.append(metrics.on_event)
    from videojob.cli.fingerprint import shows_progress
    from videojob.cli.replay import Transcript, transcribed

    json_logs = getattr(args, "log_format", "text") == "json"  # stderr holds JSON lines only
    frame, above_bar = None, False
    if shows_progress(args):
        from videojob.cli.progress import ProgressDisplay

        # The bar draws on the terminal itself, not into a transcript of stderr (cli/replay.py).
        display = ProgressDisplay(job.metadata.name, sys.stderr.stream if isinstance(sys.stderr, Transcript) else None)
        callbacks.append(display.on_event)
        with display, transcribed() as above:  # what others print while the bar is up (rich puts it above)
            result = await run_videojob(
                job, settings=settings, store_root=output_dir, quality=args.quality, callbacks=callbacks, sandbox=sandbox
            )
        frame, above_bar = display.shown, bool(above[0].text() or above[1].text())
    else:
        def log_stage(event):
            if event.kind in ("stage_started", "stage_failed"):
                if json_logs:
                    import logging

                    level = logging.WARNING if event.kind == "stage_failed" else logging.INFO
                    _log().log(level, event.message, extra={"stage": event.stage, "percent": event.percent})
                else:
                    sys.stderr.write(f"[{event.percent:3d}%] {event.message}\n")

        callbacks.append(log_stage)
        result = await run_videojob(
            job, settings=settings, store_root=output_dir, quality=args.quality, callbacks=callbacks, sandbox=sandbox
        )
    if metrics is not None:
        metrics.finish(result)
        metrics.write(args.metrics_file)
    return result, frame, above_bar


def _report(job, result, args) -> int:
    """The final status to stdout, the error to stderr; the exit code."""
    import yaml

    from videojob.pipeline.errors import InvalidContent

    json_logs = getattr(args, "log_format", "text") == "json"
    sys.stdout.write(yaml.safe_dump({"status": result.tracker.as_dict()}, sort_keys=False, allow_unicode=True))
    if result.succeeded:
        return EXIT_OK
    if json_logs:
        _log().error("%s failed (%s): %s", job.metadata.name, result.error.reason, result.error.message)
    else:
        _error(f"{job.metadata.name} failed ({result.error.reason}): {result.error.message}")
    return EXIT_INVALID if isinstance(result.error, InvalidContent) else EXIT_FAILED
