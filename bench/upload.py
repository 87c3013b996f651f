"""Upload throughput and memory: our uploader vs boto3 `upload_file` with its defaults.

    python bench/upload.py [--size-mib 256] [--runs 5]

Starts a moto server (its own process, 127.0.0.1), then for each run uploads the same file once
with each uploader, interleaved (ours, boto3, ours, ...), each in a fresh child process so peak
RSS is measured per upload. Prints per-run times, the median throughput ratio ours/boto3
(target >= 0.95) and the median peak RSS of ours above its baseline (target < 150 MB).
Our uploader runs with the default AWS_* settings unless they are set in the environment.
"""

from __future__ import annotations

import sys

# bench/operator.py is named like the stdlib's `operator`; run as a script, this folder would come
# first on sys.path and shadow it. Drop that entry before importing anything else.
sys.path[:] = [p for p in sys.path if p.rstrip("/") != __file__.rsplit("/", 1)[0]]

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1024 * 1024
BUCKET = "bench-uploads"


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def child(which: str, path: str) -> None:
    """One upload; prints {"seconds", "extra_rss_mb"}."""
    import boto3

    if which == "ours":
        from videojob.storage.aws_config import load_aws_config
        from videojob.storage.aws_service import AWSIntegrationService, VideoMetadata

        service = AWSIntegrationService(load_aws_config(video_bucket_name=BUCKET, code_bucket_name=BUCKET))

        def upload() -> None:
            asyncio.run(service.upload_video_with_metadata(Path(path), VideoMetadata("bench", "ours", 1, topic="bench")))
    else:
        client = boto3.client("s3", region_name="us-east-1")

        def upload() -> None:
            client.upload_file(path, BUCKET, "videos/bench/boto3.mp4")

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    baseline = status_kb("VmRSS")
    started = time.perf_counter()
    upload()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "extra_rss_mb": (status_kb("VmHWM") - baseline) / 1024}))


MOTO = """
import logging, sys, time
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
s = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
s.start()
print("http://%s:%d" % s.get_host_and_port(), flush=True)
sys.stdin.read()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    moto = subprocess.Popen([sys.executable, "-c", MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        endpoint = moto.stdout.readline().strip()
        env = {
            **os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true",
        }
        import boto3

        os.environ.update(env)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "video.mp4"
            with open(path, "wb") as f:
                for _ in range(args.size_mib):
                    f.write(os.urandom(MiB))
            results: dict[str, list[dict]] = {"ours": [], "boto3": []}
            for run in range(args.runs):
                order = ("ours", "boto3") if run % 2 == 0 else ("boto3", "ours")
                for which in order:
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", which, str(path)], env=env, capture_output=True, text=True, check=True
                    )
                    results[which].append(json.loads(out.stdout))
                ours, theirs = results["ours"][-1], results["boto3"][-1]
                print(
                    f"run {run + 1}: ours {ours['seconds']:.2f} s ({args.size_mib / ours['seconds']:.0f} MiB/s, "
                    f"+{ours['extra_rss_mb']:.0f} MB RSS)  boto3 {theirs['seconds']:.2f} s "
                    f"({args.size_mib / theirs['seconds']:.0f} MiB/s, +{theirs['extra_rss_mb']:.0f} MB RSS)"
                )
        ratios = [b["seconds"] / o["seconds"] for o, b in zip(results["ours"], results["boto3"])]
        ratio = statistics.median(ratios)
        rss = statistics.median(r["extra_rss_mb"] for r in results["ours"])
        peak = max(r["extra_rss_mb"] for r in results["ours"])
        print(f"median throughput ratio ours/boto3: {ratio:.2f}x (target >= 0.95)  ratios: {', '.join(f'{r:.2f}' for r in ratios)}")
        print(f"peak RSS of ours above baseline: median {rss:.0f} MB, max {peak:.0f} MB (target < 150 MB)")
        return 0 if ratio >= 0.95 and peak < 150 else 1
    finally:
        moto.stdin.close()
        moto.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
