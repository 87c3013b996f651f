"""`videojob aws init|health`: create (development) or check the buckets and the table.

Prints JSON to stdout. Exit codes: 0 healthy, 1 otherwise, 2 invalid or missing configuration.
"""

from __future__ import annotations

import asyncio
import json
import sys

from videojob.config import ConfigError

EXIT_OK, EXIT_UNHEALTHY, EXIT_INVALID = 0, 1, 2


def _error(message: str) -> None:
    sys.stderr.write(f"videojob: {message}\n")


def aws_command(args) -> int:
    from videojob.storage.aws_config import load_aws_config

    try:
        config = load_aws_config()
    except ConfigError as exc:
        _error(f"invalid configuration: {exc}")
        return EXIT_INVALID
    if not config.enabled:
        _error("AWS_S3_VIDEO_BUCKET is not set: set it (and AWS_S3_CODE_BUCKET, AWS_DYNAMODB_TABLE) to use AWS")
        return EXIT_INVALID
    return asyncio.run(_run(args.action, config))


async def _run(action: str, config) -> int:
    from videojob.storage.aws_service import AWSIntegrationService
    from videojob.storage.retry import AWSError

    service = AWSIntegrationService(config)
    out: dict = {}
    if action == "init":
        try:
            out["init"] = await service.ensure_resources()
        except AWSError as exc:
            out["init"] = {"error": str(exc)}
    out["health"] = await service.health_check()
    sys.stdout.write(json.dumps(out if action == "init" else out["health"], indent=2) + "\n")
    return EXIT_OK if out["health"]["overall_status"] == "healthy" else EXIT_UNHEALTHY
