# `make run` sets everything up and serves on http://127.0.0.1:8000 ; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test chromium axe bench train samples egl clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

run: setup
	$(BIN)/toeangle serve

test: setup chromium axe
	$(BIN)/python -m pytest -q

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

# Render the data and train both stages (about 4 hours on 2 cores): exactly the runs behind
# the shipped model, see models/MODEL_CARD.md. Intermediate weights go to $(DATA).
DATA ?= data
TRAIN := $(BIN)/python training/train.py
VAL := --val $(DATA)/val.npz
FIRST_SETS := $(DATA)/train_0.npz $(DATA)/train_8000.npz $(DATA)/train_16000.npz $(DATA)/train_24000.npz
LATE_SETS := $(DATA)/train_0.npz $(DATA)/c192_8000.npz $(DATA)/c192_16000.npz $(DATA)/train_40000.npz \
	$(DATA)/train_48000.npz $(DATA)/train_56000.npz $(DATA)/train_64000.npz
ALL_SETS := $(LATE_SETS) $(DATA)/train_72000.npz $(DATA)/train_80000.npz $(DATA)/train_88000.npz \
	$(DATA)/train_96000.npz
train: egl $(VENV)/.train
	$(BIN)/python training/dataset.py --seeds 900000:900600 --crop 128 --out $(DATA)/val.npz
	for r in 0:8000 8000:16000 16000:24000; do \
		$(BIN)/python training/dataset.py --seeds $$r --crop 128 --out $(DATA)/train_$${r%%:*}.npz || exit 1; done
	$(BIN)/python training/dataset.py --seeds 24000:32000 --crop 128 --out $(DATA)/train_24000.npz \
		--wide-share 0.5 --top-down-share 0.6
	$(TRAIN) --stage 1 --epochs 4 --data $(DATA)/train_0.npz $(DATA)/train_8000.npz $(VAL) --out $(DATA)/s1a
	$(TRAIN) --stage 1 --epochs 4 --init $(DATA)/s1a/stage1.pt --data $(DATA)/train_0.npz $(DATA)/train_8000.npz \
		$(DATA)/train_16000.npz $(VAL) --out $(DATA)/s1b
	$(TRAIN) --stage 1 --epochs 2 --lr 1e-3 --head-weight 4 --init $(DATA)/s1b/stage1.pt --data $(FIRST_SETS) $(VAL)
	$(TRAIN) --stage 2 --epochs 10 --data $(DATA)/train_0.npz $(DATA)/train_8000.npz $(DATA)/train_16000.npz $(VAL) \
		--out $(DATA)/s2a
	$(TRAIN) --stage 2 --epochs 3 --lr 1e-3 --init $(DATA)/s2a/stage2.pt --data $(FIRST_SETS) $(VAL) \
		--out $(DATA)/s2b
	@# v2-v5: more renders. Two sets were rendered with 192 px crops for an experiment (train.py shrinks them
	@# to 128); v4 adds four more.
	for r in 8000:16000 16000:24000; do \
		$(BIN)/python training/dataset.py --seeds $$r --crop 192 --out $(DATA)/c192_$${r%%:*}.npz || exit 1; done
	for r in 40000:48000 48000:56000 56000:64000 64000:72000; do \
		$(BIN)/python training/dataset.py --seeds $$r --crop 128 --out $(DATA)/train_$${r%%:*}.npz || exit 1; done
	@# v5: the stage-2 network again, on all of them
	$(TRAIN) --stage 2 --epochs 5 --lr 1e-3 --init $(DATA)/s2b/stage2.pt --data $(LATE_SETS) $(VAL) --out $(DATA)/s2c
	@# v7: four more sets, and the stage-2 network again on all eleven, its crops turned, scaled and shifted a little
	for r in 72000:80000 80000:88000 88000:96000 96000:104000; do \
		$(BIN)/python training/dataset.py --seeds $$r --crop 128 --out $(DATA)/train_$${r%%:*}.npz || exit 1; done
	$(TRAIN) --stage 2 --epochs 4 --lr 1e-3 --jitter 0.1 --init $(DATA)/s2c/stage2.pt --data $(ALL_SETS) $(VAL) \
		--out $(DATA)/s2d
	@# v2-v7: the view head (perspective correction, sole-up and outer-side checks) on the frozen stage-2 network;
	@# since v6 it corrects the angle of the points the network found, not of the true ones
	$(TRAIN) --stage 2 --view-head --epochs 40 --threads 1 --init $(DATA)/s2d/stage2.pt --data $(ALL_SETS) $(VAL) \
		--out $(DATA)/s2v
	@# v6-v7: beside it the perspective head, the view correction for points moved by hand (the true points' target)
	$(TRAIN) --stage 2 --perspective-head --epochs 40 --threads 2 --init $(DATA)/s2v/stage2.pt --data $(ALL_SETS) $(VAL) \
		--out $(DATA)/s2p
	@# v8: the off-axis head (the view check), on a set whose forefoot crops include views up to 90 degrees off
	$(BIN)/python training/dataset.py --seeds 104000:112000 --crop 128 --wide-share 0.5 --top-down-share 0.6 \
		--crop-max-off-axis 90 --out $(DATA)/wide_104000.npz
	$(TRAIN) --stage 2 --off-axis-head --epochs 40 --threads 2 --init $(DATA)/s2p/stage2.pt \
		--data $(ALL_SETS) $(DATA)/wide_104000.npz $(VAL)
	$(BIN)/python training/card.py --sigma-scale 1 --max-uncertainty 1000
	$(BIN)/python bench/accuracy.py --calibrate --n 2000
	@echo "now: python training/card.py --sigma-scale <printed scale>"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis node_modules
