# fmn: the two commands are `make run` and `make test`. Both install what they need
# (apt packages, the emulator venvs, DynamoDB Local) on first use and are idempotent.

SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
export FMN_LOCAL_DIR ?= $(CURDIR)/.local

# CI builds once from scratch: incremental caches would only take time and ~2 GB of disk.
ifeq ($(CI),true)
export CARGO_INCREMENTAL ?= 0
endif

.PHONY: help deps emulators-up emulators-down emulators-status emulators-reset \
        localstack-up localstack-down build lambda lambda-debug run provision test test-unit lint fmt rehearse \
        bench bench-bridge bench-fmn3 clean sam-build

help:
	@echo "make run     - run the whole system locally on LocalStack (installs what is missing)"
	@echo "make test    - lint, then every unit and integration test (starts the emulators when needed)"
	@echo "make emulators-up / emulators-down / emulators-status / emulators-reset"
	@echo "make lint    - cargo fmt --check, clippy -D warnings, cfn-lint and sam validate on the template"
	@echo "make rehearse - the template's stack, less the functions, created by CloudFormation in LocalStack, checked, deleted"
	@echo "make lambda  - the eight functions as deployed: target/lambda/<binary>/bootstrap (cargo lambda, release)"
	@echo "make sam-build - the whole stack's artifacts for sam deploy (.aws-sam/build; ~10 min)"
	@echo "make bench   - benchmarks"
	@echo "make bench-bridge - the ingest bridge on fedmsg and fedora-messaging, side by side"
	@echo "make bench-fmn3 - fmn's matching and FMN 3.x's (Fedora's running service) on the same users and corpus"

# System packages, the emulators (LocalStack, DynamoDB Local, moto), the real fedmsg
# publisher the bridge tests use and schemathesis for the web-api test, all pinned.
deps:
	@scripts/system-deps.sh
	@localstack/install.sh
	@tests/fedmsg-publisher/install.sh
	@tests/fedora-messaging-publisher/install.sh
	@tests/schemathesis/install.sh
	@tests/synapse/install.sh
	@tests/browser/install.sh
	@tools/cargo-lambda/install.sh

emulators-up localstack-up: deps
	@localstack/start.sh

emulators-down localstack-down:
	@localstack/stop.sh

emulators-status:
	@localstack/status.sh

emulators-reset:
	@localstack/reset.sh

build: deps
	$(CARGO) build --workspace --bins

# The Lambda functions as they are deployed: cargo-lambda (pinned venv, tools/cargo-lambda)
# packages target/lambda/<binary>/bootstrap for provided.al2023 (x86_64, linked by cargo's own
# linker: --compiler cargo), then their glibc needs are checked against the runtime's 2.34.
# lambda-debug: the same in the dev profile, for tests/tests/lambda_binaries.rs.
LAMBDA_BINS := --bin fmn-match --bin fmn-deliver-email --bin fmn-deliver-irc --bin fmn-deliver-matrix --bin fmn-digest --bin fmn-web-api --bin fmn-mail-events --bin fmn-sync
CARGO_LAMBDA = PATH="$(FMN_LOCAL_DIR)/venv-cargo-lambda/bin:$$PATH" $(CARGO) lambda

lambda: deps
	$(CARGO_LAMBDA) build --release --compiler cargo $(LAMBDA_BINS)
	@scripts/check-glibc.sh

lambda-debug:
	@tools/cargo-lambda/install.sh
	$(CARGO_LAMBDA) build --compiler cargo $(LAMBDA_BINS)
	@scripts/check-glibc.sh
	@# CI: the tests need only target/lambda/<binary>/bootstrap; the explicit-target build's own
	@# objects (~2 GB, used by no other build) go.
	@if [ "$(CI)" = true ]; then rm -rf "$${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu"; fi

# The whole stack's artifacts as `sam deploy` takes them (.aws-sam/build): the pinned SAM CLI
# (infra/requirements.txt) calling the pinned cargo-lambda. Ten minutes of release builds: not
# part of make test.
SAM_ARCH ?= x86_64
sam-build: deps
	@scripts/pinned-venv.sh infra infra/requirements.txt "cfn-lint and the SAM CLI" sam --version
	PATH="$(FMN_LOCAL_DIR)/venv-cargo-lambda/bin:$$PATH" SAM_CLI_TELEMETRY=0 \
	  AWS_REGION=$${AWS_REGION:-us-east-1} AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-build} \
	  AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-build} \
	  "$(FMN_LOCAL_DIR)/venv-infra/bin/sam" build --template infra/template.yaml --beta-features \
	  --parameter-overrides Architecture=$(SAM_ARCH)
	@scripts/check-glibc.sh .aws-sam/build

provision: emulators-up
	@source localstack/env.sh && $(CARGO) run --quiet -p fmn-local -- provision

run: emulators-up
	$(CARGO) build -p fmn-local
	@source localstack/env.sh && exec $(CARGO) run --quiet -p fmn-local -- run

lint:
	$(CARGO) fmt --all -- --check
	@scripts/check-feature-unification.sh
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@infra/lint.sh

fmt:
	$(CARGO) fmt --all

test-unit:
	$(CARGO) test --workspace --lib --bins

# The binaries first: the bridge's kill -9 test runs the real fmn-ingest-bridge, and
# tests/tests/lambda_binaries.rs the functions' bootstraps (make lambda-debug). Last, the deploy
# rehearsal (infra/rehearse.sh) on the same emulators.
test: deps lint
	@$(MAKE) --no-print-directory lambda-debug
	@scripts/with-emulators.sh bash -c '$(CARGO) build --workspace --bins && $(CARGO) test --workspace --no-fail-fast && scripts/smoke-run.sh && infra/rehearse.sh'

# Deploy rehearsal: infra/template.yaml's stack without the functions (LocalStack community runs
# no Lambda without Docker), created by LocalStack's CloudFormation, checked against the template
# and deleted. Starts the emulators if they are not running (installing what is missing) and
# stops them again.
rehearse:
	@scripts/with-emulators.sh infra/rehearse.sh

bench:
	$(CARGO) bench --workspace

# The ingest bridge on both buses (fedmsg and fedora-messaging), release binaries, a real broker.
bench-bridge: deps
	$(CARGO) build --release -p fmn-ingest-bridge --bins
	@scripts/with-emulators.sh $(CARGO) test -p fmn-integration-tests --test amqp -- --ignored --nocapture bench_bridge

# fmn and FMN 3.x (fmn on PyPI) on the same generated users and fedora-messaging corpus: both
# throughputs, the ratio and the agreement of their recipients. FMN 3.x runs in its own pinned
# venv (tests/bench/fmn3/install.sh, not part of `make deps`). FMN3_USERS picks the user counts.
FMN3_USERS ?= 1000 10000
bench-fmn3:
	tests/bench/fmn3/install.sh
	$(CARGO) build --release -p fmn-cli
	$(FMN_LOCAL_DIR)/venv-fmn3/bin/python tests/bench/fmn3/bench_fmn3.py --users $(FMN3_USERS) \
	  --fmn $${CARGO_TARGET_DIR:-target}/release/fmn

clean: emulators-down
	$(CARGO) clean
	rm -rf $(FMN_LOCAL_DIR)
