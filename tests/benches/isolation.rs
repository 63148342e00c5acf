//! One tenant's trouble against the others' (run by `make fleet`). Push commands of ten tenants go
//! through one push function's queue as the template runs it: batches of ten, at most
//! `PushMaxConcurrency` (2) instances, each carrying its batch's commands `BATCH_CONCURRENCY` at
//! once until all are done. One tenant's Lever key sits at 429s while that tenant sends a storm of
//! commands; the other nine send theirs steadily. Their latency from sent to done, beside the same
//! load without the storm, says whether one tenant's storm is the others' outage.

use lever_bridge::clock::SystemClock;
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::push::command::PushKind;
use lever_bridge::push::{BATCH_CONCURRENCY, Outcome, Pusher};
use lever_bridge::secrets::{InMemorySecrets, Redacted, SecretStore, TenantSecret};
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
        secrets
            .save(
                &tenant,
                &TenantSecret {
                    api_key: Some(Redacted::new(&key)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
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
