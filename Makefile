# NAT Gateway spike recorder: build, offline tests and demo.
#   make test   everything CI runs: unit tests, emulator integration tests, linters, sam build
#   make demo   one whole recording played in the local emulator, with a timeline
#   make smoke NAT=nat-... REGION=...   REAL AWS, BILLABLE: see README "Real-AWS smoke test" (never run by CI)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: all venv build unit integration lint sam-build test demo smoke clean

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

# Real-AWS smoke test: deploys the macro and the recorder to YOUR account (billable), plays one
# recording on the NAT you name, checks it, deletes everything. Asks for confirmation unless YES=1.
# Not part of `make test`; CI never runs it.
smoke: venv
	$(PY) tests/smoke/aws_smoke.py --nat "$(NAT)" $(if $(REGION),--region "$(REGION)") \
		$(if $(PROFILE),--profile "$(PROFILE)") $(if $(YES),--yes) $(SMOKE_ARGS)

clean:
	rm -rf .aws-sam macros/.aws-sam
