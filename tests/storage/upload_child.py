"""Run in a child process by test_big_upload.py: upload one file the way a run does and report
peak memory (ru_maxrss) above the baseline taken just before the upload."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from videojob.storage.aws_config import load_aws_config
from videojob.storage.aws_service import AWSIntegrationService, VideoMetadata


async def main(path: Path) -> dict:
    service = AWSIntegrationService(load_aws_config())
    await service.ensure_resources()
    percents: list[float] = []
    baseline = reset_peak_rss()
    result = await service.upload_video_with_metadata(
        path, VideoMetadata("demo", "big", 1, topic="big"), lambda vid, done, total, pct: percents.append(pct)
    )
    peak = status_kb("VmHWM")
    return {
        "bucket": result.bucket, "key": result.key, "baseline_rss_mb": baseline / 1024,
        "extra_rss_mb": (peak - baseline) / 1024, "percents": percents,
    }


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS and return that, in KiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_kb("VmRSS")


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
