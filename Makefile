# Two commands do everything on a fresh Debian/Ubuntu machine:
#   make demo   build the demo corpus, train, evaluate, compare (see README)
#   make test   install what the tests need, then run them
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: espeak-ng speaks test and demo sentences; chromium (headless) loads the
# serve page in its browser test; the rest is pip-installed.
APT_PACKAGES := espeak-ng chromium

.PHONY: test lint system-deps install demo bench clean

$(BIN)/deepfake-audio: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/deepfake-audio

# The demo corpus downloads (apt-get download, no install) DEMO_PACKAGES: apt's lists must know them.
DEMO_PACKAGES := fillets-ng-data-nl fillets-ng-data

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	unknown=""; for p in $(DEMO_PACKAGES); do apt-cache show $$p >/dev/null 2>&1 || unknown="$$unknown $$p"; done; \
	if [ -n "$$missing$$unknown" ]; then $(SUDO) apt-get update -qq; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

# The whole pipeline on the demo corpus (see README); a rerun reuses what is built.
demo: install system-deps
	$(BIN)/deepfake-audio demo --output-dir demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_decode.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
