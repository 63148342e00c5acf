# The verbs a person types. Tools (moto, cargo-lambda, zig) go into .venv on first use.
.PHONY: dev demo test bench fleet lint fmt build clean template schemas

FUNCTIONS := $(notdir $(basename $(wildcard functions/src/bin/*.rs)))

## dev: the local stack (AWS emulator, a demo tenant, every function under cargo lambda watch)
dev:
	tests/stack.sh dev

## demo: send a correctly signed candidateStageChange to the running `make dev`
demo:
	AWS_ENDPOINT_URL=http://127.0.0.1:$${MOTO_PORT:-4566} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
	  STACK_NAME=lever-bridge-dev TABLE_NAME=lever-bridge-dev EVENT_BUS_NAME=lever-bridge-dev SECRET_PREFIX=lever-bridge-dev/tenants/ \
	  cargo run --quiet -p lever-bridge-tests --bin lever-bridge-dev -- send demo candidateStageChange \
	  --token $${DEMO_TOKEN:-demo-signature-token} --url http://127.0.0.1:$${WEBHOOK_PORT:-9001}

## test: start the stack on free ports, run every test, stop the stack
test:
	tests/stack.sh test

## lint: formatting and clippy (warnings denied), the repository's own rules (tests/check_repo.py), cfn-lint,
##       `sam validate --lint` and the template checks (infra/check_template.py). SAM CLI and cfn-lint go into
##       .venv/sam (pinned in infra/requirements.txt) on first use.
lint: .venv/sam/.installed
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	python3 tests/check_repo.py
	python3 infra/generate_template.py --check
	.venv/sam/bin/cfn-lint infra/template.yaml
	cd infra && SAM_CLI_TELEMETRY=0 AWS_REGION=us-east-1 "$(CURDIR)/.venv/sam/bin/sam" validate --lint
	.venv/sam/bin/python infra/check_template.py

.venv/sam/.installed: infra/requirements.txt
	@echo "==> installing SAM CLI and cfn-lint into .venv/sam"
	python3 -m venv .venv/sam && .venv/sam/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

fmt:
	cargo fmt --all

## schemas: writes the contract's JSON Schemas (shared/schemas/, from the Rust types, with tests/events/ as examples),
##          then the template, whose event schema registry is made from them
schemas:
	cargo run --quiet -p lever-bridge-tests --bin lever-bridge-dev -- schemas
	python3 infra/generate_template.py

## template: writes infra/template.yaml from infra/template.in.yaml (one block per webhook and push function)
template:
	python3 infra/generate_template.py

## bench: the webhook function as a Lambda runtime against a Python/Powertools reference (cold start, warm
##        latency, CPU and AWS requests per event), push throughput and transcript drain against Lever's
##        limit; writes tests/bench/RESULTS.md and latency.png (about 15 min; BENCH_QUICK=1 for a short check)
bench:
	tests/stack.sh bench

## fleet: the fleet benchmark: 1,000 tenants (10 with 10,000 candidates), each with its own simulated Lever account,
##        connecting in waves (one, 100, the rest) and then a day of hourly reconciliations by the real sync handler,
##        the time between runs skipped; then a few tenants' day against moto with every AWS request and unit counted
##        and priced (tests/bench/prices.json); then one tenant at Lever's 429s against the others' pushes;
##        writes tests/bench/FLEET.md (FLEET_ARGS="--tenants 50 --hours 3",
##        DAY_ARGS="--tenants 1 --hours 2" for a short look)
fleet:
	tests/stack.sh fleet

## build: release build of every function for Lambda (arm64), then their sizes
build:
	tests/stack.sh build

clean:
	cargo clean
	rm -rf .stack

## deploy: lint and check infra/template.yaml, build every function (release, arm64) and deploy the stack with
##         SAM (settings: infra/samconfig.toml; `GUIDED=1 make deploy` asks for them; DEPLOY_ARGS go to sam deploy).
##         SAM CLI and cfn-lint go into .venv/sam (pinned in infra/requirements.txt), cargo-lambda and zig into .venv.
##         One cargo run first links every function at once; sam build's per-function runs then find them built.
.PHONY: deploy
deploy: .venv/sam/.installed
	@if [ ! -x .venv/bin/cargo-lambda ] || [ ! -x .venv/bin/python-zig ]; then \
	  echo "==> installing cargo-lambda and zig into .venv"; \
	  python3 -m venv .venv && grep -E '^(cargo-lambda|ziglang)==' tests/requirements.txt | xargs .venv/bin/pip install --quiet --disable-pip-version-check; \
	fi
	.venv/sam/bin/cfn-lint infra/template.yaml
	.venv/sam/bin/python infra/check_template.py
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))
	cd infra && export PATH="$(CURDIR)/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 && \
	  "$(CURDIR)/.venv/sam/bin/sam" build && "$(CURDIR)/.venv/sam/bin/sam" deploy $(if $(GUIDED),--guided) $(DEPLOY_ARGS)
