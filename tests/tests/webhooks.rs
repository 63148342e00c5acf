//! Webhook registration and URL-key rotation converge, on both stores against the simulator: a
//! rotation whose token save fails once and one of whose creates Lever applies but never answers,
//! then registering again, leaves every kind with one webhook in Lever, at the current URL, whose
//! token the bridge holds; a delivery to a new URL is accepted straight after the rotation, even by
//! a warm webhook instance; bad input says what to do.

use lever_bridge::admin::http::Group;
use lever_bridge::admin::{Admin, Settings};
use lever_bridge::clock::SystemClock;
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::receiver::Receiver;
use lever_bridge::secrets::{CachedSecrets, SecretStore, SecretsError, TenantSecret};
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::simulator::{Fault, KeyPerms, SimConfig, Simulator};
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const HOOKS: &str = "https://hooks.example.test/prod";

on_both_stores!(
    a_rotation_through_a_failed_save_and_a_lost_answer_converges,
    bad_input_says_what_to_do,
    a_tenant_connected_again_resurrects_no_old_url,
    a_delete_racing_a_secret_writer_leaves_nothing,
    a_delete_racing_an_oauth_refresh_leaves_nothing,
);

/// A secret store whose `n`-th save from when it is armed fails, and whose saves and deletes can
/// be slow (a writer holding the secret lease a while).
#[derive(Clone)]
struct FlakySaves<K> {
    inner: K,
    /// Saves left before the failing one; negative: none fails.
    fail_in: Arc<AtomicI64>,
    /// How long each save and delete waits first, ms.
    delay_ms: Arc<AtomicI64>,
}

impl<K> FlakySaves<K> {
    async fn pause(&self) {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms as u64)).await;
        }
    }
}

impl<K: SecretStore> SecretStore for FlakySaves<K> {
    async fn load(&self, tenant: &str) -> Result<Option<TenantSecret>, SecretsError> {
        self.inner.load(tenant).await
    }
    async fn save(&self, tenant: &str, secret: &TenantSecret) -> Result<(), SecretsError> {
        if self.fail_in.fetch_sub(1, Ordering::SeqCst) == 0 {
            return Err(SecretsError::Unavailable(
                "injected: the save failed".into(),
            ));
        }
        self.pause().await;
        self.inner.save(tenant, secret).await
    }
    async fn delete(&self, tenant: &str) -> Result<(), SecretsError> {
        self.pause().await;
        self.inner.delete(tenant).await
    }
}

type A<B> = Admin<Arc<HttpLever>, B, FlakySaves<<B as Backend>::Secrets>, SystemClock>;

struct Rig<B: Backend> {
    sim: Simulator,
    key: String,
    store: B,
    secrets: FlakySaves<B::Secrets>,
    admin: A<B>,
}

impl<B: Backend> Rig<B> {
    async fn new(webhook_base_url: Option<&str>) -> Self {
        let sim = Simulator::start(SimConfig::default()).await;
        let key = format!("key-{}", random_hex(16));
        sim.add_key(&key, KeyPerms::all());
        let (store, secrets) = B::make().await;
        let secrets = FlakySaves {
            inner: secrets,
            fail_in: Arc::new(AtomicI64::new(-1)),
            delay_ms: Arc::new(AtomicI64::new(0)),
        };
        let mut oauth = lever_bridge::config::OAuthConfig::new(
            lever_bridge_tests::simulator::SIM_CLIENT_ID,
            lever_bridge::config::ClientSecret::Value(lever_bridge::secrets::Redacted::new(
                lever_bridge_tests::simulator::SIM_CLIENT_SECRET,
            )),
            Some("https://admin.example.test/admin/oauth/callback"),
        );
        oauth.authorize_url = Some(sim.authorize_url());
        oauth.token_url = Some(sim.token_url());
        let mut settings = Settings::new(
            &lever_bridge::config::Config::default(),
            Some(Arc::new(lever_bridge::lever::oauth::OAuthClient::new(
                oauth, None,
            ))),
            None,
            Some(url_keys()),
        );
        settings.webhook_base_url = webhook_base_url.map(str::to_string);
        settings.environments = vec![("sandbox".into(), sim.base_url())];
        let lever = Arc::new(HttpLever::new(
            RateLimiter::new(10.0, 20),
            RetryPolicy::default(),
        ));
        let admin = Admin::new(lever, store.clone(), secrets.clone(), SystemClock, settings);
        Rig {
            sim,
            key,
            store,
            secrets,
            admin,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let r = self
            .admin
            .handle(&Group::ALL, method, path, body.as_bytes())
            .await;
        openapi::check_answer(method, path, r.status, r.content_type, &r.body);
        (r.status, r.value())
    }

    async fn connect(&self) -> String {
        let id = unique("acme");
        let (status, v) = self
            .call(
                "POST",
                "/admin/tenants",
                json!({"tenantId": id, "environment": "sandbox", "apiKey": self.key}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        id
    }

    fn receiver(&self, kind: EventKind) -> Receiver<B, B::Secrets, SystemClock> {
        Receiver::new(
            kind,
            self.store.clone(),
            CachedSecrets::new(self.secrets.inner.clone(), SystemClock, 300_000),
            SystemClock,
            url_keys(),
        )
    }
}

/// The URL key in a webhook URL `<base>/webhooks/<tenant>/<key>/<event>`.
fn key_of(url: &str) -> String {
    let parts: Vec<&str> = url.rsplitn(3, '/').collect();
    parts[1].to_string()
}

/// Every kind has one webhook in Lever, at the tenant's current URL, and a delivery signed with
/// the token Lever holds for it is accepted there.
async fn assert_converged<B: Backend>(rig: &Rig<B>, id: &str) {
    let secret = rig.secrets.load(id).await.unwrap().unwrap();
    let generation = secret.url_generation;
    for kind in EventKind::ALL {
        let hooks: Vec<Value> = rig
            .sim
            .webhooks()
            .into_iter()
            .filter(|w| w["event"] == kind.as_str())
            .collect();
        let urls: Vec<&str> = hooks.iter().filter_map(|w| w["url"].as_str()).collect();
        assert_eq!(hooks.len(), 1, "{kind:?}: {urls:?}");
        let url = hooks[0]["url"].as_str().unwrap();
        assert_eq!(
            url,
            rig.admin
                .webhook_url(id, generation, kind.as_str())
                .unwrap(),
            "{kind:?} is at the current URL"
        );
        let token = hooks[0]["configuration"]["signatureToken"]
            .as_str()
            .unwrap();
        let (_, body) = delivery(kind, token, now_ms(), sample_data(kind, "opp-converged"));
        let reply = rig.receiver(kind).receive(id, &key_of(url), &body).await;
        assert_eq!(
            reply.status, 200,
            "{kind:?}: a delivery signed with Lever's token: {reply:?}"
        );
    }
}

async fn a_rotation_through_a_failed_save_and_a_lost_answer_converges<B: Backend>() {
    let rig = Rig::<B>::new(Some(HOOKS)).await;
    let id = rig.connect().await;
    let (status, v) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/webhooks"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_converged(&rig, &id).await;
    // A clean rotation, timed against the admin function's 29 s.
    let started = std::time::Instant::now();
    let (status, v) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/webhooks/urlKey"),
            Value::Null,
        )
        .await;
    println!(
        "a clean rotation: {status} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(status, 200, "{v}");
    assert_converged(&rig, &id).await;
    let generation = rig.secrets.load(&id).await.unwrap().unwrap().url_generation;

    // A webhook instance warm from before the rotation (its cache holds generation 0).
    let warm = rig.receiver(EventKind::CandidateHired);
    let old_url = rig
        .admin
        .webhook_url(&id, generation, "candidateHired")
        .unwrap();
    let token = rig
        .sim
        .webhooks()
        .into_iter()
        .find(|w| w["event"] == "candidateHired")
        .unwrap()["configuration"]["signatureToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = delivery(
        EventKind::CandidateHired,
        &token,
        now_ms(),
        sample_data(EventKind::CandidateHired, "opp-warm"),
    );
    assert_eq!(
        warm.receive(&id, &key_of(&old_url), &body).await.status,
        200
    );

    // The rotation: the third secret save fails (a token's), and Lever applies the fifth create
    // but its answer never arrives.
    rig.secrets.fail_in.store(2, Ordering::SeqCst);
    rig.sim
        .push_fault_on("POST", "/v1/webhooks", 4, Fault::DropAfterApply);
    let (status, v) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/webhooks/urlKey"),
            Value::Null,
        )
        .await;
    println!("rotation through faults: {status} {v}");
    rig.secrets.fail_in.store(-1, Ordering::SeqCst);

    // Straight after: a delivery to a new URL is accepted, by the warm instance too.
    let new_url = rig
        .admin
        .webhook_url(&id, generation + 1, "candidateHired")
        .unwrap();
    let (_, body) = delivery(
        EventKind::CandidateHired,
        &token,
        now_ms(),
        sample_data(EventKind::CandidateHired, "opp-new-url"),
    );
    let at_new = warm.receive(&id, &key_of(&new_url), &body).await.status;
    let (_, body) = delivery(
        EventKind::CandidateHired,
        &token,
        now_ms(),
        sample_data(EventKind::CandidateHired, "opp-old-url"),
    );
    let at_old = warm.receive(&id, &key_of(&old_url), &body).await.status;
    println!(
        "straight after the rotation, a warm instance answers: new URL {at_new}, old URL {at_old}"
    );

    // Registering again converges.
    let (status, v) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/webhooks"),
            Value::Null,
        )
        .await;
    println!("registering again: {status} {v}");
    assert_eq!(status, 200, "{v}");
    assert_converged(&rig, &id).await;
    assert!(
        rig.sim
            .requests()
            .iter()
            .any(|r| r.fault.as_deref() == Some("drop_after_apply")),
        "a create's answer was lost on the way"
    );
    assert_eq!(at_new, 200, "a new URL is accepted at once");
    assert_eq!(
        at_old, 401,
        "and once it took one, the instance refuses the retired URL"
    );
}

async fn bad_input_says_what_to_do<B: Backend>() {
    let rig = Rig::<B>::new(Some(HOOKS)).await;
    let id = rig.connect().await;
    let (status, v) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/webhooks/urlKey"),
            Value::Null,
        )
        .await;
    println!("rotating a tenant without webhooks: {status} {v}");
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "no_webhooks");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("POST /admin/tenants/"),
        "{v}"
    );

    let bare = Rig::<B>::new(None).await;
    let id = bare.connect().await;
    let (status, v) = bare
        .call(
            "POST",
            &format!("/admin/tenants/{id}/webhooks"),
            Value::Null,
        )
        .await;
    println!("registering without WEBHOOK_BASE_URL: {status} {v}");
    assert_eq!(status, 409, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("WEBHOOK_BASE_URL"),
        "{v}"
    );
}

/// A tenant deleted and connected again under the same id: none of its earlier URLs, current or
/// rotated away, takes a delivery (the new tenant's URL keys start at a random generation).
async fn a_tenant_connected_again_resurrects_no_old_url<B: Backend>() {
    let rig = Rig::<B>::new(Some(HOOKS)).await;
    let id = rig.connect().await;
    let webhooks = format!("/admin/tenants/{id}/webhooks");
    assert_eq!(rig.call("POST", &webhooks, Value::Null).await.0, 200);
    let first = rig.secrets.load(&id).await.unwrap().unwrap().url_generation;
    let (status, v) = rig
        .call("POST", &format!("{webhooks}/urlKey"), Value::Null)
        .await;
    assert_eq!(status, 200, "{v}");
    let old: Vec<(EventKind, String)> = [first, first + 1]
        .into_iter()
        .flat_map(|g| {
            EventKind::ALL.map(|k| (k, rig.admin.webhook_url(&id, g, k.as_str()).unwrap()))
        })
        .collect();
    let (status, v) = rig
        .call("DELETE", &format!("/admin/tenants/{id}"), Value::Null)
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = rig
        .call(
            "POST",
            "/admin/tenants",
            json!({"tenantId": id, "environment": "sandbox", "apiKey": rig.key}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(rig.call("POST", &webhooks, Value::Null).await.0, 200);
    let again = rig.secrets.load(&id).await.unwrap().unwrap().url_generation;
    println!(
        "generations: first tenant {first}..={}, connected again {again}",
        first + 1
    );
    let mut answers = Vec::new();
    for (kind, url) in &old {
        let token = rig
            .sim
            .webhooks()
            .into_iter()
            .find(|w| w["event"] == kind.as_str())
            .unwrap()["configuration"]["signatureToken"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, body) = delivery(*kind, &token, now_ms(), sample_data(*kind, "opp-old"));
        answers.push(
            rig.receiver(*kind)
                .receive(&id, &key_of(url), &body)
                .await
                .status,
        );
    }
    println!(
        "deliveries to the {} old URLs answer: {answers:?}",
        old.len()
    );
    assert!(answers.iter().all(|s| *s == 401), "{answers:?}");
    assert_converged(&rig, &id).await;
}

/// A delete racing each writer of the tenant's secret (a key replaced, a token pasted), the writer
/// holding the lease first or the delete: no secret and no record is left.
async fn a_delete_racing_a_secret_writer_leaves_nothing<B: Backend>() {
    let rig = Rig::<B>::new(Some(HOOKS)).await;
    let other_key = format!("key-{}", random_hex(16));
    rig.sim.add_key(&other_key, KeyPerms::all());
    let pause = |ms: u64| tokio::time::sleep(std::time::Duration::from_millis(ms));
    for what in ["a key replaced", "a token pasted"] {
        for writer_first in [true, false] {
            let id = rig.connect().await;
            let (path, body) = if what == "a key replaced" {
                (
                    format!("/admin/tenants/{id}/apiKey"),
                    json!({"apiKey": other_key}),
                )
            } else {
                (
                    format!("/admin/tenants/{id}/webhooks/candidateHired/token"),
                    json!({"token": "pasted-token"}),
                )
            };
            rig.secrets.delay_ms.store(600, Ordering::SeqCst);
            let write = async {
                if !writer_first {
                    pause(200).await;
                }
                rig.call("PUT", &path, body.clone()).await
            };
            let delete = async {
                if writer_first {
                    pause(300).await;
                }
                rig.call("DELETE", &format!("/admin/tenants/{id}"), Value::Null)
                    .await
            };
            let ((ws, wv), (ds, dv)) = tokio::join!(write, delete);
            rig.secrets.delay_ms.store(0, Ordering::SeqCst);
            let secret = rig.secrets.inner.load(&id).await.unwrap();
            println!(
                "{what}, {} first: writer {ws} {}, delete {ds}; secret left: {}",
                if writer_first { "writer" } else { "delete" },
                wv["error"].as_str().unwrap_or("ok"),
                secret.is_some()
            );
            assert_eq!(ds, 200, "{dv}");
            assert!(
                secret.is_none(),
                "{what}: the deleted tenant's secret was written again"
            );
            assert!(rig.store.tenant(&id).await.unwrap().is_none());
        }
    }
    // Connected again under the same id: the deletion's mark is lifted.
    let id = rig.connect().await;
    rig.call("DELETE", &format!("/admin/tenants/{id}"), Value::Null)
        .await;
    let (status, v) = rig
        .call(
            "POST",
            "/admin/tenants",
            json!({"tenantId": id, "environment": "sandbox", "apiKey": rig.key}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = rig
        .call(
            "PUT",
            &format!("/admin/tenants/{id}/webhooks/candidateHired/token"),
            json!({"token": "t2"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

/// A delete racing an OAuth refresh (the refresh holding the lease first, or the delete): no
/// tokens are written back for the deleted tenant.
async fn a_delete_racing_an_oauth_refresh_leaves_nothing<B: Backend>() {
    let rig = Rig::<B>::new(Some(HOOKS)).await;
    let pause = |ms: u64| tokio::time::sleep(std::time::Duration::from_millis(ms));
    for refresh_first in [true, false] {
        // An OAuth tenant whose access token is due for refresh at once.
        rig.sim
            .set_access_token_lifetime(std::time::Duration::from_secs(60));
        let id = unique("oauth");
        let r = rig
            .admin
            .handle_request(
                &[Group::OAuth],
                "GET",
                "/admin/oauth/authorize",
                &format!("tenantId={id}&environment=sandbox"),
                b"",
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.value();
        let code = rig.sim.issue_auth_code(KeyPerms::all());
        let query = format!("code={code}&state={}", v["state"].as_str().unwrap());
        let r = rig
            .admin
            .handle_request(&[Group::OAuth], "GET", "/admin/oauth/callback", &query, b"")
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        rig.secrets.delay_ms.store(600, Ordering::SeqCst);
        // Listing users needs a fresh token: the refresh.
        let refresh = async {
            if !refresh_first {
                pause(200).await;
            }
            rig.call("GET", &format!("/admin/tenants/{id}/users"), Value::Null)
                .await
        };
        let delete = async {
            if refresh_first {
                pause(300).await;
            }
            rig.call("DELETE", &format!("/admin/tenants/{id}"), Value::Null)
                .await
        };
        let ((rs, rv), (ds, dv)) = tokio::join!(refresh, delete);
        rig.secrets.delay_ms.store(0, Ordering::SeqCst);
        let secret = rig.secrets.inner.load(&id).await.unwrap();
        println!(
            "an OAuth refresh, {} first: users {rs} {}, delete {ds}; secret left: {}",
            if refresh_first { "refresh" } else { "delete" },
            rv["error"].as_str().unwrap_or("ok"),
            secret.is_some()
        );
        assert_eq!(ds, 200, "{dv}");
        assert!(
            secret.is_none(),
            "the deleted tenant's tokens were written again"
        );
    }
}
