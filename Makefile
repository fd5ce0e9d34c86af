# Two entry points for a fresh machine; each installs what it needs into .venv.
PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python

.PHONY: train test bench install clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e ".[lightning,test,plot,timm]"
	touch $@

install: $(VENV)/.installed

## Train the default model (ZCA stem + covariance-pooling head, mpa-lya) on the embedded digits.
train: install
	$(PY) -m lit_models fit

## Run the test suite (CPU; CUDA-only checks skip without a GPU).
test: install
	$(PY) -m pytest -q

## Quick numerical study of every backend (tables + plots under bench_out/).
bench: install
	$(PY) -m benchmarks --preset quick --out bench_out

clean:
	rm -rf $(VENV) bench_out lightning_logs runs
