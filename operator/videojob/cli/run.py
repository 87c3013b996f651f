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
    # Start the render zygote first thing, before importing pydantic, LangGraph and friends: it
    # imports Manim (most of a second) while we validate and plan. If the manifest turns out
    # invalid, it is simply stopped. (This module imports nothing heavy at the top for that reason.)
    from videojob.pipeline.sandbox import Sandbox

    sandbox = Sandbox(output_dir / ".work")
    try:
        sandbox.prewarm(1)
        return _validated_run(args, output_dir, sandbox)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    finally:
        sandbox.close()


def _validated_run(args, output_dir: Path, sandbox) -> int:
    from videojob.api.manifest import InvalidVideoJob, load_manifest
    from videojob.config import ConfigError, load_settings

    try:
        job = load_manifest(args.manifest)
    except InvalidVideoJob as exc:
        _error(f"invalid VideoJob {args.manifest}:")
        for line in exc.problems:
            sys.stderr.write(f"  {line}\n")
        return EXIT_INVALID
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
    from videojob.pipeline.sandbox import SandboxLimits

    sandbox.limits = SandboxLimits(memory_mb=settings.render_memory_mb, max_output_mb=settings.render_max_output_mb)
    from videojob.logs import configure_logging, job_context

    json_logs = getattr(args, "log_format", "text") == "json"
    configure_logging("json" if json_logs else "text", logging.INFO if json_logs else logging.WARNING)
    with job_context(job.metadata.namespace or "local", job.metadata.name, job.metadata.generation):
        _start_early_renders(job, settings, output_dir, args.quality, sandbox)
        return asyncio.run(_run(job, settings, output_dir, args, sandbox))


def _start_early_renders(job, settings, output_dir: Path, quality: str | None, sandbox) -> None:
    """A code or storyboard source needs no planning to know its scenes' code: start rendering the
    first ones now, while the pipeline (LangGraph) is still being imported. The render step then
    takes these results instead of rendering the same scenes again."""
    spec = job.spec
    if spec.editing is not None or spec.source not in ("code", "storyboard"):
        return
    from videojob.pipeline.codecheck import scene_classes
    from videojob.pipeline.render_cache import RenderCache, cache_key
    from videojob.pipeline.sandbox import SandboxLimits
    from videojob.pipeline.storyboard import generate_scene_code, scene_class_name

    quality = quality or spec.render.quality
    if spec.source == "code":
        try:
            scenes = [(spec.code, name) for name in scene_classes(spec.code)]
        except SyntaxError:
            return  # planning reports it, naming the line
    else:
        scenes = [(generate_scene_code(s, i), scene_class_name(i)) for i, s in enumerate(spec.storyboard.scenes)]
    cache = RenderCache(output_dir / ".cache" / "renders")  # the pipeline's default cache location
    limits = SandboxLimits(
        timeout_seconds=spec.render.scene_timeout_seconds,
        memory_mb=settings.render_memory_mb,
        max_output_mb=settings.render_max_output_mb,
    )
    for code, name in scenes[: settings.scene_parallelism]:
        if cache.get(cache_key(code, name, quality)) is None:
            sandbox.start_early(code, name, quality, limits)


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
