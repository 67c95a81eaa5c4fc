# README's two commands: `make run` and `make test`. Neither needs an activated venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint requirements format pytest dryrun robot-selftest docs bench mutation clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Run the lifecycle matrix against the simulated fleet; writes results/report.html.
run: install
	$(BIN)/tribes-qa run

## Everything CI checks: linters, requirement traceability, robot --dryrun of every suite with
## every shipped target, pytest (unit + simulator + keyword integration), robot self-run.
test: install lint requirements dryrun pytest

# Every target file we ship; a suite that does not parse, names a missing keyword or passes
# the wrong arguments under any of them fails `make test` before a node is started (a dry run
# executes no library keyword: no fleet, no Legion, no SSH).
DRYRUN_TARGETS := variables/sim.yaml variables/sim-as-real.yaml variables/fleet.example.yaml

dryrun: install
	@mkdir -p results/dryrun
	@set -e; for target in $(DRYRUN_TARGETS); do \
		name=$$(basename $$target .yaml); \
		echo "robot --dryrun --variablefile $$target suites/"; \
		$(BIN)/robot --dryrun --variablefile $$target --outputdir results/dryrun/$$name \
			--log NONE --report NONE --console dotted suites/; \
	done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/robocop check resources suites
	$(BIN)/robocop format --check resources suites

## Every requirement of docs/requirements.yaml has a test and a fault (or a reason); no unknown id.
requirements: install
	$(BIN)/tribes-qa requirements

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/robocop format resources suites

pytest: install
	@mkdir -p results
	$(BIN)/pytest --junitxml=results/pytest-junit.xml

docs: install
	@mkdir -p docs/keywords
	$(BIN)/libdoc --name TribesLibrary tribesqa.library.TribesLibrary docs/keywords/TribesLibrary.html

bench: install
	$(BIN)/python bench/run_all.py

## Mutation score of the pure judge modules and their survivors (bench/mutation_score.py).
## Not part of `make test` / CI: several minutes on two cores. Figures in bench/README.md.
mutation: install
	$(BIN)/python bench/mutation_score.py --max-children 2

clean:
	rm -rf results/* .pytest_cache .ruff_cache
	@touch results/.gitkeep
