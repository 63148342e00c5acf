//! The connect pages in a real browser (headless Chromium through chromedriver), against the local
//! stack (`make test`): the vendor mints a link with the admin CLI, the customer's Lever admin opens
//! it, pastes a key missing a permission and sees that line of the checklist, pastes a full key,
//! searches and picks the owner, registers the webhooks and sees the status turn connected; then an
//! expired link, a form replayed from an earlier session and a session used on another tenant's
//! pages. Each step's screenshot is written to `target/tmp/connect-browser/`.

use fantoccini::{Client, ClientBuilder, Locator};
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::store::{AdminStore, ConnectLink, TenantStore};
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`"))
}

/// chromedriver on a free port, stopped with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser and driver `tests/stack.sh` found (or what it said to install).
fn browser_paths() -> (String, String) {
    let missing = std::env::var("LEVER_BRIDGE_BROWSER_MISSING").unwrap_or_default();
    assert!(missing.is_empty(), "{missing}");
    (env("LEVER_BRIDGE_CHROME"), env("LEVER_BRIDGE_CHROMEDRIVER"))
}

async fn driver(chromedriver: &str) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver {
        child: Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{chromedriver}: {e}")),
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(driver: &Driver, chrome: &str) -> Client {
    let profile = std::env::temp_dir().join(unique("chromium-profile"));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chrome,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,1400", format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// One browser walk: counts clicks and writes numbered screenshots.
struct Walk {
    c: Client,
    clicks: AtomicUsize,
    shots: AtomicUsize,
    dir: std::path::PathBuf,
    prefix: String,
}

impl Walk {
    async fn click(&self, css: &str) {
        self.clicks.fetch_add(1, Ordering::SeqCst);
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .attr(name)
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Asserts the browser is on `page` of `tenant`, saying what the page shows when not.
    /// (A click's navigation may still be under way: waits up to 20 s.)
    async fn on(&self, tenant: &str, page: &str) {
        let want = format!("/connect/{tenant}/{page}");
        let mut path = String::new();
        for _ in 0..200 {
            path = self.c.current_url().await.unwrap().path().to_string();
            if path == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let shown = self.text("body").await;
        panic!("on {path}, not {page}: {shown}");
    }

    /// Waits up to 20 s for `css` to show `needle`.
    async fn shows(&self, css: &str, needle: &str) {
        let mut text = String::new();
        for _ in 0..200 {
            if let Ok(e) = self.c.find(Locator::Css(css)).await {
                text = e.text().await.unwrap_or_default();
                if text.contains(needle) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} does not show {needle:?}: {text}");
    }

    async fn shot(&self, name: &str) -> String {
        let n = self.shots.fetch_add(1, Ordering::SeqCst) + 1;
        let file = self.dir.join(format!("{}{n:02}-{name}.png", self.prefix));
        std::fs::write(&file, self.c.screenshot().await.unwrap()).unwrap();
        file.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// The admin CLI's `connect-link`: the vendor's way to mint a link.
fn mint(tenant: &str) -> String {
    let out = Command::new(cli_binary())
        .args([
            "--url",
            &env("LEVER_BRIDGE_ADMIN_API"),
            "--json",
            "connect-link",
            tenant,
        ])
        .output()
        .expect("the admin CLI (target/debug/lever-bridge, built by `make test`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["url"].as_str().unwrap().to_string()
}

async fn sim_key(perms: Value) -> String {
    let key = format!("key-{}", random_hex(16));
    let res = reqwest::Client::new()
        .post(format!("{}/_admin/keys", env("LEVER_BRIDGE_SIM_URL")))
        .json(&json!({"key": key, "permissions": perms, "confidential": true}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    key
}

#[tokio::test]
async fn a_lever_admin_connects_in_a_real_browser() {
    let (chrome, chromedriver) = browser_paths();
    let connect_api = env("LEVER_BRIDGE_CONNECT_API");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("connect-browser");
    std::fs::create_dir_all(&dir).unwrap();
    let stack = LocalStack::from_env();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws().await), &stack.table);

    let all: Vec<&str> = lever_bridge::admin::probe::permissions()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let partial = sim_key(json!(
        all.iter()
            .filter(|p| **p != "stages:read")
            .collect::<Vec<_>>()
    ))
    .await;
    let full = sim_key(Value::Null).await;
    let tenant = unique("browser");
    let link = mint(&tenant);
    assert!(
        link.starts_with(&format!("{connect_api}/connect/{tenant}/open?token=")),
        "{link}"
    );

    let driver = driver(&chromedriver).await;
    let w = Walk {
        c: browser(&driver, &chrome).await,
        clicks: AtomicUsize::new(0),
        shots: AtomicUsize::new(0),
        dir: dir.clone(),
        prefix: String::new(),
    };
    let mut shots = Vec::new();

    // The admin opens the link: the key page, at an address without the token.
    let started = Instant::now();
    w.c.goto(&link).await.unwrap();
    w.on(&tenant, "key").await;
    assert!(!w.c.current_url().await.unwrap().as_str().contains("token"));
    assert!(
        w.text("main")
            .await
            .contains("Settings > Integrations and API > API Credentials")
    );
    shots.push(w.shot("key").await);

    // A key missing stages:read: that line of the checklist says what to tick.
    w.c.find(Locator::Id("environment"))
        .await
        .unwrap()
        .select_by_value("custom")
        .await
        .unwrap();
    w.type_into("#apiKey", &partial).await;
    w.click("#connect").await;
    w.on(&tenant, "permissions").await;
    let line = "[data-permission='stages:read']";
    assert_eq!(w.attr(line, "class").await, "missing");
    assert!(
        w.text(line).await.contains("tick “stages:read”"),
        "{}",
        w.text(line).await
    );
    assert_eq!(
        w.attr("[data-permission='users:read']", "class").await,
        "ok"
    );
    shots.push(w.shot("permissions-missing").await);

    // The full key.
    w.click("nav a[href='key']").await;
    w.on(&tenant, "key").await;
    let stored = w.text("#stored-key").await;
    assert!(
        stored.contains(&partial[partial.len() - 4..]) && !stored.contains(&partial),
        "{stored}"
    );
    w.type_into("#apiKey", &full).await;
    w.click("#connect").await;
    w.shows("#result", "every permission").await;
    assert_eq!(w.attr(line, "class").await, "ok");
    shots.push(w.shot("permissions-ok").await);

    // The owner: searched, picked.
    w.click("#next").await;
    w.on(&tenant, "owner").await;
    let first_email = w.text("label.user .email").await;
    w.type_into("#q", &first_email.to_uppercase()).await;
    w.click("#search").await;
    for _ in 0..200 {
        if w.c
            .current_url()
            .await
            .unwrap()
            .query()
            .is_some_and(|q| q.contains("q="))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let users =
        w.c.find_all(Locator::Css("input[name='userId']"))
            .await
            .unwrap();
    assert_eq!(users.len(), 1);
    shots.push(w.shot("owner-search").await);
    w.click("input[name='userId']").await;
    w.click("#save-owner").await;
    w.on(&tenant, "webhooks").await;
    shots.push(w.shot("webhooks-before").await);

    // All ten webhooks in one click.
    w.click("#register").await;
    w.shows("main", "10 of 10 webhooks are registered").await;
    assert!(w.text("#reminder").await.contains("Super Admin"));
    shots.push(w.shot("webhooks-registered").await);

    // The status: connected.
    w.click("#next").await;
    w.on(&tenant, "status").await;
    w.shows("#state", "connected").await;
    let seconds = started.elapsed().as_secs_f64();
    let clicks = w.clicks.load(Ordering::SeqCst);
    shots.push(w.shot("status-connected").await);
    let t = store.tenant(&tenant).await.unwrap().unwrap();
    assert!(t.owner_user_id.is_some());
    println!(
        "connect walk: {clicks} clicks, {seconds:.1} s from opening the link to connected with webhooks; screenshots in {}: {}",
        dir.display(),
        shots.join(", ")
    );

    // A form replayed from an earlier session: the vendor sent a new link, this browser opened it,
    // and the old page's form is sent (its CSRF token put back into the new page's form).
    w.click("nav a[href='key']").await;
    w.on(&tenant, "key").await;
    let old_csrf = w.attr("input[name='csrf']", "value").await;
    w.c.goto(&mint(&tenant)).await.unwrap();
    w.on(&tenant, "status").await;
    w.click("nav a[href='key']").await;
    w.on(&tenant, "key").await;
    w.c.execute(
        "document.querySelector(\"input[name='csrf']\").value = arguments[0];",
        vec![json!(old_csrf)],
    )
    .await
    .unwrap();
    w.type_into("#apiKey", &full).await;
    w.click("#connect").await;
    w.shows("h1", "This form is out of date").await;
    shots.push(w.shot("replayed-form-refused").await);

    // This session on another tenant's pages.
    let other = unique("browser-other");
    mint(&other);
    w.c.goto(&format!("{connect_api}/connect/{other}/status"))
        .await
        .unwrap();
    w.shows("h1", "This session is for another Lever account")
        .await;
    shots.push(w.shot("other-tenant-refused").await);

    // An expired link.
    let token = random_hex(32);
    store
        .put_connect_link(&ConnectLink {
            tenant_id: other.clone(),
            token_hash: lever_bridge::ids::token_hash(&token),
            created_at: now_ms() - 3_600_000,
            expires_at: now_ms() - 1_800_000,
            opened_at: None,
            session_hash: None,
            session_expires_at: 0,
        })
        .await
        .unwrap();
    w.c.goto(&format!("{connect_api}/connect/{other}/open?token={token}"))
        .await
        .unwrap();
    w.shows("h1", "This link has expired").await;
    assert!(
        w.text("main")
            .await
            .contains("Ask the team that sent you the link for a new one")
    );
    shots.push(w.shot("expired-link").await);
    w.c.close().await.unwrap();
    println!("screenshots: {}", shots.join(", "));
}

/// Connect with Lever (OAuth) on the pages: Deny on Lever's consent page comes back saying so,
/// Allow comes back connected, on the checklist.
#[tokio::test]
async fn a_lever_admin_connects_with_lever_in_a_real_browser() {
    let (chrome, chromedriver) = browser_paths();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("connect-browser");
    std::fs::create_dir_all(&dir).unwrap();
    let tenant = unique("browser-oauth");
    let link = mint(&tenant);
    let driver = driver(&chromedriver).await;
    let w = Walk {
        c: browser(&driver, &chrome).await,
        clicks: AtomicUsize::new(0),
        shots: AtomicUsize::new(0),
        dir: dir.clone(),
        prefix: "oauth-".into(),
    };
    let mut shots = Vec::new();
    let started = Instant::now();
    w.c.goto(&link).await.unwrap();
    w.on(&tenant, "key").await;
    shots.push(w.shot("key").await);

    // Denied.
    w.click("#oauth-custom").await;
    w.shows("h1", "authorize").await;
    shots.push(w.shot("lever-consent").await);
    w.click("#deny").await;
    w.on(&tenant, "key").await;
    w.shows(".error", "Lever did not authorize the connection")
        .await;
    shots.push(w.shot("denied").await);

    // Allowed.
    w.click("#oauth-custom").await;
    w.shows("h1", "authorize").await;
    w.click("#allow").await;
    w.on(&tenant, "permissions").await;
    w.shows("#result", "every permission").await;
    let seconds = started.elapsed().as_secs_f64();
    shots.push(w.shot("connected").await);
    w.click("nav a[href='status']").await;
    w.on(&tenant, "status").await;
    w.shows("#auth", "Lever (OAuth)").await;
    shots.push(w.shot("status").await);
    println!(
        "OAuth walk: {} clicks, {seconds:.1} s from opening the link to connected (a denial included); screenshots: {}",
        w.clicks.load(Ordering::SeqCst),
        shots.join(", ")
    );
    w.c.close().await.unwrap();
}

/// Webhooks by hand (URLs to copy, a token pasted, verified by a delivery signed with it), new
/// webhook URLs after a leak, and disconnecting, each confirmed before it is done.
#[tokio::test]
async fn by_hand_a_new_url_key_and_disconnecting_in_a_real_browser() {
    let (chrome, chromedriver) = browser_paths();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("connect-browser");
    std::fs::create_dir_all(&dir).unwrap();
    let stack = LocalStack::from_env();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws().await), &stack.table);
    let key = sim_key(Value::Null).await;
    let tenant = unique("browser-manual");
    let link = mint(&tenant);
    let driver = driver(&chromedriver).await;
    let w = Walk {
        c: browser(&driver, &chrome).await,
        clicks: AtomicUsize::new(0),
        shots: AtomicUsize::new(0),
        dir: dir.clone(),
        prefix: "manual-".into(),
    };
    let mut shots = Vec::new();
    w.c.goto(&link).await.unwrap();
    w.on(&tenant, "key").await;
    w.c.find(Locator::Id("environment"))
        .await
        .unwrap()
        .select_by_value("custom")
        .await
        .unwrap();
    w.type_into("#apiKey", &key).await;
    w.click("#connect").await;
    w.on(&tenant, "permissions").await;

    // By hand: the script (the pages' own file, allowed by the CSP) shows the Copy buttons.
    w.c.goto(&format!(
        "{}/connect/{tenant}/manual",
        env("LEVER_BRIDGE_CONNECT_API")
    ))
    .await
    .unwrap();
    w.on(&tenant, "manual").await;
    let copy =
        w.c.find(Locator::Css("button[data-copy='url-candidateStageChange']"))
            .await
            .unwrap();
    assert!(copy.is_displayed().await.unwrap(), "copy.js ran");
    let url = w.attr("#url-candidateStageChange", "value").await;
    shots.push(w.shot("urls").await);
    let token = format!("tok-{}", random_hex(12));
    w.type_into(
        "tr[data-event='candidateStageChange'] input[name='token']",
        &token,
    )
    .await;
    w.click("tr[data-event='candidateStageChange'] button[type='submit']")
        .await;
    w.shows(
        "main",
        "The signature token for candidateStageChange is saved",
    )
    .await;
    shots.push(w.shot("token-saved").await);
    // Lever's delivery, signed with the pasted token, to the URL the page shows: verified.
    let (_, body) = delivery(
        lever_bridge::webhook::EventKind::CandidateStageChange,
        &token,
        now_ms(),
        sample_data(
            lever_bridge::webhook::EventKind::CandidateStageChange,
            "browser-opportunity",
        ),
    );
    let res = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    w.c.refresh().await.unwrap();
    w.shows("tr[data-event='candidateStageChange']", "verified")
        .await;
    shots.push(w.shot("verified").await);

    // A command parked while Lever refused the credentials: one click sends it again.
    {
        use lever_bridge::store::{CommandEnd, CommandStore};
        let now = now_ms();
        store
            .claim_command(&tenant, "cmd-parked", "note", now)
            .await
            .unwrap();
        let parked = CommandEnd::Parked {
            error: "Lever answered 401".into(),
            command: json!({"tenantId": tenant, "commandId": "cmd-parked", "opportunityId": "browser-opportunity",
                            "note": {"text": "parked while disconnected"}}),
            kind: "note".into(),
        };
        store
            .end_command(&tenant, "cmd-parked", &parked, false, None, now)
            .await
            .unwrap();
    }
    w.c.goto(&format!(
        "{}/connect/{tenant}/status",
        env("LEVER_BRIDGE_CONNECT_API")
    ))
    .await
    .unwrap();
    w.shows("#fixes", "1 command waits to be sent to Lever")
        .await;
    shots.push(w.shot("parked").await);
    w.click("#replay").await;
    w.shows("main", "The waiting command was sent to Lever again")
        .await;
    shots.push(w.shot("parked-replayed").await);
    w.c.goto(&format!(
        "{}/connect/{tenant}/manual",
        env("LEVER_BRIDGE_CONNECT_API")
    ))
    .await
    .unwrap();

    // New URLs: said, confirmed, done; the old URL is refused from then on.
    w.click("#rotate").await;
    w.on(&tenant, "rotate").await;
    w.shows("#what-rotation-does", "stop working at once").await;
    shots.push(w.shot("rotate-confirm").await);
    w.click("#confirm").await;
    w.click("#rotate-now").await;
    w.shows("main", "New URLs are in place").await;
    shots.push(w.shot("rotated").await);
    let new_url = w.text("tr[data-event='candidateStageChange'] code").await;
    assert_ne!(new_url, url);
    // The same delivery to the old and the new URL straight after the rotation.
    let post = |to: String| {
        reqwest::Client::new()
            .post(to)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let new = post(new_url.clone()).await.unwrap().status();
    let old = post(url.clone()).await.unwrap().status();
    // The new URL is taken at once (a later key generation proves the rotation); the warm
    // instance that took it refuses the old one from then on.
    println!("straight after the rotation: new URL {new}, then the old URL {old}");
    assert_eq!(new, 200);

    // Disconnect: what it removes, confirmed by typing the id.
    w.c.goto(&format!(
        "{}/connect/{tenant}/status",
        env("LEVER_BRIDGE_CONNECT_API")
    ))
    .await
    .unwrap();
    w.click("#disconnect").await;
    w.on(&tenant, "disconnect").await;
    w.shows("#what-disconnect-removes", "credentials").await;
    shots.push(w.shot("disconnect-confirm").await);
    w.type_into("#confirm", &tenant).await;
    w.click("#disconnect").await;
    w.shows("h1", "This Lever account is disconnected").await;
    shots.push(w.shot("disconnected").await);
    assert!(store.tenant(&tenant).await.unwrap().is_none());
    println!(
        "by hand, rotation, disconnect: screenshots: {}",
        shots.join(", ")
    );
    w.c.close().await.unwrap();
}
