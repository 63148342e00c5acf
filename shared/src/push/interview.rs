//! Vendor interviews as Lever panels: scheduled, updated and cancelled by one command each, the
//! vendor's interview id mapped to Lever's panel and interview ids.

use super::*;
use crate::lever::models::Panel;

impl<
    L: LeverApi,
    S: CommandStore + TenantStore + StatsStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Pusher<L, S, K, C>
{
    pub(super) async fn interview(
        &self,
        lever: &Lever<'_, L>,
        c: &Command,
        i: &InterviewCommand,
        user: &str,
        attempt: &mut Attempt,
    ) -> Result<Value, Stop> {
        let (tenant, opp) = (
            c.envelope.tenant_id.as_str(),
            c.envelope.opportunity_id.as_str(),
        );
        let store = |e: crate::store::StoreError| {
            Stop::Lever(LeverError::Transport {
                message: e.to_string(),
                maybe_applied: true,
            })
        };
        let marker = render::marker(&i.interview_id);
        let mut map = self
            .store
            .interview_map(tenant, &i.interview_id)
            .await
            .map_err(store)?;
        // A panel created by an attempt that died before saving the mapping is found by its marker.
        if map.is_none()
            && (attempt.uncertain || i.action != InterviewAction::Schedule)
            && let Some(p) = lever
                .panels(opp)
                .await?
                .into_iter()
                .find(|p| p.note.as_deref().is_some_and(|n| n.contains(&marker)))
        {
            let found = InterviewMap {
                opportunity_id: opp.to_string(),
                panel_id: p.id,
                interview_ids: p.interviews.into_iter().map(|x| x.id).collect(),
            };
            self.store
                .put_interview_map(tenant, &i.interview_id, &found)
                .await
                .map_err(store)?;
            map = Some(found);
        }
        match (i.action, map) {
            (InterviewAction::Cancel, None) => {
                Ok(json!({ "cancelled": false, "reason": "no such interview in Lever" }))
            }
            (InterviewAction::Cancel, Some(m)) => {
                lever
                    .delete_panel(&m.opportunity_id, &m.panel_id, user)
                    .await?;
                attempt.wrote = true;
                self.store
                    .delete_interview_map(tenant, &i.interview_id)
                    .await
                    .map_err(store)?;
                Ok(json!({ "cancelled": true, "panelId": m.panel_id }))
            }
            (InterviewAction::Update, None) => Err(Stop::Invalid(format!(
                "interview `{}` is not in Lever; schedule it first",
                i.interview_id
            ))),
            (_, Some(m)) => {
                // Lever's PUT replaces the panel: what it leaves out is deleted or reset, so the
                // interview keeps its id and the panel its applications and reminder.
                let current = lever.panel(&m.opportunity_id, &m.panel_id).await?;
                let body = update_body(panel_body(i, &marker), &current, &m.interview_ids);
                let panel = lever
                    .update_panel(&m.opportunity_id, &m.panel_id, body, user)
                    .await?;
                attempt.wrote = true;
                let updated = InterviewMap {
                    interview_ids: panel.interviews.into_iter().map(|x| x.id).collect(),
                    ..m
                };
                self.store
                    .put_interview_map(tenant, &i.interview_id, &updated)
                    .await
                    .map_err(store)?;
                Ok(json!({ "panelId": updated.panel_id, "interviewIds": updated.interview_ids }))
            }
            (InterviewAction::Schedule, None) => {
                let panel = lever
                    .create_panel(opp, panel_body(i, &marker), user)
                    .await?;
                attempt.wrote = true;
                let created = InterviewMap {
                    opportunity_id: opp.to_string(),
                    panel_id: panel.id,
                    interview_ids: panel.interviews.into_iter().map(|x| x.id).collect(),
                };
                self.store
                    .put_interview_map(tenant, &i.interview_id, &created)
                    .await
                    .map_err(store)?;
                Ok(json!({ "panelId": created.panel_id, "interviewIds": created.interview_ids }))
            }
        }
    }
}

/// The panel Lever gets for a vendor interview; its note carries the marker that identifies it.
fn panel_body(i: &InterviewCommand, marker: &str) -> Value {
    let note = match &i.note {
        Some(n) => format!("{}\n\n{marker}", n.trim_end()),
        None => marker.to_string(),
    };
    let mut interview = json!({
        "subject": i.subject.clone().unwrap_or_else(|| "Interview".into()),
        "interviewers": i.interviewers.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "date": i.start,
        "duration": i.duration_minutes,
    });
    for (k, v) in [
        ("location", &i.location),
        ("feedbackTemplate", &i.feedback_template_id),
    ] {
        if let Some(v) = v {
            interview[k] = json!(v);
        }
    }
    let mut body = json!({"timezone": i.timezone.clone().unwrap_or_else(|| "UTC".into()), "note": note, "interviews": [interview]});
    if let Some(url) = &i.external_url {
        body["externalUrl"] = json!(url);
    }
    body
}

/// A panel PUT for an update: the command's panel, with the current interview's id, its location
/// and feedback form, and the panel's applications, reminder and external URL, where the command
/// does not set them.
fn update_body(mut body: Value, current: &Panel, stored: &[String]) -> Value {
    let interview = current
        .interviews
        .iter()
        .find(|x| stored.contains(&x.id))
        .or(current.interviews.first());
    if let Some(x) = interview {
        let new = &mut body["interviews"][0];
        new["id"] = json!(x.id);
        for (field, value) in [
            ("location", &x.location),
            ("feedbackTemplate", &x.feedback_template),
        ] {
            if new.get(field).is_none()
                && let Some(v) = value
            {
                new[field] = json!(v);
            }
        }
    }
    if !current.applications.is_empty() {
        body["applications"] = json!(current.applications);
    }
    if let Some(r) = &current.feedback_reminder {
        body["feedbackReminder"] = json!(r);
    }
    if body.get("externalUrl").is_none()
        && let Some(url) = &current.external_url
    {
        body["externalUrl"] = json!(url);
    }
    body
}
