//! A Lever opportunity as a sync reads it, and what differs from the vendor's view.

use crate::events::VendorEvent;
use crate::events::change_event;
use crate::store::{SyncMode, SyncedView};
use crate::webhook::{Archived, EventKind, Mutation};
use serde_json::Value;
use std::collections::HashSet;

/// The fields of a listed opportunity (`expand=applications`) that the vendor's view holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub stage: Option<String>,
    /// When the candidate entered its stage (Lever's last stage change), ms.
    pub stage_at: i64,
    pub archived: Option<Archived>,
    pub contact: Option<String>,
    /// (id, posting, createdAt).
    pub applications: Vec<(String, Option<String>, i64)>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(m) => m.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

impl Snapshot {
    /// `None` for an item without an id.
    pub fn parse(v: &Value) -> Option<Snapshot> {
        let id = v.get("id").and_then(Value::as_str)?.to_string();
        let created_at = v["createdAt"].as_i64().unwrap_or(0);
        // Older recorded opportunities have `updatedAt: null`: not updated since creation.
        let updated_at = v["updatedAt"].as_i64().unwrap_or(created_at);
        let stage = id_of(&v["stage"]);
        // The last change into the current stage; the list is oldest first.
        let stage_at = v["stageChanges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| stage.is_some() && c["toStageId"].as_str() == stage.as_deref())
            .filter_map(|c| c["updatedAt"].as_i64())
            .max()
            .unwrap_or(updated_at);
        let archived = match &v["archived"] {
            Value::Object(m) => Some(Archived {
                reason: m.get("reason").and_then(id_of),
                archived_at: m.get("archivedAt").and_then(Value::as_i64),
            }),
            _ => None,
        };
        let applications = v["applications"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some((
                    id_of(a)?,
                    a.get("posting").and_then(id_of),
                    a.get("createdAt")
                        .and_then(Value::as_i64)
                        .unwrap_or(created_at),
                ))
            })
            .collect();
        Some(Snapshot {
            id,
            stage,
            stage_at,
            archived,
            contact: id_of(&v["contact"]),
            applications,
            created_at,
            updated_at,
        })
    }

    /// When the archive state took effect: `archivedAt`, or for an unarchived candidate the last
    /// update (the state held from then on).
    fn archive_at(&self) -> i64 {
        self.archived
            .as_ref()
            .and_then(|a| a.archived_at)
            .unwrap_or(self.updated_at)
    }

    fn hired(&self, hired_reasons: &HashSet<String>) -> bool {
        self.archived
            .as_ref()
            .and_then(|a| a.reason.as_ref())
            .is_some_and(|r| hired_reasons.contains(r))
    }
}

/// What a sync writes for one candidate and the events it owes the vendor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub changes: Vec<(Mutation, i64)>,
    pub events: Vec<VendorEvent>,
}

/// The real differences between Lever's snapshot and the view, each only where the view's data is
/// older than Lever's (a newer webhook stays). A backfill owes one event per candidate (marked
/// backfill); a reconciliation owes the event each missed webhook would have given (marked
/// recovered).
pub fn diff(
    tenant: &str,
    event_id: &str,
    mode: SyncMode,
    snap: &Snapshot,
    view: Option<&SyncedView>,
    hired_reasons: &HashSet<String>,
) -> Diff {
    let empty = SyncedView::default();
    let view = view.unwrap_or(&empty);
    if view.deleted_at.is_some() {
        return Diff::default();
    }
    let older = |at: Option<i64>, t: i64| at.is_none_or(|at| at < t);
    let opportunity = || snap.id.clone();
    let mut changes = Vec::new();
    if let Some(stage) = &snap.stage
        && view.stage.as_ref().map(|s| &s.id) != Some(stage)
        && older(view.stage.as_ref().map(|s| s.since), snap.stage_at)
    {
        let m = Mutation::Stage {
            opportunity: opportunity(),
            from: view.stage.as_ref().map(|s| s.id.clone()),
            to: stage.clone(),
            contact: snap.contact.clone(),
        };
        changes.push((EventKind::CandidateStageChange, m, snap.stage_at));
    }
    if snap.archived != view.archived && older(view.archive_at, snap.archive_at()) {
        let m = Mutation::Archive {
            opportunity: opportunity(),
            from: view.archived.clone(),
            to: snap.archived.clone(),
        };
        changes.push((EventKind::CandidateArchiveChange, m, snap.archive_at()));
    }
    if snap.hired(hired_reasons) && view.hired_at.is_none() {
        let m = Mutation::Hired {
            opportunity: opportunity(),
        };
        changes.push((EventKind::CandidateHired, m, snap.archive_at()));
    }
    for (app, posting, at) in &snap.applications {
        if !view.application_ids.contains(app) {
            let m = Mutation::Application {
                opportunity: opportunity(),
                application: app.clone(),
                posting: posting.clone(),
            };
            changes.push((EventKind::ApplicationCreated, m, *at));
        }
    }
    if changes.is_empty() {
        return Diff::default();
    }
    let events = match mode {
        SyncMode::Backfill => vec![backfill_event(tenant, event_id, snap, hired_reasons)],
        SyncMode::Reconcile => changes
            .iter()
            .enumerate()
            .map(|(i, (kind, m, at))| VendorEvent {
                recovered: true,
                ..change_event(format!("{event_id}/{i}"), tenant, *kind, m, *at)
            })
            .collect(),
    };
    Diff {
        changes: changes.into_iter().map(|(_, m, at)| (m, at)).collect(),
        events,
    }
}

/// The event kind of a backfilled candidate.
pub const BACKFILLED: &str = "candidateBackfilled";

fn backfill_event(
    tenant: &str,
    event_id: &str,
    snap: &Snapshot,
    hired_reasons: &HashSet<String>,
) -> VendorEvent {
    use crate::events::payload::{Application, Backfilled};
    let applications: Vec<Application> = snap
        .applications
        .iter()
        .map(|(id, posting, _)| Application {
            application_id: id.clone(),
            posting_id: posting.clone(),
        })
        .collect();
    VendorEvent {
        id: event_id.to_string(),
        tenant_id: tenant.to_string(),
        kind: BACKFILLED.to_string(),
        opportunity_id: Some(snap.id.clone()),
        contact_id: snap.contact.clone(),
        before: Value::Null,
        after: serde_json::to_value(Backfilled {
            stage_id: snap.stage.clone(),
            archived: snap.archived.clone(),
            hired: snap.hired(hired_reasons),
            applications,
        })
        .expect("payloads serialize"),
        at: snap.updated_at,
        stale: false,
        backfill: true,
        recovered: false,
    }
}

/// The event of a deletion no webhook delivered.
pub fn deleted_event(tenant: &str, event_id: &str, opportunity: &str, at: i64) -> VendorEvent {
    let m = Mutation::Deleted {
        opportunity: opportunity.to_string(),
    };
    VendorEvent {
        recovered: true,
        ..change_event(
            event_id.to_string(),
            tenant,
            EventKind::CandidateDeleted,
            &m,
            at,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stage;

    fn recorded() -> Value {
        let raw = crate::fixtures::read("api_GET_opportunity_single_real-recorded_nango.json");
        serde_json::from_slice::<Value>(&raw).unwrap()["data"].clone()
    }

    #[test]
    fn parses_the_recorded_opportunity() {
        let s = Snapshot::parse(&recorded()).unwrap();
        assert_eq!(s.stage.as_deref(), Some("lead-reached-out"));
        assert_eq!(s.stage_at, 1782974004990);
        assert_eq!(
            s.archived,
            Some(Archived {
                reason: Some("c97322d4-a7f3-4008-948c-4f8e9c58d372".into()),
                archived_at: Some(1782973996415)
            })
        );
        assert_eq!(s.applications.len(), 1);
        assert_eq!(s.applications[0].1, None, "ids only without expand");
        assert_eq!(s.updated_at, 1782974048515);
    }

    #[test]
    fn an_empty_view_gets_everything_and_one_backfill_event() {
        let s = Snapshot::parse(&recorded()).unwrap();
        let hired = HashSet::from(["c97322d4-a7f3-4008-948c-4f8e9c58d372".to_string()]);
        let d = diff("t", "e", SyncMode::Backfill, &s, None, &hired);
        assert_eq!(d.changes.len(), 4, "stage, archive, hired, application");
        assert_eq!(d.events.len(), 1);
        assert!(d.events[0].backfill && d.events[0].after["hired"] == true);
    }

    #[test]
    fn a_newer_view_wins_and_an_equal_one_owes_nothing() {
        let s = Snapshot::parse(&recorded()).unwrap();
        let mut view = SyncedView {
            stage: Some(Stage {
                id: "lead-new".into(),
                since: s.stage_at + 1,
            }),
            archived: s.archived.clone(),
            archive_at: Some(1),
            application_ids: s.applications.iter().map(|a| a.0.clone()).collect(),
            ..Default::default()
        };
        let none = HashSet::new();
        let d = diff("t", "e", SyncMode::Reconcile, &s, Some(&view), &none);
        assert!(d.changes.is_empty(), "{d:?}");
        view.stage.as_mut().unwrap().since = s.stage_at - 1;
        let d = diff("t", "e", SyncMode::Reconcile, &s, Some(&view), &none);
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].kind, "candidateStageChange");
        assert!(d.events[0].recovered);
        assert_eq!(d.events[0].before["stageId"], "lead-new");
    }
}
