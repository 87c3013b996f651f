"""Benchmark the operator against the emulated API server, beside a minimal Kopf operator.

    python bench/operator.py [--jobs 200] [--live 1000] [--concurrency 2] [--distinct]
    python bench/operator.py --tenants [--big 200] [--small 5]   # fair share between two namespaces

For each operator (the real `videojob operator` with the inline executor, the same in Job mode
(`VIDEOJOB_EXECUTOR=job`: a controller only), and a 5-line Kopf operator that only sets
`status.phase` on create: the framework's floor) it starts a fresh KMock-based API server
(`tests/controller/apiserver.py`), runs the operator as a subprocess, creates `--jobs`
VideoJobs with a 1-second `spec.code` scene and prints:

- time from the first create to all Succeeded;
- median and p90 create -> Running latency (create -> phase set, for the floor), for jobs that
  found a free slot, and for all jobs;
- PATCH requests per job (to /status, and in total, which includes Kopf's finalizer/annotations);
- operator RSS with `--jobs` and with `--live` live VideoJobs (the extra ones are created with
  `suspend: true`, so they are live objects the operator tracks but do not render), and that
  RSS as a multiple of the minimal operator's. Job mode gets only the suspended ones (which get
  no Job until resumed): nobody here plays its workers (`bench/job_executor.py` does).

By default every job has the same code, so after the first one the scene comes from the render
cache: that measures the operator, not Manim. `--distinct` gives each job its own code (real
renders, ~1 s of CPU each).
"""

from __future__ import annotations

import sys

# This file is named like the stdlib's `operator`; run as a script, its folder would come first on
# sys.path and shadow it (argparse imports `operator`). Drop that entry before importing anything.
sys.path[:] = [p for p in sys.path if p.rstrip("/") != __file__.rsplit("/", 1)[0]]

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

import kmock  # noqa: E402
import kubernetes  # noqa: E402

from tests.controller.server_thread import ServerThread  # noqa: E402

GROUP, VERSION, PLURAL = "videogen.io", "v1alpha1", "videojobs"
NAMESPACE = "bench"
CODE = """from manim import *

class Bench(Scene):
    def construct(self):
        self.play(Create(Circle()), run_time={seconds})
"""

MINIMAL_OPERATOR = '''
import kopf

@kopf.on.create("videogen.io", "v1alpha1", "videojobs")
def create(patch, **_):
    patch.status["phase"] = "Succeeded"
'''
WORKER_ACCOUNT = "videojob-worker"  # the chart creates it where VideoJobs run (Job mode's pods use it)


def stop_operator(proc: subprocess.Popen, client, log) -> None:
    """End the operator process this benchmark started (by its PID), then close what it used."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    client.close()
    log.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PhaseWatch:
    """First time each VideoJob was seen in each phase: a subscriber on the API server's own
    event bus (in its loop), so the benchmark adds no HTTP load of its own."""

    def __init__(self, server: ServerThread):
        self.seen: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()
        resource = kmock.resource(GROUP, VERSION, PLURAL)

        async def listen() -> None:
            async for event in server.server._buses[resource]:
                obj = event.get("object") or {}
                phase = (obj.get("status") or {}).get("phase")
                if phase:
                    with self.lock:
                        self.seen.setdefault((obj["metadata"]["name"], phase), time.monotonic())

        self.future = asyncio.run_coroutine_threadsafe(listen(), server.loop)
        time.sleep(0.2)

    def first(self, name: str, *phases: str) -> float | None:
        with self.lock:
            times = [self.seen[(name, p)] for p in phases if (name, p) in self.seen]
        return min(times) if times else None

    def count(self, phase: str) -> int:
        with self.lock:
            return sum(1 for (_, p) in self.seen if p == phase)

    def stop(self) -> None:
        self.future.cancel()


def patches(server: ServerThread) -> tuple[dict[str, int], dict[str, int]]:
    def _count(handler: Any) -> tuple[dict[str, int], dict[str, int]]:
        status: dict[str, int] = {}
        total: dict[str, int] = {}
        for r in handler._requests:
            if str(getattr(r.method, "value", r.method)).upper() == "PATCH" and r.resource is not None and r.resource.plural == PLURAL:
                total[r.name] = total.get(r.name, 0) + 1
                if r.subresource == "status":
                    status[r.name] = status.get(r.name, 0) + 1
        return status, total

    return server.call(_count)


def requests_per_job(server: ServerThread, names: set[str]) -> dict[str, float]:
    """API requests the operator made for each of `names` (mean per job): on the VideoJob (by verb,
    /status apart), Events about it, and the namespace-wide reads (Namespaces, Secrets) in all."""

    def _count(handler: Any) -> dict[str, float]:
        tally: dict[str, float] = {}
        for r in handler._requests:
            plural = r.resource.plural if r.resource is not None else None
            verb = str(getattr(r.method, "value", r.method)).upper()
            if plural == PLURAL and r.name in names:
                key = f"{verb} {PLURAL}{'/' + r.subresource if r.subresource else ''}"
            elif plural == "events" and verb == "POST" and ((r.data or {}).get("involvedObject") or {}).get("name") in names:
                key = "POST events"
            elif plural in ("namespaces", "secrets") or (plural is None and r.namespace and verb == "GET"):
                key = f"{verb} {plural or 'namespaces'} (all jobs)"
            else:
                continue
            tally[key] = tally.get(key, 0) + 1
        return {k: v if "(all jobs)" in k else v / len(names) for k, v in sorted(tally.items())}

    return server.call(_count)


def run_one(label: str, command: list[str], env: dict[str, str], args: argparse.Namespace, running_phases: tuple[str, ...],
            *, jobs: int | None = None, workloads: bool = False) -> dict[str, Any]:
    """`jobs` (default --jobs) VideoJobs run to the end, then the rest of --live created suspended.
    `workloads`: the API server also serves Jobs and pods (the Job executor's operator)."""
    jobs = args.jobs if jobs is None else jobs
    with tempfile.TemporaryDirectory() as tmp, ServerThread(history_limit=2, workloads=workloads) as server:
        server.call(lambda h: h.objects.__setitem__(("v1/namespaces", None, NAMESPACE),
                                                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
        server.call(lambda h: h.objects.__setitem__(("v1/serviceaccounts", NAMESPACE, WORKER_ACCOUNT), {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": WORKER_ACCOUNT, "namespace": NAMESPACE}}))
        kubeconfig = Path(tmp) / "kubeconfig"
        server.write_kubeconfig(kubeconfig)
        config = kubernetes.client.Configuration()
        config.host = server.url
        client = kubernetes.client.ApiClient(config)
        custom = kubernetes.client.CustomObjectsApi(client)
        log = open(Path(tmp) / "operator.log", "w")
        proc = subprocess.Popen(command, env={**os.environ, **env, "KUBECONFIG": str(kubeconfig), "VIDEOJOB_WORKDIR": str(Path(tmp) / "work")},
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        watch = PhaseWatch(server)
        try:
            time.sleep(3)  # let the operator start and list
            if proc.poll() is not None:
                raise SystemExit(f"{label}: operator exited: {(Path(tmp) / 'operator.log').read_text()[-2000:]}")
            rss_start = rss_mb(proc.pid)
            names = [f"job-{i:04d}" for i in range(jobs)]
            created: dict[str, float] = {}
            start = time.monotonic()
            for i, name in enumerate(names):
                seconds = 1 + (i / 10000 if args.distinct else 0)
                body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob", "metadata": {"name": name},
                        "spec": {"topic": name, "code": CODE.format(seconds=seconds), "render": {"quality": "low"}}}
                created[name] = time.monotonic()
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
            deadline = time.monotonic() + args.timeout
            while watch.count("Succeeded") + watch.count("Failed") < len(names) and time.monotonic() < deadline:
                time.sleep(0.2)
            done = watch.count("Succeeded")
            total_time = max((watch.first(n, "Succeeded") or float("nan")) for n in names) - start if names else float("nan")
            latencies = [watch.first(n, *running_phases) - created[n] for n in names if watch.first(n, *running_phases)]
            free_slot = [watch.first(n, *running_phases) - created[n] for n in names
                         if watch.first(n, *running_phases) and watch.first(n, "Pending") is None]
            time.sleep(1.5 if names else 0)
            status_patches, all_patches = patches(server)
            rss_jobs = rss_mb(proc.pid) if names else float("nan")

            extra = [f"idle-{i:04d}" for i in range(max(0, args.live - jobs))]
            for name in extra:
                body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob", "metadata": {"name": name},
                        "spec": {"topic": name, "code": CODE.format(seconds=1), "suspend": True}}
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
            deadline = time.monotonic() + args.timeout
            while sum(1 for n in extra if watch.first(n, "Suspended", "Succeeded")) < len(extra) and time.monotonic() < deadline:
                time.sleep(0.5)
            settled = sum(1 for n in extra if watch.first(n, "Suspended", "Succeeded"))
            if settled < len(extra):  # the RSS below is then not at --live settled VideoJobs: say so
                print(f"{label}: only {settled}/{len(extra)} suspended VideoJobs settled within --timeout", file=sys.stderr)
            time.sleep(2)
            rss_live = rss_mb(proc.pid)
        finally:
            watch.stop()
            if os.environ.get("BENCH_DEBUG"):
                print((Path(tmp) / "operator.log").read_text()[-3000:], file=sys.stderr)
            stop_operator(proc, client, log)
    print(f"{label}: RSS {rss_start:.0f} MB after start-up, {rss_live:.0f} MB at {args.live} live VideoJobs",
          file=sys.stderr, flush=True)
    per_job_status = [status_patches.get(n, 0) for n in names] or [float("nan")]
    per_job_all = [all_patches.get(n, 0) for n in names] or [float("nan")]
    return {
        "label": label,
        "succeeded": f"{done}/{len(names)}" if names else "-",
        "all_succeeded_s": total_time,
        "median_latency_s": statistics.median(latencies) if latencies else float("nan"),
        "p90_latency_s": statistics.quantiles(latencies, n=10)[-1] if len(latencies) > 1 else float("nan"),
        "median_latency_free_slot_s": statistics.median(free_slot) if free_slot else float("nan"),
        "status_patches_per_job": statistics.mean(per_job_status),
        "max_status_patches": max(per_job_status),
        "all_patches_per_job": statistics.mean(per_job_all),
        "rss_start_mb": rss_start,
        "rss_jobs_mb": rss_jobs,
        "rss_live_mb": rss_live,
    }


def run_tenants(args: argparse.Namespace) -> None:
    """Two namespaces share the operator: `big` creates --big VideoJobs, then `small` creates
    --small. Prints the small namespace's median wait (create -> Running) beside the same jobs on
    an empty cluster, in units of a slot's time under that load (a run plus the hand-over to the next)."""

    def scenario(jobs: list[tuple[str, str]], watch_ns: str) -> dict[str, list[float]]:
        with tempfile.TemporaryDirectory() as tmp, ServerThread(history_limit=2) as server:
            for ns in {ns for ns, _ in jobs}:
                server.call(lambda h, ns=ns: h.objects.__setitem__(
                    ("v1/namespaces", None, ns), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            kubeconfig = Path(tmp) / "kubeconfig"
            server.write_kubeconfig(kubeconfig)
            config = kubernetes.client.Configuration()
            config.host = server.url
            client = kubernetes.client.ApiClient(config)
            custom = kubernetes.client.CustomObjectsApi(client)
            env = {**os.environ, "KUBECONFIG": str(kubeconfig), "VIDEOJOB_WORKDIR": str(Path(tmp) / "work"),
                   "VIDEOJOB_MAX_CONCURRENT_JOBS": str(args.concurrency), "PYTHONPATH": str(ROOT / "operator")}
            log = open(Path(tmp) / "operator.log", "w")
            proc = subprocess.Popen([sys.executable, "-m", "videojob.cli.main", "operator", "-A", "--metrics-port", "0",
                                     "--liveness-port", "0"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
            watch = PhaseWatch(server)
            try:
                # Measure from a warm operator: one job in a namespace of its own, run to the end
                # (Kopf watching, the render zygote up, the scene in the render cache).
                server.call(lambda h: h.objects.__setitem__(
                    ("v1/namespaces", None, "warmup"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "warmup"}}))
                custom.create_namespaced_custom_object(GROUP, VERSION, "warmup", PLURAL, {
                    "apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob", "metadata": {"name": "warmup"},
                    "spec": {"topic": "warmup", "code": CODE.format(seconds=1), "render": {"quality": "low"}}})
                deadline = time.monotonic() + args.timeout
                while not watch.first("warmup", "Succeeded", "Failed") and time.monotonic() < deadline:
                    time.sleep(0.2)
                created: dict[str, float] = {}
                for i, (ns, name) in enumerate(jobs):
                    seconds = 1 + (i / 10000 if args.distinct else 0)
                    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob", "metadata": {"name": name},
                            "spec": {"topic": name, "code": CODE.format(seconds=seconds), "render": {"quality": "low"}}}
                    created[name] = time.monotonic()
                    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
                mine = [name for ns, name in jobs if ns == watch_ns]
                deadline = time.monotonic() + args.timeout
                while not all(watch.first(n, "Succeeded", "Failed") for n in mine) and time.monotonic() < deadline:
                    time.sleep(0.2)
                waits = [watch.first(n, "Running", "Succeeded") - created[n] for n in mine if watch.first(n, "Running", "Succeeded")]
                slots = [watch.first(n, "Succeeded") - watch.first(n, "Running") for _, n in jobs
                         if watch.first(n, "Running") and watch.first(n, "Succeeded")]
                seen = [watch.first(n, "Pending", "Running", "Succeeded") - created[n] for n in mine
                        if watch.first(n, "Pending", "Running", "Succeeded")]
                # A slot's time under this load: from a run's grant (Running) to the next grant
                # after its end (Succeeded), i.e. the run plus the hand-over to the next one
                # (median over the runs of both namespaces). Not the gaps between grants: runs of
                # equal length started together end together, so grants come in bursts and the
                # median gap between them says nothing about how long a slot is held.
                grants = sorted(t for _, n in jobs if (t := watch.first(n, "Running", "Succeeded")))
                cycles = [next_grant - ran for _, n in jobs
                          if (ran := watch.first(n, "Running")) and (ended := watch.first(n, "Succeeded"))
                          and (next_grant := next((g for g in grants if g >= ended), None)) is not None]
                turnover = statistics.median(cycles) if cycles else float("nan")
                return {"waits": waits, "slot": slots, "seen": seen, "turnover": [turnover],
                        "done": [sum(1 for n in mine if watch.first(n, "Succeeded"))],
                        "requests": requests_per_job(server, set(mine))}
            finally:
                watch.stop()
                stop_operator(proc, client, log)

    small = [("small", f"small-{i:04d}") for i in range(args.small)]
    big = [("big", f"big-{i:04d}") for i in range(args.big)]
    empty = scenario(small, "small")
    shared = scenario(big + small, "small")
    run_time = statistics.median(empty["slot"] + shared["slot"])
    slot = shared["turnover"][0]
    empty_wait, shared_wait = statistics.median(empty["waits"]), statistics.median(shared["waits"])
    empty_seen, shared_seen = statistics.median(empty["seen"]), statistics.median(shared["seen"])
    print(f"\ntwo namespaces, concurrency {args.concurrency}: 'big' creates {args.big} VideoJobs, then 'small' creates {args.small}\n")
    rows = [
        ("small: succeeded (empty cluster / shared)", f"{empty['done'][0]}/{args.small} / {shared['done'][0]}/{args.small}"),
        ("run time: median Running->Succeeded (s)", f"{run_time:.2f}"),
        ("slot time under load: median Running->next grant (s)", f"{slot:.2f}"),
        ("small: median create->Running, empty (s)", f"{empty_wait:.2f}"),
        ("small: median create->Running, shared (s)", f"{shared_wait:.2f}"),
        ("small: median create->first status, empty (s)", f"{empty_seen:.2f}"),
        ("small: median create->first status, shared (s)", f"{shared_seen:.2f}"),
        ("small: extra queue wait (first status->Running) in slots", f"{((shared_wait - shared_seen) - (empty_wait - empty_seen)) / slot:.2f}"),
        ("small: extra wait create->Running in slots", f"{(shared_wait - empty_wait) / slot:.2f}"),
        ("small: max create->Running, shared (s)", f"{max(shared['waits']):.2f}"),
    ]
    for title, value in rows:
        print(f"{title:60}{value:>14}")
    print("\nAPI requests per small job, empty cluster / shared (mean; namespace-wide reads in all):")
    for key in sorted(set(empty["requests"]) | set(shared["requests"])):
        print(f"  {key:58}{empty['requests'].get(key, 0):>7.1f} /{shared['requests'].get(key, 0):>6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--live", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--distinct", action="store_true", help="a different scene per job (no render-cache hits)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--only", nargs="+", choices=["videojob", "job", "minimal"], default=["videojob", "job", "minimal"],
                        help="run these operators only (videojob: the inline executor; job: VIDEOJOB_EXECUTOR=job)")
    parser.add_argument("--executor", choices=["inline", "job"], default="inline",
                        help="job: the Job executor (bench/job_executor.py: Jobs per attempt, API requests, RSS, beside inline)")
    parser.add_argument("--tenants", action="store_true",
                        help="two namespaces: --big VideoJobs in one, then --small in another (fair share)")
    parser.add_argument("--big", type=int, default=200)
    parser.add_argument("--small", type=int, default=5)
    args = parser.parse_args()
    if args.tenants:
        return run_tenants(args)
    if args.executor == "job":
        sys.path.insert(0, str(ROOT / "bench"))
        import job_executor

        raise SystemExit(job_executor.main(["--jobs", str(args.jobs)] + (["--distinct"] if args.distinct else [])))

    results = []
    if "videojob" in args.only:
        results.append(run_one(
            "videojob operator",
            [sys.executable, "-m", "videojob.cli.main", "operator", "-A", "--metrics-port", "0", "--liveness-port", "0"],
            {"VIDEOJOB_MAX_CONCURRENT_JOBS": str(args.concurrency), "PYTHONPATH": str(ROOT / "operator")},
            args, ("Running", "Succeeded", "Failed"),
        ))
    if "job" in args.only:
        # Job mode: nobody here plays the worker, so no VideoJob runs to the end (bench/job_executor.py
        # does that); the operator keeps --live suspended VideoJobs (no Job until resumed).
        results.append(run_one(
            "videojob operator (Job mode)",
            [sys.executable, "-m", "videojob.cli.main", "operator", "-A", "--metrics-port", "0", "--liveness-port", "0"],
            {"VIDEOJOB_EXECUTOR": "job", "VIDEOJOB_WORKER_IMAGE": "bench/videojob:1", "PYTHONPATH": str(ROOT / "operator")},
            args, ("Running", "Succeeded", "Failed"), jobs=0, workloads=True,
        ))
    if "minimal" in args.only:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(MINIMAL_OPERATOR)
        results.append(run_one(
            "minimal kopf (phase only)",
            [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces", f.name],
            {}, args, ("Succeeded",),
        ))

    rows = [
        ("jobs succeeded", "succeeded", "{}"),
        ("time to all Succeeded (s)", "all_succeeded_s", "{:.1f}"),
        ("create->Running median (s), all jobs", "median_latency_s", "{:.2f}"),
        ("create->Running p90 (s), all jobs", "p90_latency_s", "{:.2f}"),
        ("create->Running median (s), free slot", "median_latency_free_slot_s", "{:.2f}"),
        ("status PATCHes per job (mean)", "status_patches_per_job", "{:.1f}"),
        ("status PATCHes per job (max)", "max_status_patches", "{}"),
        ("all PATCHes per job (mean)", "all_patches_per_job", "{:.1f}"),
        ("RSS after start-up (MB)", "rss_start_mb", "{:.0f}"),
        (f"RSS at {args.jobs} live VideoJobs (MB)", "rss_jobs_mb", "{:.0f}"),
        (f"RSS at {args.live} live VideoJobs (MB)", "rss_live_mb", "{:.0f}"),
    ]
    minimal = next((r for r in results if r["label"].startswith("minimal")), None)
    if minimal is not None:
        for r in results:
            r["rss_ratio"] = r["rss_live_mb"] / minimal["rss_live_mb"]
        rows.append((f"RSS at {args.live} live / minimal kopf", "rss_ratio", "{:.2f}x"))
    print(f"\n{args.jobs} VideoJobs, 1-second scene, concurrency {args.concurrency}, "
          f"{'distinct scenes' if args.distinct else 'same scene (render cache)'}; "
          f"Job mode: {args.live} suspended VideoJobs only\n")
    width = max(30, *(len(r["label"]) + 2 for r in results))
    print(f"{'':42}" + "".join(f"{r['label']:>{width}}" for r in results))
    for title, key, fmt in rows:
        print(f"{title:42}" + "".join(f"{fmt.format(r[key]):>{width}}" for r in results))


if __name__ == "__main__":
    main()
