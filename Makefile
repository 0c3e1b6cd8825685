# NAT Gateway spike recorder: build, offline tests and demo.
#   make test   everything CI runs: unit tests, emulator integration tests, linters, sam build
#   make demo   one whole recording played in the local emulator, with a timeline
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: all venv build unit integration lint sam-build test demo clean

all: test

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/requirements.txt
	touch $@

venv: $(VENV)/.installed

# Debug binaries of every function and the macro, for the emulator tests.
build:
	cargo build --workspace --locked

unit:
	cargo test --workspace --locked
	cargo fmt --all -- --check

integration: venv build
	$(PY) -m pytest tests -q

lint: venv
	cfn-lint template.yaml macros/template.yaml
	sam validate --lint -t template.yaml
	sam validate --lint -t macros/template.yaml

# arm64 release artifacts, as `sam deploy` uploads them (one function at a time, one target dir).
sam-build: venv
	sam build
	cd macros && sam build

test: unit integration sam-build

demo: venv build
	$(PY) tests/demo.py

clean:
	rm -rf .aws-sam macros/.aws-sam
