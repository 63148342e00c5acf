//! The Lever API simulator behaves like Lever: auth, permissions, confidentiality, rate limits,
//! paging, the recorded shapes, validation, faults as a real client observes them, and signed
//! webhook deliveries. No AWS needed.

use lever_bridge::webhook::{EventKind, verify};
use lever_bridge_tests::simulator::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

const KEY: &str = "test-key";
/// Active users of the recorded account.
const USER: &str = "be129d9b-50da-4485-9377-0d83e981f30b";
const INTERVIEWER: &str = "c4bc6266-375b-4d45-9b3b-ad527ba5f3ef";
/// A recorded posting and archive reasons.
const POSTING: &str = "75ff237f-c221-4c26-8b23-faf395f5ea1c";
const TIMING: &str = "c97322d4-a7f3-4008-948c-4f8e9c58d372";
const HIRED: &str = "0092d31b-502b-4f0d-b4da-3827e1a2991f";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/lever/");

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// A simulator with Lever's rate limit and one key with every permission.
async fn sim() -> Simulator {
    let sim = Simulator::start(SimConfig::default()).await;
    sim.add_key(KEY, KeyPerms::all());
    sim
}

/// A simulator whose rate limit stays out of the way of tests about other things.
async fn unlimited() -> Simulator {
    let sim = Simulator::start(SimConfig {
        rate_per_sec: 100_000.0,
        burst: 100_000,
        retry_after_header: false,
    })
    .await;
    sim.add_key(KEY, KeyPerms::all());
    sim
}

/// A client of the simulator with one key (Basic auth, empty password, as Lever wants).
struct Api {
    client: Client,
    base: String,
    key: Option<String>,
}

impl Api {
    fn new(sim: &Simulator, key: &str) -> Self {
        Api {
            client: Client::new(),
            base: sim.base_url(),
            key: Some(key.to_string()),
        }
    }

    fn anonymous(sim: &Simulator) -> Self {
        Api {
            client: Client::new(),
            base: sim.base_url(),
            key: None,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => builder.basic_auth(key, Some("")),
            None => builder,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut builder = self.request(method, path);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        let response = builder.send().await.expect("the simulator answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }
}

fn note_path(opp: &str) -> String {
    format!("/opportunities/{opp}/notes?perform_as={USER}")
}

fn new_opp(sim: &Simulator) -> String {
    sim.add_opportunity(NewOpportunity {
        name: "Ada Lovelace".into(),
        emails: vec!["ada@example.com".into()],
        posting: Some(POSTING.into()),
        ..Default::default()
    })
}

// ---------------------------------------------------------------- auth, permissions, confidentiality

#[tokio::test]
async fn missing_unknown_and_removed_keys_get_401() {
    let sim = sim().await;
    let (status, body) = Api::anonymous(&sim).get("/stages").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "UnauthorizedError");
    assert!(body["message"].is_string());

    let (status, _) = Api::new(&sim, "not-a-key").get("/stages").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let api = Api::new(&sim, KEY);
    assert_eq!(api.get("/stages").await.0, StatusCode::OK);
    // Bearer is accepted for the same keys.
    let response = Client::new()
        .get(format!("{}/stages", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    sim.remove_key(KEY);
    let (status, body) = api.get("/stages").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "UnauthorizedError");

    let log = sim.requests();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0].key, None);
    assert_eq!(log[1].key.as_deref(), Some("not-a-key"));
    let statuses: Vec<_> = log.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(401), Some(401), Some(200), Some(200), Some(401)]
    );
}

#[tokio::test]
async fn a_key_without_the_permission_gets_403_naming_it() {
    let sim = sim().await;
    sim.add_key("reader", KeyPerms::only(&["opportunities:read"]));
    let api = Api::new(&sim, "reader");
    let opp = new_opp(&sim);

    assert_eq!(api.get("/opportunities").await.0, StatusCode::OK);
    let (status, body) = api.post(&note_path(&opp), json!({"value": "hi"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "ForbiddenError");
    assert!(body["message"].as_str().unwrap().contains("notes:write"));
    assert!(
        sim.notes(&opp).is_empty(),
        "a refused write changes nothing"
    );

    let (status, body) = api.get("/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("users:read"));
    let (status, body) = api
        .put(
            &format!("/opportunities/{opp}/stage"),
            json!({"stage": "offer"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("opportunities:write")
    );
}

#[tokio::test]
async fn confidential_records_are_invisible_without_access() {
    let sim = unlimited().await;
    let perms = ["opportunities:read", "opportunities:write", "postings:read"];
    sim.add_key("plain", KeyPerms::only(&perms));
    sim.add_key(
        "cleared",
        KeyPerms {
            confidential: true,
            ..KeyPerms::only(&perms)
        },
    );
    let secret = sim.add_opportunity(NewOpportunity {
        name: "Secret Candidate".into(),
        confidential: true,
        ..Default::default()
    });
    let open = new_opp(&sim);
    let ids = |body: &Value| -> HashSet<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };

    let plain = Api::new(&sim, "plain");
    let (status, body) = plain.get(&format!("/opportunities/{secret}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ResourceNotFound");
    let (status, _) = plain
        .put(
            &format!("/opportunities/{secret}/stage"),
            json!({"stage": "offer"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!ids(&plain.get("/opportunities").await.1).contains(&secret));
    // Asking for confidential data without access is an access error, not a quietly shorter list.
    for path in [
        "/opportunities?confidentiality=all",
        "/opportunities?confidentiality=confidential",
        "/postings?confidentiality=all",
    ] {
        let (status, body) = plain.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    assert!(ids(&plain.get("/opportunities").await.1).contains(&open));
    assert_eq!(
        plain
            .get(&format!("/postings/{CONFIDENTIAL_POSTING}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert!(!ids(&plain.get("/postings").await.1).contains(CONFIDENTIAL_POSTING));

    let cleared = Api::new(&sim, "cleared");
    assert_eq!(
        cleared.get(&format!("/opportunities/{secret}")).await.0,
        StatusCode::OK
    );
    // Lever's default is non-confidential only, even for keys with access.
    assert!(!ids(&cleared.get("/opportunities").await.1).contains(&secret));
    let all = ids(&cleared.get("/opportunities?confidentiality=all").await.1);
    assert!(all.contains(&secret) && all.contains(&open));
    let only = cleared
        .get("/opportunities?confidentiality=confidential")
        .await
        .1;
    assert!(ids(&only).contains(&secret));
    assert!(
        only["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["confidentiality"] == "confidential")
    );
    assert!(
        ids(&cleared.get("/postings?confidentiality=all").await.1).contains(CONFIDENTIAL_POSTING)
    );
    assert!(!ids(&cleared.get("/postings").await.1).contains(CONFIDENTIAL_POSTING));
    assert_eq!(
        cleared.get("/opportunities?confidentiality=some").await.0,
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------- rate limits

#[tokio::test]
async fn a_burst_of_40_is_limited_while_another_key_is_unaffected() {
    let sim = sim().await;
    sim.add_key("other", KeyPerms::all());
    let api = Api::new(&sim, KEY);
    let started = Instant::now();
    let responses =
        futures::future::join_all((0..40).map(|_| api.request(Method::GET, "/stages").send()))
            .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut ok = 0;
    let mut limited = Vec::new();
    for response in responses {
        let response = response.unwrap();
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited.push(response),
            other => panic!("unexpected {other}"),
        }
    }
    // 20 from the bucket, plus what refilled (10/s) while the burst was served.
    let refill = (elapsed * 10.0).ceil() as usize + 1;
    assert!(
        (20..=20 + refill).contains(&ok),
        "{ok} answered in {elapsed} s"
    );
    assert_eq!(ok + limited.len(), 40);
    let first = limited.remove(0);
    assert!(
        first.headers().get("retry-after").is_none(),
        "Lever documents no Retry-After"
    );
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["code"], "RateLimitError");
    assert!(body["message"].is_string() && body["retryAfterSeconds"].is_u64());

    assert_eq!(
        Api::new(&sim, "other").get("/stages").await.0,
        StatusCode::OK
    );
    let logged_429 = sim
        .requests()
        .iter()
        .filter(|r| r.status == Some(429) && r.key.as_deref() == Some(KEY))
        .count();
    assert_eq!(logged_429, 40 - ok);
}

#[tokio::test]
async fn retry_after_is_sent_only_when_configured() {
    let sim = Simulator::start(SimConfig {
        rate_per_sec: 1.0,
        burst: 1,
        retry_after_header: true,
    })
    .await;
    sim.add_key(KEY, KeyPerms::all());
    let api = Api::new(&sim, KEY);
    assert_eq!(api.get("/stages").await.0, StatusCode::OK);
    let response = api.request(Method::GET, "/stages").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn a_steady_ten_per_second_is_never_limited() {
    let sim = sim().await;
    let api = Api::new(&sim, KEY);
    // Empty the bucket first, so the pace alone has to be within the limit.
    let drained = futures::future::join_all((0..40).map(|_| api.get("/stages"))).await;
    assert!(
        drained
            .iter()
            .any(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
    );

    let start = tokio::time::Instant::now();
    for k in 1..=25u32 {
        tokio::time::sleep_until(start + Duration::from_millis(100) * k).await;
        let (status, _) = api.get("/stages").await;
        assert_eq!(status, StatusCode::OK, "request {k} at 10/s was limited");
    }
    // Still limited above the rate: the pace used every token.
    let burst = futures::future::join_all((0..15).map(|_| api.get("/stages"))).await;
    assert!(
        burst
            .iter()
            .any(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
    );
}

// ---------------------------------------------------------------- paging

#[tokio::test]
async fn paging_visits_each_of_1000_opportunities_exactly_once() {
    let sim = unlimited().await;
    let added = sim.add_opportunities(1000);
    let api = Api::new(&sim, KEY);

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = "/opportunities?confidentiality=all".to_string();
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 100);
        seen.extend(data.iter().map(|o| {
            (
                o["createdAt"].as_i64().unwrap(),
                o["id"].as_str().unwrap().to_string(),
            )
        }));
        if page["hasNext"] == true {
            assert_eq!(data.len(), 100);
            let next = page["next"]
                .as_str()
                .expect("next on every page but the last");
            path = format!("/opportunities?confidentiality=all&offset={next}");
        } else {
            assert!(
                page.as_object().unwrap().get("next").is_none(),
                "the last page has no next at all: {:?}",
                page.get("next")
            );
            break;
        }
    }
    let unique: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), seen.len(), "an opportunity came twice");
    assert!(added.iter().all(|id| unique.contains(id)));
    assert!(seen.iter().all(|(_, id)| sim.opportunity(id).is_some()));
    assert_eq!(pages, seen.len().div_ceil(100));
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first across pages"
    );

    // Another page size, default confidentiality: every non-confidential one once.
    let mut count = 0;
    let mut offset: Option<String> = None;
    loop {
        let mut request = api
            .request(Method::GET, "/opportunities")
            .query(&[("limit", "37")]);
        if let Some(o) = &offset {
            // Encoded once more by reqwest: accepted too.
            request = request.query(&[("offset", o)]);
        }
        let page: Value = request.send().await.unwrap().json().await.unwrap();
        count += page["data"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(next) => offset = Some(next.to_string()),
            None => break,
        }
    }
    let public = seen
        .iter()
        .filter(|(_, id)| sim.opportunity(id).unwrap()["confidentiality"] == "non-confidential")
        .count();
    assert_eq!(count, public);
    assert!(
        public < seen.len(),
        "some generated opportunities are confidential"
    );
}

#[tokio::test]
async fn offsets_that_were_not_issued_or_were_tampered_are_refused() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    for limit in ["0", "101", "ten", "-1"] {
        let (status, body) = api.get(&format!("/opportunities?limit={limit}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={limit}");
        assert_eq!(body["code"], "BadRequestError");
    }

    let (_, first) = api.get("/opportunities?limit=2").await;
    let next = first["next"].as_str().unwrap().to_string();
    // Looks like Lever's: a URL-encoded JSON array.
    assert!(next.starts_with("%5B") && next.ends_with("%5D"), "{next}");
    let decoded: Value = serde_json::from_str(
        &next
            .replace("%5B", "[")
            .replace("%5D", "]")
            .replace("%2C", ",")
            .replace("%22", "\""),
    )
    .unwrap();
    assert_eq!(decoded.as_array().unwrap().len(), 3);

    let (status, second) = api
        .get(&format!("/opportunities?limit=2&offset={next}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(second["data"][0]["id"], first["data"][0]["id"]);
    // The same token again gives the same page.
    let (_, again) = api
        .get(&format!("/opportunities?limit=2&offset={next}"))
        .await;
    assert_eq!(again["data"], second["data"]);

    let invalid = json!({"code": "BadRequestError", "message": "Invalid offset token"});
    let tampered = next.replacen('1', "2", 1);
    let forged = "%5B3%2C1491435120000%2C%225599cc20-349f-4b60-b531-6fe31e329717%22%5D";
    for path in [
        format!("/opportunities?limit=2&offset={tampered}"),
        format!("/opportunities?limit=2&offset={forged}"),
        "/opportunities?limit=2&offset=garbage".to_string(),
        // A token is bound to the filters it was issued for, and to its list.
        format!("/opportunities?limit=2&archived=false&offset={next}"),
        format!("/users?offset={next}"),
    ] {
        assert_eq!(
            api.get(&path).await,
            (StatusCode::BAD_REQUEST, invalid.clone()),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------- recorded shapes

#[tokio::test]
async fn note_creation_answers_the_recorded_shape() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    let recorded = fixture("api_POST_note_201_real-recorded_nango.json");

    let (status, body) = api
        .post(&note_path(&opp), json!({"value": "Assessment passed"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let note = &body["data"];
    assert_eq!(keys(&body), keys(&recorded));
    assert_eq!(keys(note), keys(&recorded["data"]));
    assert_eq!(
        keys(&note["fields"][0]),
        keys(&recorded["data"]["fields"][0])
    );
    assert_eq!(note["noteId"], note["id"]);
    assert_eq!(note["user"], USER);
    assert_eq!(note["fields"][0]["user"], USER);
    assert_eq!(note["fields"][0]["value"], "Assessment passed");
    assert_eq!(note["fields"][0]["stage"], "lead-new");
    assert_eq!(note["secret"], false);

    let stored = sim.notes(&opp);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], note["id"]);
    let (_, listed) = api.get(&format!("/opportunities/{opp}/notes")).await;
    assert_eq!(listed["data"][0]["id"], note["id"]);
    assert_eq!(listed["hasNext"], false);

    // Without perform_as the note has no author.
    let (status, body) = api
        .post(
            &format!("/opportunities/{opp}/notes"),
            json!({"value": "anonymous", "secret": true, "score": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(body["data"]["user"].is_null());
    assert_eq!(body["data"]["secret"], true);
    assert_eq!(body["data"]["fields"][0]["score"], 3);

    // note_id threads a comment onto the note.
    let first = note["id"].as_str().unwrap();
    let (status, body) = api
        .post(
            &format!("{}&note_id={first}", note_path(&opp)),
            json!({"value": "reply"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["data"]["id"], first);
    assert_eq!(body["data"]["fields"].as_array().unwrap().len(), 2);

    for bad in [
        json!({}),
        json!({"value": ""}),
        json!({"value": "  "}),
        json!({"value": 5}),
        json!({"value": "x", "secret": "yes"}),
        json!({"value": "x", "createdAt": crate_now() + 3_600_000}),
    ] {
        let (status, body) = api.post(&note_path(&opp), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["code"], "BadRequestError");
    }
    for who in [DEACTIVATED_USER, "no-such-user"] {
        let (status, _) = api
            .post(
                &format!("/opportunities/{opp}/notes?perform_as={who}"),
                json!({"value": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "perform_as={who}");
    }
    assert_eq!(sim.notes(&opp).len(), 2);
    let (status, body) = api
        .post(&note_path("no-such-opp"), json!({"value": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ResourceNotFound");
}

fn crate_now() -> i64 {
    lever_bridge_tests::now_ms()
}

#[tokio::test]
async fn the_seeded_account_follows_the_recordings() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);

    let (_, stages) = api.get("/stages").await;
    let recorded = fixture("api_GET_stages_list_real-recorded_nango.json");
    assert_eq!(stages, recorded, "the stage list is the recorded one");

    let recorded = fixture("api_GET_opportunity_single_real-recorded_nango.json");
    let (_, opp) = api
        .get(&format!("/opportunities/{RECORDED_OPPORTUNITY}"))
        .await;
    assert_eq!(opp, recorded);
    // Added and generated opportunities (and their applications) have the recorded shape.
    let application = fixture("api_GET_application_single_real-recorded_nango.json");
    let mut made = sim.add_opportunities(3);
    made.push(new_opp(&sim));
    for id in made {
        let (status, body) = api.get(&format!("/opportunities/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(keys(&body["data"]), keys(&recorded["data"]), "{id}");
        assert_eq!(
            body["data"]["urls"]["show"],
            format!("https://hire.lever.co/candidates/{id}")
        );
        let (_, apps) = api.get(&format!("/opportunities/{id}/applications")).await;
        for app in apps["data"].as_array().unwrap() {
            assert_eq!(keys(app), keys(&application["data"]));
            assert_eq!(app["opportunityId"], id.as_str());
        }
    }
    let (_, stage) = api
        .put(
            &format!("/opportunities/{RECORDED_OPPORTUNITY}/stage?perform_as={USER}"),
            json!({"stage": "offer"}),
        )
        .await;
    let after = fixture("api_PUT_opportunity_stage_real-recorded_nango.json");
    assert!(keys(&after["data"]).is_subset(&keys(&stage["data"])));
    let (_, expanded) = api
        .get(&format!(
            "/opportunities/{RECORDED_OPPORTUNITY}?expand=stage&expand=owner&expand=applications"
        ))
        .await;
    assert_eq!(
        expanded["data"]["stage"],
        json!({"id": "offer", "text": "Offer"})
    );
    assert_eq!(
        expanded["data"]["owner"]["id"],
        "32bc4d3b-1aa6-4e2b-92d0-2e575047001e"
    );
    let application = fixture("api_GET_application_single_real-recorded_nango.json");
    assert_eq!(expanded["data"]["applications"][0], application["data"]);
    let (_, apps) = api
        .get(&format!(
            "/opportunities/{RECORDED_OPPORTUNITY}/applications"
        ))
        .await;
    assert_eq!(apps["data"][0], application["data"]);

    let (_, users) = api.get("/users").await;
    let listed = |v: &Value, id: &str| v["data"].as_array().unwrap().iter().any(|u| u["id"] == id);
    assert!(listed(&users, USER) && !listed(&users, DEACTIVATED_USER));
    let (_, everyone) = api.get("/users?includeDeactivated=true").await;
    assert!(listed(&everyone, DEACTIVATED_USER));
    let (_, by_email) = api.get("/users?email=PERSON15@example.com").await;
    assert_eq!(by_email["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_email["data"][0]["id"], USER);
    assert_eq!(
        sim.users().len(),
        everyone["data"].as_array().unwrap().len()
    );

    let (_, hired) = api.get("/archive_reasons?type=hired").await;
    assert_eq!(hired["data"].as_array().unwrap().len(), 1);
    assert_eq!(hired["data"][0]["id"], HIRED);
    assert_eq!(
        api.get("/archive_reasons?type=other").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(sim.archive_reasons().len(), 12);

    let (_, templates) = api.get("/feedback_templates").await;
    let recorded = fixture("api_GET_feedback_templates_list_real-scrubbed_the-sid-dani.json");
    for t in recorded["data"].as_array().unwrap() {
        assert!(templates["data"].as_array().unwrap().contains(t));
    }
    assert_eq!(
        sim.feedback_templates().len(),
        templates["data"].as_array().unwrap().len()
    );

    let (_, panels) = api
        .get(&format!("/opportunities/{RECORDED_OPPORTUNITY}/interviews"))
        .await;
    let interview = fixture("api_GET_interview_single_real-recorded_nango.json");
    assert_eq!(panels["data"][0], interview["data"]);
}

// ---------------------------------------------------------------- writes

#[tokio::test]
async fn stage_archive_tags_and_links_change_the_opportunity() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    let before = sim.opportunity(&opp).unwrap();

    let (status, body) = api
        .put(
            &format!("/opportunities/{opp}/stage"),
            json!({"stage": "no-such-stage"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"code": "ResourceNotFound", "message": "stages no-such-stage was not found"})
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, body) = api
        .put(
            &format!("/opportunities/{opp}/stage?perform_as={USER}"),
            json!({"stage": "offer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let o = &body["data"];
    assert_eq!(o["stage"], "offer");
    let change = o["stageChanges"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(change["toStageId"], "offer");
    assert_eq!(change["toStageIndex"], 9);
    assert_eq!(change["userId"], USER);
    assert!(o["updatedAt"].as_i64() > before["updatedAt"].as_i64());
    assert_eq!(sim.opportunity(&opp).unwrap(), *o);
    assert_eq!(
        api.put(&format!("/opportunities/{opp}/stage"), json!({}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let archived = format!("/opportunities/{opp}/archived");
    assert_eq!(
        api.put(&archived, json!({"reason": "nope"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.put(&archived, json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = api.put(&archived, json!({"reason": TIMING})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["archived"]["reason"], TIMING);
    assert!(body["data"]["archived"]["archivedAt"].is_i64());
    let (_, archived_list) = api.get("/opportunities?archived=true&limit=100").await;
    assert!(
        archived_list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == opp)
    );
    let (_, body) = api.put(&archived, json!({"reason": null})).await;
    assert!(body["data"]["archived"].is_null());

    let tags = format!("/opportunities/{opp}/addTags");
    let (_, once) = api
        .post(&tags, json!({"tags": ["vendor-assessed", "rust"]}))
        .await;
    let (_, twice) = api
        .post(&tags, json!({"tags": ["rust", "vendor-assessed"]}))
        .await;
    assert_eq!(once["data"]["tags"], twice["data"]["tags"]);
    let tag_count = |v: &Value, t: &str| {
        v["data"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| *x == t)
            .count()
    };
    assert_eq!(tag_count(&twice, "rust"), 1);
    let (_, by_tag) = api.get("/opportunities?tag=vendor-assessed").await;
    assert_eq!(by_tag["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.post(&tags, json!({"tags": "rust"})).await.0,
        StatusCode::BAD_REQUEST
    );
    let links = format!("/opportunities/{opp}/addLinks");
    let link = "https://vendor.example/report/1";
    api.post(&links, json!({"links": [link]})).await;
    let (status, body) = api.post(&links, json!({"links": [link]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["links"], json!([link]));

    let (_, by_stage) = api.get("/opportunities?stage_id=offer&posting_id=").await;
    assert!(
        by_stage["data"].as_array().unwrap().is_empty(),
        "posting_id= matches nothing"
    );
    let (_, filtered) = api
        .get(&format!(
            "/opportunities?stage_id=offer&posting_id={POSTING}&email=ADA@example.com"
        ))
        .await;
    assert!(
        filtered["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == opp)
    );
}

#[tokio::test]
async fn feedback_is_validated_against_its_template() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    let template = sim.feedback_templates()[0].clone();
    let rating = &template["fields"][0];
    let essay = &template["fields"][1];
    assert_eq!(rating["type"], "score-system");
    assert_eq!(essay["type"], "textarea");
    let path = format!("/opportunities/{opp}/feedback?perform_as={USER}");
    let form = |values: Value| json!({"baseTemplateId": template["id"], "fieldValues": values});

    let (status, body) = api
        .post(&format!("/opportunities/{opp}/feedback"), form(json!([])))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Missing required parameter: perform_as");

    let bad_cases = [
        (json!({"fieldValues": []}), "baseTemplateId"),
        (json!({"baseTemplateId": "nope", "fieldValues": []}), "nope"),
        (
            form(json!([{"id": "no-such-field", "value": "x"}])),
            "no-such-field",
        ),
        (
            form(json!([{"id": rating["id"], "value": "5 - Superstar"}])),
            "options",
        ),
        (form(json!([{"id": rating["id"], "value": 4}])), "string"),
        (form(json!([{"id": essay["id"], "value": 5}])), "string"),
        (form(json!({"id": essay["id"]})), "array"),
    ];
    for (body, mentions) in bad_cases {
        let (status, answer) = api.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(mentions),
            "{message:?} should mention {mentions}"
        );
    }
    assert!(sim.feedback(&opp).is_empty());

    let (status, body) = api
        .post(
            &path,
            form(json!([
                {"id": rating["id"], "value": "3 - Hire"},
                {"id": essay["id"], "value": "Solid territory plan."},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let stored = sim.feedback(&opp);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], body["data"]);
    assert_eq!(stored[0]["user"], USER);
    assert_eq!(stored[0]["baseTemplateId"], template["id"]);
    assert_eq!(stored[0]["fields"][0]["value"], "3 - Hire");
    assert_eq!(stored[0]["fields"][1]["value"], "Solid territory plan.");

    // The synthetic template has one field of each type.
    let path_sim = path.clone();
    let typed = |values: Value| json!({"baseTemplateId": SIM_TEMPLATE, "fieldValues": values});
    let field = |n: u32| format!("5e1d0000-0000-4000-8000-0000000000{n:02}");
    for wrong in [
        json!([{"id": field(2), "value": 9}]),
        json!([{"id": field(5), "value": "maybe"}]),
        json!([{"id": field(8), "value": ["Rust", "COBOL"]}]),
        json!([{"id": field(8), "value": "Rust"}]),
        json!([{"id": field(9), "value": "yesterday"}]),
        json!([{"id": field(11), "value": [{"score": "high"}]}]),
        // Lever documents "yes"/"no", an option's text and a 1-4 integer: not a boolean, an
        // option's id or a score's text.
        json!([{"id": field(5), "value": true}]),
        json!([{"id": field(6), "value": "0b5e0000-0000-4000-8000-000000000001"}]),
        json!([{"id": field(2), "value": "4"}]),
    ] {
        let (status, _) = api.post(&path_sim, typed(wrong.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    }
    let (status, _) = api
        .post(
            &path_sim,
            typed(json!([
                {"id": field(1), "value": "4 - Strong Hire"},
                {"id": field(2), "value": 4},
                {"id": field(3), "value": "Summary"},
                {"id": field(5), "value": "yes"},
                {"id": field(6), "value": "Strategy"},
                {"id": field(7), "value": "Advance"},
                {"id": field(8), "value": ["Rust", "SQL"]},
                {"id": field(9), "value": 1_700_000_000_000i64},
                {"id": field(11), "value": [{"score": 3}]},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sim.feedback(&opp).len(), 2);
}

#[tokio::test]
async fn files_are_multipart_need_perform_as_and_stop_at_30_mb() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    let upload = |query: &str, bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("report.pdf");
        api.request(Method::POST, &format!("/opportunities/{opp}/files{query}"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };
    let no_user = upload("", vec![1; 10]).await.unwrap();
    assert_eq!(no_user.status(), StatusCode::BAD_REQUEST);
    let as_user = format!("?perform_as={USER}");
    let json = api
        .post(
            &format!("/opportunities/{opp}/files{as_user}"),
            json!({"file": "x"}),
        )
        .await;
    assert_eq!(json.0, StatusCode::BAD_REQUEST, "not multipart: {json:?}");
    let too_big = upload(&as_user, vec![0; 30 * 1024 * 1024 + 1])
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(sim.files(&opp).is_empty());
    let ok = upload(&as_user, vec![1; 1000]).await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let (_, listed) = api.get(&format!("/opportunities/{opp}/files")).await;
    assert_eq!(listed["data"][0]["name"], "report.pdf");
    assert_eq!(listed["data"][0]["size"], 1000);
    let limited = Api::new(&sim, "files-read-only");
    sim.add_key("files-read-only", KeyPerms::only(&["files:read"]));
    let part = reqwest::multipart::Part::bytes(vec![1]).file_name("x.pdf");
    let denied = limited
        .request(
            Method::POST,
            &format!("/opportunities/{opp}/files{as_user}"),
        )
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn panels_are_created_replaced_and_deleted() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    let panels = format!("/opportunities/{opp}/panels?perform_as={USER}");
    let interview = |subject: &str| {
        json!({
            "subject": subject,
            "interviewers": [{"id": INTERVIEWER}],
            "date": 1_900_000_000_000i64,
            "duration": 45,
            "location": "Video call",
        })
    };
    let panel = json!({"timezone": "Europe/London", "note": "Assessment debrief", "interviews": [interview("Debrief")]});

    let (status, body) = api
        .post(&format!("/opportunities/{opp}/panels"), panel.clone())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("perform_as"));
    let mut no_tz = panel.clone();
    no_tz.as_object_mut().unwrap().remove("timezone");
    let mut gone = panel.clone();
    gone["interviews"][0]["interviewers"] = json!([{"id": DEACTIVATED_USER}]);
    let mut no_apps = panel.clone();
    no_apps["applications"] = json!([]);
    let mut template = panel.clone();
    template["interviews"][0]["feedbackTemplate"] = json!("no-such-template");
    for bad in [
        no_tz,
        gone,
        no_apps,
        template,
        json!({"timezone": "UTC", "interviews": []}),
    ] {
        assert_eq!(
            api.post(&panels, bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert!(sim.panels(&opp).is_empty());

    let (status, body) = api.post(&panels, panel.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let created = &body["data"];
    assert!(created.get("data").is_none(), "single-wrapped, as recorded");
    assert_eq!(created["externallyManaged"], true);
    assert_eq!(created["user"], USER);
    assert_eq!(
        created["applications"],
        sim.opportunity(&opp).unwrap()["applications"]
    );
    let panel_id = created["id"].as_str().unwrap().to_string();
    let first_interview = created["interviews"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(panel_id, first_interview);
    assert_eq!(
        created["interviews"][0]["interviewers"][0]["name"],
        "Example Person 4"
    );
    assert_eq!(created["end"], 1_900_000_000_000i64 + 45 * 60_000);
    assert_eq!(sim.panels(&opp), vec![created.clone()]);

    let (_, listed) = api.get(&format!("/opportunities/{opp}/interviews")).await;
    let listed = &listed["data"][0];
    let recorded = fixture("api_GET_interview_single_real-recorded_nango.json");
    assert_eq!(keys(listed), keys(&recorded["data"]));
    assert_eq!(listed["panel"], panel_id);
    assert_eq!(listed["opportunityId"], opp);

    // PUT replaces the panel: the named interview keeps its id, the new one gets one.
    let one = format!("/opportunities/{opp}/panels/{panel_id}?perform_as={USER}");
    let mut kept = interview("Debrief (moved)");
    kept["id"] = json!(first_interview);
    let replacement =
        json!({"timezone": "Europe/Paris", "interviews": [kept, interview("Follow-up")]});
    let (status, body) = api.put(&one, replacement).await;
    assert_eq!(status, StatusCode::OK);
    let updated = &body["data"];
    assert_eq!(updated["id"], panel_id);
    assert_eq!(updated["timezone"], "Europe/Paris");
    assert!(updated["note"].is_null(), "a PUT replaces the whole panel");
    let ivs = updated["interviews"].as_array().unwrap();
    assert_eq!(ivs.len(), 2);
    assert_eq!(ivs[0]["id"], first_interview.as_str());
    assert_eq!(ivs[0]["subject"], "Debrief (moved)");
    assert_ne!(ivs[1]["id"], first_interview.as_str());
    // An interview the PUT leaves out is deleted.
    let (_, body) = api
        .put(
            &one,
            json!({"timezone": "UTC", "interviews": [interview("Only")]}),
        )
        .await;
    let ivs = body["data"]["interviews"].as_array().unwrap().clone();
    assert_eq!(ivs.len(), 1);
    assert_ne!(ivs[0]["id"], first_interview.as_str());
    let mut stranger = interview("x");
    stranger["id"] = json!("not-an-interview-of-this-panel");
    assert_eq!(
        api.put(&one, json!({"timezone": "UTC", "interviews": [stranger]}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    // A panel made in Lever's UI cannot be changed through the API.
    let ui_panel =
        format!("/opportunities/{RECORDED_OPPORTUNITY}/panels/{RECORDED_PANEL}?perform_as={USER}");
    let (status, body) = api.put(&ui_panel, panel.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("externally managed")
    );
    assert_eq!(api.delete(&ui_panel).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(sim.panels(RECORDED_OPPORTUNITY).len(), 1);

    assert_eq!(
        api.delete(&format!("/opportunities/{opp}/panels/{panel_id}"))
            .await
            .0,
        StatusCode::BAD_REQUEST,
        "perform_as is required"
    );
    assert_eq!(api.delete(&one).await.0, StatusCode::NO_CONTENT);
    assert!(sim.panels(&opp).is_empty());
    assert_eq!(api.delete(&one).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn webhook_creation_returns_its_token_once() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let recorded = fixture("api_POST_webhook_201_signatureToken_real-recorded_nango.json");
    let (status, body) = api
        .post(
            "/webhooks",
            json!({"url": "https://example.com/hooks/stage", "event": "candidateStageChange"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let hook = &body["data"];
    assert_eq!(keys(hook), keys(&recorded["data"]));
    assert_eq!(
        keys(&hook["configuration"]),
        keys(&recorded["data"]["configuration"])
    );
    let token = hook["configuration"]["signatureToken"].as_str().unwrap();
    assert_eq!(token.len(), 48);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        hook["configuration"]["conditions"],
        recorded["data"]["configuration"]["conditions"]
    );

    let (status, listed) = api.get("/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&listed), BTreeSet::from(["data".to_string()]));
    assert_eq!(listed["data"][0]["id"], hook["id"]);
    assert!(!listed.to_string().contains("signatureToken"));
    assert!(!listed.to_string().contains(token));

    for bad in [
        json!({"url": "https://example.com/x", "event": "candidateExploded"}),
        json!({"url": "ftp://example.com/x", "event": "candidateHired"}),
        json!({"event": "candidateHired"}),
        json!({"url": "https://example.com/x", "event": "candidateHired", "configuration": {"conditions": {"origins": ["space"]}}}),
    ] {
        assert_eq!(
            api.post("/webhooks", bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let path = format!("/webhooks/{}", hook["id"].as_str().unwrap());
    assert_eq!(api.delete(&path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/webhooks").await.1, json!({"data": []}));
    assert_eq!(api.delete(&path).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_bodies_and_unknown_routes() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    let response = api
        .request(Method::POST, &note_path(&opp))
        .header("content-type", "application/json")
        .body("{\"value\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "BadRequestError");
    assert_eq!(
        api.post(&note_path(&opp), json!(["value"])).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = api.get("/candidates/unknown/things").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ResourceNotFound");
    assert_eq!(api.delete("/stages").await.0, StatusCode::NOT_FOUND);
    let (status, body) = api.get(&format!("/opportunities/{}", "0000")).await;
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "opportunities 0000 was not found")
    );
    let logged: Vec<_> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert!(logged.contains(&"/v1/candidates/unknown/things".to_string()));
}

#[tokio::test]
async fn the_request_log_keeps_writes_with_their_body() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    api.get("/opportunities?limit=5").await;
    api.post(&note_path(&opp), json!({"value": "logged"})).await;
    let log = sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0].method.as_str(),
            log[0].path.as_str(),
            log[0].query.as_str()
        ),
        ("GET", "/v1/opportunities", "limit=5")
    );
    assert_eq!(log[0].body, None);
    assert_eq!(log[1].method, "POST");
    assert_eq!(log[1].path, format!("/v1/opportunities/{opp}/notes"));
    assert_eq!(log[1].query, format!("perform_as={USER}"));
    assert_eq!(log[1].body, Some(json!({"value": "logged"})));
    assert_eq!(log[1].status, Some(201));
    assert_eq!(log[1].key.as_deref(), Some(KEY));
    assert!(log[1].at_ms >= log[0].at_ms);
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn a_status_fault_answers_without_doing_the_work() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    sim.push_fault(Fault::Status(503), 1);
    let (status, body) = api
        .post(&note_path(&opp), json!({"value": "first try"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "ServiceUnavailable");
    assert!(sim.notes(&opp).is_empty());
    let (status, _) = api.post(&note_path(&opp), json!({"value": "retry"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sim.notes(&opp).len(), 1);
    let log = sim.requests();
    assert_eq!(log[0].fault.as_deref(), Some("status:503"));
    assert_eq!(log[0].status, Some(503));
    assert_eq!(log[0].key.as_deref(), Some(KEY));
    assert_eq!(log[1].fault, None);
}

#[tokio::test]
async fn pushed_faults_come_in_order_and_only_after_auth() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    sim.push_fault(Fault::Status(500), 2);
    sim.push_fault(Fault::Status(429), 1);
    // An unknown key is refused before any fault is used.
    assert_eq!(
        Api::new(&sim, "stranger").get("/stages").await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(api.get("/stages").await.0.as_u16());
    }
    assert_eq!(statuses, [500, 500, 429, 200]);
}

#[tokio::test]
async fn a_delay_fault_delays_then_answers() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    sim.push_fault(Fault::Delay(Duration::from_millis(400)), 1);
    let started = Instant::now();
    let (status, body) = api.get("/stages").await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["id"], "lead-new");
    assert_eq!(sim.requests()[0].fault.as_deref(), Some("delay:400ms"));
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_and_changes_nothing() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    sim.push_fault(Fault::Drop, 1);
    let err = api
        .request(Method::POST, &note_path(&opp))
        .json(&json!({"value": "lost"}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect_err("no HTTP response at all");
    assert!(err.status().is_none());
    assert!(!err.is_timeout(), "closed, not hanging: {err:?}");
    assert!(sim.notes(&opp).is_empty());
    let log = sim.requests();
    assert_eq!(
        (log[0].status, log[0].fault.as_deref()),
        (None, Some("drop"))
    );
    // The next request works.
    assert_eq!(
        api.post(&note_path(&opp), json!({"value": "again"}))
            .await
            .0,
        StatusCode::CREATED
    );
}

/// Waits for a note with `value` (the server finishes a write on its own time).
async fn wait_for_note(sim: &Simulator, opp: &str, value: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if sim
            .notes(opp)
            .iter()
            .any(|n| n["fields"][0]["value"] == value)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_late_answer_times_out_the_client_although_the_note_was_written() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    sim.push_fault(Fault::DelayAfterApply(Duration::from_secs(2)), 1);
    let err = api
        .request(Method::POST, &note_path(&opp))
        .json(&json!({"value": "written anyway"}))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("the answer comes after the client's timeout");
    assert!(err.is_timeout(), "{err:?}");
    assert!(wait_for_note(&sim, &opp, "written anyway").await);
    let log = sim.requests();
    assert_eq!(log[0].status, Some(201));
    assert_eq!(log[0].fault.as_deref(), Some("delay_after_apply:2000ms"));
}

#[tokio::test]
async fn a_drop_after_apply_loses_the_answer_not_the_write() {
    let sim = unlimited().await;
    let api = Api::new(&sim, KEY);
    let opp = new_opp(&sim);
    sim.push_fault(Fault::DropAfterApply, 1);
    let err = api
        .request(Method::POST, &note_path(&opp))
        .json(&json!({"value": "applied"}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect_err("no HTTP response at all");
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    assert!(wait_for_note(&sim, &opp, "applied").await);
    assert_eq!(sim.requests()[0].status, None);
}

#[tokio::test]
async fn random_faults_are_reproducible_from_their_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let sim = unlimited().await;
        sim.set_random_faults(0.3, vec![Fault::Status(500), Fault::Status(503)], seed);
        let api = Api::new(&sim, KEY);
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(api.get("/stages").await.0.as_u16());
        }
        sim.set_random_faults(0.0, vec![], 0);
        assert_eq!(
            api.get("/stages").await.0,
            StatusCode::OK,
            "ratio 0 turns faults off"
        );
        statuses
    }
    let first = run(7).await;
    assert_eq!(first, run(7).await);
    assert_ne!(first, run(8).await);
    let faulted = first.iter().filter(|s| **s != 200).count();
    assert!(
        (3..=25).contains(&faulted),
        "{faulted} of 40 faulted at 30%"
    );
    assert!(first.iter().all(|s| [200, 500, 503].contains(s)));
}

// ---------------------------------------------------------------- webhooks sent

#[tokio::test]
async fn send_webhook_delivers_a_body_whose_signature_verifies() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;
    let seen: Seen = Arc::default();
    let receiver = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(seen): axum::extract::State<Seen>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    seen.lock()
                        .unwrap()
                        .push((headers, serde_json::from_slice(&body).unwrap()));
                    StatusCode::OK
                },
            ),
        )
        .route(
            "/broken",
            axum::routing::post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let sim = sim().await;
    let data = json!({"opportunityId": RECORDED_OPPORTUNITY, "fromStageId": "lead-new", "toStageId": "offer"});
    let status = sim
        .send_webhook(
            &format!("{base}/hook"),
            EventKind::CandidateStageChange,
            data.clone(),
            "tok",
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (headers, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(headers["user-agent"], "Lever-Webhooks");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        keys(&body),
        BTreeSet::from(["data", "event", "signature", "token", "triggeredAt"].map(String::from))
    );
    assert_eq!(body["event"], "candidateStageChange");
    assert_eq!(body["data"], data);
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 48);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let triggered_at = body["triggeredAt"].as_i64().unwrap();
    assert!((crate_now() - triggered_at).abs() < 10_000);
    let signature = body["signature"].as_str().unwrap();
    assert!(verify(signature, token, triggered_at, &["tok"]));
    assert!(!verify(signature, token, triggered_at, &["other"]));

    let status = sim
        .send_webhook(
            &format!("{base}/broken"),
            EventKind::CandidateHired,
            json!({}),
            "tok",
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // Nobody listening: reported as 502, and as an error by try_send_webhook.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    assert_eq!(
        sim.send_webhook(&dead, EventKind::CandidateHired, json!({}), "tok")
            .await,
        StatusCode::BAD_GATEWAY
    );
    assert!(
        sim.try_send_webhook(&dead, EventKind::CandidateHired, json!({}), "tok")
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------- admin surface and binary

#[tokio::test]
async fn the_admin_surface_mirrors_the_library() {
    let sim = unlimited().await;
    let admin = sim.base_url().replace("/v1", "/_admin");
    let http = Client::new();
    let status = http
        .post(format!("{admin}/keys"))
        .json(&json!({"key": "ops", "permissions": ["stages:read"]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let api = Api::new(&sim, "ops");
    assert_eq!(api.get("/stages").await.0, StatusCode::OK);
    assert_eq!(api.get("/users").await.0, StatusCode::FORBIDDEN);

    let push = |fault: Value| {
        http.post(format!("{admin}/faults"))
            .json(&json!({"fault": fault, "count": 1}))
            .send()
    };
    assert_eq!(
        push(json!({"status": 503})).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get("/stages").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        push(json!({"status": 503, "drop": true}))
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    push(json!({"drop": true})).await.unwrap();
    assert!(api.request(Method::GET, "/stages").send().await.is_err());

    let random = http
        .post(format!("{admin}/random_faults"))
        .json(&json!({"ratio": 1.0, "seed": 1, "faults": [{"status": 500}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(random.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/stages").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    http.post(format!("{admin}/random_faults"))
        .json(&json!({"ratio": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.get("/stages").await.0, StatusCode::OK);

    let added: Value = http
        .post(format!("{admin}/opportunities"))
        .json(&json!({"count": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["ids"].as_array().unwrap().len(), 3);
    let one = http
        .post(format!("{admin}/opportunities"))
        .json(&json!({"name": "Via Admin", "stage": "offer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::CREATED);
    let id: Value = one.json().await.unwrap();
    assert_eq!(
        sim.opportunity(id["id"].as_str().unwrap()).unwrap()["stage"],
        "offer"
    );

    let log: Vec<Value> = http
        .get(format!("{admin}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.len(), sim.requests().len());
    assert_eq!(log[0]["path"], "/v1/stages");
    assert!(
        log.iter()
            .any(|r| r["fault"] == "drop" && r["status"].is_null())
    );
    http.delete(format!("{admin}/requests"))
        .send()
        .await
        .unwrap();
    assert!(sim.requests().is_empty());

    http.delete(format!("{admin}/keys/ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.get("/stages").await.0, StatusCode::UNAUTHORIZED);
}

/// Kills the child process when the test ends, passing or not.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test]
async fn the_lever_sim_binary_serves_its_key() {
    use std::io::BufRead;
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_lever-sim"))
            .args(["--port", "0", "--key", "demo-key", "--opportunities", "5"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    });
    let base = tokio::time::timeout(Duration::from_secs(30), first_line)
        .await
        .expect("lever-sim prints its URL")
        .unwrap()
        .unwrap();
    let base = base.trim();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"),
        "{base}"
    );
    let http = Client::new();
    let response = http
        .get(format!("{base}/opportunities?confidentiality=all"))
        .basic_auth("demo-key", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["data"].as_array().unwrap().len() >= 5);
    let anonymous = http.get(format!("{base}/stages")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    drop(child);
}
