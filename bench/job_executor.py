"""The Job executor at scale, against the emulated API server (KMock), beside the inline executor.

    .venv/bin/python bench/job_executor.py [--jobs 200] [--retry-every 10] [--inline-jobs N] [--distinct]
    .venv/bin/python bench/operator.py --executor job [--jobs 200]        (the same)

Runs `videojob operator -n default` as a child process (so its RSS is its own) against the
emulated API server of the tests (`tests/controller/apiserver.py`, `workloads=True`), and plays
the rest of the cluster itself: nothing runs pods here, so the benchmark acts as the job controller (Job
conditions, an evicted pod) and as each worker (the status writes a worker makes).

Job executor (`VIDEOJOB_EXECUTOR=job`), `--jobs` VideoJobs:
  1. create them all; wait until every one has its Job (attempt 1);
  2. every `--retry-every`-th attempt fails transiently (pod Evicted, Job Failed): the operator
     must create attempt 2 as a new Job;
  3. each worker reports Running and Succeeded, then its Job completes.
Prints Job objects per attempt (target exactly 1) and per VideoJob, the operator's API requests
per VideoJob (by verb and resource), and the operator's RSS (current and peak).

Inline executor (`--inline-jobs`, default `--jobs`, 0 to skip): the same operator runs each
VideoJob itself (2 at a time) with a 1-second `spec.code` scene; the same figures, for comparison.
As in `bench/operator.py`, every VideoJob has the same scene, so after the first render it comes
from the render cache (the operator is measured, not Manim); `--distinct` renders each one.
"""

from __future__ import annotations

import sys

# bench/operator.py is named like the stdlib's `operator`; run as a script, this folder would come
# first on sys.path and shadow it. Drop that entry before importing anything else.
sys.path[:] = [p for p in sys.path if p.rstrip("/") != __file__.rsplit("/", 1)[0]]

import argparse
import collections
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kubernetes  # noqa: E402

from tests.controller.server_thread import ServerThread  # noqa: E402

NAMESPACE = "default"
GROUP, VERSION, PLURAL = "videogen.io", "v1alpha1", "videojobs"
MERGE = "application/merge-patch+json"
BENCH_AGENT = "bench"
SCENE = """from manim import *

class Hello(Scene):
    def construct(self):
        self.play(Create(Circle()), run_time=1)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Cluster:
    """The emulated API server plus the benchmark's own client (User-Agent "bench")."""

    def __init__(self, workdir: Path):
        self.thread = ServerThread(history_limit=3, workloads=True).__enter__()
        self.thread.call(_add_namespace)
        self.kubeconfig = workdir / "kubeconfig"
        self.thread.write_kubeconfig(self.kubeconfig)
        config = kubernetes.client.Configuration()
        config.host = self.thread.url
        config.api_key = {"authorization": "Bearer bench"}
        self.client = kubernetes.client.ApiClient(config)
        self.client.user_agent = f"{BENCH_AGENT}/1"
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self.batch = kubernetes.client.BatchV1Api(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)

    def close(self) -> None:
        self.client.close()
        self.thread.__exit__(None, None, None)

    def operator_requests(self) -> collections.Counter:
        counts = self.thread.call(lambda server: collections.Counter(server.requests_by_agent))
        out: collections.Counter = collections.Counter()
        for (agent, *kind), n in counts.items():
            if agent != BENCH_AGENT:  # Kopf's and the operator's own client
                out[tuple(kind)] += n
        return out

    def videojobs(self) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]

    def job_names(self) -> set[str]:
        return {j.metadata.name for j in self.batch.list_namespaced_job(NAMESPACE).items}


def _add_namespace(server: Any) -> None:
    """The namespace, with the worker ServiceAccount the chart creates (the emulated Job
    controller refuses pods whose ServiceAccount does not exist)."""
    server.objects["v1/namespaces", None, NAMESPACE] = {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "uid": "ns", "resourceVersion": "1"},
    }
    server.objects["v1/serviceaccounts", NAMESPACE, "videojob-worker"] = {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "videojob-worker", "namespace": NAMESPACE, "uid": "sa", "resourceVersion": "1"},
    }


# Job mode: every VideoJob's Job exists at once (the run slots bound live worker Jobs too, and the
# benchmark measures the operator per Job, not the queue); inline: two renders at a time.
JOB_MODE_SLOTS = 256


def start_operator(cluster: Cluster, executor: str, workdir: Path) -> subprocess.Popen:
    port = free_port()
    slots = JOB_MODE_SLOTS if executor == "job" else 2
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), VIDEOJOB_EXECUTOR=executor,
               VIDEOJOB_WORKDIR=str(workdir / "operator"), VIDEOJOB_WORKER_IMAGE="bench/videojob:1",
               VIDEOJOB_MAX_CONCURRENT_JOBS=str(slots), VIDEOJOB_SCENE_PARALLELISM="1")
    log = open(workdir / f"operator-{executor}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "videojob.cli.main", "operator", "-n", NAMESPACE, "--metrics-port", "0",
         "--liveness-port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the operator did not become ready")


def stop_operator(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until(what: str, predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.25)
    took = time.monotonic() - start
    print(f"  {what}: {took:.1f}s", file=sys.stderr, flush=True)
    return took


def quiesce(cluster: Cluster, quiet: float = 2.0, timeout: float = 120) -> None:
    """Wait until the operator has made no request for `quiet` seconds."""
    last, since = sum(cluster.operator_requests().values()), time.monotonic()
    start = time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() - start < timeout:
        time.sleep(0.25)
        now = sum(cluster.operator_requests().values())
        if now != last:
            last, since = now, time.monotonic()


def create_videojobs(cluster: Cluster, count: int, prefix: str, distinct: bool = False) -> list[str]:
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    for name in names:
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob", "metadata": {"name": name},
            # --distinct: a comment per VideoJob, so the render cache cannot serve it.
            "spec": {"topic": f"Bench {name}", "code": SCENE + (f"# {name}\n" if distinct else ""), "render": {"quality": "low"},
                     "retryStrategy": {"limit": 2, "backoff": {"durationSeconds": 0}}},
        })
    return names


def finish_job(cluster: Cluster, name: str, condition: str, reason: str | None = None) -> None:
    status: dict[str, Any] = {"conditions": [{"type": condition, "status": "True", **({"reason": reason} if reason else {})}]}
    status["succeeded" if condition == "Complete" else "failed"] = 1
    cluster.batch.patch_namespaced_job_status(name, NAMESPACE, {"status": status}, _content_type=MERGE)


def evict_pod(cluster: Cluster, job: str) -> None:
    pod = f"{job}-x"
    cluster.core.create_namespaced_pod(NAMESPACE, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "labels": {"batch.kubernetes.io/job-name": job, "job-name": job,
                                             "app.kubernetes.io/managed-by": "videojob-operator",
                                             "videogen.io/videojob": job.rsplit("-g", 1)[0]}},
        "spec": {"containers": [{"name": "worker", "image": "bench/videojob:1"}]},
    })
    cluster.core.patch_namespaced_pod_status(pod, NAMESPACE, {"status": {"phase": "Failed", "reason": "Evicted"}},
                                             _content_type=MERGE)
    finish_job(cluster, job, "Failed", "BackoffLimitExceeded")


def worker_reports(cluster: Cluster, name: str, attempt: int) -> None:
    """What a worker writes at its start and end (a real one also writes per stage, throttled)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for phase, cond in (("Running", "Unknown"), ("Succeeded", "True")):
        cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, NAMESPACE, PLURAL, name, {"status": {
            "phase": phase, "attempt": attempt, "observedGeneration": 1,
            "conditions": [{"type": "Succeeded", "status": cond, "reason": phase, "message": "",
                            "lastTransitionTime": now}]}}, _content_type=MERGE)


def summary(requests: collections.Counter, count: int) -> tuple[float, str]:
    total = sum(requests.values())
    by_kind: collections.Counter = collections.Counter()
    for (method, resource, sub), n in requests.items():
        by_kind[f"{method} {resource}{'/' + sub if sub else ''}"] += n
    detail = ", ".join(f"{k} {v / count:.2f}" for k, v in by_kind.most_common())
    return total / count, detail


def bench_job(workdir: Path, count: int, retry_every: int) -> dict[str, Any]:
    cluster = Cluster(workdir)
    proc = start_operator(cluster, "job", workdir)
    try:
        quiesce(cluster, quiet=1.0)  # start-up (discovery, lists, watches) is not per VideoJob
        base = cluster.operator_requests()
        names = create_videojobs(cluster, count, "vj")
        first = {f"{n}-g1-a1" for n in names}
        seconds = wait_until("every Job of attempt 1", lambda: first <= cluster.job_names(), 300)
        retried = names[::retry_every] if retry_every else []
        for name in retried:
            evict_pod(cluster, f"{name}-g1-a1")
        second = {f"{n}-g1-a2" for n in retried}
        wait_until("the Jobs of attempt 2", lambda: second <= cluster.job_names(), 300)
        for name in names:
            attempt = 2 if name in retried else 1
            worker_reports(cluster, name, attempt)
            finish_job(cluster, f"{name}-g1-a{attempt}", "Complete")
        wait_until("all Succeeded", lambda: all((v.get("status") or {}).get("phase") == "Succeeded" for v in cluster.videojobs()), 300)
        quiesce(cluster)
        rss, peak = proc_kb(proc.pid, "VmRSS") / 1024, proc_kb(proc.pid, "VmHWM") / 1024
        requests = cluster.operator_requests() - base
        jobs = cluster.job_names()
        attempts = count + len(retried)
    except Exception:
        print((workdir / "operator-job.log").read_text()[-6000:], file=sys.stderr)  # why, before the tmpdir goes
        raise
    finally:
        stop_operator(proc)
        cluster.close()
    per_vj, detail = summary(requests, count)
    return {"executor": "job", "videojobs": count, "attempts": attempts, "jobs": len(jobs),
            "jobs_per_attempt": len(jobs) / attempts, "jobs_per_videojob": len(jobs) / count,
            "requests_per_videojob": per_vj, "detail": detail, "rss_mb": rss, "peak_rss_mb": peak,
            "all_jobs_created_s": seconds}


def bench_inline(workdir: Path, count: int, distinct: bool) -> dict[str, Any]:
    cluster = Cluster(workdir)
    proc = start_operator(cluster, "inline", workdir)
    try:
        quiesce(cluster, quiet=1.0)  # start-up (discovery, lists, watches) is not per VideoJob
        base = cluster.operator_requests()
        create_videojobs(cluster, count, "inl", distinct)
        seconds = wait_until("all Succeeded", lambda: all(
            (v.get("status") or {}).get("phase") in ("Succeeded", "Failed") for v in cluster.videojobs()), 1200)
        quiesce(cluster)
        rss, peak = proc_kb(proc.pid, "VmRSS") / 1024, proc_kb(proc.pid, "VmHWM") / 1024
        requests = cluster.operator_requests() - base
        failed = sum((v.get("status") or {}).get("phase") == "Failed" for v in cluster.videojobs())
        jobs = cluster.job_names()
    finally:
        stop_operator(proc)
        cluster.close()
    per_vj, detail = summary(requests, count)
    return {"executor": "inline", "videojobs": count, "attempts": count, "jobs": len(jobs),
            "jobs_per_attempt": 0.0, "jobs_per_videojob": 0.0, "requests_per_videojob": per_vj,
            "detail": detail, "rss_mb": rss, "peak_rss_mb": peak, "all_done_s": seconds, "failed": failed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="VideoJobs for the Job executor (default 200)")
    parser.add_argument("--retry-every", type=int, default=10, help="every N-th attempt 1 fails transiently (0: none)")
    parser.add_argument("--inline-jobs", type=int, default=None, help="VideoJobs for the inline executor (default: --jobs; 0: skip)")
    parser.add_argument("--distinct", action="store_true", help="inline: a different scene per VideoJob (real renders)")
    args = parser.parse_args(argv)
    if args.jobs > JOB_MODE_SLOTS:
        parser.error(f"--jobs: at most {JOB_MODE_SLOTS} (VIDEOJOB_MAX_CONCURRENT_JOBS' maximum; every Job runs at once here)")
    if args.inline_jobs is None:
        args.inline_jobs = args.jobs
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-jobexec-") as tmp:
        job_dir = Path(tmp) / "job"
        job_dir.mkdir()
        results.append(bench_job(job_dir, args.jobs, args.retry_every))
        if args.inline_jobs:
            inline_dir = Path(tmp) / "inline"
            inline_dir.mkdir()
            results.append(bench_inline(inline_dir, args.inline_jobs, args.distinct))

    print(f"{'executor':8} {'VideoJobs':>9} {'attempts':>8} {'Jobs':>5} {'Jobs/attempt':>12} {'Jobs/VJ':>7} "
          f"{'API req/VJ':>10} {'RSS MB':>7} {'peak MB':>7}")
    for r in results:
        print(f"{r['executor']:8} {r['videojobs']:>9} {r['attempts']:>8} {r['jobs']:>5} {r['jobs_per_attempt']:>12.2f} "
              f"{r['jobs_per_videojob']:>7.2f} {r['requests_per_videojob']:>10.2f} {r['rss_mb']:>7.0f} {r['peak_rss_mb']:>7.0f}")
    for r in results:
        print(f"\n{r['executor']}: operator API requests per VideoJob: {r['detail']}")
        if "all_jobs_created_s" in r:
            print(f"job: all {r['videojobs']} Jobs of attempt 1 existed {r['all_jobs_created_s']:.1f}s after the creations ended")
        if "all_done_s" in r:
            print(f"inline: all {r['videojobs']} finished in {r['all_done_s']:.1f}s ({r['failed']} failed)")
    job = results[0]
    ok = job["jobs_per_attempt"] == 1.0
    print(f"\nJob objects per attempt: {job['jobs_per_attempt']:.2f} (target exactly 1): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
