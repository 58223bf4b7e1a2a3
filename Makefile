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

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): setup.py setup.cfg package.xml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]"
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
