//! Changes made in the account as a recruiter makes them in Lever, each with the webhook body Lever
//! sends for it (lever-api.md §1). Times strictly increase, so every change is newer than the last.

use super::Simulator;
use super::state::{State, application_json, new_id, str_field};
use lever_bridge::webhook::EventKind;
use serde_json::{Value, json};

/// One change and its webhook: the kind, the `data`, and Lever's time for both.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: EventKind,
    pub opportunity: String,
    pub data: Value,
    pub at: i64,
}

fn change_time(s: &mut State) -> i64 {
    let at = crate::now_ms().max(s.last_change_at + 1);
    s.last_change_at = at;
    at
}

fn touched<'a>(s: &'a mut State, opp: &str, at: i64) -> &'a mut Value {
    let o = s
        .opportunities
        .get_mut(opp)
        .unwrap_or_else(|| panic!("unknown opportunity {opp}"));
    o["updatedAt"] = json!(at);
    o["lastInteractionAt"] = json!(at);
    o
}

impl Simulator {
    /// The account's archive reason for hires.
    pub fn hired_reason(&self) -> String {
        self.with_state(|s| {
            s.archive_reasons
                .iter()
                .find(|r| r["type"] == "hired" && r["status"] == "active")
                .map(|r| str_field(r, "id").to_string())
                .expect("the account has a hired archive reason")
        })
    }

    /// Moves the candidate to `stage`.
    pub fn move_stage(&self, opp: &str, stage: &str) -> Change {
        self.with_state(|s| {
            let at = change_time(s);
            let change = s.stage_change(stage, None, at);
            let o = touched(s, opp, at);
            let from = o["stage"].clone();
            o["stage"] = json!(stage);
            o["lastAdvancedAt"] = json!(at);
            o["stageChanges"]
                .as_array_mut()
                .expect("stageChanges")
                .push(change);
            Change {
                kind: EventKind::CandidateStageChange,
                opportunity: opp.to_string(),
                data: json!({
                    "opportunityId": opp, "candidateId": opp, "contactId": o["contact"],
                    "fromStageId": from, "toStageId": stage,
                }),
                at,
            }
        })
    }

    /// Archives the candidate with `reason`, or unarchives it (`None`).
    pub fn archive(&self, opp: &str, reason: Option<&str>) -> Change {
        self.with_state(|s| {
            let at = change_time(s);
            let o = touched(s, opp, at);
            let from = o["archived"].clone();
            let to = reason.map_or(Value::Null, |r| json!({"reason": r, "archivedAt": at}));
            o["archived"] = to.clone();
            Change {
                kind: EventKind::CandidateArchiveChange,
                opportunity: opp.to_string(),
                data: json!({"opportunityId": opp, "fromArchived": from, "toArchived": to}),
                at,
            }
        })
    }

    /// Hires the candidate: archived with the hired reason, then `candidateHired`.
    pub fn hire(&self, opp: &str) -> Vec<Change> {
        let archived = self.archive(opp, Some(&self.hired_reason()));
        let contact = self.with_state(|s| s.opportunities[opp]["contact"].clone());
        let hired = Change {
            kind: EventKind::CandidateHired,
            opportunity: opp.to_string(),
            data: json!({"opportunityId": opp, "candidateId": opp, "contactId": contact}),
            at: archived.at,
        };
        vec![archived, hired]
    }

    /// The candidate applies to `posting`.
    pub fn apply_to(&self, opp: &str, posting: &str) -> Change {
        self.with_state(|s| {
            let at = change_time(s);
            let posting_json = s
                .posting(posting)
                .unwrap_or_else(|| panic!("unknown posting {posting}"))
                .clone();
            let owner = s.users.first().map(|u| str_field(u, "id").to_string());
            let app = new_id();
            let archived = s.opportunities[opp]["archived"].clone();
            let archived = (!archived.is_null()).then_some(archived);
            s.applications.insert(
                app.clone(),
                application_json(
                    &app,
                    opp,
                    &posting_json,
                    owner.as_deref().unwrap_or_default(),
                    at,
                    &archived,
                ),
            );
            let o = touched(s, opp, at);
            o["applications"]
                .as_array_mut()
                .expect("applications")
                .push(json!(app));
            Change {
                kind: EventKind::ApplicationCreated,
                opportunity: opp.to_string(),
                data: json!({
                    "opportunityId": opp, "candidateId": opp, "contactId": o["contact"],
                    "applicationId": app, "postingId": posting,
                }),
                at,
            }
        })
    }

    /// Deletes the candidate: gone from lists, listed by `GET /opportunities/deleted`.
    pub fn delete_opportunity(&self, opp: &str) -> Change {
        self.with_state(|s| {
            let at = change_time(s);
            let o = s
                .opportunities
                .remove(opp)
                .unwrap_or_else(|| panic!("unknown opportunity {opp}"));
            s.deleted.push(json!({"id": opp, "deletedAt": at}));
            Change {
                kind: EventKind::CandidateDeleted,
                opportunity: opp.to_string(),
                data: json!({"opportunityId": opp, "contactId": o["contact"]}),
                at,
            }
        })
    }

    /// Sends the change's webhook, signed with `signature_token`, triggered at the change's time.
    pub async fn deliver(
        &self,
        url: &str,
        change: &Change,
        signature_token: &str,
    ) -> reqwest::StatusCode {
        self.try_send_webhook_at(
            url,
            change.kind,
            change.data.clone(),
            signature_token,
            change.at,
        )
        .await
        .unwrap_or(reqwest::StatusCode::BAD_GATEWAY)
    }

    /// Every opportunity id in the account (confidential ones included).
    pub fn opportunity_ids(&self) -> Vec<String> {
        self.with_state(|s| s.opportunities.keys().cloned().collect())
    }
}
