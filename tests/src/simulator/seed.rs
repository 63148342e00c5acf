//! The account every simulator starts with, loaded at run time from the recorded fixtures
//! (`tests/fixtures/lever/`). What the recordings lack and the simulator
//! must be able to show (a deactivated user, a confidential posting, a template with every field
//! type) is added here, marked synthetic.

use super::NewOpportunity;
use super::paging::Cursors;
use super::rng::SplitMix64;
use super::state::{State, application_json};
use serde_json::{Value, json};
use std::collections::HashMap;

const FIXTURES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/lever/");

/// Synthetic ids, fixed so that tests and the local stack can name them.
pub const DEACTIVATED_USER: &str = "5f0d2c1e-7a4b-4c3e-9d21-8b6f0e1a2c3d";
pub const CONFIDENTIAL_POSTING: &str = "c0f1d3e2-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
pub const SIM_TEMPLATE: &str = "b7c1e0d2-5a8f-4e3b-9c6d-2f1a0e9b8c7d";
/// The recorded opportunity (api_GET_opportunity_single_real-recorded) and its UI-made panel.
pub const RECORDED_OPPORTUNITY: &str = "6408dc54-7015-4e5b-8d60-23afff2b1efc";
pub const RECORDED_PANEL: &str = "027d1217-72e7-4fbb-83fd-3022aa25d0c4";

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(FIXTURES_DIR).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "lever simulator: cannot read fixture {}: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "lever simulator: fixture {} is not JSON: {e}",
            path.display()
        )
    })
}

fn list(name: &str) -> Vec<Value> {
    fixture(name)["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn single(name: &str) -> Value {
    fixture(name)["data"].clone()
}

pub(crate) fn seeded_state() -> State {
    let mut users = list("api_GET_users_list_real-recorded_nango.json");
    let seed_user = single("api_GET_user_single_real-recorded_nango.json");
    if !users.iter().any(|u| u["id"] == seed_user["id"]) {
        users.push(seed_user);
    }
    // Synthetic: the recordings have no deactivated user (shape of the real user records).
    users.push(json!({
        "id": DEACTIVATED_USER, "name": "Example Person 371", "username": "former",
        "email": "person27@example.com", "accessRole": "interviewer", "photo": null,
        "createdAt": 1_690_000_000_000i64, "deactivatedAt": 1_730_000_000_000i64,
        "externalDirectoryId": null, "linkedContactIds": null, "jobTitle": null, "managerId": null,
    }));

    let mut postings = list("api_GET_postings_list_real-recorded_nango.json");
    // Synthetic: a confidential posting, made from a recorded one.
    let mut secret = postings
        .last()
        .cloned()
        .expect("the postings fixture has postings");
    secret["id"] = json!(CONFIDENTIAL_POSTING);
    secret["text"] = json!("Chief of Staff (confidential search)");
    secret["confidentiality"] = json!("confidential");
    secret["state"] = json!("internal");
    secret["urls"] = json!({
        "list": "https://jobs.lever.co/nango",
        "show": format!("https://jobs.lever.co/nango/{CONFIDENTIAL_POSTING}"),
        "apply": format!("https://jobs.lever.co/nango/{CONFIDENTIAL_POSTING}/apply"),
    });
    postings.push(secret);

    let mut templates = list("api_GET_feedback_templates_list_real-scrubbed_the-sid-dani.json");
    templates.push(sim_template());

    let mut state = State {
        keys: HashMap::new(),
        users,
        stages: list("api_GET_stages_list_real-recorded_nango.json"),
        archive_reasons: list("api_GET_archive_reasons_list_real-recorded_nango.json"),
        postings,
        templates,
        opportunities: HashMap::new(),
        contacts: HashMap::new(),
        applications: HashMap::new(),
        notes: HashMap::new(),
        feedback: HashMap::new(),
        panels: HashMap::new(),
        files: HashMap::new(),
        webhooks: Vec::new(),
        cursors: Cursors::default(),
        deleted: Vec::new(),
        last_change_at: 0,
        rng: SplitMix64::new(0x1e7e_5eed),
    };
    seed_recorded_opportunity(&mut state);
    seed_recorded_page(&mut state);

    let now = crate::now_ms();
    let day = 24 * 3600 * 1000;
    state.add_opportunity(
        &NewOpportunity {
            name: "Example Person 380".into(),
            emails: vec!["person380@example.com".into()],
            stage: Some("applicant-new".into()),
            posting: Some("75ff237f-c221-4c26-8b23-faf395f5ea1c".into()),
            ..Default::default()
        },
        now - 3 * day,
    );
    state.add_opportunity(
        &NewOpportunity {
            name: "Example Person 381".into(),
            emails: vec!["person381@example.com".into()],
            stage: Some("2ca03d97-d4f2-4a97-89de-96c8b0d07924".into()),
            posting: Some(CONFIDENTIAL_POSTING.into()),
            ..Default::default()
        },
        now - 2 * day,
    );
    state
}

/// The recorded opportunity with its recorded contact, application, note and interview (whose
/// panel was made in Lever's UI, so it is not externally managed and the API may not change it).
fn seed_recorded_opportunity(state: &mut State) {
    let opp = single("api_GET_opportunity_single_real-recorded_nango.json");
    let id = opp["id"]
        .as_str()
        .unwrap_or(RECORDED_OPPORTUNITY)
        .to_string();
    let contact = single("api_GET_contact_single_real-recorded_nango.json");
    state
        .contacts
        .insert(contact["id"].as_str().unwrap_or_default().into(), contact);
    let application = single("api_GET_application_single_real-recorded_nango.json");
    state.applications.insert(
        application["id"].as_str().unwrap_or_default().into(),
        application,
    );
    let note = single("api_GET_note_single_real-recorded_nango.json");
    state.notes.insert(id.clone(), vec![note]);

    let interview = single("api_GET_interview_single_real-recorded_nango.json");
    let date = interview["date"].as_i64().unwrap_or(0);
    let duration = interview["duration"].as_i64().unwrap_or(0);
    let panel = json!({
        "id": interview["panel"],
        "applications": opp["applications"],
        "canceledAt": null,
        "createdAt": interview["createdAt"],
        "start": date,
        "end": date + duration * 60_000,
        "timezone": interview["timezone"],
        "feedbackReminder": interview["feedbackReminder"],
        "user": interview["user"],
        "stage": interview["stage"],
        "note": null,
        "externallyManaged": false,
        "externalUrl": null,
        "interviews": [interview],
    });
    state.panels.insert(id.clone(), vec![panel]);
    state.opportunities.insert(id, opp);
}

/// The last page of the recorded opportunity list (four candidates). The recording names their
/// applications but does not include them: they are made on a recorded posting.
fn seed_recorded_page(state: &mut State) {
    let posting = state
        .posting("513d232d-2bfa-4120-a6d2-bf5fccbe0598")
        .or(state.postings.first())
        .cloned()
        .expect("postings are seeded");
    for opp in list("api_GET_opportunities_paginated_page11_real-recorded_nango.json") {
        let id = opp["id"].as_str().unwrap_or_default().to_string();
        let created = opp["createdAt"].as_i64().unwrap_or(0);
        let owner = opp["owner"].as_str().unwrap_or_default();
        for app in opp["applications"].as_array().into_iter().flatten() {
            let app = app.as_str().unwrap_or_default();
            state.applications.insert(
                app.into(),
                application_json(app, &id, &posting, owner, created, &None),
            );
        }
        state.opportunities.insert(id, opp);
    }
}

/// Synthetic: the recorded templates only use `score-system` and `textarea`; this one has one field
/// of each documented type, so that integrations posting other types meet the same validation.
fn sim_template() -> Value {
    let options = |texts: &[&str]| -> Value {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"text": t, "optionId": format!("0b5e0000-0000-4000-8000-00000000000{i}")}))
            .collect()
    };
    let field = |n: u32, kind: &str, text: &str| {
        json!({
            "id": format!("5e1d0000-0000-4000-8000-0000000000{n:02}"),
            "type": kind, "text": text, "description": "", "required": false,
        })
    };
    let mut rating = field(1, "score-system", "Rating");
    rating["required"] = json!(true);
    rating["prompt"] = json!("Select one");
    rating["options"] = options(&[
        "4 - Strong Hire",
        "3 - Hire",
        "2 - No Hire",
        "1 - Strong No Hire",
    ]);
    let mut choice = field(6, "multiple-choice", "Greatest strength");
    choice["options"] = options(&["Execution", "Strategy", "Communication"]);
    let mut dropdown = field(7, "dropdown", "Recommended next step");
    dropdown["options"] = options(&["Advance", "Another interview", "Decline"]);
    let mut select = field(8, "multiple-select", "Skills shown");
    select["options"] = options(&["Rust", "SQL", "Distributed systems"]);
    json!({
        "id": SIM_TEMPLATE,
        "text": "Assessment scores (lever-sim)",
        "group": null,
        "instructions": "Synthetic template of the Lever simulator: one field of each type.",
        "fields": [
            rating,
            field(2, "score", "Overall score"),
            field(3, "textarea", "Summary"),
            field(4, "text", "Assessment link"),
            field(5, "yes-no", "Would hire again"),
            choice,
            dropdown,
            select,
            field(9, "date", "Assessed on"),
            field(10, "code", "Submitted code"),
            field(11, "scorecard", "Skills scorecard"),
        ],
        "createdAt": 1_700_000_000_000i64,
        "stage": null,
        "updatedAt": 1_700_000_000_000i64,
    })
}
