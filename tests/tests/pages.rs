//! The connect pages in process, on both stores, against the Lever simulator: connect links open
//! once into a `__Host-` cookie session bound to their tenant, forms carry the session's CSRF token,
//! and the walk from a link to a connected tenant with its webhooks registered reuses the admin
//! API's own logic. (The same walk in a real browser, through the local stack: `connect_browser`.)

use lever_bridge::admin::http::Group;
use lever_bridge::admin::{Admin, Settings};
use lever_bridge::clock::{Clock, ManualClock};
use lever_bridge::config::{ClientSecret, OAuthConfig};
use lever_bridge::lever::oauth::OAuthClient;
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::pages::{self, Page, PageRequest};
use lever_bridge::secrets::{Redacted, SecretStore};
use lever_bridge_tests::simulator::{
    KeyPerms, SIM_CLIENT_ID, SIM_CLIENT_SECRET, SimConfig, Simulator,
};
use lever_bridge_tests::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};

const HOOKS: &str = "https://hooks.example.test/prod";
const PAGES: &str = "https://connect.example.test";

on_both_stores!(
    a_link_opens_once_into_a_session_its_revocation_ends,
    an_expired_link_says_so_and_a_replaced_one_is_invalid,
    a_session_for_one_tenant_is_refused_on_anothers_pages,
    a_form_without_its_sessions_token_is_refused,
    the_walk_from_a_link_to_a_connected_tenant,
    connect_with_lever_comes_back_to_the_pages,
    webhooks_by_hand_a_new_url_key_and_disconnecting,
    the_status_says_what_to_do_and_sends_parked_commands,
    the_vendors_brand_is_on_the_pages,
);

type A<B> = Admin<Arc<HttpLever>, B, <B as Backend>::Secrets, Arc<ManualClock>>;

struct Rig<B: Backend> {
    brand: lever_bridge::config::Brand,
    sim: Simulator,
    store: B,
    clock: Arc<ManualClock>,
    admin: A<B>,
}

impl<B: Backend> Rig<B> {
    async fn new() -> Self {
        let sim = Simulator::start(SimConfig::default()).await;
        let (store, secrets) = B::make().await;
        let clock = Arc::new(ManualClock::at(now_ms()));
        let settings = Settings {
            webhook_base_url: Some(HOOKS.into()),
            environments: vec![
                ("production".into(), "https://api.lever.co/v1".into()),
                ("sandbox".into(), sim.base_url()),
            ],
            lever_budget: std::time::Duration::from_secs(20),
            oauth: Some(Arc::new(OAuthClient::new(
                {
                    let mut c = OAuthConfig::new(
                        SIM_CLIENT_ID,
                        ClientSecret::Value(Redacted::new(SIM_CLIENT_SECRET)),
                        Some("https://admin.example.test/admin/oauth/callback"),
                    );
                    c.authorize_url = Some(sim.authorize_url());
                    c.token_url = Some(sim.token_url());
                    c
                },
                None,
            ))),
            queues: Some(Arc::new(lever_bridge::push::parked::PushQueues::memory())),
            url_keys: Some(url_keys()),
            replay: None,
            connect_pages_url: Some(PAGES.into()),
            connect_link_ttl: std::time::Duration::from_secs(30 * 60),
        };
        let lever = Arc::new(HttpLever::new(
            RateLimiter::new(10.0, 20),
            RetryPolicy::default(),
        ));
        let admin = Admin::new(lever, store.clone(), secrets, clock.clone(), settings);
        Rig {
            brand: Default::default(),
            sim,
            store,
            clock,
            admin,
        }
    }

    /// `POST /admin/tenants/{id}/connect-link`: the link's path and query (after the pages' URL).
    async fn mint(&self, tenant: &str) -> String {
        let reply = self
            .admin
            .handle(
                &Group::ALL,
                "POST",
                &format!("/admin/tenants/{tenant}/connect-link"),
                b"",
            )
            .await;
        openapi::check_answer(
            "POST",
            &format!("/admin/tenants/{tenant}/connect-link"),
            reply.status,
            reply.content_type,
            &reply.body,
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        let v = reply.value();
        let url = v["url"].as_str().unwrap();
        assert_eq!(
            v["expiresAt"].as_i64().unwrap(),
            self.clock.now_ms() + 30 * 60_000
        );
        url.strip_prefix(PAGES)
            .expect("a link to the pages")
            .to_string()
    }

    /// The admin OAuth callback with Lever's `query`: where it sends the browser.
    async fn callback(&self, query: String) -> String {
        let reply = self
            .admin
            .handle_request(&[Group::OAuth], "GET", "/admin/oauth/callback", &query, b"")
            .await;
        openapi::check_answer(
            "GET",
            "/admin/oauth/callback",
            reply.status,
            reply.content_type,
            &reply.body,
        );
        assert_eq!(reply.status, 303, "{}", reply.body);
        reply.location.unwrap()
    }

    fn browser(&self) -> Browser<'_, B> {
        Browser {
            rig: self,
            cookie: Mutex::new(None),
            pages: Mutex::default(),
        }
    }
}

/// One browser: keeps the session cookie, sends what a browser sends.
struct Browser<'r, B: Backend> {
    rig: &'r Rig<B>,
    cookie: Mutex<Option<String>>,
    /// Every page it was sent, to look for secrets in.
    pages: Mutex<Vec<String>>,
}

impl<B: Backend> Browser<'_, B> {
    async fn send(&self, method: &str, target: &str, body: &str) -> Page {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let cookie = self.cookie.lock().unwrap().clone();
        let page = Box::pin(pages::serve(
            &self.rig.admin,
            &self.rig.brand,
            PageRequest {
                method,
                path,
                query,
                cookie: cookie.as_deref(),
                fetch_site: Some("same-origin"),
                body: body.as_bytes(),
            },
        ))
        .await;
        if let Some(set) = page.header("set-cookie") {
            *self.cookie.lock().unwrap() = Some(set.split(';').next().unwrap().to_string());
        }
        if page.header("content-type") == Some("text/html; charset=utf-8") {
            assert_eq!(page.header("cache-control"), Some("no-store"), "{target}");
            assert_eq!(
                page.header("content-security-policy"),
                Some(pages::content_security_policy(&self.rig.brand).as_str())
            );
            // No inline script: the one script is the pages' own file.
            assert_eq!(
                page.body.matches("<script").count(),
                page.body
                    .matches("<script src=\"copy.js\"></script>")
                    .count(),
                "{target}"
            );
            assert!(
                !page.body.contains("panicked") && !page.body.contains("src/"),
                "{target}"
            );
        }
        self.pages.lock().unwrap().push(page.body.clone());
        page
    }

    async fn get(&self, tenant: &str, page: &str) -> Page {
        self.send("GET", &format!("/connect/{tenant}/{page}"), "")
            .await
    }

    /// Posts a form of `page`, with the CSRF token of the page `from` shows.
    async fn post(&self, tenant: &str, page: &str, fields: &[(&str, &str)]) -> Page {
        let form = self.get(tenant, page.split('?').next().unwrap()).await;
        let csrf = csrf_of(&form.body);
        self.post_with(tenant, page, &csrf, fields).await
    }

    async fn post_with(
        &self,
        tenant: &str,
        page: &str,
        csrf: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut all = vec![("csrf", csrf)];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.send("POST", &format!("/connect/{tenant}/{page}"), &body)
            .await
    }
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form with a CSRF token")
        + "name=\"csrf\" value=\"".len();
    html[at..at + 64].to_string()
}

async fn a_link_opens_once_into_a_session_its_revocation_ends<B: Backend>() {
    let rig = Rig::<B>::new().await;
    let tenant = unique("acme");
    let link = rig.mint(&tenant).await;
    assert!(link.starts_with(&format!("/connect/{tenant}/open?token=")));
    assert_eq!(link.len() - link.find('=').unwrap() - 1, 64, "256 bits");
    let browser = rig.browser();
    let opened = browser.send("GET", &link, "").await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    // A new tenant starts at its key; the address has no token.
    assert_eq!(opened.header("location"), Some("key"));
    assert_eq!(opened.header("referrer-policy"), Some("no-referrer"));
    let cookie = opened.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("__Host-lever-bridge-connect={tenant}.")),
        "{cookie}"
    );
    for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{part}: {cookie}");
    }
    let key = browser.get(&tenant, "key").await;
    assert_eq!(key.status, 200, "{}", key.body);
    assert!(
        key.body
            .contains("Settings &gt; Integrations and API &gt; API Credentials")
    );
    // Only hashes are stored: neither the link's token nor the session's.
    let stored = rig.store.connect_link(&tenant).await.unwrap().unwrap();
    let token = &link[link.find('=').unwrap() + 1..];
    assert_eq!(stored.token_hash, lever_bridge::ids::token_hash(token));
    assert!(stored.opened_at.is_some());
    let session = browser.cookie.lock().unwrap().clone().unwrap();
    assert!(!format!("{stored:?}").contains(session.split('.').nth(1).unwrap()));

    // Used: another browser cannot open it; the same one goes on with its session.
    let again = rig.browser().send("GET", &link, "").await;
    assert_eq!(again.status, 410);
    assert!(
        again.body.contains("This link was used already"),
        "{}",
        again.body
    );
    assert!(
        again
            .body
            .contains("Ask the team that sent you the link for a new one")
    );
    assert_eq!(browser.send("GET", &link, "").await.status, 303);
    // Without a session the pages say where to start.
    let none = rig.browser().get(&tenant, "status").await;
    assert_eq!(none.status, 401);
    assert!(none.body.contains("Open your connect link first"));

    let reply = rig
        .admin
        .handle(
            &Group::ALL,
            "DELETE",
            &format!("/admin/tenants/{tenant}/connect-link"),
            b"",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.value()["revoked"], true);
    let ended = browser.get(&tenant, "key").await;
    assert_eq!(ended.status, 401);
    assert!(
        ended.body.contains("Your session has ended"),
        "{}",
        ended.body
    );
    let revoked = rig.browser().send("GET", &link, "").await;
    assert_eq!(revoked.status, 410);
    assert!(revoked.body.contains("This link is not valid"));
}

async fn an_expired_link_says_so_and_a_replaced_one_is_invalid<B: Backend>() {
    let rig = Rig::<B>::new().await;
    let tenant = unique("acme");
    let link = rig.mint(&tenant).await;
    rig.clock.advance(30 * 60_000);
    let expired = rig.browser().send("GET", &link, "").await;
    assert_eq!(expired.status, 410);
    assert!(
        expired.body.contains("This link has expired"),
        "{}",
        expired.body
    );
    assert!(expired.header("set-cookie").is_none());

    let first = rig.mint(&tenant).await;
    let second = rig.mint(&tenant).await;
    let replaced = rig.browser().send("GET", &first, "").await;
    assert_eq!(replaced.status, 410);
    assert!(replaced.body.contains("a newer link replaced it"));
    assert_eq!(rig.browser().send("GET", &second, "").await.status, 303);
    // A forged token, a token for no link, bad input in the path: plain pages, no panic.
    let forged = format!("/connect/{tenant}/open?token={}", "0".repeat(64));
    assert_eq!(rig.browser().send("GET", &forged, "").await.status, 410);
    let nobody = rig.browser().send("GET", "/connect/nobody/open", "").await;
    assert_eq!(nobody.status, 410);
    let bad = rig.browser().send("GET", "/connect/a.b/open", "").await;
    assert_eq!(bad.status, 404);
    assert_eq!(
        rig.browser()
            .send("DELETE", &format!("/connect/{tenant}/key"), "")
            .await
            .status,
        405
    );
}

async fn a_session_for_one_tenant_is_refused_on_anothers_pages<B: Backend>() {
    let rig = Rig::<B>::new().await;
    let (a, b) = (unique("tenant-a"), unique("tenant-b"));
    let link_a = rig.mint(&a).await;
    rig.mint(&b).await;
    let browser = rig.browser();
    assert_eq!(browser.send("GET", &link_a, "").await.status, 303);
    for page in ["key", "permissions", "owner", "webhooks", "status"] {
        let p = browser.get(&b, page).await;
        assert_eq!(p.status, 403, "{page}");
        assert!(p.body.contains("This session is for another Lever account"));
    }
    let csrf = csrf_of(&browser.get(&a, "key").await.body);
    let post = browser
        .post_with(
            &b,
            "key",
            &csrf,
            &[("environment", "sandbox"), ("apiKey", "k")],
        )
        .await;
    assert_eq!(post.status, 403);
    assert!(rig.store.tenant(&b).await.unwrap().is_none());
}

async fn a_form_without_its_sessions_token_is_refused<B: Backend>() {
    let rig = Rig::<B>::new().await;
    let tenant = unique("acme");
    let key = format!("key-{}", random_hex(16));
    rig.sim.add_key(&key, KeyPerms::all());
    let browser = rig.browser();
    browser.send("GET", &rig.mint(&tenant).await, "").await;
    let old_csrf = csrf_of(&browser.get(&tenant, "key").await.body);
    let fields = [("environment", "sandbox"), ("apiKey", key.as_str())];
    for csrf in ["", "nonsense", &"0".repeat(64)] {
        let p = browser.post_with(&tenant, "key", csrf, &fields).await;
        assert_eq!(p.status, 403, "{csrf}");
        assert!(p.body.contains("This form is out of date"));
    }
    // A form from a session before this one (the vendor sent a new link): refused.
    browser.send("GET", &rig.mint(&tenant).await, "").await;
    let p = browser.post_with(&tenant, "key", &old_csrf, &fields).await;
    assert_eq!(p.status, 403);
    // Cross-site, even with the right token.
    let csrf = csrf_of(&browser.get(&tenant, "key").await.body);
    let cookie = browser.cookie.lock().unwrap().clone();
    let body =
        serde_urlencoded::to_string([("csrf", csrf.as_str()), ("apiKey", key.as_str())]).unwrap();
    let cross = pages::serve(
        &rig.admin,
        &rig.brand,
        PageRequest {
            method: "POST",
            path: &format!("/connect/{tenant}/key"),
            cookie: cookie.as_deref(),
            fetch_site: Some("cross-site"),
            body: body.as_bytes(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(cross.status, 403);
    assert!(
        rig.store.tenant(&tenant).await.unwrap().is_none(),
        "nothing was connected"
    );
    assert_eq!(
        browser
            .post_with(&tenant, "key", &csrf, &fields)
            .await
            .status,
        303
    );
    assert!(rig.store.tenant(&tenant).await.unwrap().is_some());
}

async fn the_walk_from_a_link_to_a_connected_tenant<B: Backend>() {
    let rig = Rig::<B>::new().await;
    let tenant = unique("acme");
    let partial = format!("key-{}", random_hex(16));
    let full = format!("key-{}", random_hex(16));
    let all_but_users: Vec<&str> = lever_bridge::admin::probe::permissions()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| *p != "stages:read")
        .collect();
    rig.sim.add_key(&partial, KeyPerms::only(&all_but_users));
    rig.sim.add_key(&full, KeyPerms::all());
    let browser = rig.browser();
    browser.send("GET", &rig.mint(&tenant).await, "").await;

    // A key Lever rejects: said on the key page, nothing stored.
    let wrong = browser
        .post(
            &tenant,
            "key",
            &[("environment", "sandbox"), ("apiKey", "not-a-key")],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(
        wrong.body.contains("Lever rejected this API key (401)"),
        "{}",
        wrong.body
    );
    assert!(rig.store.tenant(&tenant).await.unwrap().is_none());

    // A key missing one permission: its line of the checklist says what to tick.
    let saved = browser
        .post(
            &tenant,
            "key",
            &[("environment", "sandbox"), ("apiKey", &partial)],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.header("location"), Some("permissions"));
    let checklist = browser.get(&tenant, "permissions").await;
    assert_eq!(checklist.status, 200, "{}", checklist.body);
    let line = line_of(&checklist.body, "data-permission=\"stages:read\"");
    assert!(line.contains("class=\"missing\""), "{line}");
    assert!(line.contains("tick “stages:read”"), "{line}");
    assert!(line_of(&checklist.body, "data-permission=\"users:read\"").contains("class=\"ok\""));
    assert!(!checklist.body.contains("Next: pick the owner"));

    // The full key: the stored one shows as its last four characters only.
    let key_page = browser.get(&tenant, "key").await;
    assert!(key_page.body.contains(&format!(
        "A key ending in {}",
        &partial[partial.len() - 4..]
    )));
    let saved = browser
        .post(
            &tenant,
            "key",
            &[("environment", "sandbox"), ("apiKey", &full)],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let checklist = browser.get(&tenant, "permissions").await;
    assert!(
        checklist.body.contains("The key has every permission"),
        "{}",
        checklist.body
    );
    assert!(line_of(&checklist.body, "data-permission=\"stages:read\"").contains("class=\"ok\""));

    // The owner: searched by part of a name, picked.
    let users: Vec<Value> = rig
        .sim
        .users()
        .into_iter()
        .filter(|u| u["deactivatedAt"].is_null())
        .collect();
    let pick = &users[1];
    let name = pick["name"].as_str().unwrap();
    // By email (the recorded names share their first words), in capitals.
    let email = pick["email"].as_str().unwrap().to_uppercase();
    let found = browser
        .send(
            "GET",
            &format!("/connect/{tenant}/owner?q={}", email.replace('@', "%40")),
            "",
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains(name), "{}", found.body);
    let listed = found.body.matches("name=\"userId\"").count();
    assert_eq!(listed, 1, "{listed} of {}", users.len());
    let none = browser
        .send("GET", &format!("/connect/{tenant}/owner?q=zzzzzz"), "")
        .await;
    assert!(none.body.contains("No active user matches"));
    let saved = browser
        .post(
            &tenant,
            "owner",
            &[("userId", pick["id"].as_str().unwrap())],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.header("location"), Some("webhooks"));
    let t = rig.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!(t.owner_user_id.as_deref(), pick["id"].as_str());
    let unknown = browser
        .post(&tenant, "owner", &[("userId", "no-such-user")])
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body.contains("Lever has no user"),
        "{}",
        unknown.body
    );

    // Webhooks: all ten in one click, with the reminder.
    let before = browser.get(&tenant, "webhooks").await;
    assert_eq!(
        before.body.matches(">not registered<").count(),
        10,
        "{}",
        before.body
    );
    let registered = browser.post(&tenant, "webhooks", &[]).await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    assert!(
        registered.body.contains("10 of 10 webhooks are registered"),
        "{}",
        registered.body
    );
    assert!(registered.body.contains("a Lever Super Admin"));
    assert_eq!(rig.sim.webhooks().len(), 10);

    // The status: connected.
    let status = browser.get(&tenant, "status").await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains("id=\"state\" class=\"connected\""),
        "{}",
        status.body
    );
    assert!(
        status.body.contains("No delivery has arrived yet"),
        "{}",
        status.body
    );
    assert!(status.body.contains("Super Admin"));
    assert!(line_of(&status.body, "data-event=\"candidateHired\"").contains("<td>set</td>"));

    // No page ever showed a key.
    for body in browser.pages.lock().unwrap().iter() {
        assert!(!body.contains(&full) && !body.contains(&partial));
    }

    // The vendor is told, through the outbox: connected, the owner, the webhooks.
    let bus = B::test_bus().await;
    bus.set_up().await;
    let mut mapping = rig.store.mapping(bus.sink()).await;
    mapping.run().await;
    let arrived = bus.arrived().await;
    for e in &arrived {
        contract::check_event(e);
    }
    let of = |kind: &str| {
        arrived
            .iter()
            .filter(|e| e.kind == kind && e.tenant_id == tenant)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("tenantConnected").len(), 1);
    let owner = of("ownerChanged");
    assert_eq!(owner.len(), 1, "{arrived:?}");
    assert_eq!(owner[0].after["userId"], pick["id"]);
    assert_eq!(owner[0].after["name"], pick["name"]);
    assert!(owner[0].before.is_null(), "the first owner");
    let hooks = of("webhooksRegistered");
    assert_eq!(hooks.len(), 1, "{arrived:?}");
    assert_eq!(hooks[0].after["webhooks"].as_array().unwrap().len(), 10);
    assert!(
        hooks[0].after["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["status"] == "created")
    );
}

/// The line of `html` holding `needle`.
fn line_of<'a>(html: &'a str, needle: &str) -> &'a str {
    html.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle} in {html}"))
}

/// Lever's consent page answered with `decision`: the callback's query string.
async fn consent(authorize_url: &str, decision: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let url = reqwest::Url::parse(authorize_url).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("decision".into(), decision.into()));
    let back = http
        .post(format!(
            "{}://{}/oauth/authorize",
            url.scheme(),
            url.authority()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    let to = back.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with("https://admin.example.test/admin/oauth/callback?"),
        "{to}"
    );
    to.split_once('?').unwrap().1.to_string()
}

async fn connect_with_lever_comes_back_to_the_pages<B: Backend>() {
    let rig = Rig::<B>::new().await;
    let tenant = unique("acme");
    let browser = rig.browser();
    browser.send("GET", &rig.mint(&tenant).await, "").await;
    let key = browser.get(&tenant, "key").await;
    assert!(
        key.body.contains("href=\"oauth?environment=sandbox\""),
        "{}",
        key.body
    );

    // Denied on Lever's page: back to the key page, which says so.
    let start = browser.get(&tenant, "oauth?environment=sandbox").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = start.header("location").unwrap().to_string();
    assert!(
        authorize.starts_with(&rig.sim.authorize_url()),
        "{authorize}"
    );
    let back = rig.callback(consent(&authorize, "deny").await).await;
    assert_eq!(
        back,
        format!("{PAGES}/connect/{tenant}/key?oauth=authorization_denied")
    );
    let said = browser
        .send("GET", back.strip_prefix(PAGES).unwrap(), "")
        .await;
    assert!(
        said.body.contains("Lever did not authorize the connection"),
        "{}",
        said.body
    );
    assert!(rig.store.tenant(&tenant).await.unwrap().is_none());

    // Allowed: connected with OAuth, back on the checklist.
    let start = browser.get(&tenant, "oauth?environment=sandbox").await;
    let back = rig
        .callback(consent(start.header("location").unwrap(), "allow").await)
        .await;
    assert_eq!(back, format!("{PAGES}/connect/{tenant}/permissions"));
    let checklist = browser
        .send("GET", back.strip_prefix(PAGES).unwrap(), "")
        .await;
    assert!(
        checklist.body.contains("The key has every permission"),
        "{}",
        checklist.body
    );
    let secret = rig.admin.secrets.load(&tenant).await.unwrap().unwrap();
    assert_eq!(secret.auth_kind(), Some("oauth"));
    let status = browser.get(&tenant, "status").await;
    assert!(status.body.contains("Lever (OAuth)"), "{}", status.body);
}

/// The `value` of the input with `id` in `html`.
fn value_of(html: &str, id: &str) -> String {
    let line = line_of(html, &format!("id=\"{id}\""));
    let at = line.find("value=\"").unwrap() + "value=\"".len();
    line[at..at + line[at..].find('"').unwrap()].to_string()
}

async fn webhooks_by_hand_a_new_url_key_and_disconnecting<B: Backend>() {
    let rig = Rig::<B>::new().await;
    let tenant = unique("acme");
    let key = format!("key-{}", random_hex(16));
    rig.sim.add_key(&key, KeyPerms::all());
    let browser = rig.browser();
    browser.send("GET", &rig.mint(&tenant).await, "").await;
    browser
        .post(
            &tenant,
            "key",
            &[("environment", "sandbox"), ("apiKey", &key)],
        )
        .await;

    // By hand: ten URLs to copy (the Copy buttons are the one script, beside the pages), a token each.
    let manual = browser.get(&tenant, "manual").await;
    assert_eq!(manual.status, 200, "{}", manual.body);
    let old_url = value_of(&manual.body, "url-candidateHired");
    assert!(
        old_url.starts_with(&format!("{HOOKS}/webhooks/{tenant}/")),
        "{old_url}"
    );
    assert!(old_url.ends_with("/candidateHired"));
    assert_eq!(manual.body.matches("class=\"url\"").count(), 10);
    assert!(manual.body.contains("<script src=\"copy.js\"></script>"));
    let js = browser.get(&tenant, "copy.js").await;
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.body.contains("navigator.clipboard"));
    let bad = browser
        .post(
            &tenant,
            "manual",
            &[("event", "candidateHired"), ("token", "has spaces")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("exactly as Lever shows it"),
        "{}",
        bad.body
    );
    let unknown = browser
        .post(
            &tenant,
            "manual",
            &[("event", "candidateNapped"), ("token", "t")],
        )
        .await;
    assert_eq!(unknown.status, 404);
    let token = format!("tok-{}", random_hex(8));
    let saved = browser
        .post(
            &tenant,
            "manual",
            &[("event", "candidateHired"), ("token", &token)],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let after = browser.get(&tenant, "manual?saved=candidateHired").await;
    assert!(
        after
            .body
            .contains("The signature token for candidateHired is saved")
    );
    assert!(line_of(&after.body, "<td>candidateHired<br>").contains("token saved"));
    let secret = rig.admin.secrets.load(&tenant).await.unwrap().unwrap();
    assert_eq!(
        secret
            .tokens(lever_bridge::webhook::EventKind::CandidateHired)
            .first()
            .map(|t| t.expose()),
        Some(token.as_str())
    );
    assert!(!after.body.contains(&token), "a token is never shown");

    // A new URL key: said before, confirmed, new URLs.
    let confirm = browser.get(&tenant, "rotate").await;
    assert!(
        confirm
            .body
            .contains("the current URLs stop working at once"),
        "{}",
        confirm.body
    );
    let generation = || async {
        rig.admin
            .secrets
            .load(&tenant)
            .await
            .unwrap()
            .unwrap()
            .url_generation
    };
    let g0 = generation().await;
    let unconfirmed = browser.post(&tenant, "rotate", &[]).await;
    assert_eq!(unconfirmed.status, 400);
    assert_eq!(generation().await, g0);
    let rotated = browser.post(&tenant, "rotate", &[("confirm", "yes")]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert!(
        rotated.body.contains("New URLs are in place"),
        "{}",
        rotated.body
    );
    let new_url = value_of(
        &browser.get(&tenant, "manual").await.body,
        "url-candidateHired",
    );
    assert_ne!(new_url, old_url);
    assert!(rotated.body.contains(&new_url));
    assert_eq!(generation().await, g0 + 1);

    // Disconnect: said what it removes, confirmed by typing the id.
    let confirm = browser.get(&tenant, "disconnect").await;
    assert!(
        confirm.body.contains("What disconnecting removes"),
        "{}",
        confirm.body
    );
    let wrong = browser
        .post(&tenant, "disconnect", &[("confirm", "other")])
        .await;
    assert_eq!(wrong.status, 400);
    assert!(rig.store.tenant(&tenant).await.unwrap().is_some());
    let gone = browser
        .post(&tenant, "disconnect", &[("confirm", &tenant)])
        .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(gone.body.contains("This Lever account is disconnected"));
    assert!(gone.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert!(rig.store.tenant(&tenant).await.unwrap().is_none());
    assert!(rig.admin.secrets.load(&tenant).await.unwrap().is_none());
    assert!(rig.store.connect_link(&tenant).await.unwrap().is_none());
    assert_eq!(browser.get(&tenant, "status").await.status, 401);
}

async fn the_status_says_what_to_do_and_sends_parked_commands<B: Backend>() {
    use lever_bridge::store::{CommandEnd, TenantStatus};
    let rig = Rig::<B>::new().await;
    let tenant = unique("acme");
    let key = format!("key-{}", random_hex(16));
    rig.sim.add_key(&key, KeyPerms::all());
    let browser = rig.browser();
    browser.send("GET", &rig.mint(&tenant).await, "").await;
    browser
        .post(
            &tenant,
            "key",
            &[("environment", "sandbox"), ("apiKey", &key)],
        )
        .await;
    let now = rig.clock.now_ms();
    rig.store
        .claim_command(&tenant, "cmd-1", "note", now)
        .await
        .unwrap();
    let parked = CommandEnd::Parked {
        error: "Lever answered 401".into(),
        command: serde_json::json!({"tenantId": tenant, "commandId": "cmd-1", "opportunityId": "o-1", "note": {"text": "hi"}}),
        kind: "note".into(),
    };
    rig.store
        .end_command(&tenant, "cmd-1", &parked, false, None, now)
        .await
        .unwrap();

    // Disconnected: what to do is reconnect; the parked command waits for it.
    rig.store
        .set_tenant_status(
            &tenant,
            TenantStatus::Disconnected,
            "Lever rejected the API key (401)",
            now,
        )
        .await
        .unwrap();
    let status = browser.get(&tenant, "status").await;
    assert!(
        status.body.contains("id=\"state\" class=\"disconnected\""),
        "{}",
        status.body
    );
    let fixes = &status.body[status.body.find("id=\"fixes\"").unwrap()..];
    assert!(
        fixes.contains("Lever does not accept this account"),
        "{fixes}"
    );
    assert!(fixes.contains("<a href=\"key\">Paste a new key or connect with Lever</a>"));
    assert!(fixes.contains("<a href=\"owner\">Pick the owner</a>"));
    assert!(fixes.contains("<a href=\"webhooks\">Register the webhooks</a>"));
    assert!(
        fixes.contains("1 command waits for the reconnection"),
        "{fixes}"
    );
    assert!(!fixes.contains("action=\"replay\""));

    // Connected again: the parked command is one click from Lever.
    rig.store
        .set_tenant_status(&tenant, TenantStatus::Connected, "", now)
        .await
        .unwrap();
    let status = browser.get(&tenant, "status").await;
    assert!(
        status.body.contains("1 command waits to be sent to Lever"),
        "{}",
        status.body
    );
    assert!(status.body.contains("action=\"replay\""));
    assert!(
        status
            .body
            .contains("<td>Commands waiting (parked)</td><td>1</td>"),
        "{}",
        status.body
    );
    let csrf = csrf_of(&status.body);
    let replayed = browser.post_with(&tenant, "replay", &csrf, &[]).await;
    assert_eq!(replayed.status, 303, "{}", replayed.body);
    assert_eq!(replayed.header("location"), Some("status?replayed=1"));
    let after = browser.get(&tenant, "status?replayed=1").await;
    assert!(
        after
            .body
            .contains("The waiting command was sent to Lever again"),
        "{}",
        after.body
    );
}

async fn the_vendors_brand_is_on_the_pages<B: Backend>() {
    let mut rig = Rig::<B>::new().await;
    rig.brand = lever_bridge::config::Brand {
        product_name: "Acme SMS".into(),
        logo_url: Some("https://cdn.acme.example/logo.png".into()),
        accent_colour: "#ff6600".into(),
    };
    let tenant = unique("acme");
    let browser = rig.browser();
    browser.send("GET", &rig.mint(&tenant).await, "").await;
    let key = browser.get(&tenant, "key").await;
    assert!(
        key.body.contains("Connect Acme SMS to Lever</p>"),
        "{}",
        key.body
    );
    assert!(
        key.body
            .contains("<title>API key · Connect Acme SMS to Lever</title>")
    );
    assert!(
        key.body
            .contains("<img class=\"logo\" src=\"https://cdn.acme.example/logo.png\"")
    );
    // The logo's origin and nothing else from elsewhere; still nothing inline.
    let csp = key.header("content-security-policy").unwrap();
    assert!(
        csp.contains("img-src 'self' https://cdn.acme.example;"),
        "{csp}"
    );
    assert!(csp.contains("style-src 'self';") && csp.contains("script-src 'self';"));
    assert!(!key.body.contains("style=") && !key.body.contains("<style"));
    let css = browser.get(&tenant, "style.css").await;
    assert!(css.body.contains("#ff6600") && !css.body.contains("#2456c8"));
    // Plain pages without a brand.
    let plain = Rig::<B>::new().await;
    let other = unique("plain");
    let b = plain.browser();
    b.send("GET", &plain.mint(&other).await, "").await;
    let page = b.get(&other, "key").await;
    assert!(page.body.contains("Connect lever-bridge to Lever"));
    assert!(!page.body.contains("<img"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("img-src 'self';")
    );
}
