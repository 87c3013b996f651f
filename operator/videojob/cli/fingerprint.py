"""The fingerprint of a `videojob run` invocation: the digest of everything an unchanged run's
result depends on, the key of its replay record (cli/replay.py). Cheap: a few hundred `stat`s."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

FORMAT = 2  # bump when what goes into a fingerprint, or a record's meaning, changes


def shows_progress(args) -> bool:
    """Whether `videojob run` draws a progress bar (on a terminal, unless told not to)."""
    return not args.no_progress and sys.stderr.isatty() and getattr(args, "log_format", "text") != "json"


def fingerprint(args, manifest: bytes, output_dir: Path) -> str:
    """The digest of everything a cached run's result depends on: the manifest's bytes, the
    options, every `VIDEOJOB_*` and `AWS_*` variable (AWS ones are read case-insensitively), the
    output directory, videojob's own files and the installed distributions."""
    digest = hashlib.sha256()

    def feed(*parts: object) -> None:
        for part in parts:
            digest.update(part if isinstance(part, bytes) else repr(part).encode())
            digest.update(b"\0")

    feed(FORMAT, sys.version, sys.prefix, str(output_dir), manifest)
    feed(args.quality, args.parallel, getattr(args, "sandbox", None), getattr(args, "log_format", "text"),
         shows_progress(args))
    feed(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(("VIDEOJOB_", "AWS_"))))
    feed(code_stamp(Path(__file__).resolve().parent.parent), installed_distributions())
    return digest.hexdigest()


def code_stamp(package: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every file of the videojob package: an edited module changes it."""
    stamp = []
    for folder, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            st = os.stat(os.path.join(folder, name))
            stamp.append((os.path.relpath(os.path.join(folder, name), package), st.st_size, st.st_mtime_ns))
    return stamp


def installed_distributions() -> list[str]:
    """The `name-version.dist-info` entries of the site-packages on sys.path: an upgraded Manim,
    PyAV, PyYAML or pydantic changes them. (Not the script's folder or the working directory,
    which differ between `videojob` and `python -m videojob.cli.main`.)"""
    found = []
    for entry in sys.path:
        if os.path.basename(entry) not in ("site-packages", "dist-packages"):
            continue
        try:
            found += [n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
    return sorted(found)
