# Two entry points: `make run` (dashboard on the sample data) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned in the same pip command as the rest so pip takes the CPU
# build already on disk instead of pulling a multi-gigabyte CUDA build.
TORCH := torch==2.13.0

.PHONY: run test install install-dev lint clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH)" -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH)" -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) -m streamlit run app.py --server.headless true --browser.gatherUsageStats false

lint: install-dev
	$(PY) -m ruff check .

test: install-dev lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q --durations=15

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
