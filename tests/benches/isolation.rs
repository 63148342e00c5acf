//! One tenant's trouble against the others' (run by `make fleet`). Push commands of ten tenants go
//! through one push function's queue as the template runs it: batches of ten, at most
//! `PushMaxConcurrency` (2) instances, each carrying its batch's commands `BATCH_CONCURRENCY` at
//! once until all are done. One tenant's Lever key sits at 429s while that tenant sends a storm of
//! commands; the other nine send theirs steadily. Their latency from sent to done, beside the same
//! load without the storm, says whether one tenant's storm is the others' outage.
//!
//! Then the webhook receiver on DynamoDB in moto (when `AWS_ENDPOINT_URL` is set): one tenant's
//! 1,000 deliveries sent again at once (Lever re-running them) beside another tenant's deliveries one
//! at a time; the other's latency with and without, and (with `MOTO_CAPACITY_LEDGER`) the table and
//! index partitions both wrote, where one tenant's writes could throttle the other's in DynamoDB.

use lever_bridge::clock::SystemClock;
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::push::command::PushKind;
use lever_bridge::push::{BATCH_CONCURRENCY, Outcome, Pusher};
use lever_bridge::secrets::{InMemorySecrets, SecretStore};
use lever_bridge::store::TenantStore;
use lever_bridge::store::memory::InMemoryStore;
use lever_bridge_tests::simulator::{Fault, KeyPerms, NewOpportunity, SimConfig, Simulator};
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The template's `PushMaxConcurrency` default and the push function's timeout.
const INSTANCES: usize = 2;
const TIMEOUT: Duration = Duration::from_secs(60);
const BATCH: usize = 10;
const OTHERS: usize = 9;
/// Each other tenant's commands a second, and for how long.
const OTHERS_RATE: f64 = 2.0;
const SECONDS: u64 = 20;
/// The stuck tenant's storm, sent at once at the start.
const STORM: usize = 200;

/// The queue: what was sent and when, in order; SQS's visibility timeout (360 s) outlasts the run,
/// so a command given back is counted, not seen again.
#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<(Value, Instant)>>,
    done: Mutex<Vec<(String, Duration)>>,
    given_back: Mutex<usize>,
}

#[tokio::main]
async fn main() {
    println!(
        "### One tenant at Lever's 429s, the others' pushes\n\n{OTHERS} tenants send {OTHERS_RATE} note commands a second each for {SECONDS} s through one push queue ({INSTANCES} instances, batches of {BATCH}, {BATCH_CONCURRENCY} commands of a batch at once, as the template has it); in the storm a tenant whose Lever key answers every request with 429 sends {STORM} at the start. In process, the in-memory store, the simulator's Lever.\n"
    );
    println!(
        "| run | the others' commands done | the others' latency p50 / p99 / max, sent to done | the stuck tenant's commands given back to the queue | Lever requests of the stuck tenant |\n|---|---|---|---|---|"
    );
    for storm in [false, true] {
        run(storm).await;
    }
    if std::env::var("AWS_ENDPOINT_URL").is_ok() {
        webhooks().await;
    }
}

/// Deliveries of the other tenant measured one at a time, and the stuck tenant's re-run.
const MEASURED: usize = 200;
const RERUN: usize = 1000;
const RERUN_IN_FLIGHT: usize = 50;

async fn webhooks() {
    use lever_bridge::clock::SystemClock;
    use lever_bridge::receiver::Receiver;
    use lever_bridge::secrets::{CachedSecrets, Parts, SecretsManagerStore};
    use lever_bridge::store::dynamo::DynamoStore;
    use lever_bridge::webhook::EventKind;
    let aws = aws().await;
    let (_, table) = fresh_table(&aws).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &table);
    store.warm_up().await;
    let prefix = format!("{}/", unique("iso"));
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    let kind = EventKind::CandidateStageChange;
    let mut tokens = HashMap::new();
    for tenant in ["storm", "calm"] {
        store
            .put_tenant(&tenant_record(tenant, "http://127.0.0.1:9", None))
            .await
            .unwrap();
        let token = random_hex(24);
        SecretsManagerStore::new(sm.clone(), &prefix, Parts::ALL)
            .save(tenant, &secret_for_all(&token))
            .await
            .unwrap();
        tokens.insert(tenant, token);
    }
    let receiver = Arc::new(Receiver::new(
        kind,
        store.clone(),
        CachedSecrets::new(
            Arc::new(SecretsManagerStore::new(
                sm.clone(),
                &prefix,
                Parts::WEBHOOKS,
            )),
            SystemClock,
            300_000,
        ),
        SystemClock,
        url_keys(),
    ));
    let body = |tenant: &str, i: usize| {
        let opp = format!("{tenant}-opp-{}", i % 100);
        delivery(
            kind,
            &tokens[tenant],
            now_ms() + i as i64,
            sample_data(kind, &opp),
        )
        .1
    };
    let storm: Vec<Vec<u8>> = (0..RERUN).map(|i| body("storm", i)).collect();
    // Lever's first run of them, before anything is measured.
    for b in &storm {
        let r = receiver.receive("storm", &url_key("storm"), b).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let ledger = std::env::var("MOTO_CAPACITY_LEDGER").ok();
    let ledger_len = || {
        ledger
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    };
    println!(
        "\n### One tenant's webhooks re-run, the others'\n\nThe `candidateStageChange` receiver on DynamoDB and Secrets Manager in moto: one tenant's {RERUN} deliveries sent again, {RERUN_IN_FLIGHT} at a time (Lever re-running them), while another tenant's {MEASURED} deliveries arrive one at a time. In AWS each delivery is its own invocation: what the two tenants share is the table, so the partitions both wrote are counted (capacity ledger). Here both share one emulator process, whose own queueing is part of the latency.\n"
    );
    println!(
        "| run | the other tenant's latency p50 / p99 / max | re-run deliveries answered 200 (duplicates) | table and index partitions both tenants wrote |\n|---|---|---|---|"
    );
    for rerun in [false, true] {
        let from = ledger_len();
        let calm: Vec<Vec<u8>> = (0..MEASURED)
            .map(|i| body("calm", i + if rerun { MEASURED } else { 0 }))
            .collect();
        // One task, the two at once: the receiver's futures are not Send, and both wait on the emulator.
        let storming = async {
            if !rerun {
                return 0;
            }
            let answers =
                futures::StreamExt::collect::<Vec<_>>(futures::StreamExt::buffer_unordered(
                    futures::stream::iter(storm.iter().map(|b| {
                        let receiver = receiver.clone();
                        async move { receiver.receive("storm", &url_key("storm"), b).await.status }
                    })),
                    RERUN_IN_FLIGHT,
                ))
                .await;
            answers.iter().filter(|s| **s == 200).count()
        };
        let measuring = async {
            let mut latencies = Vec::new();
            for b in &calm {
                let started = Instant::now();
                let r = receiver.receive("calm", &url_key("calm"), b).await;
                assert_eq!(r.status, 200, "{r:?}");
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        };
        let (answered, mut latencies) = futures::join!(storming, measuring);
        latencies.sort_by(f64::total_cmp);
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let shared = ledger
            .as_ref()
            .map(|p| shared_partitions(p, from, ledger_len()))
            .map_or("(no ledger)".to_string(), |n| n.to_string());
        println!(
            "| {} | {:.1} / {:.1} / {:.1} ms | {} | {shared} |",
            if rerun {
                "one tenant re-runs 1,000"
            } else {
                "alone"
            },
            at(0.5),
            at(0.99),
            latencies.last().copied().unwrap_or(0.0),
            if rerun {
                format!("{answered} of {RERUN}")
            } else {
                "-".into()
            },
        );
    }
}

/// Partitions (table or index, key) the ledger lines in `from..to` show written for both tenants.
fn shared_partitions(path: &str, from: u64, to: u64) -> usize {
    let text = std::fs::read(path).unwrap_or_default();
    let lines =
        String::from_utf8_lossy(&text[from as usize..(to as usize).min(text.len())]).to_string();
    let mut writers: HashMap<(String, String), std::collections::BTreeSet<&str>> = HashMap::new();
    for line in lines.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for p in v["parts"].as_array().into_iter().flatten() {
            if p[0] != "w" {
                continue;
            }
            let pk = p[2].as_str().unwrap_or("").to_string();
            let who = if pk.contains("storm") {
                "storm"
            } else if pk.contains("calm") {
                "calm"
            } else {
                // A partition with no tenant in its key is written for whoever wrote it.
                if line.contains("storm") {
                    "storm"
                } else {
                    "calm"
                }
            };
            writers
                .entry((p[1].as_str().unwrap_or("").to_string(), pk))
                .or_default()
                .insert(who);
        }
    }
    writers.values().filter(|w| w.len() > 1).count()
}

async fn run(storm: bool) {
    let store = InMemoryStore::default();
    let secrets = Arc::new(InMemorySecrets::default());
    let healthy = Simulator::start(SimConfig::default()).await;
    let stuck = Simulator::start(SimConfig::default()).await;
    // Another integration on the customer's account holds the key at its limit.
    stuck.set_random_faults(1.0, vec![Fault::Status(429)], 7);
    let lever = Arc::new(HttpLever::new(
        RateLimiter::new(10.0, 20),
        RetryPolicy::default(),
    ));
    let pusher = Arc::new(Pusher::new(
        PushKind::Note,
        lever,
        store.clone(),
        secrets.clone(),
        SystemClock,
    ));
    let mut opportunity = HashMap::new();
    for (t, sim) in std::iter::once(&stuck)
        .chain(std::iter::repeat_n(&healthy, OTHERS))
        .enumerate()
    {
        let key = random_hex(16);
        sim.add_key(&key, KeyPerms::all());
        let tenant = format!("t-{t}");
        let owner = sim.users()[0]["id"].as_str().map(str::to_string);
        store
            .put_tenant(&tenant_record(&tenant, &sim.base_url(), owner.as_deref()))
            .await
            .unwrap();
        secrets.save(&tenant, &api_key_secret(&key)).await.unwrap();
        let opp = sim.add_opportunity(NewOpportunity {
            name: format!("Candidate {t}"),
            ..Default::default()
        });
        opportunity.insert(tenant, opp);
    }
    let queue = Arc::new(Queue::default());
    let command = |tenant: &str, i: usize| json!({"commandId": format!("{tenant}-{i}"), "tenantId": tenant, "opportunityId": opportunity[tenant], "text": format!("Assessment result {i}: 87/100")});
    if storm {
        let mut waiting = queue.waiting.lock().unwrap();
        for i in 0..STORM {
            waiting.push_back((command("t-0", i), Instant::now()));
        }
    }
    let started = Instant::now();
    let sending = {
        let queue = queue.clone();
        let commands: Vec<Vec<Value>> = (1..=OTHERS)
            .map(|t| {
                (0..(OTHERS_RATE * SECONDS as f64) as usize)
                    .map(|i| command(&format!("t-{t}"), i))
                    .collect()
            })
            .collect();
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(1.0 / OTHERS_RATE);
            for i in 0..commands[0].len() {
                tokio::time::sleep_until((started + every * i as u32).into()).await;
                let mut waiting = queue.waiting.lock().unwrap();
                for c in &commands {
                    waiting.push_back((c[i].clone(), Instant::now()));
                }
            }
        })
    };
    let instances: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let (queue, pusher) = (queue.clone(), pusher.clone());
            tokio::spawn(async move {
                loop {
                    let batch: Vec<(Value, Instant)> = {
                        let mut waiting = queue.waiting.lock().unwrap();
                        let n = waiting.len().min(BATCH);
                        waiting.drain(..n).collect()
                    };
                    if batch.is_empty() {
                        if started.elapsed() > Duration::from_secs(SECONDS + 1) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    // One invocation: the batch's commands at once, as push::handle_event runs them.
                    let deadline = Instant::now() + TIMEOUT;
                    let outcomes = futures::StreamExt::collect::<Vec<_>>(
                        futures::StreamExt::buffer_unordered(
                            futures::stream::iter(batch.into_iter().map(|(cmd, sent)| {
                                let pusher = pusher.clone();
                                async move {
                                    let tenant = cmd["tenantId"].as_str().unwrap().to_string();
                                    let outcome = pusher.handle(cmd, deadline).await;
                                    (tenant, sent.elapsed(), outcome)
                                }
                            })),
                            BATCH_CONCURRENCY,
                        ),
                    )
                    .await;
                    for (tenant, latency, outcome) in outcomes {
                        match outcome {
                            Outcome::Done { .. } => {
                                queue.done.lock().unwrap().push((tenant, latency))
                            }
                            o if o.redeliver() => *queue.given_back.lock().unwrap() += 1,
                            o => panic!("{tenant}: {o:?}"),
                        }
                    }
                }
            })
        })
        .collect();
    sending.await.unwrap();
    for i in instances {
        i.await.unwrap();
    }
    let done = queue.done.lock().unwrap();
    let mut others: Vec<f64> = done
        .iter()
        .filter(|(t, _)| t != "t-0")
        .map(|(_, l)| l.as_secs_f64())
        .collect();
    others.sort_by(f64::total_cmp);
    let sent = OTHERS * (OTHERS_RATE * SECONDS as f64) as usize;
    let at = |q: f64| others[((others.len() as f64 * q) as usize).min(others.len() - 1)];
    println!(
        "| {} | {} of {sent} | {:.2} / {:.2} / {:.2} s | {} | {} |",
        if storm {
            "one tenant at 429s sends 200"
        } else {
            "no storm"
        },
        others.len(),
        at(0.5),
        at(0.99),
        others.last().copied().unwrap_or(0.0),
        queue.given_back.lock().unwrap(),
        stuck.requests().len(),
    );
}
