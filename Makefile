# The verbs a person types. Tools (moto, cargo-lambda, zig) go into .venv on first use.
.PHONY: dev demo test bench lint fmt build clean

FUNCTIONS := $(notdir $(basename $(wildcard functions/src/bin/*.rs)))

## dev: the local stack (AWS emulator, a demo tenant, every function under cargo lambda watch)
dev:
	tests/stack.sh dev

## demo: send a correctly signed candidateStageChange to the running `make dev`
demo:
	AWS_ENDPOINT_URL=http://127.0.0.1:$${MOTO_PORT:-4566} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
	  TABLE_NAME=lever-bridge-dev EVENT_BUS_NAME=lever-bridge-dev SECRET_PREFIX=lever-bridge-dev/tenants/ \
	  cargo run --quiet -p lever-bridge-tests --bin lever-bridge-dev -- send demo candidateStageChange \
	  --token $${DEMO_TOKEN:-demo-signature-token} --url http://127.0.0.1:$${WATCH_PORT:-9000}/lambda-url

## test: start the stack on free ports, run every test, stop the stack
test:
	tests/stack.sh test

## lint: formatting and clippy, warnings denied
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## bench: warm webhook cost against the local emulator (release build)
bench:
	tests/stack.sh bench

## build: release build of every function for Lambda (arm64), then their sizes
build:
	tests/stack.sh build

clean:
	cargo clean
	rm -rf .stack
