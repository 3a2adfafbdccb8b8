# `make run` sets everything up and serves on http://127.0.0.1:8000 ; `make test` sets up and runs the tests
# (with the train extra and EGL: tests/test_training.py renders a few feet and trains on them).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup lock run test lint chromium axe bench train samples egl clean

setup: $(VENV)/.installed

# Every package comes from requirements/*.lock (pinned, with hashes), the same runtime lock the
# Dockerfile installs; toeangle itself is then installed without resolving anything.
LOCKS := requirements/build.lock requirements/runtime.lock requirements/dev.lock
$(VENV)/.installed: pyproject.toml $(LOCKS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps $(addprefix -r ,$(LOCKS))
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Re-resolve the locks after a change of pyproject.toml's dependencies (needs uv: pip install uv).
# requirements/overrides.txt drops what mediapipe asks for but pose never loads (jax, ...);
# dev.lock holds only what the tests add to the runtime lock, at the runtime lock's versions.
UV ?= uv
LOCK_FOR := --python-version 3.11 --python-platform linux --generate-hashes --custom-compile-command "make lock"
lock:
	$(UV) pip compile requirements/build.in $(LOCK_FOR) -o requirements/build.lock
	$(UV) pip compile pyproject.toml $(LOCK_FOR) --overrides requirements/overrides.txt -o requirements/runtime.lock
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FOR) --overrides requirements/overrides.txt \
		--constraints requirements/runtime.lock --no-emit-package toeangle \
		$$(sed -n 's/^\([A-Za-z0-9._-]*\)==.*/--no-emit-package \1/p' requirements/runtime.lock) -o requirements/dev.lock

run: setup
	$(BIN)/toeangle serve

test: setup chromium axe egl $(VENV)/.train lint
	$(BIN)/python -m pytest -q

# ruff, configured in pyproject.toml (pyflakes, pycodestyle errors, import order, bugbear, pyupgrade).
lint: setup
	$(BIN)/ruff check .

# Debian's chromium for the browser test (tests/test_service_browser.py); skipped where apt-get is missing.
chromium:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || \
		(apt-get update -q && apt-get install -y -q chromium) || \
		echo "chromium could not be installed (not root?): the browser test will be skipped"

# axe-core (npm, pinned in package-lock.json) for the browser test's accessibility check; skipped without npm.
axe: node_modules/axe-core/axe.min.js

node_modules/axe-core/axe.min.js: package.json package-lock.json
	@! command -v npm >/dev/null || npm ci --no-audit --no-fund --loglevel=error
	@test ! -e $@ || touch $@

# Headless OpenGL for rendering feet (training data, benchmark, samples).
egl:
	@test -e /usr/lib/x86_64-linux-gnu/libEGL.so.1 -o -e /usr/lib/aarch64-linux-gnu/libEGL.so.1 || \
		(apt-get update -q && apt-get install -y -q libegl1 libgl1-mesa-dri)

# An extra's own packages (pyproject.toml), held to the versions the runtime lock pinned: installing
# ".[extra]" would resolve toeangle's dependencies again and bring back what overrides.txt drops.
extra = $(shell $(PYTHON) -c "import tomllib; x = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']; print(' '.join(repr(d) for d in x['$(1)'] if not d.startswith('toeangle')))")
PINS := $(VENV)/pins.txt
$(PINS): requirements/runtime.lock $(VENV)/.installed
	sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements/runtime.lock > $@

$(VENV)/.render: $(VENV)/.installed $(PINS)
	$(BIN)/pip install --quiet -c $(PINS) $(call extra,render)
	touch $@

$(VENV)/.train: $(VENV)/.render
	$(BIN)/pip install --quiet -c $(PINS) $(call extra,train)
	touch $@

# Accuracy of the markerless model on held-out renders (prints the figures quoted in models/MODEL_CARD.md).
bench: egl $(VENV)/.render
	$(BIN)/python bench/accuracy.py

samples: egl $(VENV)/.render
	$(BIN)/python training/make_samples.py

# Train both stages from scratch as training/recipes/ say (render -> train -> export -> card ->
# calibration), about 5 hours on 2 cores, and compare the validation figures with the shipped ones
# (models/MODEL_CARD.md, "Training"). Sets and intermediate weights go to $(DATA), the model to
# $(DATA)/models; a rerun resumes where it stopped.
DATA ?= data
train: egl $(VENV)/.train
	$(BIN)/python training/run_recipe.py --data $(DATA) --models $(DATA)/models

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis node_modules
