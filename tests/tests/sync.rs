//! Backfill and reconciliation against the simulator: the vendor's view ends equal to Lever's
//! state, missed webhooks are recovered exactly once, a killed backfill resumes without repeating
//! itself, and a webhook newer than a snapshot always wins.

use lever_bridge::clock::{Clock, ManualClock, SystemClock};
use lever_bridge::events::{InMemoryEvents, VendorEvent};
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::receiver::Receiver;
use lever_bridge::secrets::{CachedSecrets, InMemorySecrets, Redacted, SecretStore};
use lever_bridge::store::{SyncMode, SyncStore, TenantStore};
use lever_bridge::sync::snapshot::Snapshot;
use lever_bridge::sync::{SyncConfig, SyncReport, SyncStatus, Syncer};
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::simulator::changes::Change;
use lever_bridge_tests::simulator::{Fault, KeyPerms, SimConfig, Simulator};
use lever_bridge_tests::stream::Mapping;
use lever_bridge_tests::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Sync<S> = Syncer<Arc<HttpLever>, S, Arc<InMemorySecrets>, Arc<ManualClock>>;
type Hook<S> = Receiver<S, Arc<InMemorySecrets>, Arc<ManualClock>>;

const SIGNATURE: &str = "sync-signature-token";

struct Rig<S> {
    sim: Simulator,
    store: S,
    clock: Arc<ManualClock>,
    /// The vendor's bus, fed by the relay from the store's stream.
    events: Arc<InMemoryEvents>,
    mapping: tokio::sync::Mutex<Mapping<S, Arc<InMemoryEvents>, SystemClock>>,
    tenant: String,
    sync: Sync<S>,
    hooks: HashMap<EventKind, Hook<S>>,
}

async fn rig<S: Backend>(opportunities: usize) -> Rig<S> {
    let sim = Simulator::start(SimConfig::default()).await;
    let key = random_hex(16);
    sim.add_key(&key, KeyPerms::all());
    sim.add_opportunities(opportunities);
    let store = S::fresh().await;
    let tenant = unique("sync");
    store
        .put_tenant(&tenant_record(&tenant, &sim.base_url(), None))
        .await
        .unwrap();
    let secrets = Arc::new(InMemorySecrets::default());
    let mut secret = secret_for_all(SIGNATURE);
    secret.api_key = Some(Redacted::new(&key));
    secrets.save(&tenant, &secret).await.unwrap();
    let clock = Arc::new(ManualClock::at(now_ms()));
    let events = Arc::new(InMemoryEvents::default());
    let lever = Arc::new(HttpLever::new(
        RateLimiter::new(10.0, 20),
        RetryPolicy {
            timeout: Duration::from_secs(5),
            ..RetryPolicy::default()
        },
    ));
    let sync = Syncer::new(
        lever,
        store.clone(),
        secrets.clone(),
        clock.clone(),
        SyncConfig::default(),
    );
    let mapping = tokio::sync::Mutex::new(store.mapping(events.clone()).await);
    let hooks = EventKind::ALL
        .iter()
        .map(|k| {
            let cache = CachedSecrets::new(secrets.clone(), clock.clone(), 60_000);
            let hook = Receiver::new(*k, store.clone(), cache, clock.clone(), url_keys());
            (*k, hook)
        })
        .collect();
    Rig {
        sim,
        store,
        clock,
        events,
        mapping,
        tenant,
        sync,
        hooks,
    }
}

impl<S: Backend> Rig<S> {
    /// The candidates' events that reached the vendor's bus once the relay published everything
    /// the stream holds (a finished backfill's own event apart: [`Rig::published`]).
    async fn changes(&self) -> Vec<VendorEvent> {
        self.published()
            .await
            .into_iter()
            .filter(|e| e.opportunity_id.is_some())
            .collect()
    }

    async fn published(&self) -> Vec<VendorEvent> {
        let report = self.mapping.lock().await.run().await;
        assert_eq!(report.failed_at, None, "the relay published everything");
        self.events.events()
    }

    /// The tenant's API key becomes `key` (stored, and read again by the sync's instance).
    async fn use_key(&self, key: &str) {
        let mut secret = secret_for_all(SIGNATURE);
        secret.api_key = Some(Redacted::new(key));
        let secrets = self.sync.tenants.secrets();
        secrets.inner().save(&self.tenant, &secret).await.unwrap();
        secrets.reload(&self.tenant).await.unwrap();
    }

    /// The tenant's key becomes one created without confidential access.
    async fn use_blind_key(&self) {
        let key = random_hex(16);
        self.sim.add_key(
            &key,
            KeyPerms {
                confidential: false,
                ..KeyPerms::all()
            },
        );
        self.use_key(&key).await;
    }

    /// A signed `candidateDeleted` naming a live confidential candidate (recorded as pending);
    /// answers its id.
    async fn forge_deletion_of_a_confidential_candidate(&self) -> String {
        let hidden = self
            .sim
            .opportunity_ids()
            .into_iter()
            .find(|id| self.sim.opportunity(id).unwrap()["confidentiality"] == "confidential")
            .expect("a confidential candidate");
        let (_, forged) = delivery(
            EventKind::CandidateDeleted,
            SIGNATURE,
            self.clock.now_ms(),
            serde_json::json!({ "opportunityId": hidden }),
        );
        let hook = &self.hooks[&EventKind::CandidateDeleted];
        let reply = hook
            .receive(&self.tenant, &url_key(&self.tenant), &forged)
            .await;
        assert_eq!(reply.body["status"], "pending");
        hidden
    }

    async fn run(&self, budget: Duration) -> SyncReport {
        self.sync.run(Instant::now() + budget).await
    }

    async fn backfill(&self) -> SyncReport {
        self.sync.start_backfill(&self.tenant).await.unwrap();
        let report = self.run(Duration::from_secs(300)).await;
        let job = self.store.sync_job(&self.tenant).await.unwrap().unwrap();
        assert!(job.finished_at.is_some(), "backfill finished: {job:?}");
        report
    }

    /// Makes the next reconciliation due and runs it.
    async fn reconcile(&self) -> SyncReport {
        self.clock.advance(SyncConfig::default().interval_ms + 1);
        let report = self.run(Duration::from_secs(300)).await;
        let job = self.store.sync_job(&self.tenant).await.unwrap().unwrap();
        assert_eq!(job.mode, SyncMode::Reconcile);
        assert!(
            job.finished_at.is_some(),
            "reconciliation finished: {job:?}"
        );
        report
    }

    async fn deliver(&self, change: &Change) {
        let (_, body) = delivery(change.kind, SIGNATURE, change.at, change.data.clone());
        let reply = self.hooks[&change.kind]
            .receive(&self.tenant, &url_key(&self.tenant), &body)
            .await;
        assert_eq!(reply.status, 200, "{:?} {reply:?}", change.kind);
    }

    /// The vendor's view of every live opportunity equals Lever's; deleted ones are tombstones.
    async fn assert_view_equals_lever(&self, deleted: &[String]) {
        let ids = self.sim.opportunity_ids();
        let hired = self.sim.hired_reason();
        let views = self.store.sync_views(&self.tenant, &ids).await.unwrap();
        assert_eq!(views.len(), ids.len(), "every opportunity has a view");
        for id in &ids {
            let snap = Snapshot::parse(&self.sim.opportunity(id).unwrap()).unwrap();
            let v = &views[id];
            assert_eq!(
                v.stage.as_ref().map(|s| &s.id),
                snap.stage.as_ref(),
                "stage of {id}"
            );
            assert_eq!(v.archived, snap.archived, "archive state of {id}");
            let is_hired = snap.archived.as_ref().and_then(|a| a.reason.as_ref()) == Some(&hired);
            assert_eq!(v.hired_at.is_some(), is_hired, "hired {id}");
            let apps: BTreeSet<String> = snap.applications.iter().map(|a| a.0.clone()).collect();
            assert_eq!(v.application_ids, apps, "applications of {id}");
            assert_eq!(v.deleted_at, None);
        }
        let views = self.store.sync_views(&self.tenant, deleted).await.unwrap();
        for id in deleted {
            assert!(views[id].deleted_at.is_some(), "{id} is deleted");
            assert!(views[id].stage.is_none(), "{id} is erased");
        }
    }
}

fn ids_are_unique(events: &[VendorEvent]) {
    let mut seen = HashSet::new();
    for e in events {
        assert!(seen.insert(&e.id), "event {} published twice", e.id);
    }
}

on_both_stores!(
    a_forged_deletion_of_a_live_candidate_changes_nothing_and_is_counted((40, 0); (40, 0)),
    a_deletion_lever_cannot_answer_is_asked_again((40, 0); (40, 0)),
    missed_webhooks_are_recovered_exactly_once((1_000, 2_000); (150, 300)),
    a_killed_backfill_resumes_without_repeating_itself((10_000, [7, 40]); (800, [3, 5])),
    a_webhook_during_a_backfill_wins_over_its_older_snapshot((250, 0); (250, 0)),
    a_webhook_during_a_reconciliation_wins_over_its_older_snapshot((250, 0); (250, 0)),
);

/// Which vendor-visible facts the webhooks that did arrive left different from Lever: what a
/// reconciliation must recover, computed from the change log alone.
#[derive(Default)]
struct Ledger {
    stage: HashMap<String, (String, String)>,
    archive: HashMap<String, (serde_json::Value, serde_json::Value)>,
    hired: HashMap<String, (bool, bool)>,
    missed_applications: HashSet<(String, String)>,
    missed_deletions: HashSet<String>,
    deleted: HashSet<String>,
}

impl Ledger {
    /// (kind, opportunity, application) of every event a reconciliation owes.
    fn expected(&self) -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        let live = |opp: &String| !self.deleted.contains(opp);
        for (opp, (seen, actual)) in &self.stage {
            if seen != actual && live(opp) {
                out.insert(("candidateStageChange".into(), opp.clone(), String::new()));
            }
        }
        for (opp, (seen, actual)) in &self.archive {
            if seen != actual && live(opp) {
                out.insert(("candidateArchiveChange".into(), opp.clone(), String::new()));
            }
        }
        for (opp, (seen, actual)) in &self.hired {
            if !seen && *actual && live(opp) {
                out.insert(("candidateHired".into(), opp.clone(), String::new()));
            }
        }
        for (opp, app) in &self.missed_applications {
            if live(opp) {
                out.insert(("applicationCreated".into(), opp.clone(), app.clone()));
            }
        }
        for opp in &self.missed_deletions {
            out.insert(("candidateDeleted".into(), opp.clone(), String::new()));
        }
        out
    }
}

async fn missed_webhooks_are_recovered_exactly_once<S: Backend>((opps, changes): (usize, usize)) {
    let r = rig::<S>(opps).await;
    r.backfill().await;
    r.assert_view_equals_lever(&[]).await;
    let after_backfill = r.changes().await.len();
    let finished: Vec<VendorEvent> = r
        .published()
        .await
        .into_iter()
        .filter(|e| e.kind == "backfillFinished")
        .collect();
    assert_eq!(finished.len(), 1, "one backfillFinished");
    assert_eq!(finished[0].after["candidates"], after_backfill as i64);
    // The account also holds the recorded candidates it was seeded with.
    assert_eq!(
        after_backfill,
        r.sim.opportunity_ids().len(),
        "one backfill event per candidate"
    );
    assert!(after_backfill >= opps);

    let hired_reason = r.sim.hired_reason();
    let reasons: Vec<String> = r
        .sim
        .archive_reasons()
        .iter()
        .filter(|a| a["type"] == "non-hired" && a["status"] == "active")
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let postings: Vec<String> = r
        .sim
        .postings()
        .iter()
        .filter(|p| p["confidentiality"] != "confidential")
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let stages: Vec<String> = r
        .sim
        .stages()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let mut ids = r.sim.opportunity_ids();
    ids.sort();
    let mut ledger = Ledger::default();
    for id in &ids {
        let o = r.sim.opportunity(id).unwrap();
        let stage = o["stage"].as_str().unwrap().to_string();
        ledger.stage.insert(id.clone(), (stage.clone(), stage));
        ledger
            .archive
            .insert(id.clone(), (o["archived"].clone(), o["archived"].clone()));
        let hired = o["archived"]["reason"] == hired_reason.as_str();
        ledger.hired.insert(id.clone(), (hired, hired));
    }
    let mut rng = fastrand::Rng::with_seed(8);
    let mut dropped = 0;
    for _ in 0..changes {
        let live: Vec<&String> = ids
            .iter()
            .filter(|i| !ledger.deleted.contains(*i))
            .collect();
        let opp = live[rng.usize(..live.len())].clone();
        let is_hired = ledger.hired[&opp].1;
        let roll = rng.u32(..100);
        let made: Vec<Change> = match roll {
            0..50 => vec![r.sim.move_stage(&opp, &stages[rng.usize(..stages.len())])],
            50..70 if !is_hired => {
                let archived = !ledger.archive[&opp].1.is_null();
                let reason = (!archived).then(|| reasons[rng.usize(..reasons.len())].as_str());
                vec![r.sim.archive(&opp, reason)]
            }
            70..75 if !is_hired => r.sim.hire(&opp),
            75..97 => vec![r.sim.apply_to(&opp, &postings[rng.usize(..postings.len())])],
            97.. => vec![r.sim.delete_opportunity(&opp)],
            _ => vec![r.sim.move_stage(&opp, &stages[rng.usize(..stages.len())])],
        };
        for c in made {
            let lost = rng.u32(..10) == 0;
            dropped += usize::from(lost);
            if !lost {
                r.deliver(&c).await;
            }
            match c.kind {
                EventKind::CandidateStageChange => {
                    let to = c.data["toStageId"].as_str().unwrap().to_string();
                    let e = ledger.stage.get_mut(&opp).unwrap();
                    e.1 = to.clone();
                    if !lost {
                        e.0 = to;
                    }
                }
                EventKind::CandidateArchiveChange => {
                    let to = c.data["toArchived"].clone();
                    let e = ledger.archive.get_mut(&opp).unwrap();
                    e.1 = to.clone();
                    if !lost {
                        e.0 = to;
                    }
                }
                EventKind::CandidateHired => {
                    let e = ledger.hired.get_mut(&opp).unwrap();
                    e.1 = true;
                    e.0 |= !lost;
                }
                EventKind::ApplicationCreated => {
                    if lost {
                        let app = c.data["applicationId"].as_str().unwrap().to_string();
                        ledger.missed_applications.insert((opp.clone(), app));
                    }
                }
                EventKind::CandidateDeleted => {
                    ledger.deleted.insert(opp.clone());
                    if lost {
                        ledger.missed_deletions.insert(opp.clone());
                    }
                }
                _ => unreachable!(),
            }
        }
    }
    assert!(
        dropped > changes / 20,
        "a tenth of the webhooks were lost: {dropped}"
    );
    // Delivered deletions wait for Lever's word: the next minute's run asks, one request each.
    let delivered_deletions = ledger.deleted.len() - ledger.missed_deletions.len();
    let requests = r.sim.requests().len();
    let confirmed = r.run(Duration::from_secs(60)).await;
    assert_eq!(
        (
            confirmed.deletions_confirmed,
            confirmed.deletions_unconfirmed
        ),
        (delivered_deletions, 0)
    );
    assert_eq!(
        r.sim.requests().len() - requests,
        delivered_deletions,
        "one Lever request per deletion"
    );
    println!(
        "{} webhooks delivered, {delivered_deletions} deletions confirmed with {delivered_deletions} Lever requests",
        changes - dropped
    );
    let before = r.changes().await.len();
    let report = r.reconcile().await;

    let all = r.changes().await;
    ids_are_unique(&all);
    let recovered: Vec<&VendorEvent> = all[before..].iter().collect();
    assert!(recovered.iter().all(|e| e.recovered && !e.backfill));
    let got: BTreeSet<(String, String, String)> = recovered
        .iter()
        .map(|e| {
            let app = e.after["applicationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (e.kind.clone(), e.opportunity_id.clone().unwrap(), app)
        })
        .collect();
    assert_eq!(got.len(), recovered.len(), "no change recovered twice");
    let expected = ledger.expected();
    assert_eq!(
        got.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "recovered only what was missed"
    );
    assert_eq!(
        expected.difference(&got).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "recovered everything that was missed"
    );
    assert_eq!(report.recovered, recovered.len());
    println!(
        "{changes} changes, {dropped} webhooks lost, {} changes recovered ({} candidates)",
        recovered.len(),
        report.changed
    );
    let deleted: Vec<String> = ledger.deleted.iter().cloned().collect();
    r.assert_view_equals_lever(&deleted).await;

    let job = r.store.sync_job(&r.tenant).await.unwrap();
    let status = SyncStatus::of(job.as_ref(), r.clock.now_ms());
    assert_eq!(status.changes_recovered, recovered.len() as i64);
    assert_eq!(status.changes_recovered_last_run, recovered.len() as i64);

    // Nothing is left to recover: the next run finds no difference.
    let before = r.changes().await.len();
    let again = r.reconcile().await;
    assert_eq!((again.recovered, r.changes().await.len()), (0, before));
}

async fn a_killed_backfill_resumes_without_repeating_itself<S: Backend>(
    (opps, kill_after_pages): (usize, [i64; 2]),
) {
    let r = rig::<S>(opps).await;
    // The account also holds the recorded candidates it was seeded with.
    let opps = r.sim.opportunity_ids().len();
    r.sync.start_backfill(&r.tenant).await.unwrap();
    let mut estimates = Vec::new();
    let mut rng = fastrand::Rng::with_seed(3);
    for pages in kill_after_pages {
        // Killed once the job passed `pages` checkpoints, a little later: most likely mid-page.
        let watch = async {
            loop {
                let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
                if job.pages >= pages {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.u64(20..150))).await;
        };
        tokio::select! {
            _ = r.run(Duration::from_secs(60)) => panic!("the run finished before it was killed"),
            _ = watch => {}
        }
        let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
        assert!(job.finished_at.is_none() && job.pages >= pages, "{job:?}");
        estimates.push((job.done, job.estimated_total));
        // The dead run's lease runs out; the next scheduled run resumes.
        r.clock.advance(3 * 60_000);
    }
    let report = r.run(Duration::from_secs(600)).await;
    assert_eq!(report.continued, 0, "{report:?}");
    let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
    assert!(job.finished_at.is_some());
    assert_eq!(job.done, opps as i64, "every opportunity counted once");
    assert_eq!(job.estimated_total, Some(opps as i64));
    // Estimates midway were in the right range (creation dates are spread evenly, but for the
    // few recorded candidates the account was seeded with).
    for (done, estimate) in &estimates {
        let e = estimate.expect("estimated") as f64;
        assert!(
            e > *done as f64 && (e - opps as f64).abs() <= opps as f64 * 0.35,
            "estimate {e} after {done} of {opps}"
        );
    }
    r.assert_view_equals_lever(&[]).await;
    let events = r.changes().await;
    ids_are_unique(&events);
    let candidates: HashSet<&str> = events
        .iter()
        .map(|e| e.opportunity_id.as_deref().unwrap())
        .collect();
    assert_eq!(candidates.len(), opps);
    assert_eq!(
        events.len(),
        opps,
        "one backfill event per candidate, none twice"
    );
    assert!(events.iter().all(|e| e.backfill));
    let status = SyncStatus::of(Some(&job), r.clock.now_ms());
    assert_eq!((status.done, status.running), (opps as i64, false));
}

async fn a_webhook_during_a_backfill_wins_over_its_older_snapshot<S: Backend>(
    (opps, _): (usize, usize),
) {
    let r = rig::<S>(opps).await;
    r.sync.start_backfill(&r.tenant).await.unwrap();
    newer_webhook_wins(&r).await;
}

async fn a_webhook_during_a_reconciliation_wins_over_its_older_snapshot<S: Backend>(
    (opps, _): (usize, usize),
) {
    let r = rig::<S>(opps).await;
    r.backfill().await;
    // Changes no webhook delivered, for the reconciliation to find on its first page.
    for id in newest_first(&r.sim).iter().take(5) {
        r.sim.move_stage(id, "lead-reached-out");
    }
    r.clock.advance(SyncConfig::default().interval_ms + 1);
    newer_webhook_wins(&r).await;
}

/// The first page's answer is held back; meanwhile a candidate on it changes in Lever and its
/// webhook arrives. The snapshot, older than the webhook, must not undo it.
async fn newer_webhook_wins<S: Backend>(r: &Rig<S>) {
    // The run's first request is the archive reasons; the second, its first page, is delayed
    // after Lever computed it.
    r.sim.push_fault(Fault::Delay(Duration::ZERO), 1);
    r.sim
        .push_fault(Fault::DelayAfterApply(Duration::from_millis(1_500)), 1);
    let run = r.run(Duration::from_secs(300));
    let webhook = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        // The first page holds the most recently created candidates.
        let opp = newest_first(&r.sim)[0].clone();
        let stages = r.sim.stages();
        let current = r.sim.opportunity(&opp).unwrap()["stage"].clone();
        let to = stages.iter().find(|s| s["id"] != current).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let change = r.sim.move_stage(&opp, &to);
        r.deliver(&change).await;
        (opp, to)
    };
    let (_, (opp, to)) = tokio::join!(run, webhook);
    let view = &r
        .store
        .sync_views(&r.tenant, std::slice::from_ref(&opp))
        .await
        .unwrap()[&opp];
    assert_eq!(
        view.stage.as_ref().unwrap().id,
        to,
        "the newer webhook stays"
    );
    r.assert_view_equals_lever(&[]).await;
    ids_are_unique(&r.changes().await);
}

/// Lever signs a webhook's token and time, not its data: a `candidateDeleted` for a candidate
/// Lever still has (a signed test request replayed with other data, say) erases nothing.
async fn a_forged_deletion_of_a_live_candidate_changes_nothing_and_is_counted<S: Backend>(
    (opps, _): (usize, usize),
) {
    let r = &rig::<S>(opps).await;
    r.backfill().await;
    let before = r.changes().await.len();
    let ids = newest_first(&r.sim);
    let (live, gone) = (ids[0].clone(), ids[1].clone());
    let view = |opp: &str| {
        let opp = opp.to_string();
        async move {
            r.store
                .sync_views(&r.tenant, std::slice::from_ref(&opp))
                .await
                .unwrap()
                .remove(&opp)
                .unwrap()
        }
    };
    let kept = view(&live).await;
    let (_, forged) = delivery(
        EventKind::CandidateDeleted,
        SIGNATURE,
        r.clock.now_ms(),
        serde_json::json!({ "opportunityId": live }),
    );
    let hook = &r.hooks[&EventKind::CandidateDeleted];
    let send = |body: Vec<u8>| async move {
        let reply = hook.receive(&r.tenant, &url_key(&r.tenant), &body).await;
        reply.body["status"].as_str().unwrap().to_string()
    };
    assert_eq!(send(forged.clone()).await, "pending");
    // A real deletion beside it.
    let change = r.sim.delete_opportunity(&gone);
    let (_, real) = delivery(change.kind, SIGNATURE, change.at, change.data.clone());
    assert_eq!(send(real).await, "pending");
    assert!(
        view(&gone).await.deleted_at.is_none(),
        "not before Lever says"
    );

    let report = r.run(Duration::from_secs(60)).await;
    assert_eq!(
        (report.deletions_confirmed, report.deletions_unconfirmed),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(view(&live).await, kept, "the live candidate is untouched");
    assert!(view(&gone).await.deleted_at.is_some());
    let stats = r.store.tenant_stats(&r.tenant).await.unwrap();
    assert_eq!(stats.deletions_unconfirmed, 1);
    let events = r.changes().await;
    let deleted: Vec<&str> = events[before..]
        .iter()
        .filter(|e| e.kind == "candidateDeleted")
        .map(|e| e.opportunity_id.as_deref().unwrap())
        .collect();
    assert_eq!(deleted, [gone.as_str()], "one event, for the real deletion");
    // Settled: the next run asks nothing, a redelivery is a duplicate.
    let requests = r.sim.requests().len();
    let again = r.run(Duration::from_secs(60)).await;
    assert_eq!(
        (again.deletions_confirmed, again.deletions_unconfirmed),
        (0, 0)
    );
    assert_eq!(r.sim.requests().len(), requests);
    assert_eq!(send(forged).await, "duplicate");
    assert_eq!(
        r.store
            .tenant_stats(&r.tenant)
            .await
            .unwrap()
            .deletions_unconfirmed,
        1
    );

    // A deletion the reconciliation applied first (its webhook came late): confirmed, no
    // second event.
    let late = ids[2].clone();
    let change = r.sim.delete_opportunity(&late);
    r.reconcile().await;
    let (_, body) = delivery(change.kind, SIGNATURE, change.at, change.data.clone());
    assert_eq!(send(body).await, "pending");
    assert_eq!(r.run(Duration::from_secs(60)).await.deletions_confirmed, 1);
    let events = r.changes().await;
    let for_late = events
        .iter()
        .filter(|e| e.kind == "candidateDeleted" && e.opportunity_id.as_deref() == Some(&late))
        .count();
    assert_eq!(for_late, 1, "one candidateDeleted for {late}");
}

/// Lever unavailable when the deletion is checked: nothing applied, asked again a minute later.
async fn a_deletion_lever_cannot_answer_is_asked_again<S: Backend>((opps, _): (usize, usize)) {
    let r = rig::<S>(opps).await;
    r.backfill().await;
    let gone = newest_first(&r.sim)[0].clone();
    let change = r.sim.delete_opportunity(&gone);
    r.deliver(&change).await;
    r.sim.push_fault(Fault::Status(503), 20);
    let report = r.run(Duration::from_secs(60)).await;
    assert_eq!(
        (report.deletions_confirmed, report.deletions_deferred),
        (0, 1),
        "{report:?}"
    );
    r.sim.clear_faults();
    assert_eq!(
        r.run(Duration::from_secs(60)).await.deletions_confirmed,
        0,
        "not due yet"
    );
    r.clock.advance(61_000);
    assert_eq!(r.run(Duration::from_secs(60)).await.deletions_confirmed, 1);
    let views = r
        .store
        .sync_views(&r.tenant, std::slice::from_ref(&gone))
        .await
        .unwrap();
    assert!(views[&gone].deleted_at.is_some());
}

fn newest_first(sim: &Simulator) -> Vec<String> {
    let mut ids = sim.opportunity_ids();
    ids.sort_by_key(|id| -sim.opportunity(id).unwrap()["createdAt"].as_i64().unwrap());
    ids
}

/// A key Lever refuses: the job records why and waits for the next interval (not every minute);
/// a rejected key marks the tenant disconnected.
/// A run with too little time left starts no tenant's job: the job is neither claimed nor
/// touched, and the next run takes it.
#[tokio::test]
async fn a_run_near_its_deadline_starts_no_job() {
    let r = rig::<lever_bridge::store::memory::InMemoryStore>(5).await;
    r.sync.start_backfill(&r.tenant).await.unwrap();
    let before = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
    let report = r.run(Duration::from_secs(5)).await;
    assert_eq!((report.tenants, report.pages), (0, 0), "{report:?}");
    assert_eq!(r.store.sync_job(&r.tenant).await.unwrap().unwrap(), before);
    let report = r.run(Duration::from_secs(60)).await;
    assert_eq!(report.tenants, 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_fails_visibly_and_waits() {
    let r = rig::<lever_bridge::store::memory::InMemoryStore>(10).await;
    let key = random_hex(16);
    r.sim.add_key(&key, KeyPerms::only(&["stages:read"]));
    r.use_key(&key).await;
    r.sync.start_backfill(&r.tenant).await.unwrap();
    let report = r.run(Duration::from_secs(60)).await;
    assert_eq!(report.failed, 1, "{report:?}");
    let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
    assert!(
        job.last_error.as_deref().unwrap_or("").contains("403"),
        "{job:?}"
    );
    assert_eq!(
        job.due_at,
        Some(r.clock.now_ms() + SyncConfig::default().interval_ms)
    );
    assert_eq!(
        r.run(Duration::from_secs(60)).await.tenants,
        0,
        "not due again yet"
    );
    assert!(r.changes().await.is_empty());

    r.sim.remove_key(&key);
    r.clock.advance(SyncConfig::default().interval_ms);
    r.run(Duration::from_secs(60)).await;
    let tenant = r.store.tenant(&r.tenant).await.unwrap().unwrap();
    assert_eq!(
        tenant.status,
        lever_bridge::store::TenantStatus::Disconnected
    );
}

/// A key created without confidential access gets an access error for `confidentiality=all`: the
/// sync falls back to what the key may see, and says so in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_confidential_access_syncs_what_it_may_see() {
    let r = rig::<lever_bridge::store::memory::InMemoryStore>(300).await;
    let key = random_hex(16);
    r.sim.add_key(
        &key,
        KeyPerms {
            confidential: false,
            ..KeyPerms::all()
        },
    );
    r.use_key(&key).await;
    r.backfill().await;
    let ids = r.sim.opportunity_ids();
    let visible: Vec<String> = ids
        .iter()
        .filter(|id| r.sim.opportunity(id).unwrap()["confidentiality"] != "confidential")
        .cloned()
        .collect();
    assert!(
        visible.len() < ids.len(),
        "the account has confidential candidates"
    );
    let views = r.store.sync_views(&r.tenant, &ids).await.unwrap();
    assert_eq!(
        views.len(),
        visible.len(),
        "every candidate the key may see"
    );
    let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
    assert_eq!(job.last_error, None);
    let status = SyncStatus::of(Some(&job), r.clock.now_ms());
    assert_eq!(status.confidential, Some(false), "{status:?}");
    r.reconcile().await;
    let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
    assert_eq!(job.last_error, None, "and the reconciliation runs too");

    // Lever answers 404 for a confidential candidate this key may not see: a candidateDeleted
    // naming one is not confirmed by it (the reconciliation applies what Lever lists as deleted).
    let hidden = ids.iter().find(|id| !visible.contains(id)).unwrap().clone();
    let (_, forged) = delivery(
        EventKind::CandidateDeleted,
        SIGNATURE,
        r.clock.now_ms(),
        serde_json::json!({ "opportunityId": hidden }),
    );
    let hook = &r.hooks[&EventKind::CandidateDeleted];
    let reply = hook.receive(&r.tenant, &url_key(&r.tenant), &forged).await;
    assert_eq!(reply.body["status"], "pending");
    let report = r.run(Duration::from_secs(60)).await;
    assert_eq!(
        (report.deletions_confirmed, report.deletions_deferred),
        (0, 1),
        "{report:?}"
    );
    let views = r
        .store
        .sync_views(&r.tenant, std::slice::from_ref(&hidden))
        .await
        .unwrap();
    assert!(views.get(&hidden).is_none_or(|v| v.deleted_at.is_none()));
    assert_eq!(
        r.run(Duration::from_secs(60)).await.deletions_deferred,
        0,
        "settled"
    );
}

/// What a run established about confidential access outlives a run cut short. Before, each
/// reconciliation reset it at its start and saved "the key sees confidential candidates" when it
/// ended before its first page (an `/archive_reasons` 500 here): a forged `candidateDeleted` of a
/// live confidential candidate, which Lever hides from the key with a 404, was then applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_keeps_what_it_knew_of_confidential_access() {
    let r = rig::<lever_bridge::store::memory::InMemoryStore>(100).await;
    r.use_blind_key().await;
    r.backfill().await;
    let before = r.changes().await.len();
    // The next reconciliation fails before its first page.
    r.clock.advance(SyncConfig::default().interval_ms + 1);
    r.sim.push_fault(Fault::Status(500), 50);
    let failed = r.run(Duration::from_secs(60)).await;
    r.sim.clear_faults();
    assert_eq!(failed.pages, 0, "{failed:?}");
    let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
    assert!(job.last_error.is_some() && job.non_confidential, "{job:?}");
    assert_eq!(
        SyncStatus::of(Some(&job), r.clock.now_ms()).confidential,
        Some(false),
        "still known"
    );

    let hidden = r.forge_deletion_of_a_confidential_candidate().await;
    let report = r.run(Duration::from_secs(60)).await;
    assert_eq!(report.deletions_confirmed, 0, "{report:?}");
    let events = r.changes().await;
    assert!(
        events[before..]
            .iter()
            .all(|e| e.kind != "candidateDeleted"),
        "no candidateDeleted event"
    );
    assert!(r.sim.opportunity(&hidden).is_some(), "live in Lever");
}

/// Before any sync run has established confidential access (a tenant just connected), a 404
/// proves a deletion only if Lever says the key sees confidential candidates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_any_run_a_404_proves_nothing_for_a_key_blind_to_confidential_candidates() {
    let r = rig::<lever_bridge::store::memory::InMemoryStore>(60).await;
    r.use_blind_key().await;
    let hidden = r.forge_deletion_of_a_confidential_candidate().await;
    assert!(
        r.store.sync_job(&r.tenant).await.unwrap().is_none(),
        "no run yet"
    );
    let report = r.run(Duration::from_secs(60)).await;
    assert_eq!(
        (report.deletions_confirmed, report.deletions_deferred),
        (0, 1),
        "{report:?}"
    );
    assert!(r.sim.opportunity(&hidden).is_some(), "live in Lever");
    assert!(
        r.changes()
            .await
            .iter()
            .all(|e| e.kind != "candidateDeleted")
    );
}

/// A paging cursor Lever refuses (expired, or from before a change of filters) restarts the walk
/// instead of failing every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cursor_restarts_the_walk() {
    let r = rig::<lever_bridge::store::memory::InMemoryStore>(250).await;
    let mut job = r.sync.start_backfill(&r.tenant).await.unwrap();
    job.position = Some("[9999,1,\"gone\"]".into());
    job.pages = 2;
    r.store.put_sync_job(&job).await.unwrap();
    r.run(Duration::from_secs(300)).await;
    let job = r.store.sync_job(&r.tenant).await.unwrap().unwrap();
    assert!(job.finished_at.is_some(), "{job:?}");
    assert_eq!(job.last_error, None);
    r.assert_view_equals_lever(&[]).await;
}
