# Two entry points on a fresh machine: `make demo` (the main job) and `make test` (what CI runs).
# Both create .venv and install the package with constraints.txt, which keeps the CPU build of torch.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench gpu-wheels

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/neurflow-graph ingest ingest/digits.toml
	@echo "look at it: $(BIN)/neurflow-graph show digits/3 (one HTML page), or $(BIN)/neurflow-graph serve (explore every class in your browser; Ctrl-C stops it)"

test: install
	$(BIN)/ruff check neurflow_graph tests benchmarks
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/ig_throughput.py --quick

# The packages a lent GPU machine lacks (its Python 3.12 has torch, numpy, scikit-learn, ... but not these), as
# wheels in .whl/ (git-ignored), for benchmarks/gpu_check.sh to install without network: Captum for the authors' way.
GPU_WHEELS ?= captum==0.9.0
WHEELS ?= .whl
gpu-wheels: install
	rm -rf $(WHEELS) && mkdir -p $(WHEELS)
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		--platform any -d $(WHEELS) $(GPU_WHEELS)
