//! The candidateStageChange webhook as a real Lambda runtime: the release Rust function and the
//! Python reference (`tests/bench/reference`, Powertools) each run as a process against a minimal
//! Lambda Runtime API served here, and talk to the local emulator through a proxy that counts
//! every AWS request by service and operation.
//!
//! Measured for each: cold start (process spawn to the first answered event, and its peak memory)
//! over `BENCH_SPAWNS` spawns; then on one instance `BENCH_EVENTS` first deliveries and
//! `BENCH_DUPLICATES` redeliveries, each timed from handing the event out on `/next` to receiving
//! the response, with the process's CPU time (utime + stime) and AWS requests over the run.
//! `BENCH_QUICK=1` makes a short run for checking. Writes `tests/bench/out/runtime.json` and the
//! raw latency samples; `tests/bench/report.py` turns them into `tests/bench/RESULTS.md`.
//! Run with `make bench` (it starts the emulator and builds the function and the Python venv).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

const TENANT: &str = "bench";
const FUNCTION: &str = "webhook-candidate-stage-change";
/// The deadline handed to each invocation, as a function timeout would set it.
const TIMEOUT_MS: i64 = 30_000;
/// Events sent to a fresh instance before a warm run is measured.
const WARM_UP: usize = 50;

// ---------------------------------------------------------------------------------------------
// The counting proxy in front of the emulator.

/// Requests seen, by "<service> <operation>".
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
    /// What was counted since `before`.
    fn since(&self, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        self.snapshot()
            .into_iter()
            .map(|(k, v)| {
                let d = v - before.get(&k).copied().unwrap_or(0);
                (k, d)
            })
            .filter(|(_, v)| *v > 0)
            .collect()
    }
}

/// The service and operation of an AWS JSON-protocol request: `X-Amz-Target` names both; the
/// service is otherwise read from the SigV4 credential scope.
fn operation(headers: &HeaderMap, path: &str) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some((prefix, op)) = header("x-amz-target").and_then(|t| t.split_once('.')) {
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "DynamoDB",
            "AWSEvents" => "EventBridge",
            "secretsmanager" => "SecretsManager",
            p => p,
        };
        return format!("{service} {op}");
    }
    let scope = header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown");
    format!("{scope} {path}")
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    counts: Counts,
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    *p.counts
        .0
        .lock()
        .unwrap()
        .entry(operation(&parts.headers, parts.uri.path()))
        .or_default() += 1;
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    // Item writes inside transactions, to weigh DynamoDB's write units.
    if parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        == Some("DynamoDB_20120810.TransactWriteItems")
    {
        let items = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b["TransactItems"].as_array().map(Vec::len))
            .unwrap_or(0);
        *p.counts
            .0
            .lock()
            .unwrap()
            .entry("DynamoDB TransactWriteItems (items)".into())
            .or_default() += items as u64;
    }
    let mut out = p
        .client
        .request(parts.method, format!("{}{path}", p.upstream))
        .body(body);
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            out = out.header(k, v);
        }
    }
    match out.send().await {
        Ok(res) => {
            let mut answer = Response::builder().status(res.status());
            for (k, v) in res.headers() {
                if !matches!(
                    k.as_str(),
                    "content-length" | "connection" | "transfer-encoding"
                ) {
                    answer = answer.header(k, v);
                }
            }
            let bytes = res.bytes().await.unwrap_or_default();
            answer.body(Body::from(bytes)).unwrap()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn serve(router: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

async fn start_proxy(upstream: &str) -> (u16, Counts) {
    let counts = Counts::default();
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        client: reqwest::Client::new(),
        counts: counts.clone(),
    });
    (
        serve(Router::new().fallback(forward).with_state(proxy)).await,
        counts,
    )
}

// ---------------------------------------------------------------------------------------------
// The Lambda Runtime API (2018-06-01), as Lambda serves it to one instance.

/// What the function answered, and when.
struct Answer {
    ok: bool,
    body: String,
    /// From handing the event out on `/next` to receiving the response.
    latency: Duration,
    handed_out: Instant,
    answered: Instant,
}

struct Invocation {
    id: String,
    event: String,
    done: oneshot::Sender<Answer>,
}

struct RuntimeApi {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    in_flight: Mutex<HashMap<String, (Instant, oneshot::Sender<Answer>)>>,
    init_error: Mutex<Option<String>>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    let Some(inv) = api.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = now_ms() + TIMEOUT_MS;
    let headers = [
        ("lambda-runtime-aws-request-id", inv.id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            format!("arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"),
        ),
        (
            "lambda-runtime-trace-id",
            format!(
                "Root=1-{:08x}-{};Parent={};Sampled=0",
                now_ms() / 1000,
                &random_hex(12),
                random_hex(8)
            ),
        ),
        ("content-type", "application/json".to_string()),
    ];
    let mut res = Response::builder().status(StatusCode::OK);
    for (k, v) in headers {
        res = res.header(k, v);
    }
    let res = res.body(Body::from(inv.event)).unwrap();
    api.in_flight
        .lock()
        .unwrap()
        .insert(inv.id, (Instant::now(), inv.done));
    res
}

fn answered(api: &RuntimeApi, id: &str, ok: bool, body: Bytes) -> Response {
    let answered = Instant::now();
    let Some((handed_out, done)) = api.in_flight.lock().unwrap().remove(id) else {
        return (StatusCode::BAD_REQUEST, "unknown request id").into_response();
    };
    let _ = done.send(Answer {
        ok,
        body: String::from_utf8_lossy(&body).into_owned(),
        latency: answered - handed_out,
        handed_out,
        answered,
    });
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

async fn response(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answered(&api, &id, true, body)
}

async fn error(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answered(&api, &id, false, body)
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> Response {
    *api.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

// ---------------------------------------------------------------------------------------------
// One function instance: a process and its Runtime API.

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Rust,
    Python,
    /// tests/src/bin/lever-bridge-floor.rs: one HMAC check and one DynamoDB write, nothing else.
    Floor,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Rust => "rust",
            Impl::Python => "python",
            Impl::Floor => "floor",
        }
    }
}

/// Lambda's CPU for 1,769 MB is one vCPU, in proportion below it.
const FULL_CPU_MB: f64 = 1769.0;
const MEMORY_MB: f64 = 128.0;

/// A CPU cgroup whose quota is `MEMORY_MB` / `FULL_CPU_MB` of one CPU (v2's `cpu.max`, or v1's
/// `cpu.cfs_quota_us`): its `cgroup.procs` file, or why there is none (it needs root).
fn lambda_share_cgroup() -> Result<PathBuf, String> {
    let period = 100_000u64;
    let quota = (period as f64 * MEMORY_MB / FULL_CPU_MB).round() as u64;
    let name = format!("lever-bridge-bench-{MEMORY_MB}mb");
    let v2 = PathBuf::from("/sys/fs/cgroup/cgroup.controllers");
    let (dir, files) = if v2.exists() {
        let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu");
        (
            PathBuf::from("/sys/fs/cgroup").join(&name),
            vec![("cpu.max", format!("{quota} {period}"))],
        )
    } else {
        (
            PathBuf::from("/sys/fs/cgroup/cpu").join(&name),
            vec![
                ("cpu.cfs_period_us", period.to_string()),
                ("cpu.cfs_quota_us", quota.to_string()),
            ],
        )
    };
    let fail = |e: std::io::Error| format!("cannot make the CPU cgroup {}: {e}", dir.display());
    if !dir.exists() {
        std::fs::create_dir(&dir).map_err(fail)?;
    }
    for (file, value) in files {
        std::fs::write(dir.join(file), value).map_err(fail)?;
    }
    Ok(dir.join("cgroup.procs"))
}

#[derive(Clone)]
struct Setup {
    /// The emulator's process, whose CPU per event is reported beside the function's.
    moto_pid: u32,
    root: PathBuf,
    out: PathBuf,
    rust_bin: PathBuf,
    floor_bin: PathBuf,
    python: PathBuf,
    /// Where each spawned function joins a CPU cgroup of Lambda's share at 128 MB.
    cgroup: Option<PathBuf>,
    proxy_url: String,
    table: String,
    idempotency_table: String,
    bus: String,
    secret_prefix: String,
    signature_token: String,
}

struct Instance {
    child: Child,
    api: Arc<RuntimeApi>,
    invoke: mpsc::UnboundedSender<Invocation>,
    spawned: Instant,
    name: &'static str,
}

impl Instance {
    async fn spawn(which: Impl, s: &Setup, log: &std::fs::File) -> Instance {
        let (invoke, queue) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            queue: tokio::sync::Mutex::new(queue),
            in_flight: Mutex::default(),
            init_error: Mutex::default(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let port = serve(router).await;
        let (program, args): (&std::path::Path, &[&str]) = match which {
            Impl::Rust => (&s.rust_bin, &[]),
            Impl::Floor => (&s.floor_bin, &[]),
            Impl::Python => (&s.python, &["-m", "awslambdaric", "handler.handler"]),
        };
        // Under the share the process joins the cgroup before it execs the function (same pid).
        let mut cmd = match &s.cgroup {
            Some(procs) => {
                let mut c = Command::new("sh");
                c.args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
                    .arg(procs)
                    .arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .current_dir(s.root.join("tests/bench/reference"));
        let name = match which {
            Impl::Rust => FUNCTION,
            Impl::Python => "webhook-candidate-stage-change-python",
            Impl::Floor => "webhook-floor",
        };
        cmd.env_clear()
            .envs([
                ("PATH", std::env::var("PATH").unwrap_or_default()),
                ("LANG", "C.UTF-8".into()),
                ("TZ", ":UTC".into()),
                ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
                ("AWS_LAMBDA_FUNCTION_NAME", name.into()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
                ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
                (
                    "AWS_LAMBDA_LOG_STREAM_NAME",
                    format!("bench/{}", random_hex(8)),
                ),
                ("AWS_LAMBDA_LOG_LEVEL", "info".into()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_DEFAULT_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", "local".into()),
                ("AWS_SECRET_ACCESS_KEY", "local".into()),
                ("AWS_ENDPOINT_URL", s.proxy_url.clone()),
                ("STACK_NAME", "lever-bridge-bench".into()),
                ("TABLE_NAME", s.table.clone()),
                ("EVENT_BUS_NAME", s.bus.clone()),
                ("SECRET_PREFIX", s.secret_prefix.clone()),
                (
                    "WEBHOOK_URL_KEY_SECRET_NAME",
                    format!("{}url-key", s.secret_prefix),
                ),
                ("IDEMPOTENCY_TABLE_NAME", s.idempotency_table.clone()),
                ("FLOOR_SIGNATURE_TOKEN", s.signature_token.clone()),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log.try_clone().unwrap());
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start the {} function: {e}", which.name()));
        Instance {
            child,
            api,
            invoke,
            spawned,
            name: which.name(),
        }
    }

    /// Hands `event` to the instance and waits for its answer.
    async fn invoke(&mut self, event: String) -> Answer {
        let (done, mut answer) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        self.invoke
            .send(Invocation { id, event, done })
            .expect("the runtime API is up");
        loop {
            tokio::select! {
                a = &mut answer => return a.expect("answered"),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if let Some(e) = self.api.init_error.lock().unwrap().as_ref() {
                        panic!("the {} function failed to start: {e}", self.name);
                    }
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!("the {} function exited ({status}); see tests/bench/out/", self.name);
                    }
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process of ours, stopped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The emulator for this bench: moto with transactions at a cost independent of the table's size
/// (`tests/moto_server.py` says why), on a free port. Answers its URL.
fn start_moto(root: &std::path::Path, out: &std::path::Path) -> (Process, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let python = std::env::var("BENCH_MOTO_PYTHON")
        .map_or_else(|_| root.join(".venv/bin/python"), PathBuf::from);
    let log = std::fs::File::create(out.join("moto.log")).unwrap();
    let child = Command::new(&python)
        .arg(root.join("tests/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start moto with {}: {e}", python.display()));
    let moto = Process(child);
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (moto, format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto did not start; see tests/bench/out/moto.log");
}

/// Peak resident memory (VmHWM) in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// User and system CPU time of the process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // After the command name: state is field 3, utime 14 and stime 15.
    (fields[11].parse().unwrap(), fields[12].parse().unwrap())
}

/// Voluntary and involuntary context switches of the process's threads.
fn context_switches(pid: u32) -> (u64, u64) {
    let (mut voluntary, mut involuntary) = (0, 0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status =
            std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        for line in status.lines() {
            let n = |l: &str| l.trim().parse::<u64>().unwrap_or(0);
            if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                voluntary += n(v);
            } else if let Some(v) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                involuntary += n(v);
            }
        }
    }
    (voluntary, involuntary)
}

/// Busy and total CPU ticks of the whole machine (all cores), from /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().sum();
    // idle and iowait
    (total - ticks[3] - ticks.get(4).copied().unwrap_or(0), total)
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

fn clock_ticks_per_second() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Events.

/// An API Gateway HTTP API (payload 2.0) request carrying a signed first delivery, and its body.
fn api_gateway_event(body: &[u8]) -> String {
    let path = format!(
        "/webhooks/{TENANT}/{}/candidateStageChange",
        url_key(TENANT)
    );
    let now = now_ms();
    json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/{tenantId}/{urlKey}/candidateStageChange",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "Lever-Webhooks",
                    "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "domainPrefix": "a1b2c3d4e5",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "52.10.20.30",
                     "userAgent": "Lever-Webhooks"},
            "requestId": random_hex(8), "routeKey": "POST /webhooks/{tenantId}/{urlKey}/candidateStageChange",
            "stage": "$default", "time": "", "timeEpoch": now
        },
        "pathParameters": {"tenantId": TENANT, "urlKey": url_key(TENANT)},
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false
    })
    .to_string()
}

/// `n` first deliveries: each a new Lever token, newer than the last change of its candidate.
fn deliveries(s: &Setup, run: &str, n: usize) -> Vec<String> {
    let base = now_ms() - 3_600_000;
    (0..n)
        .map(|i| {
            let data = sample_data(
                EventKind::CandidateStageChange,
                &format!("opp-{run}-{}", i % 1000),
            );
            let (_, body) = delivery(
                EventKind::CandidateStageChange,
                &s.signature_token,
                base + i as i64,
                data,
            );
            api_gateway_event(&body)
        })
        .collect()
}

/// "<status code> <status>" of a webhook answer, e.g. "200 accepted".
fn outcome(a: &Answer) -> String {
    if !a.ok {
        return "invocation error".into();
    }
    let res: Value = serde_json::from_str(&a.body).unwrap_or_default();
    let body: Value = res["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    let status = body["status"].as_str().or(body["error"].as_str());
    format!("{} {}", res["statusCode"], status.unwrap_or("?"))
}

// ---------------------------------------------------------------------------------------------
// Measurements.

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(samples: &[f64]) -> Value {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    json!({
        "n": s.len(),
        "min": s[0],
        "p50": percentile(&s, 0.5),
        "p90": percentile(&s, 0.9),
        "p99": percentile(&s, 0.99),
        "max": s[s.len() - 1],
        "mean": s.iter().sum::<f64>() / s.len() as f64,
    })
}

fn count(outcomes: &mut BTreeMap<String, u64>, a: &Answer) {
    *outcomes.entry(outcome(a)).or_default() += 1;
}

/// `spawns` cold starts, each a new process answering one first delivery.
/// The name of a run: the implementation, and the CPU share it ran under.
fn label(which: Impl, s: &Setup) -> String {
    match s.cgroup {
        Some(_) => format!("{}@{MEMORY_MB}mb", which.name()),
        None => which.name().to_string(),
    }
}

async fn cold(which: Impl, s: &Setup, counts: &Counts, spawns: usize) -> Value {
    let log = std::fs::File::create(s.out.join(format!("{}-cold.log", label(which, s)))).unwrap();
    let (mut total, mut init, mut first, mut peak) = (vec![], vec![], vec![], vec![]);
    let mut outcomes = BTreeMap::new();
    let before = counts.snapshot();
    for i in 0..spawns {
        let event = deliveries(s, &format!("cold-{}-{i}", label(which, s)), 1).remove(0);
        let mut instance = Instance::spawn(which, s, &log).await;
        let a = instance.invoke(event).await;
        total.push(ms(a.answered - instance.spawned));
        init.push(ms(a.handed_out - instance.spawned));
        first.push(ms(a.latency));
        peak.push(peak_kib(instance.pid()) as f64);
        count(&mut outcomes, &a);
        drop(instance);
    }
    let requests = counts.since(&before);
    println!(
        "{} cold start over {spawns} spawns: p50 {:.1} ms (init {:.1} ms + first event {:.1} ms), peak memory p50 {:.0} KiB",
        label(which, s),
        percentile(&sorted(&total), 0.5),
        percentile(&sorted(&init), 0.5),
        percentile(&sorted(&first), 0.5),
        percentile(&sorted(&peak), 0.5)
    );
    json!({
        "spawns": spawns,
        "total_ms": summary(&total),
        "init_ms": summary(&init),
        "first_event_ms": summary(&first),
        "peak_kib": summary(&peak),
        "samples_total_ms": total,
        "outcomes": outcomes,
        "requests": requests,
    })
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// One run of `events` on a warm instance: latencies, CPU, requests.
async fn run(
    s: &Setup,
    instance: &mut Instance,
    events: Vec<String>,
    counts: &Counts,
    ticks_per_s: u64,
) -> (Value, Vec<f64>) {
    let n = events.len();
    let before = counts.snapshot();
    let (user0, system0) = cpu_ticks(instance.pid());
    let (vol0, invol0) = context_switches(instance.pid());
    let (busy0, total0) = machine_ticks();
    let (moto_user0, moto_system0) = cpu_ticks(s.moto_pid);
    let (own_user0, own_system0) = cpu_ticks(std::process::id());
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    let mut outcomes = BTreeMap::new();
    for event in events {
        let a = instance.invoke(event).await;
        latencies.push(ms(a.latency));
        count(&mut outcomes, &a);
    }
    let wall = started.elapsed().as_secs_f64();
    let (user1, system1) = cpu_ticks(instance.pid());
    let (vol1, invol1) = context_switches(instance.pid());
    let (busy1, total1) = machine_ticks();
    let (moto_user1, moto_system1) = cpu_ticks(s.moto_pid);
    let (own_user1, own_system1) = cpu_ticks(std::process::id());
    let moto_ticks = moto_user1 - moto_user0 + moto_system1 - moto_system0;
    let own_ticks = own_user1 - own_user0 + own_system1 - own_system0;
    let tick_ms = 1000.0 / ticks_per_s as f64;
    let (user_ms, system_ms) = (
        (user1 - user0) as f64 * tick_ms,
        (system1 - system0) as f64 * tick_ms,
    );
    let cpu_ms = user_ms + system_ms;
    let stats = json!({
        "events": n,
        "latency_ms": summary(&latencies),
        "wall_s": wall,
        "events_per_s": n as f64 / wall,
        "cpu_ms": cpu_ms,
        "cpu_ms_per_event": cpu_ms / n as f64,
        // Lambda bills each invocation's duration rounded up to the millisecond.
        "billed_ms_per_event": latencies.iter().map(|l| l.ceil()).sum::<f64>() / n as f64,
        "user_ms_per_event": user_ms / n as f64,
        "system_ms_per_event": system_ms / n as f64,
        "voluntary_switches_per_event": (vol1 - vol0) as f64 / n as f64,
        "involuntary_switches_per_event": (invol1 - invol0) as f64 / n as f64,
        "threads": threads(instance.pid()),
        // How busy the machine was (all processes, all cores) and this process's share of it.
        "machine_busy_share": (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64,
        "process_share_of_busy": (user1 - user0 + system1 - system0) as f64 / (busy1 - busy0).max(1) as f64,
        // The emulator's and the harness's (proxy, runtime API) CPU over the same run.
        "moto_cpu_ms_per_event": moto_ticks as f64 * tick_ms / n as f64,
        "harness_cpu_ms_per_event": own_ticks as f64 * tick_ms / n as f64,
        // Busy time of everything else on the machine (other work running at the same time).
        "other_cpu_ms_per_event": (busy1 - busy0).saturating_sub(user1 - user0 + system1 - system0 + moto_ticks + own_ticks) as f64 * tick_ms / n as f64,
        "outcomes": outcomes,
        "requests": counts.since(&before),
        "peak_kib": peak_kib(instance.pid()),
    });
    (stats, latencies)
}

async fn warm(
    which: Impl,
    s: &Setup,
    counts: &Counts,
    events: usize,
    duplicates: usize,
    ticks_per_s: u64,
) -> Value {
    let log = std::fs::File::create(s.out.join(format!("{}-warm.log", label(which, s)))).unwrap();
    let mut instance = Instance::spawn(which, s, &log).await;
    for event in deliveries(s, &format!("warmup-{}", label(which, s)), WARM_UP) {
        let a = instance.invoke(event).await;
        assert!(
            outcome(&a).starts_with("200"),
            "{} warm-up: {}",
            which.name(),
            a.body
        );
    }
    let bodies = deliveries(s, &format!("warm-{}", label(which, s)), events);
    let replay: Vec<String> = bodies.iter().take(duplicates).cloned().collect();
    let (first, latencies) = run(s, &mut instance, bodies, counts, ticks_per_s).await;
    let (dup, _) = run(s, &mut instance, replay, counts, ticks_per_s).await;
    drop(instance);
    let samples: String = latencies.iter().map(|l| format!("{l:.4}\n")).collect();
    std::fs::write(
        s.out.join(format!("warm-latency-{}.txt", label(which, s))),
        samples,
    )
    .unwrap();
    println!(
        "{} warm, {events} first deliveries: p50 {:.2} ms, p99 {:.2} ms, CPU {:.3} ms/event",
        label(which, s),
        first["latency_ms"]["p50"],
        first["latency_ms"]["p99"],
        first["cpu_ms_per_event"]
    );
    json!({"first": first, "duplicate": dup})
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let spawns = env_usize("BENCH_SPAWNS", if quick { 3 } else { 20 });
    let events = env_usize("BENCH_EVENTS", if quick { 300 } else { 10_000 });
    let duplicates = env_usize("BENCH_DUPLICATES", if quick { 100 } else { 1_000 }).min(events);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = root.join("tests/bench/out");
    std::fs::create_dir_all(&out).unwrap();
    let rust_bin = std::env::var("BENCH_RUST_BIN").map_or_else(
        |_| root.join("target/release").join(FUNCTION),
        PathBuf::from,
    );
    let floor_bin = std::env::var("BENCH_FLOOR_BIN").map_or_else(
        |_| root.join("target/release/lever-bridge-floor"),
        PathBuf::from,
    );
    let python = std::env::var("BENCH_PYTHON")
        .map_or_else(|_| root.join(".venv/bench-py/bin/python"), PathBuf::from);
    assert!(
        rust_bin.exists(),
        "{} is missing: build it with `cargo build --release --bin {FUNCTION}`",
        rust_bin.display()
    );
    assert!(
        floor_bin.exists(),
        "{} is missing: build it with `cargo build --release -p lever-bridge-tests --bin lever-bridge-floor`",
        floor_bin.display()
    );
    // BENCH_ONLY=rust,floor runs those alone (names as in runtime.json, without the share).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let runs = |which: Impl| only.is_empty() || only.split(',').any(|o| o == which.name());
    assert!(
        !runs(Impl::Python) || python.exists(),
        "{} is missing: `make bench` creates the venv",
        python.display()
    );

    // The same tenant setup as the local stack: a table, the bus, the tenant's record and secret.
    let (moto, upstream) = start_moto(&root, &out);
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&upstream)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .load()
        .await;
    let (_, table) = fresh_table(&aws).await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let idempotency_table = unique("idempotency");
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    ddb.create_table()
        .table_name(&idempotency_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("idempotency table");
    let bus = unique("bus");
    aws_sdk_eventbridge::Client::new(&aws)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("bus");
    let secret_prefix = format!("{}/tenants/", unique("bench"));
    let signature_token = random_hex(24);
    create_tenant(
        &aws,
        &table,
        &secret_prefix,
        TENANT,
        &secret_for_all(&signature_token),
        "https://api.lever.co/v1",
    )
    .await;
    // The webhook URL keys' secret, read by the function at cold start.
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("{secret_prefix}url-key"))
        .secret_string(URL_KEY_SECRET)
        .send()
        .await
        .expect("URL key secret");

    let (proxy_port, counts) = start_proxy(&upstream).await;
    let setup = Setup {
        moto_pid: moto.0.id(),
        out: out.clone(),
        rust_bin: rust_bin.clone(),
        floor_bin,
        python: python.clone(),
        cgroup: None,
        root,
        proxy_url: format!("http://127.0.0.1:{proxy_port}"),
        table,
        idempotency_table,
        bus,
        secret_prefix,
        signature_token,
    };
    let ticks_per_s = clock_ticks_per_second();
    println!(
        "candidateStageChange as a Lambda runtime: {spawns} cold starts, {events} warm first deliveries and {duplicates} redeliveries each"
    );
    let mut results = serde_json::Map::new();
    for which in [Impl::Rust, Impl::Python] {
        if !runs(which) {
            continue;
        }
        let c = cold(which, &setup, &counts, spawns).await;
        let w = warm(which, &setup, &counts, events, duplicates, ticks_per_s).await;
        results.insert(which.name().into(), json!({"cold": c, "warm": w}));
    }
    // The floor, then the Rust function and the floor at Lambda's CPU share for 128 MB.
    let mut more = vec![(Impl::Floor, setup.clone())];
    let share = lambda_share_cgroup();
    match &share {
        Ok(procs) => {
            for which in [Impl::Rust, Impl::Floor] {
                let cgroup = Some(procs.clone());
                more.push((
                    which,
                    Setup {
                        cgroup,
                        ..setup.clone()
                    },
                ));
            }
        }
        Err(e) => println!("not measured at Lambda's CPU share: {e}"),
    }
    for (which, s) in more {
        if !runs(which) {
            continue;
        }
        let c = cold(which, &s, &counts, spawns).await;
        let w = warm(which, &s, &counts, events, duplicates, ticks_per_s).await;
        results.insert(label(which, &s), json!({"cold": c, "warm": w}));
    }
    // The webhook function's CPU per first delivery as a multiple of the floor's.
    let cpu = |run: &str| {
        results
            .get(run)
            .and_then(|r| r["warm"]["first"]["cpu_ms_per_event"].as_f64())
    };
    let mut multiple = serde_json::Map::new();
    for (rust, floor) in [("rust", "floor"), ("rust@128mb", "floor@128mb")] {
        if let (Some(r), Some(f)) = (cpu(rust), cpu(floor)) {
            println!(
                "{rust}: {r:.3} ms of CPU per first delivery, {:.1} times the floor's {f:.3} ms",
                r / f
            );
            multiple.insert(rust.into(), json!(r / f));
        }
    }
    let report = json!({
        "quick": quick,
        "spawns": spawns,
        "events": events,
        "duplicates": duplicates,
        "warm_up_events": WARM_UP,
        "clock_ticks_per_s": ticks_per_s,
        "rust_binary": rust_bin.display().to_string(),
        "rust_binary_bytes": std::fs::metadata(&rust_bin).map(|m| m.len()).unwrap_or(0),
        "python": python.display().to_string(),
        "results": results,
        "cpu_multiple_of_floor": multiple,
        "cpu_share": share.as_ref().map_or_else(|e| json!({"error": e}), |_| json!({"memory_mb": MEMORY_MB, "of_one_cpu": MEMORY_MB / FULL_CPU_MB})),
    });
    std::fs::write(
        out.join("runtime.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    println!("wrote {}", out.join("runtime.json").display());
}
