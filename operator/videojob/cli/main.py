"""`videojob` command line: argument parsing only; each verb lives in its own module."""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videojob", description="VideoJob: Manim videos from Kubernetes resources.")
    from videojob import __version__

    parser.add_argument("--version", action="version", version=f"videojob {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    run = verbs.add_parser("run", help="run one VideoJob manifest locally")
    run.add_argument("manifest", help="path to a VideoJob YAML manifest")
    run.add_argument("--output-dir", default="out", help="local store and cache (default: ./out)")
    run.add_argument("--quality", choices=["low", "medium", "high", "production"], help="override spec.render.quality")
    run.add_argument("--parallel", type=int, default=None, help="scenes rendered at once (default: VIDEOJOB_SCENE_PARALLELISM or 2)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (also when stderr is not a terminal)")
    run.add_argument("--metrics-file", default=None, help="write Prometheus metrics in textfile-collector format here")
    run.add_argument("--log-format", choices=["text", "json"], default="text")
    run.add_argument("--sandbox", choices=["auto", "bubblewrap", "none"], default=None,
                     help="isolation of scene code (default: VIDEOJOB_SANDBOX or auto); none = trusted code only")

    op = verbs.add_parser("operator", help="run the Kubernetes operator")
    scope = op.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces")
    op.add_argument("--metrics-port", type=int, default=8000)
    op.add_argument("--liveness-port", type=int, default=8080)
    op.add_argument("--log-format", choices=["text", "json"], default="text")
    op.add_argument("--standalone", action=argparse.BooleanOptionalAction, default=True, help="no peering (default)")
    op.add_argument("--info-metric", action="store_true", help="export videojob_info{namespace,name,version}")

    worker = verbs.add_parser("worker", help="run one VideoJob generation inside a Kubernetes Job pod")
    worker.add_argument("--namespace", required=True)
    worker.add_argument("--name", required=True)
    worker.add_argument("--generation", type=int, required=True)
    worker.add_argument("--attempt", type=int, default=1)
    worker.add_argument("--log-format", choices=["text", "json"], default="text")

    render = verbs.add_parser("render-server", help="render scenes the worker drops into a spool (a Job pod's render container)")
    render.add_argument("--spool", required=True, help="directory shared with the worker (an emptyDir)")
    render.add_argument("--poll-interval", type=float, default=0.05, help="seconds between looks at the spool")
    render.add_argument("--log-format", choices=["text", "json"], default="text")

    verbs.add_parser("crd", help="print the CustomResourceDefinition generated from the API models")

    aws = verbs.add_parser("aws", help="AWS resources: init (create for development) or health (check)")
    aws.add_argument("action", choices=["init", "health"])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb == "run":
        from videojob.cli.run import run_command

        return run_command(args)
    if args.verb == "crd":
        from videojob.api.crd import crd_yaml

        sys.stdout.write(crd_yaml())
        return 0
    if args.verb == "operator":
        from videojob.controller.main import operator_command

        return operator_command(args)
    if args.verb == "worker":
        from videojob.controller.worker import worker_command

        return worker_command(args)
    if args.verb == "render-server":
        from videojob.cli.render_server import render_server_command

        return render_server_command(args)
    if args.verb == "aws":
        from videojob.cli.aws import aws_command

        return aws_command(args)
    parser.print_help()
    return 2


def entrypoint() -> None:
    """The `videojob` console script: main(), then exit without interpreter teardown.

    Tearing down the module graphs of LangGraph, LangChain and boto3 takes ~0.15 s, a fifth of
    a short render; by the time main() returns every file is closed and every child reaped.
    """
    code = main()
    if "logging" in sys.modules:  # loaded by every path but a replayed run (cli/replay.py)
        sys.modules["logging"].shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
