# biovfm: two commands for a fresh machine -- `make demo` and `make test`.
# Each creates .venv on first use (idempotent). On a GPU server use the conda env instead:
#   conda env create -f environment.yml && conda activate biovfm && make test VENV=$CONDA_PREFIX
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.biovfm-installed
export HF_HUB_OFFLINE ?= 1
export MPLBACKEND ?= Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo demo-fresh learn test figures install export format check-sync bench configs paper-runs gpu-check docs docs-test help

help:
	@echo "make demo     run the pipeline headless on embedded real data (runs/demo/)"
	@echo "make test     execute every notebook and the plain tests (pytest)"
	@echo "make learn    does pretraining learn? DINOv2/MAE ViT-T/S on CPU, online evaluation, verdicts vs random init (results/learn/)"
	@echo "make figures  regenerate the paper figures from stored published numbers (RESULTS=results/own: from your runs)"
	@echo "make format   ruff format on the notebooks (110 columns), then export"
	@echo "make bench    run the stage benchmarks, collect their ratios in benchmarks/README.md"
	@echo "make docs     the browsable compendium: notebooks executed on the embedded data -> _docs/html"
	@echo "make docs-test  build the site and browse every page in headless Chromium"
	@echo "make paper-runs  print the paper's experiment matrix: state, GPU-hours, commands"
	@echo "make gpu-check   on the GPU server, first: cuda notebook cells, bf16 steps per size, DDP vs FSDP2, img/s/GPU"

$(STAMP): settings.ini setup.py constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Every temporary folder of the tests (pytest's, the notebooks', the scripts') lies in .test-tmp/, removed when
# the tests pass (kept for a look when they fail): runs leave nothing in the system's /tmp.
TEST_TMP := $(CURDIR)/.test-tmp
test: $(STAMP)
	@rm -rf "$(TEST_TMP)" && mkdir -p "$(TEST_TMP)"
	TMPDIR="$(TEST_TMP)" $(BIN)/pytest -q tests
	@rm -rf "$(TEST_TMP)"

# The whole pipeline on embedded real data (stage notebooks run by papermill), report in runs/demo/REPORT.md.
demo: $(STAMP)
	$(PY) -m biovfm.demo
demo-fresh: $(STAMP)
	$(PY) -m biovfm.demo --fresh

# The learning profile (nbs/08a_learn.ipynb): DINOv2 and MAE at ViT-T/S pretrained on the embedded corpus plus the
# MedMNIST train images, watched by the online evaluation, probed against random init: results/learn/ (about 80 minutes on 2 cores).
learn: $(STAMP)
	$(PY) -m biovfm.learn

# The paper figures from the published numbers (figures/), or from a folder of your own collected
# results: make figures RESULTS=results/own (scaling fits + figures under that folder).
RESULTS ?= paper
figures: $(STAMP)
ifeq ($(RESULTS),paper)
	@mkdir -p runs/figures
	$(BIN)/papermill -k python3 --cwd nbs nbs/06_figures.ipynb runs/figures/06_figures.ipynb -p results paper -p out_dir ../figures
else
	$(PY) -c "import sys; from biovfm.experiments import analyse; print(analyse(sys.argv[1]))" $(RESULTS)
endif

export: $(STAMP)
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/nbdev_export

# ruff format on the notebooks (line length 110, quotes kept; pyproject.toml), then export: parameters cells
# start with `# fmt: off` so papermill keeps one line per parameter.
format: $(STAMP)
	$(BIN)/ruff format nbs
	$(MAKE) export

# The browsable compendium (Sphinx + myst-nb, pure PyPI): notebooks executed on the embedded data, rendered to
# _docs/html with nbs/index.ipynb as the home page. docs-test opens every page in headless Chromium (Debian's
# package; installed here when apt-get can) and keeps screenshots in _docs/screenshots/.
DOCS_STAMP := $(VENV)/.biovfm-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,docs]"
	@touch $(DOCS_STAMP)
docs: $(DOCS_STAMP)
	$(PY) docs/build.py
docs-test: $(DOCS_STAMP)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || { apt-get install -y -q chromium >/dev/null 2>&1 || sudo apt-get install -y -q chromium; }
	BIOVFM_DOCS_TEST=1 $(BIN)/pytest -q tests/test_docs.py

# Stage benchmarks at full sizes, each against its peer in the same run (pretraining: lightly's DINOv2/MAE steps
# and the bare backbone; probe: the authors' per-epoch loop; curation: a plain single-process loop), collected into
# benchmarks/README.md; on the embedded data only. Their --smoke modes run in tests/test_benchmarks.py.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# The paper's experiment matrix: regenerate its configs, or print its plan with the exact commands.
configs: $(STAMP)
	$(BIN)/biovfm-experiments configs
	$(PY) -m biovfm.demo --configs
paper-runs: $(STAMP)
	$(BIN)/biovfm-experiments plan paper --dry-run

# The GPU server's first command (under 10 minutes on one GPU; PASS/FAIL per check): the notebooks' cuda
# cells, bf16 DINOv2 and MAE steps for ViT-T/S/B/L/H, DDP vs FSDP2 with 2+ GPUs, img/s/GPU vs the estimates.
# With the conda env: make gpu-check VENV=$CONDA_PREFIX
gpu-check: $(STAMP)
	@$(BIN)/nbdev_test --flags cuda --path nbs/03_pretrain.ipynb && echo "PASS  nbdev_test --flags cuda" \
	  || { echo "FAIL  nbdev_test --flags cuda"; exit 1; }
	$(PY) benchmarks/gpu_check.py

# Fails when the package or the notebooks are out of sync with what is committed.
check-sync: $(STAMP)
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean
	@git diff --exit-code --stat -- biovfm nbs || (echo "nbdev_export/nbdev_clean changed tracked files: run 'make export' and commit" && exit 1)
