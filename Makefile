# Everything runs from a local virtual environment. TORCH pins the CPU wheel by default;
# override it (e.g. `make install TORCH=torch==2.13.0+cu128`) for another build.
PY      ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
MODEL   ?= efficientnet_b0

ORT_WEB ?= onnxruntime-web@1.30.0

.PHONY: install install-web demo test test-slow verify-cuda check-zoo bench reports lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory install-web \
	  || echo "install: npm could not fetch $(ORT_WEB); export --web and bench --runtime web need it"; \
	  else echo "install: no npm here: skipping $(ORT_WEB) (export --web, bench --runtime web)"; fi
	touch $(STAMP)

# onnxruntime-web's WebAssembly files for `export --web` and `bench --runtime web` (needs npm).
install-web:
	npm install --prefix .web --no-audit --no-fund --silent $(ORT_WEB)

# The main job: what the default model costs, then where its time really goes (FLOPs are not latency).
demo: install
	$(BIN)/scaleprof profile $(MODEL)
	$(BIN)/scaleprof bench $(MODEL) --by kind --threads 1 --max-time 5 --no-memory

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# On a machine with a GPU and a CUDA torch (TORCH=...+cu128; onnxruntime-gpu for the CUDA execution
# provider): the CUDA tests, then a bench of every runtime and a training step on the GPU.
verify-cuda: install
	@$(BIN)/python -c "import sys, torch; torch.cuda.is_available() or (print('verify-cuda: no CUDA device here (torch.cuda.is_available() is False)', file=sys.stderr), sys.exit(2))"
	$(BIN)/python -m pytest -q tests/test_bench_cuda.py tests/test_deform.py -m "slow or not slow"
	$(BIN)/scaleprof bench resnet50 --device cuda --runtime eager,compile,onnxruntime --train --by kind \
	  --roofline reports/cuda-roofline.png --max-time 5 --json > reports/cuda-verify.json
	$(BIN)/scaleprof profile resnet50 --device cuda

# The regression gate on our own zoo: each committed baseline names its model.
check-zoo: install
	@for b in tests/baselines/*.json; do \
	  m=$$(basename $$b .json); \
	  $(BIN)/scaleprof check $$m --baseline $$b || exit $$?; \
	done

bench: install
	$(BIN)/python -m scaleprof.dev.selfbench --out reports

reports: install
	$(BIN)/python -m scaleprof.dev.build_reports --out reports
	$(BIN)/python -m scaleprof.dev.latency_prediction --out reports
	$(BIN)/python -m scaleprof.dev.memory_estimate --out reports

lint: install
	$(BIN)/ruff check scaleprof tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
