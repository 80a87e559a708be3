# The two commands of the README: `make run` (the tutorial) and `make test` (everything checked).
# Both run the idempotent set-up first, so a fresh clone needs nothing else.
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: setup run test lint lab train bench bench-data compare-hf notebook-outputs notebook-timing

setup:
	@scripts/setup

# The whole tutorial: device and data summary, the model (downloaded with a progress bar when
# $BERT_FINETUNE_MODEL names a hub id not yet cached), then the notebook executed headless on
# the evcxr kernel in full mode (out/cola.ipynb, out/cola.html).
run: setup
	@$(ENV) cargo run --release --quiet --bin bert-finetune -- info
	@$(ENV) cargo run --release --quiet --bin bert-finetune -- fetch
	@$(ENV) python scripts/run_notebook.py --out out

# Tests never reach the network: the hub tests use a local server, everything else the cache.
test: export HF_HUB_OFFLINE = 1
test: export TRANSFORMERS_OFFLINE = 1
test: setup
	@$(ENV) cargo build --release --quiet
	@$(ENV) cargo test --release
	@$(ENV) scripts/setup-browser
	@$(ENV) python tests/notebook/test_notebook.py
	@$(ENV) python tests/notebook/test_own_data.py
	@$(ENV) python tests/notebook/test_task_notebooks.py
	@$(ENV) python tests/notebook/test_background.py
	@$(ENV) python tests/notebook/test_two_kernels.py
	@$(ENV) node tests/browser/jupyterlab.mjs

lint:
	@$(ENV) cargo fmt --check && cargo clippy --release --all-targets --quiet -- -D warnings

lab: setup
	@$(ENV) jupyter lab $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) notebooks/cola.ipynb

# The same tutorial from the command line (see `bert-finetune train --help`).
train: setup
	@$(ENV) cargo run --release --quiet --bin bert-finetune -- train --out model_save

# Training speed, Rust and PyTorch side by side (paddings fixed-64, longest, bucket): a table,
# out/bench.json and out/bench.png. Options pass through: make bench ARGS="--repeats 5".
ARGS ?=
bench: setup
	@$(ENV) scripts/bench $(ARGS)

# Masked-LM memory against corpus size: 0.3 M and 3 M lines from CoLA, line by line, a few
# steps each from a cold token cache; peak RSS, tokenizing time, time to the first step.
bench-data: setup
	@$(ENV) cargo build --release --quiet --bin bert-finetune
	@$(ENV) python scripts/bench_data.py $(ARGS)

# Own data, our CLI and transformers' Trainer side by side (MiniLM; from data/examples a 3-class
# task, a pair task, NER as run_ner, QA as run_qa, and masked-LM adaptation on CoLA's sentences
# as run_mlm; two seeds a side): each task's figures and training throughput. One task:
# make compare-hf ARGS="--tasks who".
compare-hf: setup
	@$(ENV) cargo build --release --quiet --bin bert-finetune
	@$(ENV) python scripts/compare_hf.py $(ARGS)

# Refresh the outputs committed in notebooks/*.ipynb from full runs.
notebook-outputs: run
	cp out/cola.ipynb notebooks/cola.ipynb
	@for nb in own_data token_classification question_answering masked_lm; do \
		$(ENV) python scripts/run_notebook.py --notebook $$nb --out out && \
		cp out/$$nb.ipynb notebooks/$$nb.ipynb || exit 1; \
	done

# How live the notebooks feel: each notebook run headless in quick mode on the warm kernel, with
# the table of its cells' seconds, the median of the cells that do no training and the seconds
# from starting the kernel to the device report (README, "How fast a cell answers").
notebook-timing: setup
	@for nb in cola own_data token_classification question_answering masked_lm; do \
		$(ENV) python scripts/run_notebook.py --quick --timing --notebook $$nb --out out/timing \
			|| exit 1; \
	done
