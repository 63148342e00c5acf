#!/usr/bin/env bash
# The local stack: the AWS emulator (moto), the table, bus and a tenant, and the functions under
# `cargo lambda watch`. `stack.sh dev` runs it in the foreground until Ctrl-C; `stack.sh test`
# starts it on free ports, runs every test against it and stops it; `stack.sh build` makes the
# release artefacts; `stack.sh bench` runs the benchmarks against the emulator; `stack.sh fleet` the
# fleet benchmark (tests/benches/fleet.rs). Nothing is left running.
set -euo pipefail
mode=${1:-dev}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"
state="$root/.stack"
mkdir -p "$state"

# Installs the tools on first use (and again when the pinned versions change).
stamp="$venv/.installed-$(sha1sum tests/requirements.txt | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "==> installing moto and cargo-lambda into .venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"

if [ "$mode" = test ]; then
  # The browser tests: Chrome or Chromium where the developer has it (Linux or macOS) and its chromedriver;
  # Debian's packages installed only where that can be done (root on Debian), else one line on how to.
  find_browser() {
    for c in chromium chromium-browser google-chrome google-chrome-stable \
      "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" "/Applications/Chromium.app/Contents/MacOS/Chromium"; do
      if [ -z "${chrome:-}" ] && command -v "$c" >/dev/null 2>&1; then chrome=$(command -v "$c"); fi
    done
    if [ -z "${driver:-}" ] && command -v chromedriver >/dev/null 2>&1; then driver=$(command -v chromedriver); fi
  }
  chrome=${LEVER_BRIDGE_CHROME:-} driver=${LEVER_BRIDGE_CHROMEDRIVER:-}
  find_browser
  if { [ -z "$chrome" ] || [ -z "$driver" ]; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium and chromium-driver (Debian) for the browser tests"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >"$state/apt.log" 2>&1; then
      echo "could not install chromium; see $state/apt.log" >&2
      exit 1
    fi
    find_browser
  fi
  if [ -z "$chrome" ] || [ -z "$driver" ]; then
    export LEVER_BRIDGE_BROWSER_MISSING="the browser tests need Chrome or Chromium and chromedriver: on Debian or Ubuntu \`sudo apt-get install chromium chromium-driver\`, on macOS \`brew install --cask google-chrome chromedriver\` (or set LEVER_BRIDGE_CHROME and LEVER_BRIDGE_CHROMEDRIVER)"
    echo "$LEVER_BRIDGE_BROWSER_MISSING" >&2
  fi
  export LEVER_BRIDGE_CHROME="$chrome" LEVER_BRIDGE_CHROMEDRIVER="$driver"
fi

if [ "$mode" = build ]; then
  # Release artefacts for Lambda (arm64, cross-compiled with zig), then their sizes.
  start=$(date +%s)
  cargo lambda build --release --arm64 -p lever-bridge-functions
  echo "==> built in $(( $(date +%s) - start )) s"
  printf '%-36s %12s\n' function "bytes (unzipped)"
  for f in target/lambda/*/bootstrap; do printf '%-36s %12s\n' "$(basename "$(dirname "$f")")" "$(stat -c %s "$f")"; done
  exit 0
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ "$mode" = dev ]; then
  moto_port=${MOTO_PORT:-4566}
  watch_port=${WATCH_PORT:-9000}
  hooks_port=${WEBHOOK_PORT:-9001}
  admin_port=${ADMIN_PORT:-9002}
  connect_port=${CONNECT_PORT:-9003}
  sim_port=${LEVER_PORT:-4010}
  suffix=dev
elif [ "$mode" = bench ]; then
  moto_port=$(free_port)
  suffix=bench
elif [ "$mode" = fleet ]; then
  moto_port=$(free_port)
  suffix=fleet
  # moto writes each DynamoDB request's read and write units here (tests/moto_server.py).
  export MOTO_CAPACITY_LEDGER="$state/capacity-$suffix.jsonl"
  rm -f "$MOTO_CAPACITY_LEDGER"
else
  # moto records each IAM refusal here; after the tests, any of an action the template does not grant fails
  # the run (tests/local_iam.py --check-denials).
  export MOTO_DENIALS="$state/denials-test.jsonl"
  rm -f "$MOTO_DENIALS"
  moto_port=$(free_port)
  watch_port=$(free_port)
  hooks_port=$(free_port)
  admin_port=$(free_port)
  connect_port=$(free_port)
  sim_port=$(free_port)
  suffix=test
fi

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
# The local stack's own names; the functions get theirs from the template (see below).
export STACK_NAME="lever-bridge-$suffix"
export TABLE_NAME="$STACK_NAME" EVENT_BUS_NAME="$STACK_NAME" SECRET_PREFIX="$STACK_NAME/tenants/"
export RUST_LOG=${RUST_LOG:-info}

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  # moto takes its time to stop when it holds much data (tens of seconds): what still runs after 2 s
  # is killed, the stack's state being thrown away anyway.
  for _ in $(seq 1 20); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing answered on port $1 ($2); see $state/" >&2
  return 1
}

echo "==> moto on 127.0.0.1:$moto_port"
# moto, with transactions whose cost does not grow with the table (tests/moto_server.py says why).
setsid "$venv/bin/python" tests/moto_server.py -H 127.0.0.1 -p "$moto_port" >"$state/moto-$suffix.log" 2>&1 &
pids+=($!)
wait_for_port "$moto_port" moto

if [ "$mode" = fleet ]; then
  # The fleet in process (in-memory store, a simulated Lever account per tenant), then a few
  # tenants' day against moto with every AWS request and unit counted and turned into dollars, then
  # one tenant at Lever's 429s against the others' pushes; the
  # machine and the date above the tables. FLEET_ARGS go to the fleet (`--tenants 50 --hours 3` for
  # a short look), DAY_ARGS to the day (`--tenants 1 --hours 2`).
  results=${FLEET_RESULTS:-tests/bench/FLEET.md}
  cargo build --release --quiet -p lever-bridge-tests --bench fleet --bench tenant_day --bench isolation
  mkdir -p tests/bench/out
  {
    echo "# The fleet, measured"
    echo
    echo "Written by \`make fleet\` (tests/benches/fleet.rs, tenant_day.rs and isolation.rs) on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB;"
    echo "in the fleet, the functions on one thread and the simulated Lever accounts on two."
    echo
    # shellcheck disable=SC2086
    cargo bench --quiet -p lever-bridge-tests --bench fleet -- ${FLEET_ARGS:-}
    echo
    # shellcheck disable=SC2086
    cargo bench --quiet -p lever-bridge-tests --bench tenant_day -- --json "$root/tests/bench/out/tenant_day.json" ${DAY_ARGS:-}
    echo
    cargo bench --quiet -p lever-bridge-tests --bench isolation
  } >"$results.new"
  mv "$results.new" "$results"
  cat "$results"
  exit 0
fi

echo "==> building"
if [ "$mode" = bench ]; then
  cargo build --release --quiet -p lever-bridge-tests --bin lever-bridge-dev --bin lever-bridge-floor
  dev_tool=target/release/lever-bridge-dev
  # The function measured as a Lambda runtime (native release binary), and the Python reference's
  # venv (Python 3.11, pinned in tests/bench/requirements.txt, with matplotlib for the plot).
  cargo build --release --quiet -p lever-bridge-functions --bin webhook-candidate-stage-change
  bench_venv="$venv/bench-py"
  bench_stamp="$bench_venv/.installed-$(cat tests/bench/requirements.txt tests/bench/reference/requirements.txt | sha1sum | cut -c1-12)"
  if [ ! -f "$bench_stamp" ]; then
    echo "==> installing the Python reference's dependencies into .venv/bench-py"
    python3.11 -m venv "$bench_venv"
    "$bench_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/bench/requirements.txt
    touch "$bench_stamp"
  fi
else
  cargo build --workspace --bins --quiet
  dev_tool=target/debug/lever-bridge-dev
fi
"$dev_tool" setup

if [ "$mode" != bench ]; then
  # Lever: the simulator, with the demo tenant's key and the OAuth client the functions are given.
  echo "==> Lever simulator on 127.0.0.1:$sim_port"
  setsid target/debug/lever-sim --port "$sim_port" --key demo-key >"$state/lever-sim-$suffix.log" 2>&1 &
  pids+=($!)
  wait_for_port "$sim_port" "lever-sim"
  lever="http://127.0.0.1:$sim_port"
  hooks="http://127.0.0.1:$hooks_port"
  admin="http://127.0.0.1:$admin_port"
  connect="http://127.0.0.1:$connect_port"
  # Each function's environment and routes, from infra/template.yaml with local values for its
  # parameters and resources. cargo lambda watch starts every function through `lever-bridge-dev
  # exec-function` (cargo's runner), which gives it exactly that environment and what Lambda sets.
  functions="$state/functions-$suffix.json"
  # The push queues `lever-bridge-dev setup` made (moto's account id in their URLs).
  queues=()
  for f in functions/src/bin/push-*.rs; do
    kebab=$(basename "$f" .rs)
    name=$(echo "${kebab#push-}" | sed -E 's/(^|-)([a-z])/\U\2/g')
    queues+=(--resource "Push${name}Queue=$AWS_ENDPOINT_URL/123456789012/$STACK_NAME-$kebab")
  done
  "$venv/bin/python" infra/template_env.py --stack-name "$STACK_NAME" --region "$AWS_REGION" \
    --param SecretPrefix="$SECRET_PREFIX" --param LogLevel="${LOG_LEVEL:-INFO}" \
    --param LeverCustomBaseUrl="$lever/v1" --param BrandProductName="Acme SMS" --param BrandAccentColour="#0f766e" \
    --param LeverOAuthClientId=sim-client --param LeverOAuthRedirectUri="$admin/admin/oauth/callback" \
    --param LeverOAuthAuthorizeUrl="$lever/oauth/authorize" --param LeverOAuthTokenUrl="$lever/oauth/token" \
    --resource Table="$TABLE_NAME" --resource VendorBus="$EVENT_BUS_NAME" \
    --resource LeverOAuthClientSecret="$STACK_NAME/lever-oauth-client" "${queues[@]}" \
    --resource WebhookUrlKeySecret="$STACK_NAME/webhook-url-key" --resource UploadBucket="$STACK_NAME-uploads" \
    --resource RelayDeadLetterQueue="$AWS_ENDPOINT_URL/123456789012/$STACK_NAME-relay-dead-letters" \
    --api HttpApi="$hooks" --api AdminApi="$admin" --api ConnectApi="$connect" --out "$functions"
  export LEVER_BRIDGE_FUNCTIONS="$functions"
  # Each function's IAM role, made in moto from the template's policies, and IAM enforced from here on:
  # `lever-bridge-dev exec-function` gives each function its role's credentials, and a call its role
  # does not allow fails as deployed (tests/local_iam.py). LOCAL_IAM=off makes the roles and leaves
  # moto open.
  roles="$state/roles-$suffix.json"
  iam_flag=--enforce
  [ "${LOCAL_IAM:-on}" = off ] && iam_flag=--no-enforce
  "$venv/bin/python" tests/local_iam.py --functions "$functions" --out "$roles" "$iam_flag"
  export LEVER_BRIDGE_ROLES="$roles"
  echo "==> the template's HTTP APIs on $hooks (webhooks), $admin (admin) and $connect (connect pages)"
  setsid "$dev_tool" gateway --watch "http://127.0.0.1:$watch_port" >"$state/gateway-$suffix.log" 2>&1 &
  pids+=($!)
  wait_for_port "$hooks_port" "the webhook API"
  wait_for_port "$admin_port" "the admin API"
  wait_for_port "$connect_port" "the connect pages' API"
  runner="target.'cfg(all())'.runner=['$root/$dev_tool', 'exec-function']"
  # The template's event source mappings (the table's stream, the push queues), as Lambda runs them.
  echo "==> event source mappings: the table's stream -> relay (the outbox), push queues -> push functions"
  setsid "$dev_tool" mappings --watch "http://127.0.0.1:$watch_port" >"$state/mappings-$suffix.log" 2>&1 &
  pids+=($!)
fi

if [ "$mode" = bench ]; then
  # Each bench's tables go to tests/bench/out/; report.py assembles them with the machine into
  # tests/bench/RESULTS.md and the latency plot (a BENCH_QUICK=1 run writes both into out/ instead).
  out=tests/bench/out
  mkdir -p "$out"
  rm -f "$out"/*.md "$out"/*.json "$out"/*.txt
  push_args=(${BENCH_ARGS:-})
  if [ "${BENCH_QUICK:-}" = 1 ]; then
    push_args+=(--quick)
    results="$out/RESULTS.md" plot="$out/latency.png"
  else
    results=tests/bench/RESULTS.md plot=tests/bench/latency.png
  fi
  echo "==> cargo bench: the receiver in process"
  cargo bench -p lever-bridge-tests --bench webhook | tee "$out/webhook.md"
  echo "==> cargo bench: Rust and Python as Lambda runtimes"
  cargo bench -p lever-bridge-tests --bench runtime
  echo "==> cargo bench: push throughput and transcript drain"
  cargo bench -p lever-bridge-tests --bench push -- "${push_args[@]}" | tee "$out/push.md"
  echo "==> cargo bench: backfill against Lever's limit"
  cargo bench -p lever-bridge-tests --bench sync -- "${push_args[@]}" | tee "$out/sync.md"
  "$venv/bench-py/bin/python" tests/bench/report.py "$out" "$results" "$plot"
elif [ "$mode" = dev ]; then
  token=${DEMO_TOKEN:-demo-signature-token}
  "$dev_tool" tenant demo --token "$token" --api-key demo-key --lever-url "$lever/v1"
  echo
  echo "Webhook URLs of tenant demo (the webhook API, as API Gateway routes them):"
  "$dev_tool" urls demo --url "$hooks"
  echo
  echo "Admin API: $admin/admin/tenants/demo/status (open locally; IAM-authorised when deployed)"
  echo "Admin CLI (the vendor's tool; against a deployed stack it signs with SigV4 and reads the stack's outputs):"
  echo "  target/debug/lever-bridge --url $admin status demo"
  echo "  target/debug/lever-bridge --url $admin users demo"
  echo "Connect pages ($connect): mint a link for the demo tenant and open it in a browser:"
  echo "  target/debug/lever-bridge --url $admin connect-link demo"
  echo "Lever simulator: $lever/v1 (API key demo-key; faults and request log under $lever/_admin)"
  echo
  echo "Send a correctly signed demo webhook (in another terminal):"
  echo "  make demo"
  echo "or: AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL target/debug/lever-bridge-dev send demo candidateStageChange --token $token --url $hooks"
  echo
  echo "The vendor's events (the queue subscribed to the bus) print here as they arrive."
  setsid "$dev_tool" vendor-events &
  pids+=($!)
  echo "==> cargo lambda watch on 127.0.0.1:$watch_port (Ctrl-C stops everything)"
  cargo lambda watch -A 127.0.0.1 -P "$watch_port" --config "$runner"
else
  echo "==> cargo lambda watch on 127.0.0.1:$watch_port"
  setsid cargo lambda watch -A 127.0.0.1 -P "$watch_port" --ignore-changes --config "$runner" >"$state/watch-test.log" 2>&1 &
  pids+=($!)
  wait_for_port "$watch_port" "cargo lambda watch"
  export LEVER_BRIDGE_WATCH_URL="http://127.0.0.1:$watch_port/lambda-url" LEVER_BRIDGE_WATCH_LOG="$state/watch-test.log"
  export LEVER_BRIDGE_SIM_URL="$lever" LEVER_BRIDGE_WEBHOOK_API="$hooks" LEVER_BRIDGE_ADMIN_API="$admin" LEVER_BRIDGE_CONNECT_API="$connect"
  echo "==> the emulator's capacity ledger (tests/moto_server_test.py)"
  "$venv/bin/python" tests/moto_server_test.py
  echo "==> cargo test"
  set +e
  # TEST_ARGS narrows the run while working on something (e.g. `--test e2e_watch`).
  cargo test --workspace --no-fail-fast ${TEST_ARGS:-} 2>&1 | tee "$state/test-output.log"
  rc=${PIPESTATUS[0]}
  set -e
  "$venv/bin/python" tests/local_iam.py --functions "$functions" --check-denials "$MOTO_DENIALS" || rc=1
  # One closing line for the whole run: cargo prints a result line per test binary.
  awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$state/test-output.log"
  exit "$rc"
fi
