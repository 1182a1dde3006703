# The two set-up-and-run commands of the README:
#   make app    creates .venv, installs birdanim, serves the Gradio app on http://127.0.0.1:7860
#   make test   the same install (plus test tools and Debian's Chromium when root), then pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.birdanim-installed

.PHONY: app test install browser bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

app: $(STAMP)
	$(BIN)/python app.py

# Debian's Chromium for the real-browser test (Playwright's own browser download cannot work
# offline). Installed only when missing and when we may (root with apt-get); else that test skips.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_render

clean:
	rm -rf $(VENV) .pytest_cache
