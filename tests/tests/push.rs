//! Pushes into Lever against the simulator (HTTP, auth, rate limits, faults) with the command
//! store on DynamoDB in the local emulator: exactly once, nothing lost.

use futures::future::join_all;
use lever_bridge::clock::{Clock, ManualClock};
use lever_bridge::lever::calls::Lever;
use lever_bridge::lever::{Account, Auth, HttpLever, LeverRequest, RateLimiter, RetryPolicy};
use lever_bridge::push::command::PushKind;
use lever_bridge::push::parked::PushQueues;
use lever_bridge::push::{Outcome, Pusher, handle_event};
use lever_bridge::secrets::{InMemorySecrets, Redacted, SecretStore, TenantSecret};
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::store::{CommandStore, StatsStore, TenantStatus, TenantStore};
use lever_bridge_tests::simulator::{Fault, KeyPerms, NewOpportunity, SimConfig, Simulator};
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serializes the timing-sensitive rate test with the CPU-heavy fault storm.
static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type P = Pusher<Arc<HttpLever>, DynamoStore, Arc<InMemorySecrets>, Arc<ManualClock>>;

struct Rig {
    sim: Simulator,
    store: DynamoStore,
    clock: Arc<ManualClock>,
    tenant: String,
    owner: String,
    key: String,
    secrets: Arc<InMemorySecrets>,
    lever: Arc<HttpLever>,
    pushers: Vec<P>,
    /// The upload bucket push-file reads (a fresh one per rig).
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Rig {
    async fn new() -> Rig {
        Rig::with(
            SimConfig::default(),
            RetryPolicy::default(),
            KeyPerms::all(),
        )
        .await
    }

    async fn with(config: SimConfig, retry: RetryPolicy, perms: KeyPerms) -> Rig {
        let sim = Simulator::start(config).await;
        let key = random_hex(16);
        sim.add_key(&key, perms);
        let owner = active_user(&sim);
        let aws = aws().await;
        let (store, _) = fresh_table(&aws).await;
        let tenant = unique("acme");
        store
            .put_tenant(&tenant_record(&tenant, &sim.base_url(), Some(&owner)))
            .await
            .unwrap();
        let secrets = Arc::new(InMemorySecrets::default());
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
        let clock = Arc::new(ManualClock::at(now_ms()));
        let lever = Arc::new(HttpLever::new(RateLimiter::new(10.0, 20), retry));
        let s3 = lever_bridge::files::s3_client(&aws);
        let bucket = format!("uploads-{}", random_hex(8));
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let pushers = PushKind::ALL
            .iter()
            .map(|&k| {
                let mut p = Pusher::new(
                    k,
                    lever.clone(),
                    store.clone(),
                    secrets.clone(),
                    clock.clone(),
                );
                p.uploads = Some(lever_bridge::files::Uploads::new(s3.clone(), &bucket));
                p
            })
            .collect();
        Rig {
            sim,
            store,
            clock,
            tenant,
            owner,
            key,
            secrets,
            lever,
            pushers,
            s3,
            bucket,
        }
    }

    /// Puts `bytes` into the upload bucket under `key`.
    async fn upload(&self, key: &str, bytes: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
    }

    fn pusher(&self, kind: PushKind) -> &P {
        &self.pushers[PushKind::ALL.iter().position(|k| *k == kind).unwrap()]
    }

    fn command(&self, id: &str, opp: &str, fields: Value) -> Value {
        let mut c = json!({"commandId": id, "tenantId": self.tenant, "opportunityId": opp});
        c.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        c
    }

    async fn push(&self, kind: PushKind, command: Value) -> Outcome {
        // What the code accepts keeps to the contract.
        if lever_bridge::push::command::Command::parse(kind, command.clone()).is_ok() {
            lever_bridge_tests::contract::check_command(kind, &command);
        }
        self.pusher(kind)
            .handle(command, Instant::now() + Duration::from_secs(30))
            .await
    }

    fn opportunity(&self) -> String {
        self.sim.add_opportunity(NewOpportunity {
            name: "Grace Hopper".into(),
            ..Default::default()
        })
    }
}

type A =
    lever_bridge::admin::Admin<Arc<HttpLever>, DynamoStore, Arc<InMemorySecrets>, Arc<ManualClock>>;

impl Rig {
    /// The admin API of the functions that reconnect tenants, its push queues in memory.
    fn admin(&self) -> (A, Arc<PushQueues>) {
        let queues = Arc::new(PushQueues::memory());
        let admin = lever_bridge::admin::Admin::new(
            self.lever.clone(),
            self.store.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            lever_bridge::admin::Settings {
                webhook_base_url: None,
                environments: vec![("sandbox".into(), self.sim.base_url())],
                lever_budget: Duration::from_secs(20),
                oauth: None,
                queues: Some(queues.clone()),
                url_keys: None,
                replay: None,
                connect_pages_url: None,
                connect_link_ttl: Duration::from_secs(1800),
            },
        );
        (admin, queues)
    }
}

async fn call(admin: &A, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let reply = admin
        .handle_request(
            &lever_bridge::admin::http::Group::ALL,
            method,
            path,
            "",
            body.as_bytes(),
        )
        .await;
    lever_bridge_tests::openapi::check_answer(
        method,
        path,
        reply.status,
        reply.content_type,
        &reply.body,
    );
    (
        reply.status,
        serde_json::from_str(&reply.body).unwrap_or(Value::Null),
    )
}

fn active_user(sim: &Simulator) -> String {
    sim.users()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .and_then(|u| u["id"].as_str())
        .expect("an active user")
        .to_string()
}

/// The fields of the `i`-th command of a mixed load, for `kind`.
fn fields_of(kind: PushKind, i: usize, stages: &[Value], owner: &str) -> Value {
    match kind {
        PushKind::Note => json!({"text": format!("note {i}")}),
        PushKind::Stage => json!({"stageId": stages[i % stages.len()]["id"]}),
        PushKind::TagsLinks => json!({"addTags": [format!("tag-{i}")]}),
        PushKind::Interview => json!({"action": "schedule", "interviewId": format!("iv-{i}"),
            "start": now_ms() + 3_600_000, "durationMinutes": 30, "interviewers": [owner]}),
        other => panic!("no mixed-load fields for {other:?}"),
    }
}

fn done(o: &Outcome) -> &Value {
    match o {
        Outcome::Done { result } => result,
        other => panic!("expected done, got {other:?}"),
    }
}

#[tokio::test]
async fn a_note_is_one_lever_request_attributed_to_the_owner() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    rig.sim.clear_requests();
    let cmd = rig.command(
        "note-1",
        &opp,
        json!({"text": "Candidate confirmed the interview by SMS."}),
    );
    let result = done(&rig.push(PushKind::Note, cmd.clone()).await).clone();
    let requests = rig.sim.requests();
    assert_eq!(
        requests.len(),
        1,
        "one Lever request on the happy path: {requests:?}"
    );
    assert!(
        requests[0]
            .query
            .contains(&format!("perform_as={}", rig.owner))
    );
    let notes = rig.sim.notes(&opp);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["user"], json!(rig.owner));
    assert_eq!(result["noteIds"][0], notes[0]["id"]);
    // The same command again writes nothing.
    assert!(matches!(
        rig.push(PushKind::Note, cmd).await,
        Outcome::Duplicate { .. }
    ));
    assert_eq!(rig.sim.notes(&opp).len(), 1);
    assert_eq!(rig.sim.requests().len(), 1);
}

#[tokio::test]
async fn an_assessment_becomes_a_readable_note_and_a_secret_one() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let cmd = rig.command("assess-1", &opp, json!({"assessment": {
        "name": "Backend exercise", "score": 87, "maxScore": 100, "result": "passed",
        "responses": [{"question": "Design a rate limiter", "answer": "Token bucket", "score": 9, "maxScore": 10},
                      {"question": "Expected salary", "answer": "95k", "confidential": true}]
    }}));
    assert_eq!(
        done(&rig.push(PushKind::Note, cmd).await)["noteIds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let notes = rig.sim.notes(&opp);
    let text = |n: &Value| n.to_string();
    let open = notes
        .iter()
        .find(|n| n["secret"] == json!(false))
        .expect("an open note");
    let secret = notes
        .iter()
        .find(|n| n["secret"] == json!(true))
        .expect("a secret note");
    assert!(text(open).contains("87 / 100") && !text(open).contains("95k"));
    assert!(text(secret).contains("95k"));
}

#[tokio::test]
async fn every_kind_of_push_reaches_lever() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let stage = rig.sim.stages()[1].clone();
    assert!(
        done(
            &rig.push(
                PushKind::Stage,
                rig.command("s-1", &opp, json!({"stage": stage["text"]}))
            )
            .await
        )["stageId"]
            == stage["id"]
    );
    assert_eq!(rig.sim.opportunity(&opp).unwrap()["stage"], stage["id"]);

    let reason = rig.sim.archive_reasons()[0].clone();
    rig.push(
        PushKind::Archive,
        rig.command("a-1", &opp, json!({"reason": reason["text"]})),
    )
    .await;
    assert_eq!(
        rig.sim.opportunity(&opp).unwrap()["archived"]["reason"],
        reason["id"]
    );
    done(
        &rig.push(
            PushKind::Archive,
            rig.command("a-2", &opp, json!({"unarchive": true})),
        )
        .await,
    );
    assert!(rig.sim.opportunity(&opp).unwrap()["archived"].is_null());

    done(&rig.push(PushKind::TagsLinks, rig.command("t-1", &opp, json!({"addTags": ["sms-opt-in", "assessed"], "addLinks": ["https://assess.example/r/1"]}))).await);
    done(
        &rig.push(
            PushKind::TagsLinks,
            rig.command("t-2", &opp, json!({"removeTags": ["assessed"]})),
        )
        .await,
    );
    let o = rig.sim.opportunity(&opp).unwrap();
    assert_eq!(o["tags"], json!(["sms-opt-in"]));
    assert!(o["links"].to_string().contains("assess.example"));

    let template = rig
        .sim
        .feedback_templates()
        .into_iter()
        .find(|t| t["fields"].as_array().is_some_and(|f| !f.is_empty()))
        .unwrap();
    let fields: Vec<Value> = template["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["type"].as_str() {
            Some("score-system") => json!({"id": f["id"], "value": f["options"][0]["text"]}),
            _ => json!({"text": f["text"], "value": "Strong, structured answer."}),
        })
        .collect();
    let fb = done(
        &rig.push(
            PushKind::Feedback,
            rig.command(
                "f-1",
                &opp,
                json!({"templateId": template["id"], "fields": fields}),
            ),
        )
        .await,
    )
    .clone();
    assert_eq!(rig.sim.feedback(&opp).len(), 1);
    assert_eq!(rig.sim.feedback(&opp)[0]["id"], fb["feedbackId"]);

    let schedule = json!({"action": "schedule", "interviewId": "vendor-iv-1", "subject": "Technical interview", "start": now_ms() + 86_400_000,
        "durationMinutes": 60, "interviewers": [rig.owner], "timezone": "Europe/London", "externalUrl": "https://meet.example/x"});
    let created = done(
        &rig.push(
            PushKind::Interview,
            rig.command("i-1", &opp, schedule.clone()),
        )
        .await,
    )
    .clone();
    assert_eq!(rig.sim.panels(&opp).len(), 1);
    let mut update = schedule.clone();
    update["action"] = json!("update");
    update["durationMinutes"] = json!(90);
    let updated = done(
        &rig.push(PushKind::Interview, rig.command("i-2", &opp, update))
            .await,
    )
    .clone();
    assert_eq!(
        updated["panelId"], created["panelId"],
        "the update finds the panel through the vendor's interview id"
    );
    assert_eq!(
        rig.sim.panels(&opp)[0]["interviews"][0]["duration"],
        json!(90)
    );
    let cancel = json!({"action": "cancel", "interviewId": "vendor-iv-1"});
    assert_eq!(
        done(
            &rig.push(PushKind::Interview, rig.command("i-3", &opp, cancel))
                .await
        )["cancelled"],
        json!(true)
    );
    assert!(rig.sim.panels(&opp).is_empty());
}

/// Lever's panel PUT replaces the panel: an interview without its `id` is deleted and made again,
/// applications and the reminder left out are reset. An interview vendor schedules, moves the
/// interview twice and submits the interviewer's scorecard on it: one Lever interview throughout.
#[tokio::test]
async fn an_interview_keeps_its_lever_id_through_updates_and_gets_its_scorecard() {
    let rig = Rig::new().await;
    let postings: Vec<String> = rig
        .sim
        .postings()
        .iter()
        .filter(|p| p["confidentiality"] != "confidential")
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let opp = rig.sim.add_opportunity(NewOpportunity {
        name: "Ada Lovelace".into(),
        posting: Some(postings[0].clone()),
        ..Default::default()
    });
    let mut interview = json!({"action": "schedule", "interviewId": "karat-77", "subject": "Technical interview",
        "start": now_ms() + 86_400_000, "durationMinutes": 60, "interviewers": [rig.owner], "timezone": "UTC",
        "location": "Karat video room"});
    let created = done(
        &rig.push(
            PushKind::Interview,
            rig.command("iv-1", &opp, interview.clone()),
        )
        .await,
    )
    .clone();
    let panel = |rig: &Rig| rig.sim.panels(&opp)[0].clone();
    let lever_id = panel(&rig)["interviews"][0]["id"].clone();
    let applications = panel(&rig)["applications"].clone();
    assert_eq!(created["interviewIds"], json!([lever_id]));
    // The candidate applies to another posting meanwhile: a PUT without `applications` would
    // attach the panel to it too.
    rig.sim.apply_to(&opp, &postings[1]);
    interview["action"] = json!("update");
    // An update that leaves the location out keeps it (Lever's PUT would clear it).
    interview.as_object_mut().unwrap().remove("location");
    for (i, (field, value)) in [
        ("durationMinutes", json!(90)),
        ("start", json!(now_ms() + 2 * 86_400_000)),
    ]
    .into_iter()
    .enumerate()
    {
        interview[field] = value;
        let updated = done(
            &rig.push(
                PushKind::Interview,
                rig.command(&format!("iv-up-{i}"), &opp, interview.clone()),
            )
            .await,
        )
        .clone();
        assert_eq!(updated["interviewIds"], json!([lever_id]), "update {i}");
        assert_eq!(panel(&rig)["interviews"][0]["id"], lever_id, "update {i}");
        assert_eq!(panel(&rig)["applications"], applications, "update {i}");
    }
    assert_eq!(panel(&rig)["interviews"][0]["duration"], json!(90));
    assert_eq!(
        panel(&rig)["interviews"][0]["location"],
        json!("Karat video room")
    );

    let template = rig
        .sim
        .feedback_templates()
        .into_iter()
        .find(|t| t["id"] == lever_bridge_tests::simulator::SIM_TEMPLATE)
        .unwrap();
    let rating = &template["fields"][0];
    let scorecard = json!({"templateId": template["id"], "interviewId": "karat-77",
        "fields": [{"id": rating["id"], "value": rating["options"][0]["text"]}]});
    let fb = done(
        &rig.push(
            PushKind::Feedback,
            rig.command("sc-1", &opp, scorecard.clone()),
        )
        .await,
    )
    .clone();
    assert_eq!(fb["leverInterviewId"], lever_id);
    let form = rig.sim.feedback(&opp)[0].clone();
    assert_eq!(
        (&form["panel"], &form["interview"]),
        (&created["panelId"], &lever_id),
        "the scorecard is on the interview"
    );
    // Lever's ids work as well; a vendor id never scheduled is a clear failure.
    let mut by_lever = scorecard.clone();
    by_lever.as_object_mut().unwrap().remove("interviewId");
    by_lever["panelId"] = created["panelId"].clone();
    by_lever["leverInterviewId"] = lever_id.clone();
    done(
        &rig.push(PushKind::Feedback, rig.command("sc-2", &opp, by_lever))
            .await,
    );
    assert_eq!(rig.sim.feedback(&opp)[1]["interview"], lever_id);
    let mut unknown = scorecard;
    unknown["interviewId"] = json!("never-scheduled");
    match rig
        .push(PushKind::Feedback, rig.command("sc-3", &opp, unknown))
        .await
    {
        Outcome::Failed { error } => assert!(error.contains("schedule it first"), "{error}"),
        other => panic!("{other:?}"),
    }
}

/// Each value is checked against its field's type before Lever is asked, and a wrong one names
/// the field and what it takes.
#[tokio::test]
async fn scorecard_values_are_checked_against_each_fields_type() {
    use lever_bridge_tests::simulator::SIM_TEMPLATE;
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let good = json!([
        {"text": "Rating", "value": "3 - hire"},
        {"text": "Overall score", "value": 3},
        {"text": "Would hire again", "value": true},
        {"text": "Skills shown", "value": ["Rust", "sql"]},
        {"text": "Assessed on", "value": 1_767_225_600_000i64},
        {"text": "Recommended next step", "value": "Advance"},
    ]);
    done(
        &rig.push(
            PushKind::Feedback,
            rig.command(
                "v-ok",
                &opp,
                json!({"templateId": SIM_TEMPLATE, "fields": good}),
            ),
        )
        .await,
    );
    let values: Vec<Value> = rig.sim.feedback(&opp)[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["value"].clone())
        .collect();
    assert_eq!(&values[..2], [json!("3 - Hire"), json!(3)]);
    assert_eq!(values[4], json!("yes"));
    assert_eq!(values[7], json!(["Rust", "SQL"]));
    let requests = rig.sim.requests().len();
    for (i, (field, value, says)) in [
        (
            "Overall score",
            json!(5),
            "field `Overall score` (score) takes an integer from 1 to 4, not 5",
        ),
        (
            "Would hire again",
            json!("maybe"),
            "takes \"yes\" or \"no\"",
        ),
        (
            "Skills shown",
            json!("Rust"),
            "takes an array of: Rust, SQL, Distributed systems",
        ),
        (
            "Assessed on",
            json!("2026-01-01"),
            "takes a date in ms since the epoch",
        ),
        (
            "Rating",
            json!(4),
            "takes one of: 4 - Strong Hire, 3 - Hire",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let fields =
            json!([{"text": "Rating", "value": "3 - Hire"}, {"text": field, "value": value}]);
        let cmd = rig.command(
            &format!("v-bad-{i}"),
            &opp,
            json!({"templateId": SIM_TEMPLATE, "fields": fields}),
        );
        match rig.push(PushKind::Feedback, cmd).await {
            Outcome::Failed { error } => assert!(error.contains(says), "{field}: {error}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let posts = rig.sim.requests()[requests..]
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 0, "nothing wrong reaches Lever");
}

/// An assessment vendor's report: put into the upload bucket, named in a command, streamed into
/// Lever once (even when the first attempt's answer is lost), and refused with the reason when the
/// object is missing, another tenant's, too large or not a permitted type.
#[tokio::test]
async fn a_report_file_goes_from_the_bucket_into_lever_once() {
    use sha2::Digest;
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let report: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let key = format!("{}/reports/karat-77.pdf", rig.tenant);
    rig.upload(&key, report.clone()).await;
    let cmd = rig.command(
        "f-1",
        &opp,
        json!({"objectKey": key, "fileName": "Technical interview report.pdf"}),
    );
    let done_once = done(&rig.push(PushKind::File, cmd.clone()).await).clone();
    let files = rig.sim.files(&opp);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["id"], done_once["fileId"]);
    let tagged = |name: &str, cmd: &str| lever_bridge::files::tagged_name(name, &rig.tenant, cmd);
    assert_eq!(
        files[0]["name"],
        tagged("Technical interview report.pdf", "f-1")
    );
    assert_eq!(files[0]["size"], json!(report.len()));
    assert_eq!(
        files[0]["sha256"],
        hex::encode(sha2::Sha256::digest(&report)),
        "the bytes arrive whole"
    );
    assert_eq!(files[0]["user"], json!(rig.owner));
    assert!(matches!(
        rig.push(PushKind::File, cmd).await,
        Outcome::Duplicate { .. }
    ));

    // Lever stores the file but the answer is lost: the retry finds it by its tagged name.
    let second = format!("{}/reports/second.pdf", rig.tenant);
    rig.upload(&second, vec![7; 4096]).await;
    rig.sim.push_fault(Fault::DropAfterApply, 1);
    let cmd = rig.command("f-2", &opp, json!({"objectKey": second}));
    assert!(
        matches!(
            rig.push(PushKind::File, cmd.clone()).await,
            Outcome::Retry { .. }
        ),
        "the outcome is unknown"
    );
    rig.clock.advance(120_000);
    let again = done(&rig.push(PushKind::File, cmd).await).clone();
    let files = rig.sim.files(&opp);
    assert_eq!(files.len(), 2, "one file per command: {files:?}");
    assert_eq!(again["fileId"], files[1]["id"]);
    assert_eq!(files[1]["name"], tagged("second.pdf", "f-2"));

    // Lever's "File took too long to upload" (408): nothing stored, tried again later.
    let slow = format!("{}/reports/slow.pdf", rig.tenant);
    rig.upload(&slow, vec![3; 2048]).await;
    rig.sim.push_fault(Fault::Status(408), 1);
    let cmd = rig.command("f-3", &opp, json!({"objectKey": slow}));
    assert!(matches!(
        rig.push(PushKind::File, cmd.clone()).await,
        Outcome::Retry { .. }
    ));
    done(&rig.push(PushKind::File, cmd).await);
    assert_eq!(rig.sim.files(&opp).len(), 3);

    let requests = rig.sim.requests().len();
    let big = format!("{}/big.pdf", rig.tenant);
    rig.upload(&big, vec![0; 31 * 1024 * 1024]).await;
    let other = format!("someone-else/{}.pdf", rig.tenant);
    rig.upload(&other, vec![1; 10]).await;
    let exe = format!("{}/setup.exe", rig.tenant);
    rig.upload(&exe, vec![1; 10]).await;
    let cases = [
        (
            format!("{}/missing.pdf", rig.tenant),
            format!(
                "no object `{}/missing.pdf` in the upload bucket",
                rig.tenant
            ),
        ),
        (
            big.clone(),
            format!("object `{big}` is 32505856 bytes; Lever takes files of at most"),
        ),
        (
            other.clone(),
            format!("object key `{other}` is not under the tenant's prefix"),
        ),
        (exe, "`setup.exe` is not a permitted type".to_string()),
    ];
    for (i, (key, says)) in cases.into_iter().enumerate() {
        let cmd = rig.command(&format!("f-bad-{i}"), &opp, json!({"objectKey": key}));
        match rig.push(PushKind::File, cmd).await {
            Outcome::Failed { error } => assert!(error.contains(&says), "{error}"),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(
        rig.sim.requests().len(),
        requests,
        "nothing wrong reaches Lever"
    );
}

/// Two commands attach the same report. Before, a retry whose last attempt's answer was lost
/// looked for the file by name and size, and adopted the other command's upload: its own file
/// never reached Lever. Each command's file now carries its reference in its name.
#[tokio::test]
async fn two_commands_with_one_report_each_attach_it_once() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let key = format!("{}/reports/summary.pdf", rig.tenant);
    rig.upload(&key, vec![5; 10_000]).await;
    let first = done(
        &rig.push(
            PushKind::File,
            rig.command("same-1", &opp, json!({"objectKey": key})),
        )
        .await,
    )
    .clone();
    // The second command's first attempt is cut off before Lever stores anything: its outcome is
    // unknown, so its retry looks first.
    rig.sim.push_fault(Fault::Drop, 1);
    let second = rig.command("same-2", &opp, json!({"objectKey": key}));
    assert!(matches!(
        rig.push(PushKind::File, second.clone()).await,
        Outcome::Retry { .. }
    ));
    rig.clock.advance(120_000);
    let second = done(&rig.push(PushKind::File, second).await).clone();
    assert_ne!(second["fileId"], first["fileId"], "its own upload");
    // A third whose upload Lever stored but whose answer was lost: its retry uploads nothing.
    rig.sim.push_fault(Fault::DropAfterApply, 1);
    let third = rig.command("same-3", &opp, json!({"objectKey": key}));
    assert!(matches!(
        rig.push(PushKind::File, third.clone()).await,
        Outcome::Retry { .. }
    ));
    rig.clock.advance(120_000);
    let third = done(&rig.push(PushKind::File, third).await).clone();
    let files = rig.sim.files(&opp);
    assert_eq!(files.len(), 3, "one file per command: {files:?}");
    let ids: Vec<&Value> = files.iter().map(|f| &f["id"]).collect();
    assert_eq!(ids, [&first["fileId"], &second["fileId"], &third["fileId"]]);
}

/// An upload bucket that answers 403 (a role or a bucket policy that denies the read) is a
/// permanent failure: the command ends `pushFailed` with S3's reason at once instead of being
/// retried ten times into the dead-letter queue.
#[tokio::test]
async fn an_upload_bucket_that_refuses_fails_the_command_for_good() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    // S3 as a bucket policy denying the read answers it: 403 to every request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::FORBIDDEN,
                [("x-amz-request-id", "denied")],
            )
        });
        axum::serve(listener, app).await.unwrap();
    });
    let aws = aws().await;
    let denied = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .endpoint_url(format!("http://{addr}"))
            .force_path_style(true)
            .build(),
    );
    let mut pusher = Pusher::new(
        PushKind::File,
        rig.lever.clone(),
        rig.store.clone(),
        rig.secrets.clone(),
        rig.clock.clone(),
    );
    pusher.uploads = Some(lever_bridge::files::Uploads::new(denied, &rig.bucket));
    let key = format!("{}/reports/r.pdf", rig.tenant);
    let cmd = rig.command("denied-1", &opp, json!({"objectKey": key}));
    match pusher
        .handle(cmd, Instant::now() + Duration::from_secs(30))
        .await
    {
        Outcome::Failed { error } => assert!(
            error.contains(&format!("the upload bucket refused object `{key}` (403)")),
            "{error}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(rig.sim.files(&opp).is_empty());
}

#[tokio::test]
async fn permanent_failures_are_recorded_with_levers_reason_and_not_retried() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let cases = [
        (PushKind::Note, rig.command("p-1", "00000000-0000-0000-0000-000000000000", json!({"text": "x"})), "404"),
        (PushKind::Stage, rig.command("p-2", &opp, json!({"stage": "No such stage"})), "no stage named"),
        (PushKind::Stage, rig.command("p-3", &opp, json!({"stageId": "not-a-stage"})), "not found"),
        (PushKind::Feedback, rig.command("p-4", &opp, json!({"templateId": "nope", "fields": [{"text": "x", "value": 1}]})), "no feedback template"),
        (PushKind::Interview, rig.command("p-5", &opp, json!({"action": "update", "interviewId": "never", "start": 1, "durationMinutes": 30, "interviewers": [rig.owner]})), "schedule it first"),
        (PushKind::Note, rig.command("p-6", &opp, json!({"text": "x", "extra": 1})), "`extra` is not a field here"),
        (PushKind::Note, rig.command("p-7", &opp, json!({"assessment": {"name": "x", "score": "high"}})), "`assessment.score` must be a number, not a string"),
    ];
    for (kind, cmd, says) in cases {
        let id = cmd["commandId"].as_str().unwrap().to_string();
        match rig.push(kind, cmd.clone()).await {
            Outcome::Failed { error } => assert!(error.contains(says), "{id}: {error}"),
            other => panic!("{id}: {other:?}"),
        }
        let record = rig
            .store
            .command(&rig.tenant, &id)
            .await
            .unwrap()
            .expect("recorded");
        assert!(record.error.unwrap().contains(says));
        assert!(
            matches!(rig.push(kind, cmd).await, Outcome::Duplicate { .. }),
            "{id} is not tried again"
        );
    }
    let unreadable = rig.push(PushKind::Note, json!({"text": "no ids"})).await;
    match &unreadable {
        Outcome::Invalid { error } => assert!(error.contains("`commandId` is required"), "{error}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !unreadable.redeliver(),
        "never delivered again into the dead-letter queue"
    );
    let stats = rig.store.tenant_stats(&rig.tenant).await.unwrap();
    assert_eq!((stats.pushes_done, stats.pushes_failed), (0, 7));
    assert!(
        stats
            .last_push_error
            .unwrap()
            .contains("`assessment.score` must be a number, not a string")
    );
}

#[tokio::test]
async fn a_missing_permission_fails_with_levers_403() {
    let rig = Rig::with(
        SimConfig::default(),
        RetryPolicy::default(),
        KeyPerms::only(&["opportunities:read", "notes:read"]),
    )
    .await;
    let opp = rig.opportunity();
    match rig
        .push(
            PushKind::Note,
            rig.command("n-403", &opp, json!({"text": "x"})),
        )
        .await
    {
        Outcome::Failed { error } => assert!(error.contains("403"), "{error}"),
        other => panic!("{other:?}"),
    }
    assert!(rig.sim.notes(&opp).is_empty());
}

#[tokio::test]
async fn a_rejected_key_disconnects_the_tenant_and_parks_its_commands() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    rig.sim.remove_key(&rig.key);
    assert!(matches!(
        rig.push(
            PushKind::Note,
            rig.command("k-1", &opp, json!({"text": "first"}))
        )
        .await,
        Outcome::Parked { .. }
    ));
    let tenant = rig.store.tenant(&rig.tenant).await.unwrap().unwrap();
    assert_eq!(tenant.status, TenantStatus::Disconnected);
    assert!(tenant.status_reason.unwrap().contains("401"));
    // The tenant record is cached for a minute; past it, commands park without calling Lever.
    rig.clock.advance(61_000);
    let before = rig.sim.requests().len();
    assert!(matches!(
        rig.push(
            PushKind::Stage,
            rig.command("k-2", &opp, json!({"stageId": "lead-new"}))
        )
        .await,
        Outcome::Parked { .. }
    ));
    assert_eq!(
        rig.sim.requests().len(),
        before,
        "a disconnected tenant's commands do not reach Lever"
    );
    let parked = rig.store.parked(&rig.tenant).await.unwrap();
    assert_eq!(parked.len(), 2, "none is dropped");
    assert_eq!(
        rig.store
            .tenant_stats(&rig.tenant)
            .await
            .unwrap()
            .pushes_parked,
        2
    );

    // Reconnected: replaying the parked commands carries them out once and clears them.
    rig.sim.add_key(&rig.key, KeyPerms::all());
    rig.store
        .put_tenant(&tenant_record(
            &rig.tenant,
            &rig.sim.base_url(),
            Some(&rig.owner),
        ))
        .await
        .unwrap();
    rig.clock.advance(61_000);
    for p in parked {
        done(&rig.push(PushKind::parse(&p.kind).unwrap(), p.command).await);
    }
    assert!(rig.store.parked(&rig.tenant).await.unwrap().is_empty());
    assert_eq!(rig.sim.notes(&opp).len(), 1);
}

#[tokio::test]
async fn a_timeout_after_lever_wrote_is_reconciled_into_one_note() {
    let retry = RetryPolicy {
        timeout: Duration::from_millis(400),
        ..RetryPolicy::default()
    };
    let rig = Rig::with(SimConfig::default(), retry, KeyPerms::all()).await;
    let opp = rig.opportunity();
    rig.sim
        .push_fault(Fault::DelayAfterApply(Duration::from_millis(1500)), 1);
    let cmd = rig.command(
        "slow-1",
        &opp,
        json!({"text": "Reached Lever, answer lost"}),
    );
    assert!(
        matches!(
            rig.push(PushKind::Note, cmd.clone()).await,
            Outcome::Retry { .. }
        ),
        "the outcome is unknown"
    );
    assert_eq!(rig.sim.notes(&opp).len(), 1, "Lever did write it");
    // The queue redelivers: the retry looks first and finds it.
    let result = done(&rig.push(PushKind::Note, cmd).await).clone();
    assert_eq!(rig.sim.notes(&opp).len(), 1, "still exactly one note");
    assert_eq!(result["noteIds"][0], rig.sim.notes(&opp)[0]["id"]);
}

#[tokio::test]
async fn a_crash_after_the_request_reached_lever_still_gives_one_note() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let cmd = rig.command(
        "crash-1",
        &opp,
        json!({"text": "Written, then the instance died"}),
    );
    // The first attempt claims the command and sends the note, then dies before recording anything.
    let first = rig
        .store
        .claim_command(&rig.tenant, "crash-1", "note", rig.clock.now_ms())
        .await
        .unwrap();
    assert!(matches!(
        first,
        lever_bridge::store::CommandClaim::Go {
            uncertain: false,
            ..
        }
    ));
    let account = Account {
        base_url: rig.sim.base_url(),
        auth: Auth::ApiKey(Redacted::new(&rig.key)),
    };
    let api = HttpLever::new(RateLimiter::new(10.0, 20), RetryPolicy::default());
    let lever = Lever::new(&api, &account, Instant::now() + Duration::from_secs(10));
    lever
        .create_note(
            &opp,
            "Written, then the instance died\n\n[ref:crash-1]",
            false,
            Some(&rig.owner),
        )
        .await
        .unwrap();
    // A redelivery inside the lease waits; after it, the retry reconciles.
    assert!(matches!(
        rig.push(PushKind::Note, cmd.clone()).await,
        Outcome::Retry { .. }
    ));
    rig.clock.advance(lever_bridge::store::COMMAND_LEASE_MS + 1);
    done(&rig.push(PushKind::Note, cmd).await);
    assert_eq!(rig.sim.notes(&opp).len(), 1);
}

/// 500 commands of mixed kinds against a Lever that fails a fifth of requests; some commands are
/// delivered twice, some concurrently. Redelivered until none is left, as SQS would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_commands_through_faults_land_exactly_once() {
    let _alone = TIMING.lock().await;
    let retry = RetryPolicy {
        timeout: Duration::from_millis(800),
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        max_attempts: 4,
    };
    let config = SimConfig {
        rate_per_sec: 1000.0,
        burst: 1000,
        ..SimConfig::default()
    };
    let rig = Arc::new(Rig::with(config, retry, KeyPerms::all()).await);
    let opps: Vec<String> = (0..25).map(|_| rig.opportunity()).collect();
    let stages: Vec<Value> = rig.sim.stages();
    let mut commands: Vec<(PushKind, Value)> = Vec::new();
    for i in 0..500 {
        let opp = &opps[i % opps.len()];
        let id = format!("mix-{i}");
        let kind = [
            PushKind::Note,
            PushKind::Note,
            PushKind::Stage,
            PushKind::TagsLinks,
            PushKind::Interview,
        ][i % 5];
        let fields = fields_of(kind, i, &stages, &rig.owner);
        commands.push((kind, rig.command(&id, opp, fields)));
    }
    // Every tenth is delivered twice at once; every seventh again later.
    let mut deliveries: Vec<(PushKind, Value)> = commands.clone();
    deliveries.extend(commands.iter().step_by(10).cloned());
    rig.sim.set_random_faults(
        0.2,
        vec![
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(429),
            Fault::Drop,
            Fault::DelayAfterApply(Duration::from_millis(1200)),
            Fault::DropAfterApply,
        ],
        7,
    );
    let mut queue = deliveries;
    for round in 0.. {
        assert!(
            round < 40,
            "commands still pending after 40 redelivery rounds"
        );
        let results = join_all(queue.iter().cloned().map(|(kind, cmd)| {
            let rig = rig.clone();
            tokio::spawn(async move { (kind, cmd.clone(), rig.push(kind, cmd).await) })
        }))
        .await;
        queue = results
            .into_iter()
            .map(Result::unwrap)
            .filter(|(_, _, o)| o.redeliver())
            .map(|(k, c, _)| (k, c))
            .collect();
        if queue.is_empty() {
            break;
        }
        // Leases of attempts that died must run out before a redelivery can take over.
        rig.clock.advance(lever_bridge::store::COMMAND_LEASE_MS + 1);
        if round % 7 == 6 {
            queue.extend(commands.iter().step_by(7).cloned());
        }
    }
    rig.sim.set_random_faults(0.0, Vec::new(), 0);
    for (kind, cmd) in &commands {
        let id = cmd["commandId"].as_str().unwrap();
        let opp = cmd["opportunityId"].as_str().unwrap();
        let record = rig
            .store
            .command(&rig.tenant, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(
            record.state,
            lever_bridge::store::CommandState::Done,
            "{id}: {record:?}"
        );
        match kind {
            PushKind::Note => {
                let marker = format!("[ref:{id}]");
                let n = rig
                    .sim
                    .notes(opp)
                    .iter()
                    .filter(|n| n.to_string().contains(&marker))
                    .count();
                assert_eq!(n, 1, "{id}: {n} notes in Lever");
            }
            PushKind::Interview => {
                let marker = format!("[ref:{}]", cmd["interviewId"].as_str().unwrap());
                let n = rig
                    .sim
                    .panels(opp)
                    .iter()
                    .filter(|p| p.to_string().contains(&marker))
                    .count();
                assert_eq!(n, 1, "{id}: {n} panels in Lever");
            }
            PushKind::TagsLinks => {
                let tag = cmd["addTags"][0].as_str().unwrap();
                assert!(
                    rig.sim.opportunity(opp).unwrap()["tags"]
                        .to_string()
                        .contains(tag),
                    "{id}"
                );
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn sustained_pushes_on_one_key_stay_under_levers_rate() {
    // Timing-sensitive: not while the fault storm keeps every core busy.
    let _alone = TIMING.lock().await;
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    rig.sim.clear_requests();
    let started = Instant::now();
    let results = join_all((0..120).map(|i| {
        rig.push(
            PushKind::Note,
            rig.command(&format!("rate-{i}"), &opp, json!({"text": format!("n{i}")})),
        )
    }))
    .await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(|o| matches!(o, Outcome::Done { .. })));
    let requests = rig.sim.requests();
    let limited = requests.iter().filter(|r| r.status == Some(429)).count();
    assert!(
        limited * 100 <= requests.len(),
        "{limited} of {} requests were 429",
        requests.len()
    );
    // A burst, then 10/s: 120 requests need about 10 s; pacing must not be much slower.
    assert!(
        elapsed >= Duration::from_millis(9800) && elapsed < Duration::from_secs(14),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn the_client_pages_through_more_than_a_thousand_records() {
    let sim = Simulator::start(SimConfig {
        rate_per_sec: 1000.0,
        burst: 1000,
        ..SimConfig::default()
    })
    .await;
    let key = random_hex(16);
    sim.add_key(&key, KeyPerms::all());
    let ids = sim.add_opportunities(1050);
    let account = Account {
        base_url: sim.base_url(),
        auth: Auth::ApiKey(Redacted::new(&key)),
    };
    let api = HttpLever::new(RateLimiter::new(1000.0, 1000), RetryPolicy::default());
    let lever = Lever::new(&api, &account, Instant::now() + Duration::from_secs(60));
    let mut pages =
        lever.pages(LeverRequest::get("/opportunities").query("confidentiality", "all"));
    let mut seen = std::collections::HashSet::new();
    let mut count = 0;
    while let Some(page) = pages
        .next_page::<lever_bridge::lever::models::Opportunity>()
        .await
        .unwrap()
    {
        count += page.len();
        seen.extend(page.into_iter().map(|o| o.id));
    }
    assert_eq!(count, seen.len(), "no record twice");
    assert!(ids.iter().all(|id| seen.contains(id)), "every record once");
}

#[tokio::test]
async fn an_sqs_batch_reports_only_the_messages_to_redeliver() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    rig.sim.push_fault(Fault::Status(503), 20);
    let record = |id: &str, body: String| json!({"messageId": id, "receiptHandle": "h", "body": body, "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:push-note", "awsRegion": "us-east-1"});
    let event = json!({"Records": [
        record("m-ok", rig.command("b-1", &opp, json!({"text": "one"})).to_string()),
        record("m-bad", "not json".into()),
    ]});
    // The first Lever call meets a 503 storm and gives up within the deadline.
    let response = handle_event(
        rig.pusher(PushKind::Note),
        event,
        Instant::now() + Duration::from_secs(3),
    )
    .await
    .unwrap();
    let failures: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert!(failures.contains(&"m-bad"), "{response}");
    assert!(
        failures.contains(&"m-ok"),
        "the 503 storm outlasted the deadline: {response}"
    );
    rig.sim.clear_faults();
    let again = json!({"Records": [record("m-ok", rig.command("b-1", &opp, json!({"text": "one"})).to_string())]});
    let response = handle_event(
        rig.pusher(PushKind::Note),
        again,
        Instant::now() + Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    // A direct invocation answers the outcome.
    let direct = handle_event(
        rig.pusher(PushKind::Note),
        rig.command("b-1", &opp, json!({"text": "one"})),
        Instant::now() + Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(direct["status"], "duplicate");
    assert_eq!(rig.sim.notes(&opp).len(), 1);
}

/// An SQS event the function cannot read (a record without its message id) used to be answered
/// `{"error": …}`, which Lambda takes for a batch handled in full: every message in it was deleted
/// unread. It now fails the invocation, so the queue delivers the batch again.
#[tokio::test]
async fn an_sqs_event_that_cannot_be_read_fails_the_whole_batch() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    let body = rig.command("u-1", &opp, json!({"text": "one"})).to_string();
    let event = json!({"Records": [{"messageId": 42, "body": body, "eventSource": "aws:sqs"}]});
    let answer = handle_event(
        rig.pusher(PushKind::Note),
        event,
        Instant::now() + Duration::from_secs(5),
    )
    .await;
    let err = answer.expect_err("an unreadable batch fails");
    assert!(
        err.to_string().starts_with("not a readable SQS event"),
        "{err}"
    );
    assert!(rig.sim.notes(&opp).is_empty());
}

#[tokio::test]
async fn the_deadline_bounds_retries() {
    let rig = Rig::new().await;
    let opp = rig.opportunity();
    rig.sim.push_fault(Fault::Status(503), 1000);
    let started = Instant::now();
    let outcome = rig
        .pusher(PushKind::Stage)
        .handle(
            rig.command("d-1", &opp, json!({"stageId": "lead-new"})),
            Instant::now() + Duration::from_millis(1500),
        )
        .await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

/// Lever refuses the key: 30 commands of four kinds are parked. The customer's admin puts a new
/// key: every parked command goes back to its kind's queue in the order it was parked and lands in
/// Lever once, although the push instances still hold the old key and the disconnected record in
/// their caches; the parked list, the count and the status follow.
#[tokio::test]
async fn parked_commands_come_back_once_when_the_tenant_reconnects() {
    let rig = Rig::new().await;
    let (admin, queues) = rig.admin();
    let opps: Vec<String> = (0..5).map(|_| rig.opportunity()).collect();
    let stages = rig.sim.stages();
    rig.sim.remove_key(&rig.key);
    let mut sent = Vec::new();
    for i in 0..30 {
        let opp = &opps[i % opps.len()];
        let kind = [
            PushKind::Note,
            PushKind::Stage,
            PushKind::TagsLinks,
            PushKind::Interview,
        ][i % 4];
        let fields = fields_of(kind, i, &stages, &rig.owner);
        let cmd = rig.command(&format!("r-{i:02}"), opp, fields);
        let outcome = rig.push(kind, cmd.clone()).await;
        assert!(
            matches!(outcome, Outcome::Parked { .. }),
            "{i}: {outcome:?}"
        );
        sent.push((kind, cmd));
        rig.clock.advance(1);
    }
    assert_eq!(rig.store.parked(&rig.tenant).await.unwrap().len(), 30);
    let stats = rig.store.tenant_stats(&rig.tenant).await.unwrap();
    assert_eq!(stats.pushes_parked, 30);
    let written = |sim: &Simulator| {
        sim.requests()
            .iter()
            .filter(|r| r.method != "GET" && r.status.is_some_and(|s| s < 300))
            .count()
    };
    assert_eq!(written(&rig.sim), 0, "nothing reached Lever");

    let key = random_hex(16);
    rig.sim.add_key(&key, KeyPerms::all());
    let path = format!("/admin/tenants/{}/apiKey", rig.tenant);
    let (status, v) = call(&admin, "PUT", &path, json!({"apiKey": key})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["parkedReplayed"], 30, "{v}");
    let queued = queues.take();
    assert_eq!(queued.len(), 30);
    for kind in PushKind::ALL {
        let expected: Vec<&Value> = sent
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, c)| c)
            .collect();
        let got: Vec<&Value> = queued
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            got, expected,
            "{kind:?}: each kind's commands in the order they were parked"
        );
    }
    // The queues deliver them; some twice, as SQS may; the first one meets a Lever hiccup and
    // comes back after its lease (its parked entry must still go when it is done).
    let mut deliveries = queued.clone();
    deliveries.extend(queued.iter().step_by(8).cloned());
    rig.sim.push_fault(Fault::Status(500), 1);
    let mut again = Vec::new();
    for (kind, cmd) in deliveries {
        match rig.push(kind, cmd.clone()).await {
            Outcome::Done { .. } | Outcome::Duplicate { .. } => {}
            Outcome::Retry { .. } => again.push((kind, cmd)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(again.len(), 1, "one delivery met the fault");
    rig.clock.advance(lever_bridge::store::COMMAND_LEASE_MS + 1);
    for (kind, cmd) in again {
        let outcome = rig.push(kind, cmd).await;
        assert!(
            matches!(outcome, Outcome::Done { .. } | Outcome::Duplicate { .. }),
            "{outcome:?}"
        );
    }
    for (kind, cmd) in &sent {
        let id = cmd["commandId"].as_str().unwrap();
        let record = rig.store.command(&rig.tenant, id).await.unwrap().unwrap();
        assert_eq!(
            record.state,
            lever_bridge::store::CommandState::Done,
            "{kind:?} {id}"
        );
    }
    let notes: usize = opps.iter().map(|o| rig.sim.notes(o).len()).sum();
    assert_eq!(notes, 8, "each note once");
    assert!(rig.store.parked(&rig.tenant).await.unwrap().is_empty());
    assert_eq!(
        rig.store
            .tenant_stats(&rig.tenant)
            .await
            .unwrap()
            .pushes_parked,
        0
    );
    let tenant = rig.store.tenant(&rig.tenant).await.unwrap().unwrap();
    assert_eq!(tenant.status, TenantStatus::Connected);
}

/// A parked command waits at most the configured days: the hourly check fails it with the reason
/// (and a `pushFailed` for the vendor) after counting it near expiry for two days; a tenant deleted
/// meanwhile fails the rest. A connection test that passes again replays them; the route replays
/// only a connected tenant's.
#[tokio::test]
async fn parked_commands_expire_replay_by_test_and_fail_with_their_tenant() {
    use lever_bridge::push::parked::expire;
    const DAY: i64 = 24 * 3600 * 1000;
    let rig = Rig::new().await;
    let (admin, queues) = rig.admin();
    let opp = rig.opportunity();
    rig.sim.remove_key(&rig.key);
    for i in 0..3 {
        let cmd = rig.command(&format!("old-{i}"), &opp, json!({"text": "x"}));
        assert!(matches!(
            rig.push(PushKind::Note, cmd).await,
            Outcome::Parked { .. }
        ));
    }
    rig.clock.advance(12 * DAY + 1);
    let cmd = rig.command("young", &opp, json!({"text": "y"}));
    assert!(matches!(
        rig.push(PushKind::Note, cmd).await,
        Outcome::Parked { .. }
    ));
    let e = expire(&rig.store, &rig.tenant, 14, rig.clock.now_ms())
        .await
        .unwrap();
    assert_eq!((e.expired, e.near_expiry), (0, 3));
    let list = format!("/admin/tenants/{}/parked", rig.tenant);
    let (status, v) = call(&admin, "GET", &list, Value::Null).await;
    assert_eq!((status, v["count"].as_u64()), (200, Some(4)), "{v}");
    assert_eq!(v["parked"][0]["commandId"], "old-0", "oldest first: {v}");
    let (status, v) = call(&admin, "POST", &format!("{list}/replay"), Value::Null).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (409, Some("tenant_disconnected")),
        "{v}"
    );

    rig.clock.advance(2 * DAY);
    let e = expire(&rig.store, &rig.tenant, 14, rig.clock.now_ms())
        .await
        .unwrap();
    assert_eq!((e.expired, e.near_expiry), (3, 0));
    let record = rig
        .store
        .command(&rig.tenant, "old-0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, lever_bridge::store::CommandState::Failed);
    assert!(record.error.unwrap().contains("more than 14 days"));
    assert_eq!(rig.store.parked(&rig.tenant).await.unwrap().len(), 1);

    // Lever takes the key again (a permission restored): the passing test replays the rest.
    rig.sim.add_key(&rig.key, KeyPerms::all());
    let (status, v) = call(
        &admin,
        "POST",
        &format!("/admin/tenants/{}/test", rig.tenant),
        Value::Null,
    )
    .await;
    assert_eq!((status, v["result"].as_str()), (200, Some("ok")), "{v}");
    assert_eq!(v["parkedReplayed"], 1, "{v}");
    assert_eq!(queues.take().len(), 1);

    // Parked again, then the tenant is deleted: the vendor is told it failed.
    rig.sim.remove_key(&rig.key);
    rig.clock.advance(61_000);
    let cmd = rig.command("last", &opp, json!({"text": "z"}));
    assert!(matches!(
        rig.push(PushKind::Note, cmd).await,
        Outcome::Parked { .. }
    ));
    let (status, v) = call(
        &admin,
        "DELETE",
        &format!("/admin/tenants/{}", rig.tenant),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["parkedFailed"], 2,
        "the replayed one not yet run and the new one: {v}"
    );
}
