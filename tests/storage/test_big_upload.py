"""A 200 MB video: multipart with the configured part size, memory bounded by parts in flight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import cli_env

MiB = 1024 * 1024
SIZE = 200 * 1000 * 1000


def test_200mb_video_uploads_in_parts_with_bounded_memory(aws_env, tmp_path, s3_client):
    video = tmp_path / "big.mp4"
    with open(video, "wb") as f:
        block = bytes(range(256)) * 4096  # 1 MiB, not all zeros
        for _ in range(SIZE // len(block)):
            f.write(block)
        f.write(block[: SIZE % len(block)])
    env = cli_env({**aws_env, "AWS_CHUNK_SIZE": "16MiB", "AWS_MAX_CONCURRENT_UPLOADS": "4"})
    child = Path(__file__).with_name("upload_child.py")
    proc = subprocess.run([sys.executable, str(child), str(video)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    head = s3_client.head_object(Bucket=report["bucket"], Key=report["key"])
    assert head["ContentLength"] == SIZE
    assert head["ETag"].strip('"').endswith(f"-{-(-SIZE // (16 * MiB))}")  # 12 parts of 16 MiB
    # The file is never read whole: memory grows by about the parts in flight, not by 200 MB.
    assert report["extra_rss_mb"] < 150, report["extra_rss_mb"]
    assert report["percents"][-1] == 100.0 and max(report["percents"]) == 100.0
