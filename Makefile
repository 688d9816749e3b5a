# Two commands on a fresh machine:  `make repro` (set up, then `dvc repro`)  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONPATH := $(CURDIR)/src

.PHONY: setup fonts repro test bench clean-venv paper-camelyon17 paper-iwildcam

setup: $(VENV)/.installed fonts

$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	touch $@

fonts:
	@scripts/install_fonts.sh

repro: setup
	dvc repro

test: setup
	pytest -q -n 2 --durations=12

bench: setup
	python -m benchmarks.run --steps 15 --reps 3

clean-venv:
	rm -rf $(VENV)

# The paper configuration (README, "Paper configuration"): `make paper-camelyon17` or `make paper-iwildcam`
paper-%: setup
	python -m rtd.profile $* --run
