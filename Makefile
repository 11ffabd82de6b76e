# Every target installs what it needs into .venv first (a fresh machine needs only python3).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint learning learning-extras compat bench clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Quick start 1: train PPO on CartPole to return >= 475, evaluate it, print the checkpoint path.
demo: $(STAMP)
	$(VENV)/bin/scalerl train --algo PPO --env CartPole-v1 --stop-reward 475

# Quick start 2: lint and the default test suite (no long learning runs).
test: $(STAMP)
	$(VENV)/bin/ruff check scalerl tests benchmarks examples
	$(VENV)/bin/pytest -q

# Long learning runs (Pendulum and friends), deselected from `make test`.
learning: $(STAMP)
	$(VENV)/bin/pytest -q -m "learning and not box2d and not mujoco"

# The presets' learning runs that need Box2D (LunarLander) or MuJoCo (HalfCheetah, Hopper).
learning-extras: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[test,box2d,mujoco]"
	$(VENV)/bin/pytest -q -m "box2d or mujoco"

# RLlib's docs snippets, example scripts and tuned examples with `scalerl` imports:
# prints how many pass (the known gaps, marked compat_gap, are listed in the README).
compat: $(STAMP)
	$(PY) tests/compat/compat_report.py

bench: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[test,bench]"
	$(PY) benchmarks/cartpole_vs_sb3.py
	$(PY) benchmarks/sampling_throughput.py
	$(PY) benchmarks/sampling_modules.py
	$(PY) benchmarks/replay_throughput.py
	$(PY) benchmarks/dqn_vs_sb3.py
	$(PY) benchmarks/multi_agent_sampling.py
	$(PY) benchmarks/sac_vs_sb3.py
	$(PY) benchmarks/tutorial_ray.py
	$(PY) benchmarks/build_time.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
