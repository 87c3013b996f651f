"""The Dockerfile, linted as text (no Docker engine runs here): what an image review would look at."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

import pytest
import yaml

from tests.deploy.conftest import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"
COMPILERS = ("gcc", "g++", "clang", "build-essential", "libc6-dev", "-dev ", "-dev\n", "pkg-config")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def text(self, keyword: str) -> str:
        return "\n".join(self.all(keyword))


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARGs with defaults, stages) from a Dockerfile; continuation lines joined."""
    logical: list[str] = []
    buffer = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append(buffer + stripped)
        buffer = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            stages.append(Stage(name=(m.group(2) or str(len(stages))), base=m.group(1)))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before FROM: {line}"
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile():
    return parse(DOCKERFILE.read_text())


def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_multi_stage_build_with_pinned_base(dockerfile):
    global_args, stages = dockerfile
    assert len(stages) >= 2
    for stage in stages:
        base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], stage.base)
        if base in {s.name for s in stages}:
            continue
        image, _, tag = base.partition(":")
        assert tag and tag != "latest", base
        # A full version (3.11.11), a slim variant and a Debian release: no floating tags.
        assert re.fullmatch(r"\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", tag), base
    assert "COPY --from=build /opt/venv /opt/venv" in "\n".join(f"COPY {a}" for a in final(stages).all("COPY"))


def test_final_stage_has_no_compiler_or_headers(dockerfile):
    _, stages = dockerfile
    build = stages[0]
    assert "gcc" in build.text("RUN") and "libpango1.0-dev" in build.text("RUN")
    runtime_installs = final(stages).text("RUN") + "\n"
    for tool in COMPILERS:
        assert tool not in runtime_installs, tool


def test_final_stage_has_manims_runtime_libraries_and_fonts(dockerfile):
    _, stages = dockerfile
    installs = final(stages).text("RUN")
    for package in ("libpango-1.0-0", "libpangocairo-1.0-0", "libcairo2", "fonts-dejavu-core"):
        assert re.search(rf"(^|\s){re.escape(package)}(\s|$)", installs), package
    assert "rm -rf /var/lib/apt/lists/*" in installs
    assert "--no-install-recommends" in installs
    # The image proves at build time that Manim imports with these libraries.
    assert "import manim" in installs


def test_tex_is_in_the_default_image_and_slim_leaves_it_out(dockerfile):
    _, stages = dockerfile
    runtime = final(stages)
    assert "SLIM=false" in runtime.all("ARG")
    tex = re.search(r'if \[ "\$SLIM" != "true" \];\s*then\s+(.*?);\s*fi', runtime.text("RUN"))
    assert tex, "TeX installed unless SLIM=true"
    for package in ("texlive-latex-base", "texlive-latex-extra", "dvisvgm"):
        assert package in tex.group(1)
        assert package not in runtime.text("RUN").replace(tex.group(0), "")


def test_the_sandbox_tools_are_in_the_image(dockerfile):
    _, stages = dockerfile
    installs = final(stages).text("RUN")
    for package in ("bubblewrap", "libseccomp2"):
        assert re.search(rf"(^|\s){package}(\s|$)", installs), package
    assert "pyseccomp" in installs  # the filter is built at build time once, proving the binding loads


def test_runs_as_a_numeric_non_root_user_matching_the_chart(dockerfile):
    _, stages = dockerfile
    (user,) = final(stages).all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can verify it"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    keywords = [kw for kw, _ in final(stages).instructions]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw in ("RUN", "COPY"))


def test_entrypoint_runs_the_operator_under_an_init(dockerfile):
    _, stages = dockerfile
    runtime = final(stages)
    (entrypoint,) = runtime.all("ENTRYPOINT")
    (cmd,) = runtime.all("CMD")
    # Exec form; tini reaps render child processes; `docker run IMAGE` starts the operator and
    # the Job executor runs the same image with `videojob worker ...`.
    assert json.loads(entrypoint) == ["tini", "--", "videojob"]
    assert json.loads(cmd) == ["operator"]
    assert "tini" in runtime.text("RUN")


def test_no_secrets_in_env_args_or_copied_files(dockerfile):
    global_args, stages = dockerfile
    names = list(global_args)
    for stage in stages:
        for kw, args in stage.instructions:
            if kw == "ARG":
                names.append(args.partition("=")[0])
            if kw == "ENV":
                names += re.findall(r"(\w+)=", args)
    assert names
    for name in names:
        assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|AWS_", name), name
    assert not re.search(r"(AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9]{20,})", DOCKERFILE.read_text())


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes):
            ignored = not negate
    return ignored


def test_copied_sources_exist_and_are_not_dockerignored(dockerfile):
    _, stages = dockerfile
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for stage in stages:
        for args in stage.all("COPY"):
            if args.startswith("--from"):
                continue
            sources += args.split()[:-1]
    assert "pyproject.toml" in sources and "operator" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: missing from the repository"
        assert not dockerignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    # The build context stays small: tests, docs, caches and VCS data stay out.
    for path in ("tests/deploy/test_dockerfile.py", ".git/HEAD", "out/demo/hello.mp4",
                 "operator/videojob/__pycache__/x.pyc", "operator/videojob_operator.egg-info/PKG-INFO"):
        assert dockerignored(path, patterns), path
    assert not dockerignored("operator/videojob/cli/main.py", patterns)


def test_read_only_root_filesystem_is_planned_for(dockerfile):
    _, stages = dockerfile
    env = final(stages).text("ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env  # /tmp is an emptyDir in the chart
    assert "VIDEOJOB_WORKDIR=/var/lib/videojob" in env
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["operator"]["workdir"] == "/var/lib/videojob"
