"""`videojob run MANIFEST`: one VideoJob on this machine, with a progress bar.

Exit codes: 0 succeeded, 1 failed, 2 invalid input (manifest, spec or configuration).
The final status goes to stdout as YAML (the same shape as `.status` in the cluster); progress
and messages go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
log = logging.getLogger(__name__)


def _error(message: str) -> None:
    sys.stderr.write(f"videojob: {message}\n")


def run_command(args) -> int:
    output_dir = Path(args.output_dir).resolve()
    # Renders run in sandboxes started for this run only (single-use); none at all when every
    # scene is already in the render cache. (Nothing heavy is imported at the top of this module.)
    from videojob.pipeline.sandbox import Sandbox

    sandbox = Sandbox(output_dir / ".work", mode=getattr(args, "sandbox", None))
    try:
        return _validated_run(args, output_dir, sandbox)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    finally:
        sandbox.close()


def _validated_run(args, output_dir: Path, sandbox) -> int:
    from videojob.api.manifest import InvalidVideoJob, load_manifest

    try:
        job = load_manifest(args.manifest)
    except InvalidVideoJob as exc:
        _error(f"invalid VideoJob {args.manifest}:")
        for line in exc.problems:
            sys.stderr.write(f"  {line}\n")
        return EXIT_INVALID
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
    _warm_sandboxes(job, output_dir, args.quality, settings.scene_parallelism, sandbox)
    from videojob.pipeline.sandbox import SandboxLimits

    sandbox.limits = SandboxLimits(memory_mb=settings.render_memory_mb, max_output_mb=settings.render_max_output_mb)
    from videojob.logs import configure_logging, job_context

    json_logs = getattr(args, "log_format", "text") == "json"
    configure_logging("json" if json_logs else "text", logging.INFO if json_logs else logging.WARNING)
    with job_context(job.metadata.namespace or "local", job.metadata.name, job.metadata.generation):
        return asyncio.run(_prefetch_and_run(job, settings, output_dir, args, sandbox))


async def _prefetch_and_run(job, settings, output_dir: Path, args, sandbox) -> int:
    """Scenes known from the manifest start rendering (in the pipeline's prefetch, through the
    same sandbox, reader and cache as the render step) while LangGraph and friends load."""
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


def _warm_sandboxes(job, output_dir: Path, quality: str | None, parallelism: int, sandbox) -> None:
    """Start the sandboxes the first scenes will need now, so Manim's import in them overlaps the
    pipeline's own start-up; none when every known scene is cached."""
    from videojob.pipeline.render_cache import uncached_known_scenes

    needed = uncached_known_scenes(job, output_dir / ".cache" / "renders", quality)
    sandbox.prewarm(1 if needed is None else min(needed, parallelism))


async def _run(job, settings, output_dir: Path, args, sandbox) -> int:
    import yaml

    from videojob.pipeline.errors import InvalidContent
    from videojob.run import run_videojob

    callbacks = []
    metrics = None
    if getattr(args, "metrics_file", None):
        from videojob.metrics.textfile import RunMetrics

        metrics = RunMetrics(namespace=job.metadata.namespace)
        callbacks.append(metrics.on_event)
    json_logs = getattr(args, "log_format", "text") == "json"  # stderr holds JSON lines only
    show = not args.no_progress and sys.stderr.isatty() and not json_logs
    if show:
        from videojob.cli.progress import ProgressDisplay

        display = ProgressDisplay(job.metadata.name)
        callbacks.append(display.on_event)
        with display:
            result = await run_videojob(
                job, settings=settings, store_root=output_dir, quality=args.quality, callbacks=callbacks, sandbox=sandbox
            )
    else:
        def log_stage(event):
            if event.kind in ("stage_started", "stage_failed"):
                if json_logs:
                    level = logging.WARNING if event.kind == "stage_failed" else logging.INFO
                    log.log(level, event.message, extra={"stage": event.stage, "percent": event.percent})
                else:
                    sys.stderr.write(f"[{event.percent:3d}%] {event.message}\n")

        callbacks.append(log_stage)
        result = await run_videojob(
            job, settings=settings, store_root=output_dir, quality=args.quality, callbacks=callbacks, sandbox=sandbox
        )
    if metrics is not None:
        metrics.finish(result)
        metrics.write(args.metrics_file)
    sys.stdout.write(yaml.safe_dump({"status": result.tracker.as_dict()}, sort_keys=False, allow_unicode=True))
    if result.succeeded:
        return EXIT_OK
    if json_logs:
        log.error("%s failed (%s): %s", job.metadata.name, result.error.reason, result.error.message)
    else:
        _error(f"{job.metadata.name} failed ({result.error.reason}): {result.error.message}")
    return EXIT_INVALID if isinstance(result.error, InvalidContent) else EXIT_FAILED
