# The two commands: `make demo` (the main job, headless PyBullet) and `make test`.
# Both create .venv on first use and reuse it afterwards (a second run installs nothing).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
# The CPU wheel on the build machines; on a GPU machine pick the CUDA build you want, e.g.
# `make TORCH=torch demo` (PyPI's default build) or install torch into .venv first.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): setup.py setup.cfg package.xml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/robot-rewards demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
