# Two commands set up a fresh machine:
#   make serve   run the sidecar with examples/policies.yaml and SQLite state in .pdp/
#   make test    run every check, the example policy tests and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: serve test check lint typecheck protos protos-check buf-lint bench bench-peers quality clean
.PHONY: buf-breaking test-node
.PHONY: test-go test-java fuzz

# setup.py builds the C injection scorer into the tree (editable install).
$(VENV)/.installed: pyproject.toml setup.py pdp/engine/_native/*.c clients/python/pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,otel]' -e clients/python
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

serve: $(VENV)/.installed
	mkdir -p .pdp
	$(BIN)/pdp serve --snapshot examples/policies.yaml --state .pdp/state.db

protos: $(VENV)/.installed
	PYTHON=$(PY) scripts/generate-protos

# Generated code is committed; regenerating it must change nothing.
protos-check: protos
	git diff --exit-code -- $$(scripts/generate-protos --outputs)
	test -z "$$(git status --porcelain -- $$(scripts/generate-protos --outputs))"

buf-lint: node_modules/.installed
	npx --no-install buf lint

# The wire contract must not break: proto/ against main's previous commit.
buf-breaking: node_modules/.installed
	scripts/buf-breaking
check: buf-breaking

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

check: protos-check buf-lint lint typecheck

test: check
	$(BIN)/pdp test examples/
	$(BIN)/pytest

# The suite fuzzes Enforce and the control plane with a fixed set of examples;
# this explores new ones for longer (FUZZ_EXAMPLES each).
FUZZ_EXAMPLES ?= 5000
fuzz: $(VENV)/.installed
	PDP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/security/test_fuzz.py --timeout 0 -q

bench: $(VENV)/.installed .tools/ghz
	$(PY) bench/bench_sidecar.py
	$(PY) bench/bench_validators.py
	$(PY) bench/bench_traces.py
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_pause_propagation.py
	$(PY) bench/bench_state.py
	$(PY) bench/bench_bulk.py
	$(PY) bench/bench_embedded.py
	$(PY) bench/bench_reload.py

# pdp next to OPA (Envoy ext_authz) and Cerbos: builds the peers from the Go
# module proxy into .tools/peers/ once (versions pinned in bench/peers/*/go.mod).
bench-peers: $(VENV)/.installed .tools/ghz
	$(PY) bench/peers/run.py

# The labelled data sets (public, each with its licence): presidio-research's
# synth_dataset_v2.json (microsoft/presidio-research, MIT) in pii/, PIGuard's
# NotInject and valid sets (leolee99/PIGuard, MIT) in injection/, under
# $PDP_SHARED/data or ../shared/data. Without them: skipped, except in CI
# (CI set), where a missing data set fails the build.
QUALITY_DATA := $(if $(PDP_SHARED),$(PDP_SHARED)/data,../shared/data)

quality: $(VENV)/.installed
	@if [ ! -d "$(QUALITY_DATA)/pii" ] || [ ! -d "$(QUALITY_DATA)/injection" ]; then \
	  if [ -n "$$CI" ]; then \
	    echo "make quality: no labelled data in $(QUALITY_DATA) (pii/, injection/); CI needs it" >&2; \
	    exit 1; \
	  fi; \
	  echo "make quality: skipped: no labelled data in $(QUALITY_DATA)."; \
	  echo "  Put presidio-research's synth_dataset_v2.json (microsoft/presidio-research)"; \
	  echo "  in pii/ and PIGuard's NotInject and valid sets (leolee99/PIGuard) in injection/,"; \
	  echo "  or point PDP_SHARED at a directory whose data/ holds them."; \
	else \
	  $(PY) bench/pii_quality.py && $(PY) bench/injection_quality.py; \
	fi

clients/node/node_modules/.installed: clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The TypeScript client: build (ESM, CommonJS, declarations), then its tests
# against real sidecars (the venv's pdp), its case table and its packed tarball.
test-node: $(VENV)/.installed clients/node/node_modules/.installed
	cd clients/node && PDP_BIN=$(CURDIR)/$(BIN)/pdp npm test
test: test-node

# The Go client: formatted and vetted, then its tests, the case table and
# the example against real sidecars (the venv's pdp).
test-go: $(VENV)/.installed
	@unformatted="$$(gofmt -l clients/go)"; test -z "$$unformatted" || { echo "gofmt: $$unformatted"; exit 1; }
	cd clients/go && go vet ./... && PDP_BIN=$(CURDIR)/$(BIN)/pdp go test -count=1 ./...
test: test-go

# The Java client: stubs generated from proto/ at build time, then JUnit 5
# tests, the case table and the example against real sidecars. Maven
# downloads into .tools/m2, once per checkout.
MVN := mvn -B -ntp -Dmaven.repo.local=$(CURDIR)/.tools/m2
test-java: $(VENV)/.installed
	cd clients/java && PDP_BIN=$(CURDIR)/$(BIN)/pdp $(MVN) test
test: test-java

clean:
	rm -rf $(VENV) node_modules .pdp .pytest_cache .mypy_cache .ruff_cache
	rm -rf clients/java/target
	rm -rf clients/node/node_modules clients/node/dist

.tools/ghz:
	GOBIN=$(CURDIR)/.tools go install github.com/bojand/ghz/cmd/ghz@v0.120.0
