# `make run` sets everything up and serves on http://127.0.0.1:8000 ; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test chromium bench train samples egl clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

run: setup
	$(BIN)/toeangle serve

test: setup chromium
	$(BIN)/python -m pytest -q

# Debian's chromium for the browser test (tests/test_service_browser.py); skipped where apt-get is missing.
chromium:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || \
		(apt-get update -q && apt-get install -y -q chromium) || \
		echo "chromium could not be installed (not root?): the browser test will be skipped"

# Headless OpenGL for rendering feet (training data, benchmark, samples).
egl:
	@test -e /usr/lib/x86_64-linux-gnu/libEGL.so.1 -o -e /usr/lib/aarch64-linux-gnu/libEGL.so.1 || \
		(apt-get update -q && apt-get install -y -q libegl1 libgl1-mesa-dri)

$(VENV)/.render: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[render]"
	touch $@

$(VENV)/.train: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[train]"
	touch $@

# Accuracy of the markerless model on held-out renders (prints the figures quoted in models/MODEL_CARD.md).
bench: egl $(VENV)/.render
	$(BIN)/python bench/accuracy.py

samples: egl $(VENV)/.render
	$(BIN)/python training/make_samples.py

# Render the data and train both stages (about an hour on 2 cores); see models/MODEL_CARD.md.
DATA ?= data
train: egl $(VENV)/.train
	$(BIN)/python training/dataset.py --seeds 900000:900600 --out $(DATA)/val.npz
	for r in 0:8000 8000:16000 16000:24000; do \
		$(BIN)/python training/dataset.py --seeds $$r --out $(DATA)/train_$${r%%:*}.npz || exit 1; done
	$(BIN)/python training/train.py --stage 1 --epochs 5 --data $(DATA)/train_0.npz $(DATA)/train_8000.npz --val $(DATA)/val.npz
	$(BIN)/python training/train.py --stage 2 --epochs 8 --data $(DATA)/train_*.npz --val $(DATA)/val.npz
	$(BIN)/python training/card.py
	$(BIN)/python bench/accuracy.py --calibrate

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
