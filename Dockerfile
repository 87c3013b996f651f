# syntax=docker/dockerfile:1
# The VideoJob operator image: `videojob operator` by default; the Job executor runs the same image
# as `videojob worker ...`. Nothing is downloaded at run time (fonts, Manim, codecs are all inside).
#
#   docker build -t videojob-operator:0.1.0 .                                 # with LaTeX (MathTex/Tex)
#   docker build --build-arg SLIM=true -t videojob-operator:0.1.0-slim .      # without it (-~380 MB)
#
# Pin the base further by digest: --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --------------------------------------------------------------------------------------------- build
# pycairo and manimpango have no Linux wheels: they compile against the pango/cairo headers here.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config libpango1.0-dev libcairo2-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# LLM providers baked in; Bedrock works with IRSA and no API key.
ARG EXTRAS=bedrock,openai,anthropic
RUN pip install --upgrade pip \
 && pip install ".[${EXTRAS}]" \
 && pip uninstall -y pip

# ------------------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ARG SLIM=false
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="videojob-operator" \
      org.opencontainers.image.description="Kubernetes operator rendering VideoJob resources into Manim videos" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Manim's run-time libraries and fonts only (no compiler, no headers); tini reaps render children;
# bubblewrap and libseccomp2 make the sandbox scene code renders in (docs/security.md). LaTeX
# (MathTex, Tex, axis numbers) is mounted read-only into that sandbox; SLIM=true leaves it out.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangocairo-1.0-0 libcairo2 fonts-dejavu-core fontconfig tini bubblewrap libseccomp2 \
 && if [ "$SLIM" != "true" ]; then \
      apt-get install -y --no-install-recommends texlive-latex-base texlive-latex-extra dvisvgm; \
    fi \
 && rm -rf /var/lib/apt/lists/* \
 && fc-cache -f \
 && groupadd --gid 10001 videojob \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/videojob --no-create-home \
      --shell /usr/sbin/nologin videojob \
 && install -d -o 10001 -g 10001 /var/lib/videojob
COPY --from=build /opt/venv /opt/venv
# HOME and caches point at /tmp: the chart mounts the root filesystem read-only with emptyDirs at
# /tmp and VIDEOJOB_WORKDIR.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    VIDEOJOB_WORKDIR=/var/lib/videojob
# Fail the build, not the first render, when a library is missing.
RUN videojob --version && python -c "import manim, cairo, manimpango, av, pyseccomp; pyseccomp.system_arch()"
WORKDIR /var/lib/videojob
USER 10001:10001
EXPOSE 8000 8080
ENTRYPOINT ["tini", "--", "videojob"]
CMD ["operator"]
