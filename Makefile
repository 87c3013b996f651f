# Two commands on a fresh Debian/Ubuntu machine (as root, or with sudo):
#   make demo   install what is needed, then render examples/hello.yaml to an MP4
#   make test   install what is needed (plus test tools), then run the whole test suite
# Everything lands in ./.venv; system packages come from apt, and only when missing.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Manim builds pycairo/manimpango from source: pango/cairo headers, a compiler, pkg-config.
# Scene code renders in a bubblewrap sandbox with a libseccomp filter; LaTeX (MathTex, Tex, axis
# numbers) is mounted read-only into it.
DEMO_PACKAGES := libpango1.0-dev pkg-config build-essential python3-dev python3-venv fonts-dejavu-core \
                 bubblewrap libseccomp2 texlive-latex-base texlive-latex-extra dvisvgm
# Tests also use promtool + prometheus (metrics), lua5.4 (Argo CD health script) and tesseract-ocr
# (reading what a rendered video shows).
TEST_PACKAGES := $(DEMO_PACKAGES) prometheus lua5.4 tesseract-ocr

.PHONY: demo test system-deps system-test-deps venv clean

demo: system-deps venv
	$(VENV)/bin/videojob run examples/hello.yaml --output-dir out --quality low
	@echo "Video: $$(ls -1 out/demo/hello/v*/hello.mp4 | tail -n 1)"

test: system-test-deps venv
	$(PY) -m pytest -q

system-deps:
	@PACKAGES="$(DEMO_PACKAGES)" sh scripts/apt-install.sh

system-test-deps:
	@PACKAGES="$(TEST_PACKAGES)" sh scripts/apt-install.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "videojob needs Python >= 3.11 (found: $$($(PYTHON) --version 2>&1)); set PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) out
