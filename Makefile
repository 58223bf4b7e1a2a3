# The two commands: `make demo` (the main job, headless PyBullet) and `make test`.
# Both create .venv on first use and reuse it afterwards (a second run installs nothing).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
# torch and torchvision must come from the same build (open_clip needs torchvision), so both
# are pinned together from PyPI; this build runs on CPU and on CUDA GPUs. To use another
# build, install it into .venv first or pass e.g. `make TORCH="torch==X torchvision==Y" demo`.
TORCH  ?= torch==2.15.0 torchvision==0.29.2
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch is a 540 MB wheel: an interrupted download resumes (pip >= 25.1, installed just before)
# and the whole install is retried, so a flaky connection does not fail a fresh setup
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check --retries 10 --timeout 60 --resume-retries 20

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): setup.py setup.cfg package.xml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --retries 10 --upgrade pip setuptools wheel
	for i in 1 2 3; do $(PIP) $(TORCH) && break; test $$i -lt 3 || exit 1; echo "retrying the torch download ($$i/3)"; done
	for i in 1 2 3; do $(PIP) -e ".[test]" && break; test $$i -lt 3 || exit 1; echo "retrying the install ($$i/3)"; done
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/robot-rewards demo

# lint and the import contracts first (seconds), then the suite
test: $(STAMP)
	$(BIN)/ruff check robot_rewards tests launch setup.py
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check robot_rewards tests launch setup.py
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info
