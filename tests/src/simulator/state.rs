//! The simulated account. Objects are kept as the JSON Lever returns, so what the API answers and
//! what the state accessors give tests are the same objects.

use super::KeyPerms;
use super::NewOpportunity;
use super::error::ApiError;
use super::paging::{Cursors, SortKey};
use super::params::Caller;
use super::rng::SplitMix64;
use serde_json::{Value, json};
use std::collections::HashMap;

pub(crate) struct State {
    pub keys: HashMap<String, KeyPerms>,
    pub users: Vec<Value>,
    pub stages: Vec<Value>,
    pub archive_reasons: Vec<Value>,
    pub postings: Vec<Value>,
    pub templates: Vec<Value>,
    pub opportunities: HashMap<String, Value>,
    pub contacts: HashMap<String, Value>,
    pub applications: HashMap<String, Value>,
    /// By opportunity id.
    pub notes: HashMap<String, Vec<Value>>,
    pub feedback: HashMap<String, Vec<Value>>,
    pub panels: HashMap<String, Vec<Value>>,
    /// Files attached, by opportunity id (metadata only: name, size, hash).
    pub files: HashMap<String, Vec<Value>>,
    /// As created, signature tokens included (the API only returns them from POST).
    pub webhooks: Vec<Value>,
    pub cursors: Cursors,
    /// Deleted candidates as `GET /opportunities/deleted` lists them (`id`, `deletedAt`).
    pub deleted: Vec<Value>,
    /// The last simulated change's time: changes get strictly increasing times.
    pub last_change_at: i64,
    /// Drives generated names and dates, so a run is reproducible.
    pub rng: SplitMix64,
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn is_confidential(item: &Value) -> bool {
    item["confidentiality"] == "confidential"
}

pub(crate) fn str_field<'a>(item: &'a Value, name: &str) -> &'a str {
    item[name].as_str().unwrap_or_default()
}

const DAY_MS: i64 = 24 * 3600 * 1000;
const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Leslie",
    "Katherine",
    "John",
    "Hedy",
    "Tim",
    "Shafi",
    "Niklaus",
    "Lynn",
    "Guido",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Lamport",
    "Johnson",
    "Backus",
    "Lamarr",
    "Berners-Lee",
    "Goldwasser",
    "Wirth",
    "Conway",
    "van Rossum",
];
const COMPANIES: &[&str] = &[
    "Initech",
    "Globex",
    "Hooli",
    "Vandelay Industries",
    "Acme Corp",
    "Stark Industries",
    "Umbrella",
];
const LOCATIONS: &[&str] = &[
    "San Francisco, CA",
    "New York, NY",
    "London",
    "Toronto, ON",
    "",
];
const SOURCES: &[&str] = &["LinkedIn", "Referral", "Job site", "Agency", "Careers page"];
const ORIGINS: &[&str] = &[
    "applied",
    "sourced",
    "referred",
    "university",
    "agency",
    "internal",
];

impl State {
    pub fn user(&self, id: &str) -> Option<&Value> {
        self.users.iter().find(|u| u["id"] == id)
    }

    pub fn stage_index(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s["id"] == id)
    }

    pub fn posting(&self, id: &str) -> Option<&Value> {
        self.postings.iter().find(|p| p["id"] == id)
    }

    pub fn template(&self, id: &str) -> Option<&Value> {
        self.templates.iter().find(|t| t["id"] == id)
    }

    /// The opportunity as `caller` may see it: a confidential one is a 404 for keys without access.
    pub fn opp(&self, id: &str, caller: &Caller) -> Result<&Value, ApiError> {
        self.opportunities
            .get(id)
            .filter(|o| caller.confidential() || !is_confidential(o))
            .ok_or_else(|| ApiError::not_found("opportunities", id))
    }

    pub fn opp_mut(&mut self, id: &str, caller: &Caller) -> Result<&mut Value, ApiError> {
        self.opp(id, caller)?;
        Ok(self.opportunities.get_mut(id).expect("checked above"))
    }

    /// Applications of an opportunity, in its `applications` order.
    pub fn applications_of(&self, opp: &Value) -> Vec<Value> {
        opp["applications"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| self.applications.get(id.as_str()?).cloned())
            .collect()
    }

    pub fn sorted_notes(&self, opp: &str) -> Vec<Value> {
        let mut notes = self.notes.get(opp).cloned().unwrap_or_default();
        notes.sort_by_key(SortKey::newest_first);
        notes
    }

    /// A stage change as recorded: `userId` only when a user is known (older recorded changes
    /// have none).
    pub fn stage_change(&self, stage: &str, user: Option<&str>, at: i64) -> Value {
        let mut change = json!({
            "toStageId": stage,
            "toStageIndex": self.stage_index(stage).unwrap_or(0),
            "updatedAt": at,
        });
        if let Some(user) = user {
            change["userId"] = json!(user);
        }
        change
    }

    /// Adds an opportunity (and its contact and application) shaped like the real recordings.
    /// Panics on an unknown stage, posting or archive reason: a test's own mistake.
    pub fn add_opportunity(&mut self, spec: &NewOpportunity, created_at: i64) -> String {
        let stage = spec.stage.clone().unwrap_or_else(|| "lead-new".into());
        assert!(
            self.stage_index(&stage).is_some(),
            "add_opportunity: unknown stage {stage}"
        );
        if let Some(reason) = &spec.archived_reason {
            assert!(
                self.archive_reasons.iter().any(|r| r["id"] == *reason),
                "add_opportunity: unknown archive reason {reason}"
            );
        }
        let posting = spec.posting.as_ref().map(|id| {
            self.posting(id)
                .unwrap_or_else(|| panic!("add_opportunity: unknown posting {id}"))
                .clone()
        });
        // Lever makes an opportunity on a confidential posting confidential.
        let confidential = spec.confidential || posting.as_ref().is_some_and(is_confidential);
        let owner = self
            .users
            .iter()
            .find(|u| u["accessRole"] == "super admin" && u["deactivatedAt"].is_null())
            .map(|u| str_field(u, "id").to_string())
            .unwrap_or_default();
        let (id, contact) = (new_id(), new_id());
        let archived = spec
            .archived_reason
            .as_ref()
            .map(|r| json!({"reason": r, "archivedAt": created_at + 3_600_000}));
        let mut tags = Vec::new();
        let mut applications = Vec::new();
        let mut location = String::new();
        if let Some(posting) = &posting {
            let categories = &posting["categories"];
            tags.push(json!(posting["text"]));
            for c in ["department", "team", "location", "commitment"] {
                if let Some(v) = categories[c].as_str() {
                    tags.push(json!(v));
                }
            }
            location = str_field(categories, "location").to_string();
            let app = new_id();
            self.applications.insert(
                app.clone(),
                application_json(&app, &id, posting, &owner, created_at, &archived),
            );
            applications.push(json!(app));
        }
        let headline = spec.name.clone();
        self.contacts.insert(
            contact.clone(),
            json!({
                "id": contact, "name": spec.name, "headline": headline, "isAnonymized": false,
                "location": {"name": location}, "emails": spec.emails, "phones": [],
            }),
        );
        let opp = json!({
            "id": id,
            "name": spec.name,
            "contact": contact,
            "headline": headline,
            "stage": stage,
            "confidentiality": if confidential { "confidential" } else { "non-confidential" },
            "location": location,
            "phones": [],
            "emails": spec.emails,
            "links": [],
            "archived": archived,
            "tags": tags,
            "sources": ["Referral"],
            "stageChanges": [self.stage_change(&stage, Some(&owner), created_at)],
            "origin": "sourced",
            "sourcedBy": owner,
            "owner": owner,
            "followers": [owner],
            "applications": applications,
            "createdAt": created_at,
            "updatedAt": created_at,
            "lastInteractionAt": created_at,
            "lastAdvancedAt": created_at,
            "snoozedUntil": null,
            "urls": {
                "list": "https://hire.lever.co/candidates",
                "show": format!("https://hire.lever.co/candidates/{id}"),
            },
            "isAnonymized": false,
            "dataProtection": null,
            "opportunityLocation": if location.is_empty() { "unspecified".to_string() } else { location },
        });
        self.opportunities.insert(id.clone(), opp);
        id
    }

    /// A plausible candidate created within the past year: about one in six archived and one in
    /// eight confidential.
    pub fn add_generated_opportunity(&mut self) -> String {
        let n = self.opportunities.len();
        let first = *self.rng.pick(FIRST);
        let last = *self.rng.pick(LAST);
        let stage = str_field(self.rng.pick(&self.stages), "id").to_string();
        let public: Vec<String> = self
            .postings
            .iter()
            .filter(|p| !is_confidential(p))
            .map(|p| str_field(p, "id").to_string())
            .collect();
        let posting =
            (self.rng.below(4) != 0 && !public.is_empty()).then(|| self.rng.pick(&public).clone());
        let reasons: Vec<String> = self
            .archive_reasons
            .iter()
            .filter(|r| r["status"] == "active")
            .map(|r| str_field(r, "id").to_string())
            .collect();
        let archived_reason = (self.rng.below(6) == 0 && !reasons.is_empty())
            .then(|| self.rng.pick(&reasons).clone());
        let confidential = self.rng.below(8) == 0;
        let created_at = crate::now_ms() - 2 * DAY_MS - self.rng.below(365 * DAY_MS as u64) as i64;
        let spec = NewOpportunity {
            name: format!("{first} {last}"),
            emails: vec![format!(
                "{}.{}{n}@example.com",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', "")
            )],
            stage: Some(stage),
            posting,
            confidential,
            archived_reason,
        };
        let id = self.add_opportunity(&spec, created_at);
        // Vary what a generic constructor leaves constant.
        let company = *self.rng.pick(COMPANIES);
        let source = *self.rng.pick(SOURCES);
        let origin = *self.rng.pick(ORIGINS);
        let updated = created_at + self.rng.below(DAY_MS as u64) as i64;
        let opp = self.opportunities.get_mut(&id).expect("just added");
        opp["headline"] = json!(company);
        opp["sources"] = json!([source]);
        opp["origin"] = json!(origin);
        opp["updatedAt"] = json!(updated);
        if opp["location"] == "" {
            let location = *self.rng.pick(LOCATIONS);
            opp["location"] = json!(location);
        }
        id
    }
}

/// An application shaped like the real recording (api_GET_application_single_real-recorded).
pub(crate) fn application_json(
    id: &str,
    opp: &str,
    posting: &Value,
    user: &str,
    created_at: i64,
    archived: &Option<Value>,
) -> Value {
    json!({
        "id": id,
        "type": "user",
        "candidateId": opp,
        "opportunityId": opp,
        "posting": posting["id"],
        "postingHiringManager": posting["hiringManager"],
        "postingOwner": posting["owner"],
        "name": null,
        "company": null,
        "phone": null,
        "email": null,
        "links": [],
        "comments": null,
        "user": user,
        "customQuestions": [],
        "createdAt": created_at,
        "archived": archived,
        "requisitionForHire": null,
        "ipAddress": null,
        "referer": null,
        "userAgent": null,
        "acceptLanguage": null,
        "timezone": null,
    })
}
