//! The onboarding API against the Lever simulator, in process (routing included), with the store
//! on DynamoDB + Secrets Manager in the local emulator and, where the logic depends on the store,
//! in memory too. No answer and no log line carries the API key or a signature token.

use lever_bridge::admin::http::Group;
use lever_bridge::admin::{Admin, Reply, Settings};
use lever_bridge::clock::ManualClock;
use lever_bridge::clock::SystemClock;
use lever_bridge::config::{ClientSecret, OAuthConfig};
use lever_bridge::lever::calls::Lever;
use lever_bridge::lever::oauth::OAuthClient;
use lever_bridge::lever::{Auth, LeverRequest};
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::receiver::Receiver;
use lever_bridge::secrets::Redacted;
use lever_bridge::secrets::{CachedSecrets, SecretStore};
use lever_bridge::store::TenantStore;
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::store::{OAuthPending, Tenant, TenantStatus};
use lever_bridge::tenant::Tenants;
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::simulator::{
    CONFIDENTIAL_POSTING, DEACTIVATED_USER, KeyPerms, NewOpportunity, SIM_CLIENT_ID,
    SIM_CLIENT_SECRET, SimConfig, Simulator,
};
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const HOOKS: &str = "https://hooks.example.test/prod";

on_both_stores!(
    oauth_connect_then_push_with_bearer,
    oauth_state_is_single_use_and_expires,
    oauth_refresh_before_expiry_and_one_winner_when_concurrent,
    oauth_refused_refresh_disconnects_the_tenant,
    a_secret_write_during_a_refresh_keeps_the_new_refresh_token,
    an_oauth_tenant_is_connected_and_a_key_replaces_its_tokens,
    a_record_written_before_the_auth_kind_was_kept_gets_it_from_the_first_function,
    every_secret_writer_during_a_refresh_keeps_the_newest_tokens,
    a_slow_refresh_keeps_its_lease_until_it_saved,
    no_refresh_outlives_its_invocation,
    connect_then_disconnect_deletes_secret_and_data,
    status_shows_health_and_renders_in_chromium,
    roles_sync_map_and_report_mismatches,
);

struct Rig<B: Backend> {
    sim: Simulator,
    key: String,
    store: B,
    secrets: B::Secrets,
    admin: Admin<Arc<HttpLever>, B, B::Secrets, SystemClock>,
    /// Every answer body, to look for secrets in.
    answers: Mutex<Vec<String>>,
}

impl<B: Backend> Rig<B> {
    async fn new(perms: KeyPerms) -> Self {
        capture_logs();
        let sim = Simulator::start(SimConfig::default()).await;
        let key = format!("key-{}", random_hex(16));
        sim.add_key(&key, perms);
        let (store, secrets) = B::make().await;
        let settings = Settings {
            webhook_base_url: Some(HOOKS.into()),
            environments: vec![
                ("production".into(), "https://api.lever.co/v1".into()),
                ("sandbox".into(), sim.base_url()),
            ],
            lever_budget: std::time::Duration::from_secs(20),
            oauth: Some(Arc::new(OAuthClient::new(sim_oauth(&sim), None))),
            queues: None,
            url_keys: Some(url_keys()),
            replay: None,
            connect_pages_url: Some(HOOKS.into()),
            connect_link_ttl: std::time::Duration::from_secs(1800),
        };
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
            answers: Mutex::default(),
        }
    }

    async fn raw(&self, method: &str, path: &str, body: &str) -> Reply {
        let reply = self
            .admin
            .handle(&Group::ALL, method, path, body.as_bytes())
            .await;
        openapi::check_answer(method, path, reply.status, reply.content_type, &reply.body);
        self.answers.lock().unwrap().push(reply.body.clone());
        reply
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let r = self.raw(method, path, &body).await;
        assert_eq!(r.content_type, "application/json", "{path}");
        (r.status, r.value())
    }

    /// Connects a tenant with the rig's key on the simulator.
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
            CachedSecrets::new(self.secrets.clone(), SystemClock, 300_000),
            SystemClock,
            url_keys(),
        )
    }

    /// The tenant's URL key now (a new tenant's generation starts at random).
    async fn url_key(&self, id: &str) -> String {
        // A deleted tenant has none: any key is refused then.
        let generation = self
            .secrets
            .load(id)
            .await
            .unwrap()
            .map_or(0, |s| s.url_generation);
        url_keys().key(id, generation)
    }

    /// The status a fresh webhook receiver of `kind` answers `body` with, at the tenant's URL.
    async fn deliver(&self, id: &str, kind: EventKind, body: &[u8]) -> u16 {
        self.receiver(kind)
            .receive(id, &self.url_key(id).await, body)
            .await
            .status
    }

    /// No answer so far holds the key or any signature token the simulator issued.
    fn assert_no_secret_in_answers(&self) {
        let answers = self.answers.lock().unwrap();
        let mut secrets = vec![self.key.clone()];
        secrets.extend(self.sim.webhooks().iter().filter_map(|w| {
            w["configuration"]["signatureToken"]
                .as_str()
                .map(str::to_string)
        }));
        for a in answers.iter() {
            for s in &secrets {
                assert!(
                    !a.contains(s.as_str()),
                    "a secret leaked into an answer: {a}"
                );
            }
        }
    }
}

fn active_user(sim: &Simulator) -> String {
    sim.users()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .and_then(|u| u["id"].as_str())
        .unwrap()
        .to_string()
}

async fn connect_then_disconnect_deletes_secret_and_data<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    // Errors first: nothing is stored for them.
    let (s, v) = rig
        .call(
            "POST",
            "/admin/tenants",
            json!({"environment": "sandbox", "apiKey": "wrong-key"}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_api_key")),
        "{v}"
    );
    let (s, v) = rig
        .call(
            "POST",
            "/admin/tenants",
            json!({"environment": "mars", "apiKey": rig.key}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_environment")),
        "{v}"
    );
    let (s, v) = rig
        .call(
            "POST",
            "/admin/tenants",
            json!({"tenantId": "bad id!", "apiKey": rig.key}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_tenant_id")),
        "{v}"
    );
    let (s, v) = rig
        .call("POST", "/admin/tenants", json!({"environment": "sandbox"}))
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("missing_api_key")),
        "{v}"
    );
    let r = rig.raw("POST", "/admin/tenants", "{not json").await;
    assert_eq!(
        (r.status, r.value()["error"].as_str()),
        (400, Some("invalid_json"))
    );

    let id = unique("acme");
    let (s, v) = rig
        .call(
            "POST",
            "/admin/tenants",
            json!({"tenantId": id, "environment": "sandbox", "apiKey": rig.key}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["tenantId"], id.as_str());
    assert_eq!(v["status"], "connected");
    let urls = v["webhookUrls"].as_object().unwrap();
    assert_eq!(urls.len(), 10);
    assert_eq!(
        urls["candidateHired"],
        format!(
            "{HOOKS}/webhooks/{id}/{}/candidateHired",
            rig.url_key(&id).await
        )
    );
    let stored = rig.secrets.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.api_key.as_ref().unwrap().expose(), rig.key);
    let (s, v) = rig
        .call(
            "POST",
            "/admin/tenants",
            json!({"tenantId": id, "environment": "sandbox", "apiKey": rig.key}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("tenant_exists")));

    // Webhooks work while connected…
    let (s, _) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/webhooks"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    let token = rig.sim.webhooks()[0]["configuration"]["signatureToken"]
        .as_str()
        .unwrap()
        .to_string();
    let kind = EventKind::parse(rig.sim.webhooks()[0]["event"].as_str().unwrap()).unwrap();
    let (_, body) = delivery(kind, &token, now_ms(), sample_data(kind, "opp-1"));
    assert_eq!(rig.deliver(&id, kind, &body).await, 200);
    rig.call(
        "POST",
        &format!("/admin/tenants/{id}/postings/sync"),
        Value::Null,
    )
    .await;

    // …and get 401 once it is deleted (a fresh instance: warm ones forget within the secret TTL).
    let (s, v) = rig
        .call("DELETE", &format!("/admin/tenants/{id}"), Value::Null)
        .await;
    assert_eq!((s, v["deleted"].as_bool()), (200, Some(true)), "{v}");
    assert!(rig.secrets.load(&id).await.unwrap().is_none());
    assert!(rig.store.tenant(&id).await.unwrap().is_none());
    assert!(rig.store.postings(&id).await.unwrap().is_empty());
    let stat = rig.store.webhook_stat(&id, kind, 0).await.unwrap();
    assert_eq!(
        stat.deliveries, 0,
        "dedup records deleted through the index"
    );
    let (_, body) = delivery(kind, &token, now_ms(), sample_data(kind, "opp-2"));
    assert_eq!(rig.deliver(&id, kind, &body).await, 401);
    let (s, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("unknown_tenant")));
    let (s, _) = rig
        .call("DELETE", &format!("/admin/tenants/{id}"), Value::Null)
        .await;
    assert_eq!(s, 404);
    rig.assert_no_secret_in_answers();
}

#[tokio::test]
async fn a_new_key_replaces_a_rejected_one() {
    let rig = Rig::<DynamoStore>::new(KeyPerms::all()).await;
    let id = rig.connect().await;
    rig.sim.remove_key(&rig.key);
    let (s, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/users"), Value::Null)
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (502, Some("lever_unauthorized")),
        "{v}"
    );
    let (_, st) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert_eq!(st["state"], "disconnected", "{st}");
    assert!(st["reasons"][0].as_str().unwrap().contains("401"));

    let (s, v) = rig
        .call(
            "PUT",
            &format!("/admin/tenants/{id}/apiKey"),
            json!({"apiKey": "still-wrong"}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_api_key")));
    let new_key = random_hex(16);
    rig.sim.add_key(&new_key, KeyPerms::all());
    let (s, v) = rig
        .call(
            "PUT",
            &format!("/admin/tenants/{id}/apiKey"),
            json!({"apiKey": new_key}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("connected")), "{v}");
    let (s, _) = rig
        .call("GET", &format!("/admin/tenants/{id}/users"), Value::Null)
        .await;
    assert_eq!(s, 200);
    assert!(
        !rig.answers
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.contains(&new_key))
    );
}

#[tokio::test]
async fn test_connection_tells_a_bad_key_from_a_missing_permission() {
    // Every permission.
    let rig = Rig::<DynamoStore>::new(KeyPerms::all()).await;
    rig.sim.add_opportunities(2);
    let id = rig.connect().await;
    rig.sim.clear_requests();
    let (s, v) = rig
        .call("POST", &format!("/admin/tenants/{id}/test"), Value::Null)
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("ok")), "{v}");
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.len() >= 16);
    assert!(checks.iter().all(|c| c["state"] == "ok"), "{v}");
    // Nothing was written.
    let writes: Vec<_> = rig
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.status.is_some_and(|s| s < 300))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // Some permissions missing, no confidential access.
    let limited = random_hex(16);
    rig.sim.add_key(
        &limited,
        KeyPerms::only(&[
            "users:read",
            "opportunities:read",
            "stages:read",
            "postings:read",
        ]),
    );
    let (s, _) = rig
        .call(
            "PUT",
            &format!("/admin/tenants/{id}/apiKey"),
            json!({"apiKey": limited}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = rig
        .call("POST", &format!("/admin/tenants/{id}/test"), Value::Null)
        .await;
    assert_eq!(v["result"], "missingPermissions", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("403") && msg.contains("notes:write") && msg.contains("panels:write"),
        "{msg}"
    );
    let state = |p: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["permission"] == p)
            .map(|c| c["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state("users:read"), "ok");
    assert_eq!(state("notes:read"), "missing");
    assert_eq!(state("webhooks:write"), "missing");
    assert_eq!(state("confidential"), "missing");
    let (_, st) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert_eq!(st["state"], "degraded");
    assert!(
        st["reasons"][0].as_str().unwrap().contains("notes:write"),
        "{st}"
    );

    // The key deleted in Lever: 401, a different message, and the tenant disconnected.
    rig.sim.remove_key(&limited);
    let (s, v) = rig
        .call("POST", &format!("/admin/tenants/{id}/test"), Value::Null)
        .await;
    assert_eq!(
        (s, v["result"].as_str()),
        (200, Some("unauthorized")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("401"));
    let (_, st) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert_eq!(st["state"], "disconnected", "{st}");
    let (s, _) = rig
        .call("POST", "/admin/tenants/nope/test", Value::Null)
        .await;
    assert_eq!(s, 404);
    rig.assert_no_secret_in_answers();
}

#[tokio::test]
async fn owner_is_picked_from_active_users_and_checked_against_lever() {
    let rig = Rig::<DynamoStore>::new(KeyPerms::all()).await;
    let id = rig.connect().await;
    let (s, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/users"), Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    let users = v["users"].as_array().unwrap();
    let active = rig
        .sim
        .users()
        .iter()
        .filter(|u| u["deactivatedAt"].is_null())
        .count();
    assert_eq!(users.len(), active);
    assert!(!users.iter().any(|u| u["id"] == DEACTIVATED_USER));

    let owner = async |body: Value| {
        rig.call("PUT", &format!("/admin/tenants/{id}/owner"), body)
            .await
    };
    let (s, v) = owner(json!({"userId": "0f0e0d0c-0000-4000-8000-000000000000"})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("unknown_user")), "{v}");
    let (s, v) = owner(json!({"userId": DEACTIVATED_USER})).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("user_deactivated")),
        "{v}"
    );
    let (s, v) = owner(json!({})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("missing_user_id")));
    let (s, v) = owner(json!({"userId": "x", "extra": 1})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_json")));
    let user = active_user(&rig.sim);
    let (s, v) = owner(json!({"userId": user})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        rig.store.tenant(&id).await.unwrap().unwrap().owner_user_id,
        Some(user.clone())
    );
    let (_, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/users"), Value::Null)
        .await;
    assert_eq!(v["ownerUserId"], user.as_str());

    // Without users:read: a plain 403 message.
    let k = random_hex(16);
    rig.sim.add_key(&k, KeyPerms::only(&["opportunities:read"]));
    rig.call(
        "PUT",
        &format!("/admin/tenants/{id}/apiKey"),
        json!({"apiKey": k}),
    )
    .await;
    let (s, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/users"), Value::Null)
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (502, Some("lever_forbidden")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("users:read"));
}

#[tokio::test]
async fn webhooks_register_once_and_pasted_tokens_rotate() {
    let rig = Rig::<DynamoStore>::new(KeyPerms::all()).await;
    let id = rig.connect().await;
    let path = format!("/admin/tenants/{id}/webhooks");
    let (s, v) = rig.call("POST", &path, Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["reminder"].as_str().unwrap().contains("Super Admin"));
    let hooks = v["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 10);
    assert!(hooks.iter().all(|h| h["status"] == "created"), "{v}");
    let sim_hooks = rig.sim.webhooks();
    assert_eq!(sim_hooks.len(), 10);
    let secret = rig.secrets.load(&id).await.unwrap().unwrap();
    for h in &sim_hooks {
        let kind = EventKind::parse(h["event"].as_str().unwrap()).unwrap();
        assert_eq!(
            h["url"],
            format!(
                "{HOOKS}/webhooks/{id}/{}/{}",
                rig.url_key(&id).await,
                kind.as_str()
            )
        );
        let token = h["configuration"]["signatureToken"].as_str().unwrap();
        assert_eq!(secret.tokens(kind)[0].expose(), token);
        let (_, body) = delivery(kind, token, now_ms(), sample_data(kind, "opp-9"));
        assert_eq!(rig.deliver(&id, kind, &body).await, 200, "{kind:?}");
    }
    // Twice: nothing new in Lever.
    let (s, v) = rig.call("POST", &path, Value::Null).await;
    assert_eq!(s, 200);
    assert!(
        v["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "exists"),
        "{v}"
    );
    assert_eq!(rig.sim.webhooks().len(), 10);

    // A pasted token (UI-made webhook): the previous one stays valid during the rotation.
    let kind = EventKind::CandidateHired;
    let old = secret.tokens(kind)[0].expose().to_string();
    let new = random_hex(24);
    let tpath = format!("/admin/tenants/{id}/webhooks/candidateHired/token");
    let (s, v) = rig.call("PUT", &tpath, json!({"token": new})).await;
    assert_eq!((s, v["tokensSet"].as_u64()), (200, Some(2)), "{v}");
    assert!(!v.to_string().contains(&new));
    for t in [&old, &new] {
        let (_, body) = delivery(kind, t, now_ms(), sample_data(kind, "opp-10"));
        assert_eq!(rig.deliver(&id, kind, &body).await, 200);
    }
    let (s, v) = rig
        .call("PUT", &tpath, json!({"token": new, "keepPrevious": false}))
        .await;
    assert_eq!((s, v["tokensSet"].as_u64()), (200, Some(1)));
    let (_, body) = delivery(kind, &old, now_ms(), sample_data(kind, "opp-11"));
    assert_eq!(rig.deliver(&id, kind, &body).await, 401);
    let (s, v) = rig
        .call(
            "PUT",
            &format!("/admin/tenants/{id}/webhooks/candidateFired/token"),
            json!({"token": "x"}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("unknown_event")));
    let (s, v) = rig.call("PUT", &tpath, json!({"token": "has space"})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_token")));
    let (s, _) = rig.call("GET", &path, Value::Null).await;
    assert_eq!(s, 405);

    // A token lost (secret rewritten): the webhook is made again to learn a new one.
    let mut s2 = rig.secrets.load(&id).await.unwrap().unwrap();
    s2.webhook_tokens.remove("contactCreated");
    rig.secrets.save(&id, &s2).await.unwrap();
    let (_, v) = rig.call("POST", &path, Value::Null).await;
    let cc = v["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"] == "contactCreated")
        .unwrap()
        .clone();
    assert_eq!(cc["status"], "recreated", "{v}");
    assert_eq!(rig.sim.webhooks().len(), 10);

    // A leaked URL: rotating its key moves every webhook to new URLs; the old ones stop.
    let old_key = rig.url_key(&id).await;
    let g0 = rig.secrets.load(&id).await.unwrap().unwrap().url_generation;
    let (s, v) = rig
        .call("POST", &format!("{path}/urlKey"), Value::Null)
        .await;
    assert_eq!(
        (s, v["urlGeneration"].as_u64()),
        (200, Some(u64::from(g0) + 1)),
        "{v}"
    );
    let new_key = url_keys().key(&id, g0 + 1);
    assert_eq!(
        v["webhookUrls"]["candidateHired"],
        format!("{HOOKS}/webhooks/{id}/{new_key}/candidateHired")
    );
    let sim_hooks = rig.sim.webhooks();
    assert_eq!(
        sim_hooks.len(),
        10,
        "the old webhooks deleted, new ones made"
    );
    assert!(
        sim_hooks
            .iter()
            .all(|h| h["url"].as_str().unwrap().contains(&new_key)),
        "{sim_hooks:?}"
    );
    let secret = rig.secrets.load(&id).await.unwrap().unwrap();
    let kind = EventKind::CandidateHired;
    let token = secret.tokens(kind)[0].expose().to_string();
    let (_, body) = delivery(kind, &token, now_ms(), sample_data(kind, "opp-r"));
    let rx = rig.receiver(kind);
    assert_eq!(
        rx.receive(&id, &old_key, &body).await.status,
        401,
        "the old URL stops"
    );
    assert_eq!(rx.receive(&id, &new_key, &body).await.status, 200);
    let (_, st) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert!(
        st["webhooks"][0]["url"]
            .as_str()
            .unwrap()
            .contains(&new_key),
        "the status shows the new URLs: {st}"
    );

    // Without webhooks:write: a plain 403 message.
    let k = random_hex(16);
    rig.sim
        .add_key(&k, KeyPerms::only(&["users:read", "webhooks:read"]));
    rig.call(
        "PUT",
        &format!("/admin/tenants/{id}/apiKey"),
        json!({"apiKey": k}),
    )
    .await;
    let mut s3 = rig.secrets.load(&id).await.unwrap().unwrap();
    // One kind's token kept: the tenant has given out URLs, so a rotation has something to do.
    s3.webhook_tokens.retain(|kind, _| kind == "candidateHired");
    rig.secrets.save(&id, &s3).await.unwrap();
    let (s, v) = rig.call("POST", &path, Value::Null).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (502, Some("lever_forbidden")),
        "{v}"
    );
    // A rotation whose webhooks cannot be moved: the key is rotated all the same, and the answer
    // says the move failed and how to finish it.
    let (s, v) = rig
        .call("POST", &format!("{path}/urlKey"), Value::Null)
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (424, Some("lever_forbidden")),
        "{v}"
    );
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("rotated (generation {})", g0 + 2))
            && message.contains("POST /admin/tenants/"),
        "{message}"
    );
    assert_eq!(
        rig.secrets.load(&id).await.unwrap().unwrap().url_generation,
        g0 + 2
    );
    rig.assert_no_secret_in_answers();
}

async fn status_shows_health_and_renders_in_chromium<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let id = rig.connect().await;
    let (_, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert_eq!(v["state"], "degraded", "no tokens, no owner yet: {v}");
    // Connecting scheduled the backfill of every candidate.
    assert_eq!(
        (v["sync"]["mode"].as_str(), v["sync"]["running"].as_bool()),
        (Some("backfill"), Some(true)),
        "{v}"
    );
    assert!(v["sync"]["nextRunAt"].as_i64().is_some(), "due: {v}");
    let first = rig.store.sync_job(&id).await.unwrap().unwrap().job_id;
    let (s, started) = rig
        .call("POST", &format!("/admin/tenants/{id}/sync"), Value::Null)
        .await;
    assert_eq!(
        (s, started["backfill"].as_str()),
        (200, Some("scheduled")),
        "{started}"
    );
    assert_ne!(started["jobId"].as_str(), Some(first.as_str()), "a new job");
    let (s, _) = rig
        .call("POST", "/admin/tenants/nobody/sync", Value::Null)
        .await;
    assert_eq!(s, 404);
    rig.call(
        "POST",
        &format!("/admin/tenants/{id}/webhooks"),
        Value::Null,
    )
    .await;
    let user = active_user(&rig.sim);
    rig.call(
        "PUT",
        &format!("/admin/tenants/{id}/owner"),
        json!({"userId": user}),
    )
    .await;
    let token = rig
        .secrets
        .load(&id)
        .await
        .unwrap()
        .unwrap()
        .tokens(EventKind::CandidateStageChange)[0]
        .expose()
        .to_string();
    let kind = EventKind::CandidateStageChange;
    for n in 0..3 {
        let (_, body) = delivery(
            kind,
            &token,
            now_ms() - 1000 + n,
            sample_data(kind, &format!("opp-{n}")),
        );
        assert_eq!(rig.deliver(&id, kind, &body).await, 200);
    }
    let (s, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "connected", "{v}");
    assert_eq!(v["environment"], "sandbox");
    assert_eq!(v["ownerUserId"], user.as_str());
    let hook = |v: &Value, e: &str| {
        v["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["event"] == e)
            .unwrap()
            .clone()
    };
    let sc = hook(&v, "candidateStageChange");
    assert_eq!(
        (sc["tokenSet"].as_bool(), sc["deliveries"].as_u64()),
        (Some(true), Some(3)),
        "{sc}"
    );
    assert!(sc["lastReceivedAt"].is_i64());
    assert_eq!(v["pushes"]["pushesDone"], 0);

    // A rejected delivery shows with its reason, newer than the last accepted one.
    let (_, body) = delivery(
        kind,
        "wrong-token",
        now_ms() + 1000,
        sample_data(kind, "opp-x"),
    );
    assert_eq!(rig.deliver(&id, kind, &body).await, 401);
    let (_, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    let sc = hook(&v, "candidateStageChange");
    assert!(sc["lastRejection"].is_string(), "{sc}");
    assert_eq!(v["state"], "degraded", "{v}");

    // The page, in headless Chromium.
    let html = rig
        .raw("GET", &format!("/admin/tenants/{id}/status.html"), "")
        .await;
    assert_eq!(
        (html.status, html.content_type),
        (200, "text/html; charset=utf-8")
    );
    assert!(!html.body.contains("<script"));
    let text = chromium_text(&html.body).await;
    assert!(text.contains(&format!("Lever integration: {id}")), "{text}");
    assert!(text.contains("State: degraded"), "{text}");
    assert!(text.contains("candidateStageChange"), "{text}");
    assert!(text.contains("Transcript messages waiting"), "{text}");
    assert!(text.contains("backfill in progress"), "{text}");
    assert!(
        text.contains("Changes recovered that no webhook delivered"),
        "{text}"
    );
    let missing = rig
        .raw("GET", "/admin/tenants/nobody/status.html", "")
        .await;
    assert_eq!(missing.status, 404);
    rig.assert_no_secret_in_answers();
}

/// Serves `html` on a loopback port and returns the DOM Chromium rendered from it.
async fn chromium_text(html: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let page = html.to_string();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = sock.write_all(res.as_bytes()).await;
            });
        }
    });
    let profile = std::env::temp_dir().join(unique("chromium"));
    let url = format!("http://{addr}/");
    let dir = format!("--user-data-dir={}", profile.display());
    let out = tokio::task::spawn_blocking(move || {
        // The browser tests/stack.sh found (Chromium or Chrome).
        let chrome = std::env::var("LEVER_BRIDGE_CHROME")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "chromium".into());
        std::process::Command::new(chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                dir.as_str(),
                "--dump-dom",
                url.as_str(),
            ])
            .output()
    })
    .await
    .unwrap()
    .expect("Chromium runs (make test finds it or says how to install it)");
    server.abort();
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    // The rendered text: tags dropped, whitespace collapsed.
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" :", ":")
}

#[tokio::test]
async fn candidate_links_resolve_and_other_links_are_refused() {
    let rig = Rig::<DynamoStore>::new(KeyPerms::all()).await;
    let id = rig.connect().await;
    let posting = rig.sim.postings()[0]["id"].as_str().unwrap().to_string();
    let title = rig.sim.postings()[0]["text"].as_str().unwrap().to_string();
    let opp = rig.sim.add_opportunity(NewOpportunity {
        name: "Grace Hopper".into(),
        emails: vec!["grace@example.com".into()],
        stage: Some("lead-new".into()),
        posting: Some(posting.clone()),
        ..Default::default()
    });
    let path = format!("/admin/tenants/{id}/resolve");
    for link in [
        format!("https://hire.lever.co/candidates/{opp}"),
        format!("https://hire.sandbox.lever.co/candidates/{opp}/"),
        format!("https://hire.eu.lever.co/opportunities/{opp}?tab=notes"),
        format!("https://hire.lever.co/candidates/{opp}/feedback#x"),
    ] {
        let (s, v) = rig.call("POST", &path, json!({"link": link})).await;
        assert_eq!(s, 200, "{link}: {v}");
        assert_eq!(v["opportunityId"], opp.as_str());
        assert_eq!(v["name"], "Grace Hopper");
        assert_eq!(v["emails"], json!(["grace@example.com"]));
        assert!(v["phones"].is_array());
        assert_eq!(v["stage"]["id"], "lead-new");
        assert!(v["stage"]["text"].is_string(), "{v}");
        assert_eq!(v["posting"], json!({"id": posting, "text": title}));
        assert!(v["archived"].is_null());
    }
    let reason = rig.sim.archive_reasons()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let archived = rig.sim.add_opportunity(NewOpportunity {
        name: "Alan Turing".into(),
        archived_reason: Some(reason.clone()),
        ..Default::default()
    });
    let (_, v) = rig
        .call(
            "POST",
            &path,
            json!({"link": format!("https://hire.lever.co/candidates/{archived}")}),
        )
        .await;
    assert_eq!(v["archived"]["reason"], reason.as_str(), "{v}");

    for bad in [
        "https://jobs.lever.co/acme/1234",
        "https://example.com/candidates/abc",
        "https://hire.lever.co/settings/integrations",
        "not a link",
    ] {
        let (s, v) = rig.call("POST", &path, json!({"link": bad})).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("bad_link")), "{bad}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("hire.lever.co/candidates/")
        );
    }
    let (s, v) = rig
        .call("POST", &path, json!({"link": "https://hire.lever.co/candidates/0f0e0d0c-0000-4000-8000-000000000000"}))
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (404, Some("candidate_not_found")),
        "{v}"
    );
    let (s, v) = rig.call("POST", &path, json!({})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("missing_link")));
}

async fn roles_sync_map_and_report_mismatches<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let id = rig.connect().await;
    let all = rig.sim.postings();
    let (a, b, c) = (
        all[0]["id"].as_str().unwrap().to_string(),
        all[1]["id"].as_str().unwrap().to_string(),
        all[2]["id"].as_str().unwrap().to_string(),
    );
    rig.sim.set_posting_state(&a, "published");
    rig.sim.set_posting_state(&c, "published");
    let (s, v) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/postings/sync"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["postings"].as_u64(), Some(all.len() as u64));
    assert_eq!(
        v["confidential"], 1,
        "the confidential posting is seen with confidential access"
    );
    assert!(
        rig.store
            .postings(&id)
            .await
            .unwrap()
            .iter()
            .any(|p| p.id == CONFIDENTIAL_POSTING)
    );

    let role = async |r: &str, body: Value| {
        rig.call("PUT", &format!("/admin/tenants/{id}/roles/{r}"), body)
            .await
    };
    assert_eq!(role("backend", json!({"postingId": a})).await.0, 200);
    assert_eq!(role("frontend", json!({"postingId": b})).await.0, 200);
    let (s, v) = role("x", json!({"postingId": "no-such-posting"})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("unknown_posting")));
    let (s, v) = role("bad role!", json!({"postingId": a})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_role_id")));

    // In Lever: b closes, a disappears.
    rig.sim.set_posting_state(&b, "closed");
    rig.sim.remove_posting(&a);
    rig.call(
        "POST",
        &format!("/admin/tenants/{id}/postings/sync"),
        Value::Null,
    )
    .await;
    let (s, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/roles"), Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["roles"].as_array().unwrap().len(), 2);
    let kinds: Vec<(String, String)> = v["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().into(),
                m["postingId"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("postingGone".into(), a.clone())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("postingClosed".into(), b.clone())),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("unmapped".into(), c.clone())), "{kinds:?}");
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    let (s, v) = role("backend", json!({"postingId": a})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("posting_gone")));
    assert_eq!(role("backend", json!({"postingId": null})).await.0, 200);
    let (_, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/roles"), Value::Null)
        .await;
    assert_eq!(v["roles"].as_array().unwrap().len(), 1);

    // A key without confidential access does not see the confidential posting.
    let k = random_hex(16);
    rig.sim
        .add_key(&k, KeyPerms::only(&["users:read", "postings:read"]));
    rig.call(
        "PUT",
        &format!("/admin/tenants/{id}/apiKey"),
        json!({"apiKey": k}),
    )
    .await;
    let (_, v) = rig
        .call(
            "POST",
            &format!("/admin/tenants/{id}/postings/sync"),
            Value::Null,
        )
        .await;
    assert_eq!(v["confidential"], 0, "{v}");
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at DEBUG: one global subscriber, installed before any
/// test logs (a per-test scoped one misses lines when tests run in parallel).
static LOGS: std::sync::OnceLock<Buf> = std::sync::OnceLock::new();

fn capture_logs() {
    LOGS.get_or_init(|| {
        use lever_bridge::lambda::logging::subscriber;
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = subscriber::fmt()
            .with_max_level(lever_bridge::lambda::logging::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = lever_bridge::lambda::logging::dispatcher::set_global_default(sub.into());
        buf
    });
}

/// Every route, errors included, with tracing captured at DEBUG: neither the key nor any
/// signature token appears in a log line.
#[tokio::test]
async fn no_secret_in_any_log_line() {
    // On the heap: the whole flow's future is too large for a test thread's stack in debug builds.
    Box::pin(no_secret_in_any_log_line_body()).await
}

async fn no_secret_in_any_log_line_body() {
    let rig = Rig::<DynamoStore>::new(KeyPerms::all()).await;
    let opp = rig.sim.add_opportunity(NewOpportunity {
        name: "Ada".into(),
        ..Default::default()
    });
    let r = rig
        .raw(
            "POST",
            "/admin/tenants",
            &json!({"environment": "sandbox", "apiKey": format!("{}x", rig.key)}).to_string(),
        )
        .await;
    assert_eq!(r.status, 400);
    let id = rig.connect().await;
    let t = format!("/admin/tenants/{id}");
    rig.call("POST", &format!("{t}/test"), Value::Null).await;
    rig.call("GET", &format!("{t}/users"), Value::Null).await;
    rig.call(
        "PUT",
        &format!("{t}/owner"),
        json!({"userId": active_user(&rig.sim)}),
    )
    .await;
    rig.call("POST", &format!("{t}/webhooks"), Value::Null)
        .await;
    rig.call("POST", &format!("{t}/webhooks"), Value::Null)
        .await;
    let pasted = random_hex(24);
    rig.call(
        "PUT",
        &format!("{t}/webhooks/contactUpdated/token"),
        json!({"token": pasted}),
    )
    .await;
    rig.call("GET", &format!("{t}/status"), Value::Null).await;
    rig.raw("GET", &format!("{t}/status.html"), "").await;
    rig.call("POST", &format!("{t}/postings/sync"), Value::Null)
        .await;
    rig.call("GET", &format!("{t}/roles"), Value::Null).await;
    rig.call(
        "POST",
        &format!("{t}/resolve"),
        json!({"link": format!("https://hire.lever.co/candidates/{opp}")}),
    )
    .await;
    rig.call(
        "POST",
        &format!("{t}/resolve"),
        json!({"link": "https://nope"}),
    )
    .await;
    rig.call("PUT", &format!("{t}/apiKey"), json!({"apiKey": 42}))
        .await;
    rig.sim.remove_key(&rig.key);
    rig.call("POST", &format!("{t}/test"), Value::Null).await;
    rig.call("GET", &format!("{t}/users"), Value::Null).await;
    rig.call("DELETE", &t, Value::Null).await;

    // OAuth: authorize, callback, a refresh; neither code, state nor tokens may be logged.
    let oauth_secrets = Box::pin(oauth_for_logs(&rig)).await;

    let logs = String::from_utf8_lossy(&LOGS.get().unwrap().0.lock().unwrap()).to_string();
    assert!(logs.contains("admin request"), "logs were captured: {logs}");
    assert!(!logs.contains(&rig.key), "the API key is in a log line");
    assert!(!logs.contains(&pasted), "a pasted token is in a log line");
    assert!(logs.contains("OAuth tokens refreshed"), "{logs}");
    for (i, secret) in oauth_secrets.iter().enumerate() {
        assert!(
            !logs.contains(secret.as_str()),
            "an OAuth secret is in a log line"
        );
        // The state (index 1) is in the authorize answer by design.
        assert!(
            i == 1
                || !rig
                    .answers
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|a| a.contains(secret.as_str())),
            "an OAuth secret is in an answer"
        );
    }
    for h in rig.sim.webhooks() {
        let token = h["configuration"]["signatureToken"].as_str().unwrap();
        assert!(!logs.contains(token), "a signature token is in a log line");
    }
    rig.assert_no_secret_in_answers();
    assert!(
        !rig.answers
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.contains(&pasted))
    );
}

// ---------------------------------------------------------------------------------------------
// OAuth

const REDIRECT: &str = "https://admin.example.test/admin/oauth/callback";

fn sim_oauth(sim: &Simulator) -> OAuthConfig {
    let mut c = OAuthConfig::new(
        SIM_CLIENT_ID,
        ClientSecret::Value(Redacted::new(SIM_CLIENT_SECRET)),
        Some(REDIRECT),
    );
    c.authorize_url = Some(sim.authorize_url());
    c.token_url = Some(sim.token_url());
    c
}

impl<B: Backend> Rig<B> {
    /// `GET /admin/oauth/authorize` for a new sandbox tenant: (tenant id, state).
    async fn oauth_authorize(&self) -> (String, String) {
        let id = unique("oauth");
        let r = self
            .raw_query(
                "/admin/oauth/authorize",
                &format!("tenantId={id}&environment=sandbox"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.value();
        (id, v["state"].as_str().unwrap().to_string())
    }

    async fn raw_query(&self, path: &str, query: &str) -> Reply {
        let reply = self
            .admin
            .handle_request(&Group::ALL, "GET", path, query, b"")
            .await;
        openapi::check_answer("GET", path, reply.status, reply.content_type, &reply.body);
        self.answers.lock().unwrap().push(reply.body.clone());
        reply
    }

    async fn callback(&self, code: &str, state: &str) -> Reply {
        self.raw_query(
            "/admin/oauth/callback",
            &format!("code={code}&state={state}"),
        )
        .await
    }

    /// A tenant connected through the whole OAuth flow: (tenant id, code, state).
    async fn oauth_connect(&self) -> (String, String, String) {
        let (id, state) = self.oauth_authorize().await;
        let code = self.sim.issue_auth_code(KeyPerms::all());
        let r = self.callback(&code, &state).await;
        assert_eq!(r.status, 201, "{}", r.body);
        (id, code, state)
    }

    /// The whole OAuth flow again for an existing tenant (a new consent): the callback's reply.
    async fn oauth_reconnect(&self, id: &str) -> Reply {
        let r = self
            .raw_query(
                "/admin/oauth/authorize",
                &format!("tenantId={id}&environment=sandbox"),
            )
            .await;
        let state = r.value()["state"].as_str().unwrap().to_string();
        self.callback(&self.sim.issue_auth_code(KeyPerms::all()), &state)
            .await
    }

    /// The tenants of one function instance (its own cache) on `clock`.
    fn tenants(&self, clock: Arc<ManualClock>) -> Tenants<B, B::Secrets, Arc<ManualClock>> {
        let mut t = Tenants::new(self.store.clone(), self.secrets.clone(), clock, 60_000);
        t.set_oauth(Some(Arc::new(OAuthClient::new(sim_oauth(&self.sim), None))));
        t
    }

    fn grants(&self, kind: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.path == "/oauth/token" && r.body == Some(json!({"grant_type": kind})))
            .count()
    }

    /// A note written with `auth`, as a push does.
    async fn note_with(
        &self,
        auth: &Auth,
        opp: &str,
    ) -> Result<Value, lever_bridge::lever::LeverError> {
        let account = lever_bridge::lever::Account {
            base_url: self.sim.base_url(),
            auth: auth.clone(),
        };
        let lever = HttpLever::new(RateLimiter::new(10.0, 20), RetryPolicy::default());
        Lever::new(
            &lever,
            &account,
            std::time::Instant::now() + std::time::Duration::from_secs(10),
        )
        .send(LeverRequest::create(
            format!("/opportunities/{opp}/notes"),
            json!({"value": "pushed with OAuth"}),
        ))
        .await
    }
}

async fn oauth_connect_then_push_with_bearer<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let r = rig
        .raw_query(
            "/admin/oauth/authorize",
            "tenantId=acme-o&environment=sandbox",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.value();
    let url = v["authorizeUrl"].as_str().unwrap();
    let state = v["state"].as_str().unwrap();
    // `<expiry>.<256 random bits>.<MAC>`: the callback knows one of ours without a call.
    let parts: Vec<&str> = state.split('.').collect();
    assert_eq!(
        (parts.len(), parts[1].len(), parts[2].len()),
        (3, 64, 32),
        "{state}"
    );
    assert!(v["expiresAt"].as_i64().unwrap() > now_ms() + 9 * 60_000);
    for part in [
        "response_type=code",
        "client_id=sim-client",
        "redirect_uri=https%3A%2F%2Fadmin.example.test%2Fadmin%2Foauth%2Fcallback",
        "audience=https%3A%2F%2Fapi.lever.co%2Fv1%2F",
        "offline_access",
        "notes%3Awrite%3Aadmin",
        &format!("state={state}"),
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    for bad in ["tenantId=a%20b", "tenantId=x&environment=mars"] {
        let r = rig.raw_query("/admin/oauth/authorize", bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    let code = rig.sim.issue_auth_code(KeyPerms::all());
    let r = rig.callback(&code, state).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.value();
    assert_eq!(v["tenantId"], "acme-o");
    assert_eq!(v["status"], "connected");
    assert_eq!(v["leverBaseUrl"], rig.sim.base_url());
    assert_eq!(v["webhookUrls"].as_object().unwrap().len(), 10);

    let t = rig.store.tenant("acme-o").await.unwrap().unwrap();
    assert_eq!(t.status, TenantStatus::Connected);
    assert_eq!(t.lever_base_url, rig.sim.base_url());
    let secret = rig.secrets.load("acme-o").await.unwrap().unwrap();
    let tokens = secret.oauth.clone().unwrap();
    assert!(secret.api_key.is_none());
    assert!(tokens.expires_at > now_ms() + 3_500_000);
    assert!(!format!("{secret:?}").contains(tokens.access_token.expose()));

    // The functions use the access token as Bearer.
    let tenants = rig.tenants(Arc::new(ManualClock::at(now_ms())));
    let ctx = tenants
        .context("acme-o", invocation())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ctx.account.auth, Auth::Bearer(tokens.access_token.clone()));
    let opp = rig.sim.add_opportunity(NewOpportunity {
        name: "Ada".into(),
        ..Default::default()
    });
    rig.note_with(&ctx.account.auth, &opp).await.unwrap();
    assert_eq!(rig.sim.notes(&opp).len(), 1);
    let last = rig
        .sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.contains("/notes"))
        .unwrap();
    assert_eq!(last.key.as_deref(), Some(tokens.access_token.expose()));
    // And the admin routes too.
    let (status, v) = rig
        .call("POST", "/admin/tenants/acme-o/test", Value::Null)
        .await;
    assert_eq!((status, v["result"].as_str()), (200, Some("ok")), "{v}");
    rig.assert_no_secret_in_answers();

    // Connecting again (a new consent) updates the tenant: 200, new tokens.
    let r = rig.oauth_reconnect("acme-o").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let again = rig
        .secrets
        .load("acme-o")
        .await
        .unwrap()
        .unwrap()
        .oauth
        .unwrap();
    assert_ne!(again.refresh_token, tokens.refresh_token);

    // An access token the simulator let expire is refused, like Lever's.
    rig.sim
        .set_access_token_lifetime(std::time::Duration::from_millis(300));
    let (id, state) = rig.oauth_authorize().await;
    let r = rig
        .callback(&rig.sim.issue_auth_code(KeyPerms::all()), &state)
        .await;
    assert_eq!(r.status, 201);
    let short = rig.secrets.load(&id).await.unwrap().unwrap().oauth.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let e = rig
        .note_with(&Auth::Bearer(short.access_token), &opp)
        .await
        .unwrap_err();
    assert!(
        matches!(e, lever_bridge::lever::LeverError::Unauthorized(_)),
        "{e:?}"
    );
}

async fn oauth_state_is_single_use_and_expires<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let (id, code, state) = rig.oauth_connect().await;
    // Replayed: the state was consumed.
    let replay = rig
        .callback(&rig.sim.issue_auth_code(KeyPerms::all()), &state)
        .await;
    assert_eq!(
        (replay.status, replay.value()["error"].as_str()),
        (400, Some("invalid_state"))
    );
    // Unknown and missing.
    let r = rig.callback(&code, &random_hex(32)).await;
    assert_eq!(
        (r.status, r.value()["error"].as_str()),
        (400, Some("invalid_state"))
    );
    let r = rig
        .raw_query("/admin/oauth/callback", &format!("code={code}"))
        .await;
    assert_eq!(
        (r.status, r.value()["error"].as_str()),
        (400, Some("invalid_state"))
    );
    // Expired: stored with an expiry in the past (checked by the store, not left to TTL).
    let stale = random_hex(32);
    let hash = rig_state_hash(&rig, &stale).await;
    assert!(
        rig.store
            .put_oauth_state(&OAuthPending {
                state_hash: hash,
                tenant_id: id.clone(),
                environment: "sandbox".into(),
                expires_at: now_ms() - 1,
                return_to_pages: false,
            })
            .await
            .unwrap()
    );
    let r = rig
        .callback(&rig.sim.issue_auth_code(KeyPerms::all()), &stale)
        .await;
    assert_eq!(
        (r.status, r.value()["error"].as_str()),
        (400, Some("invalid_state"))
    );
    // A bad code (and a used one): Lever's invalid_grant is a plain 400, nothing stored.
    for code in ["not-a-code".to_string(), code] {
        let (other, state) = rig.oauth_authorize().await;
        let r = rig.callback(&code, &state).await;
        assert_eq!(
            (r.status, r.value()["error"].as_str()),
            (400, Some("invalid_code")),
            "{}",
            r.body
        );
        assert!(rig.store.tenant(&other).await.unwrap().is_none());
        assert!(rig.secrets.load(&other).await.unwrap().is_none());
    }
    // Declined on Lever's page.
    let (_, state) = rig.oauth_authorize().await;
    let r = rig
        .raw_query(
            "/admin/oauth/callback",
            &format!("error=access_denied&state={state}"),
        )
        .await;
    assert_eq!(
        (r.status, r.value()["error"].as_str()),
        (400, Some("authorization_denied"))
    );
    let r = rig
        .callback(&rig.sim.issue_auth_code(KeyPerms::all()), &state)
        .await;
    assert_eq!(r.status, 400, "the declined state is used up");
    // Wrong method.
    let r = rig.raw("POST", "/admin/oauth/callback", "").await;
    assert_eq!(r.status, 405);
}

/// The OAuth flow and a refresh, for the log test: the values that must not be logged (the
/// code, the state, every token, the client secret).
async fn oauth_for_logs(rig: &Rig<DynamoStore>) -> Vec<String> {
    let (oauth_id, code, state) = rig.oauth_connect().await;
    rig.call(
        "POST",
        &format!("/admin/tenants/{oauth_id}/test"),
        Value::Null,
    )
    .await;
    let first = rig
        .secrets
        .load(&oauth_id)
        .await
        .unwrap()
        .unwrap()
        .oauth
        .unwrap();
    let clock = Arc::new(ManualClock::at(now_ms() + 56 * 60_000));
    let tenants = rig.tenants(clock);
    tenants
        .context(&oauth_id, invocation())
        .await
        .unwrap()
        .unwrap();
    let second = rig
        .secrets
        .load(&oauth_id)
        .await
        .unwrap()
        .unwrap()
        .oauth
        .unwrap();
    let bad = rig.raw("GET", "/admin/oauth/callback", "").await;
    assert_eq!(bad.status, 400);
    vec![
        code,
        state,
        first.access_token.expose().to_string(),
        first.refresh_token.expose().to_string(),
        second.access_token.expose().to_string(),
        second.refresh_token.expose().to_string(),
        SIM_CLIENT_SECRET.to_string(),
    ]
}

/// The store key of a state: the admin hashes it (SHA-256, hex) before storing.
async fn rig_state_hash<B: Backend>(_rig: &Rig<B>, state: &str) -> String {
    lever_bridge::admin::oauth::state_hash(state)
}

async fn oauth_refresh_before_expiry_and_one_winner_when_concurrent<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    rig.sim
        .set_access_token_lifetime(std::time::Duration::from_secs(400));
    let (id, _, _) = rig.oauth_connect().await;
    let first = rig.secrets.load(&id).await.unwrap().unwrap().oauth.unwrap();
    let opp = rig.sim.add_opportunity(NewOpportunity {
        name: "Ada".into(),
        ..Default::default()
    });
    let clock = Arc::new(ManualClock::at(now_ms()));
    let tenants = rig.tenants(clock.clone());
    // Still more than 5 minutes left: no refresh.
    let ctx = tenants.context(&id, invocation()).await.unwrap().unwrap();
    assert_eq!(ctx.account.auth, Auth::Bearer(first.access_token.clone()));
    assert_eq!(rig.grants("refresh_token"), 0);
    // 101 s later fewer than 5 minutes are left: refreshed before use.
    clock.advance(101_000);
    let ctx = tenants.context(&id, invocation()).await.unwrap().unwrap();
    let second = rig.secrets.load(&id).await.unwrap().unwrap().oauth.unwrap();
    assert_eq!(rig.grants("refresh_token"), 1);
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(ctx.account.auth, Auth::Bearer(second.access_token.clone()));
    rig.note_with(&ctx.account.auth, &opp).await.unwrap();
    // The cache holds the new tokens: no second refresh.
    tenants.context(&id, invocation()).await.unwrap().unwrap();
    assert_eq!(rig.grants("refresh_token"), 1);
    // The old refresh token is dead at the simulator (rotation).
    assert_eq!(
        rig.sim
            .live_refresh_tokens()
            .iter()
            .filter(|t| *t == first.refresh_token.expose())
            .count(),
        0
    );

    // Two instances (own caches) both find the token about to expire, at once.
    clock.advance(400_000);
    let a = rig.tenants(clock.clone());
    let b = rig.tenants(clock.clone());
    let (ra, rb) = tokio::join!(a.context(&id, invocation()), b.context(&id, invocation()));
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    assert_eq!(
        rig.grants("refresh_token"),
        2,
        "exactly one more refresh grant"
    );
    assert_eq!(
        ra.account.auth, rb.account.auth,
        "both got the new access token"
    );
    let third = rig.secrets.load(&id).await.unwrap().unwrap().oauth.unwrap();
    assert_eq!(ra.account.auth, Auth::Bearer(third.access_token.clone()));
    assert_ne!(third.refresh_token, second.refresh_token);
    assert!(
        rig.sim
            .live_refresh_tokens()
            .contains(&third.refresh_token.expose().to_string()),
        "the secret holds the newest refresh token"
    );
    rig.note_with(&ra.account.auth, &opp).await.unwrap();
    rig.note_with(&rb.account.auth, &opp).await.unwrap();
    // Each refresh was a success; nothing was disconnected.
    assert!(
        rig.sim
            .requests()
            .iter()
            .filter(|r| r.path == "/oauth/token")
            .all(|r| r.status == Some(200))
    );
    assert_eq!(
        rig.store.tenant(&id).await.unwrap().unwrap().status,
        TenantStatus::Connected
    );
}

/// Registering webhooks reads the secret, talks to Lever for a while, then stores the tokens Lever
/// gave. A refresh by another function meanwhile rotates the refresh token: the registration must
/// store its tokens on the secret as it is then, not write back the retired refresh token.
async fn a_secret_write_during_a_refresh_keeps_the_new_refresh_token<B: Backend>() {
    use lever_bridge_tests::simulator::Fault;
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let (id, _, _) = rig.oauth_connect().await;
    rig.sim
        .push_fault(Fault::Delay(std::time::Duration::from_millis(1500)), 1);
    let path = format!("/admin/tenants/{id}/webhooks");
    let register = rig.call("POST", &path, Value::Null);
    let refresh = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let later = Arc::new(ManualClock::at(now_ms() + 3_400_000));
        rig.tenants(later)
            .context(&id, invocation())
            .await
            .unwrap()
            .unwrap();
    };
    let ((status, v), ()) = tokio::join!(register, refresh);
    assert_eq!(status, 200, "{v}");
    assert_eq!(rig.grants("refresh_token"), 1);
    let stored = rig.secrets.load(&id).await.unwrap().unwrap();
    let refresh_token = stored.oauth.unwrap().refresh_token;
    assert!(
        rig.sim
            .live_refresh_tokens()
            .contains(&refresh_token.expose().to_string()),
        "the secret keeps the refresh token Lever issued last"
    );
    assert_eq!(
        stored.webhook_tokens.len(),
        10,
        "and every token registered"
    );
}

async fn oauth_refused_refresh_disconnects_the_tenant<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let (id, _, _) = rig.oauth_connect().await;
    // The refresh token dies (revoked, idle 90 days): here, replaced by one Lever never issued.
    let mut secret = rig.secrets.load(&id).await.unwrap().unwrap();
    secret.oauth.as_mut().unwrap().refresh_token = Redacted::new("rt-revoked");
    rig.secrets.save(&id, &secret).await.unwrap();
    let clock = Arc::new(ManualClock::at(now_ms() + 3_400_000));
    let tenants = rig.tenants(clock);
    let ctx = tenants.context(&id, invocation()).await.unwrap().unwrap();
    assert_eq!(ctx.tenant.status, TenantStatus::Disconnected);
    let t = rig.store.tenant(&id).await.unwrap().unwrap();
    assert_eq!(t.status, TenantStatus::Disconnected);
    assert!(t.status_reason.unwrap().contains("invalid_grant"));
    let (status, v) = rig
        .call("GET", &format!("/admin/tenants/{id}/status"), Value::Null)
        .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("disconnected")),
        "{v}"
    );
    // Connecting again through OAuth brings it back.
    let r = rig.oauth_reconnect(&id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        rig.store.tenant(&id).await.unwrap().unwrap().status,
        TenantStatus::Connected
    );
}

/// The status reads the credentials the tenant has (API key or OAuth), and each kind replaces the
/// other: a key put on an OAuth tenant is what every function then uses, and the reverse.
async fn an_oauth_tenant_is_connected_and_a_key_replaces_its_tokens<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let (id, _, _) = rig.oauth_connect().await;
    let status = format!("/admin/tenants/{id}/status");
    let (s, v) = rig.call("GET", &status, Value::Null).await;
    assert_eq!(s, 200);
    assert_ne!(v["state"], "disconnected", "{v}");
    assert_eq!(v["auth"], "oauth", "{v}");
    assert!(!v.to_string().contains("API key"), "{v}");

    let (s, v) = rig
        .call(
            "PUT",
            &format!("/admin/tenants/{id}/apiKey"),
            json!({"apiKey": rig.key}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let secret = rig.secrets.load(&id).await.unwrap().unwrap();
    assert!(secret.oauth.is_none(), "the key replaces the OAuth tokens");
    let ctx = rig
        .tenants(Arc::new(ManualClock::at(now_ms())))
        .context(&id, invocation())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ctx.account.auth,
        Auth::ApiKey(Redacted::new(rig.key.clone()))
    );
    let (_, v) = rig.call("GET", &status, Value::Null).await;
    assert_eq!(v["auth"], "apiKey", "{v}");

    // And OAuth again replaces the key.
    let r = rig.oauth_reconnect(&id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = rig.secrets.load(&id).await.unwrap().unwrap();
    assert!(secret.api_key.is_none() && secret.oauth.is_some());
    let (_, v) = rig.call("GET", &status, Value::Null).await;
    assert_eq!(v["auth"], "oauth", "{v}");
}

/// A tenant record written before the kind of credentials was kept on it: the status (which does
/// not read the credentials) names no kind and does not call the tenant disconnected for it; the
/// first function that reads the credentials records the kind, and the status names it from then.
async fn a_record_written_before_the_auth_kind_was_kept_gets_it_from_the_first_function<
    B: Backend,
>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let id = rig.connect().await;
    let status = format!("/admin/tenants/{id}/status");
    let (_, v) = rig.call("GET", &status, Value::Null).await;
    assert_eq!(v["auth"], "apiKey", "connecting records the kind: {v}");
    let legacy = Tenant {
        auth: None,
        ..rig.store.tenant(&id).await.unwrap().unwrap()
    };
    rig.store.put_tenant(&legacy).await.unwrap();
    let (_, v) = rig.call("GET", &status, Value::Null).await;
    assert!(v["auth"].is_null(), "{v}");
    assert_ne!(v["state"], "disconnected", "{v}");
    assert!(v["reasons"].to_string().contains("not recorded yet"), "{v}");
    rig.tenants(Arc::new(ManualClock::at(now_ms())))
        .context(&id, invocation())
        .await
        .unwrap()
        .expect("the tenant's context");
    assert_eq!(
        rig.store
            .tenant(&id)
            .await
            .unwrap()
            .unwrap()
            .auth
            .as_deref(),
        Some("apiKey")
    );
    let (_, v) = rig.call("GET", &status, Value::Null).await;
    assert_eq!(v["auth"], "apiKey", "{v}");
    assert!(!v["reasons"].to_string().contains("not recorded"), "{v}");
}

/// Every writer of a tenant's secret, run while an OAuth refresh holds the tenant's lease (Lever
/// takes 1.5 s to answer its token call): each ends with the newest refresh token Lever issued
/// stored (or, for a new key, no OAuth tokens at all) and every pasted signature token kept.
async fn every_secret_writer_during_a_refresh_keeps_the_newest_tokens<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    for writer in ["paste", "register", "callback", "apiKey"] {
        let (id, _, _) = rig.oauth_connect().await;
        let paste = async |event: &str, token: &str| {
            rig.call(
                "PUT",
                &format!("/admin/tenants/{id}/webhooks/{event}/token"),
                json!({"token": token}),
            )
            .await
        };
        assert_eq!(paste("contactCreated", "pasted-before").await.0, 200);
        rig.sim
            .delay_next_token_call(std::time::Duration::from_millis(1500));
        let refresh = async {
            let later = Arc::new(ManualClock::at(now_ms() + 3_400_000));
            rig.tenants(later)
                .context(&id, invocation())
                .await
                .unwrap()
                .unwrap()
        };
        let write = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            match writer {
                "paste" => paste("candidateHired", "pasted-during").await,
                "register" => {
                    rig.call(
                        "POST",
                        &format!("/admin/tenants/{id}/webhooks"),
                        Value::Null,
                    )
                    .await
                }
                "callback" => {
                    let r = rig.oauth_reconnect(&id).await;
                    (r.status, r.value())
                }
                _ => {
                    rig.call(
                        "PUT",
                        &format!("/admin/tenants/{id}/apiKey"),
                        json!({"apiKey": rig.key}),
                    )
                    .await
                }
            }
        };
        let (ctx, (status, v)) = tokio::join!(refresh, write);
        assert_eq!(status, 200, "{writer}: {v}");
        assert_eq!(ctx.tenant.status, TenantStatus::Connected, "{writer}");
        let stored = rig.secrets.load(&id).await.unwrap().unwrap();
        assert!(
            stored
                .tokens(EventKind::ContactCreated)
                .iter()
                .any(|t| t.expose() == "pasted-before"),
            "{writer}: the pasted token is kept"
        );
        match writer {
            "apiKey" => {
                assert!(stored.oauth.is_none(), "{writer}: the key replaced OAuth");
                assert_eq!(stored.api_key.as_ref().unwrap().expose(), rig.key);
            }
            _ => {
                let rt = &stored.oauth.as_ref().unwrap().refresh_token;
                assert!(
                    rig.sim
                        .live_refresh_tokens()
                        .contains(&rt.expose().to_string()),
                    "{writer}: the stored refresh token is one Lever still honours"
                );
            }
        }
        if writer == "paste" {
            assert_eq!(
                stored.tokens(EventKind::CandidateHired)[0].expose(),
                "pasted-during"
            );
        }
        if writer == "register" {
            assert_eq!(stored.webhook_tokens.len(), 10, "every registered token");
        }
    }
}

/// A refresh Lever answers slowly keeps the tenant's lease until its new tokens are saved: a second
/// instance whose clock is 45 s later waits for them instead of taking the lease over and
/// refreshing with a refresh token Lever is about to retire (one of the two would get
/// `invalid_grant` and disconnect the tenant).
async fn a_slow_refresh_keeps_its_lease_until_it_saved<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let (id, _, _) = rig.oauth_connect().await;
    // Tokens refreshed now are fresh on both instances' clocks.
    rig.sim
        .set_access_token_lifetime(std::time::Duration::from_secs(7200));
    rig.sim
        .delay_next_token_call(std::time::Duration::from_millis(1500));
    let at = now_ms() + 3_400_000;
    let first = async {
        rig.tenants(Arc::new(ManualClock::at(at)))
            .context(&id, invocation())
            .await
            .unwrap()
            .unwrap()
    };
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        rig.tenants(Arc::new(ManualClock::at(at + 45_000)))
            .context(&id, invocation())
            .await
            .unwrap()
            .unwrap()
    };
    let (a, b) = tokio::join!(first, second);
    assert_eq!(rig.grants("refresh_token"), 1, "one refresh reached Lever");
    assert_eq!(
        a.account.auth, b.account.auth,
        "both use the new access token"
    );
    assert_eq!(
        rig.store.tenant(&id).await.unwrap().unwrap().status,
        TenantStatus::Connected
    );
}

/// A tenant's signature tokens and its Lever credentials are two secrets: a webhook function's
/// store reads the tokens and nothing else, a push's store saving refreshed credentials leaves the
/// tokens alone, and deleting the tenant deletes both.
#[tokio::test]
async fn a_tenants_tokens_and_credentials_are_two_secrets() {
    use lever_bridge::secrets::{Parts, SecretsManagerStore};
    let aws = aws().await;
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    let prefix = format!("{}/", unique("split"));
    let store = |parts| SecretsManagerStore::new(sm.clone(), &prefix, parts);
    let (all, hooks, lever) = (
        store(Parts::ALL),
        store(Parts::WEBHOOKS),
        store(Parts::LEVER),
    );
    let mut secret = secret_for_all("tok");
    secret.api_key = Some(Redacted::new("key-1"));
    all.save("t", &secret).await.unwrap();

    let seen = hooks.load("t").await.unwrap().unwrap();
    assert_eq!(seen.tokens(EventKind::CandidateHired)[0].expose(), "tok");
    assert!(
        seen.api_key.is_none() && seen.oauth.is_none(),
        "no credentials for a webhook function"
    );
    let mut creds = lever.load("t").await.unwrap().unwrap();
    assert!(creds.webhook_tokens.is_empty(), "no tokens for a push");
    creds.api_key = Some(Redacted::new("key-2"));
    lever.save("t", &creds).await.unwrap();
    let back = all.load("t").await.unwrap().unwrap();
    assert_eq!(back.api_key.unwrap().expose(), "key-2");
    assert_eq!(back.webhook_tokens.len(), 10, "the tokens untouched");
    for part in ["webhooks", "lever"] {
        let name = all.name("t", part);
        assert!(
            sm.get_secret_value().secret_id(&name).send().await.is_ok(),
            "{name}"
        );
    }

    all.delete("t").await.unwrap();
    assert!(all.load("t").await.unwrap().is_none());
}

/// A secret store whose next save never answers (a request that hangs), the rest as `inner`.
struct HangingSave<K> {
    inner: K,
    hang: std::sync::atomic::AtomicBool,
}

impl<K: SecretStore> SecretStore for HangingSave<K> {
    async fn load(
        &self,
        tenant: &str,
    ) -> Result<Option<lever_bridge::secrets::TenantSecret>, lever_bridge::secrets::SecretsError>
    {
        self.inner.load(tenant).await
    }
    async fn save(
        &self,
        tenant: &str,
        secret: &lever_bridge::secrets::TenantSecret,
    ) -> Result<(), lever_bridge::secrets::SecretsError> {
        if self.hang.swap(false, std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.save(tenant, secret).await
    }
    async fn delete(&self, tenant: &str) -> Result<(), lever_bridge::secrets::SecretsError> {
        self.inner.delete(tenant).await
    }
}

/// A refresh ends before its invocation does. Before, a save that hung was waited on for 30 s
/// whatever the invocation had left: killed at its deadline after Lever had rotated the refresh
/// token, the tenant kept a dead one (disconnected for good). Now a refresh starts only with the
/// time to finish its save, and a hung save attempt is given up and tried again in time.
/// (Real time, not tokio's paused clock: the simulator is a real HTTP server, and a paused clock
/// would fire the client's timeouts while it waits on the socket.)
async fn no_refresh_outlives_its_invocation<B: Backend>() {
    let rig = Rig::<B>::new(KeyPerms::all()).await;
    let (id, _, _) = rig.oauth_connect().await;
    let stored = || async {
        rig.secrets
            .load(&id)
            .await
            .unwrap()
            .unwrap()
            .oauth
            .unwrap()
            .refresh_token
            .expose()
            .to_string()
    };
    let before = stored().await;
    // Near the access token's expiry: a refresh is due.
    let clock = Arc::new(ManualClock::at(now_ms() + 3_400_000));
    let tenants = |hang: bool| {
        let mut t = Tenants::new(
            rig.store.clone(),
            HangingSave {
                inner: rig.secrets.clone(),
                hang: hang.into(),
            },
            clock.clone(),
            60_000,
        );
        t.set_oauth(Some(Arc::new(OAuthClient::new(sim_oauth(&rig.sim), None))));
        t
    };

    // Too little left to refresh and save: no refresh starts, the stored token stays valid.
    let short = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let ctx = tenants(false).context(&id, short).await;
    assert!(
        matches!(&ctx, Ok(Some(c)) if c.account.auth == Auth::Bearer(
            rig.secrets.load(&id).await.unwrap().unwrap().oauth.unwrap().access_token)),
        "the current access token, still valid, is used: {:?}",
        ctx.map(|c| c.map(|c| c.tenant.id.clone()))
    );
    assert_eq!(rig.grants("refresh_token"), 0, "no refresh reached Lever");
    assert!(rig.sim.live_refresh_tokens().contains(&before));

    // Time enough, and the first save hangs: the refresh ends before the invocation is killed
    // (its deadline less the 2 s the functions keep back), with the new refresh token stored.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(14);
    let killed_at = deadline + std::time::Duration::from_secs(2);
    let tenants = tenants(true);
    let run = tokio::time::timeout_at(killed_at.into(), tenants.context(&id, deadline)).await;
    assert!(run.is_ok(), "the invocation was killed mid-refresh");
    assert_eq!(rig.grants("refresh_token"), 1);
    let after = stored().await;
    assert_ne!(after, before, "the rotated refresh token is stored");
    assert!(
        rig.sim.live_refresh_tokens().contains(&after),
        "Lever still honours the stored refresh token"
    );
}

/// Strangers cost nothing at the one unauthenticated admin route: a forged, tampered or expired
/// OAuth state fails before any AWS call (DynamoDB requests counted at the SDK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_oauth_callback_costs_no_aws_request() {
    let sim = Simulator::start(SimConfig::default()).await;
    let aws = aws().await;
    let (_, table) = fresh_table(&aws).await;
    let (client, counter) = counted_dynamodb(&aws);
    let store = DynamoStore::new(client, &table);
    let mut settings = Settings::new(
        &lever_bridge::config::Config::default(),
        Some(Arc::new(OAuthClient::new(sim_oauth(&sim), None))),
        None,
        Some(url_keys()),
    );
    settings.environments = vec![("sandbox".into(), sim.base_url())];
    let admin = Admin::new(
        Arc::new(HttpLever::new(
            RateLimiter::new(10.0, 20),
            RetryPolicy::default(),
        )),
        store,
        Arc::new(lever_bridge::secrets::InMemorySecrets::default()),
        SystemClock,
        settings,
    );
    let callback = |query: String| {
        let admin = &admin;
        async move {
            admin
                .handle_request(&[Group::OAuth], "GET", "/admin/oauth/callback", &query, b"")
                .await
        }
    };
    // A genuine state, to tamper with.
    let started = admin
        .handle_request(
            &[Group::OAuth],
            "GET",
            "/admin/oauth/authorize",
            "tenantId=acme-s&environment=sandbox",
            b"",
        )
        .await
        .value();
    let genuine = started["state"].as_str().unwrap().to_string();
    let (expiry, rest) = genuine.split_once('.').unwrap();
    let tampered = [
        format!("{}.{rest}", expiry.parse::<i64>().unwrap() + 1),
        // The MAC's last character changed (to one it is not: the same would be the genuine state).
        format!(
            "{}{}",
            &genuine[..genuine.len() - 1],
            if genuine.ends_with('0') { '1' } else { '0' }
        ),
        format!("{}.{}", now_ms() - 1, rest),
    ];
    let before = counter.get();
    let mut strangers = 0;
    for i in 0..100 {
        let state = match i % 5 {
            0 => random_hex(32),
            1 => format!(
                "{}.{}.{}",
                now_ms() + 60_000,
                random_hex(32),
                random_hex(16)
            ),
            n => tampered[n - 2].clone(),
        };
        for query in [
            format!("code=c&state={state}"),
            format!("error=access_denied&state={state}"),
        ] {
            let r = callback(query).await;
            assert_eq!(r.status, 400, "{}", r.body);
            strangers += 1;
        }
    }
    let cost = counter.get() - before;
    println!("{strangers} stranger callbacks: {cost} AWS requests");
    assert_eq!(cost, 0);
    // The genuine one still works once (one conditional delete takes it).
    let code = sim.issue_auth_code(KeyPerms::all());
    let r = callback(format!("code={code}&state={genuine}")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = callback(format!("code={code}&state={genuine}")).await;
    assert_eq!(r.status, 400, "single use: {}", r.body);
}
