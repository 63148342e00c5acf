//! The Lever calls the bundle makes (lever-api.md §3), typed, over [`LeverApi::send`].

use super::models::*;
use super::{Account, LeverApi, LeverError, LeverRequest, Upload};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Instant;

/// One account's view of Lever for one invocation: the client, the credentials, the deadline.
pub struct Lever<'a, L> {
    pub api: &'a L,
    pub account: &'a Account,
    pub deadline: Instant,
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T, LeverError> {
    serde_json::from_value(unwrap_data(v)).map_err(|e| LeverError::Decode(e.to_string()))
}

/// Path segments come from commands and links: never let one escape its segment.
fn seg(id: &str) -> Result<&str, LeverError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(LeverError::Rejected {
            status: 400,
            code: "InvalidId".into(),
            message: format!("`{id}` is not a Lever id"),
        });
    }
    Ok(id)
}

/// A paged list: `next_page` until `None`. The offset token is passed back as Lever issued it.
pub struct Pages<'a, L> {
    lever: &'a Lever<'a, L>,
    req: LeverRequest,
    next: Option<String>,
    done: bool,
}

impl<L: LeverApi> Pages<'_, L> {
    pub async fn next_page<T: DeserializeOwned>(&mut self) -> Result<Option<Vec<T>>, LeverError> {
        if self.done {
            return Ok(None);
        }
        let mut req = self.req.clone();
        if let Some(next) = &self.next {
            req = req.query("offset", next.clone());
        }
        let body = self
            .lever
            .api
            .send(self.lever.account, req, self.lever.deadline)
            .await?;
        // `hasNext` false, or a missing `next` (the last page omits it; some lists have neither).
        self.next = body
            .get("next")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let has_next = body
            .get("hasNext")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.done = !has_next || self.next.is_none();
        serde_json::from_value(Value::Array(list_data(&body)))
            .map(Some)
            .map_err(|e| LeverError::Decode(e.to_string()))
    }

    /// Where the next page starts, to checkpoint a long walk.
    pub fn position(&self) -> Option<&str> {
        self.next.as_deref()
    }

    pub async fn collect<T: DeserializeOwned>(mut self) -> Result<Vec<T>, LeverError> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}

impl<'a, L: LeverApi> Lever<'a, L> {
    pub fn new(api: &'a L, account: &'a Account, deadline: Instant) -> Self {
        Lever {
            api,
            account,
            deadline,
        }
    }

    pub async fn send(&self, req: LeverRequest) -> Result<Value, LeverError> {
        self.api.send(self.account, req, self.deadline).await
    }

    /// Pages of a list, 100 at a time.
    pub fn pages(&'a self, req: LeverRequest) -> Pages<'a, L> {
        Pages {
            lever: self,
            req: req.query("limit", "100"),
            next: None,
            done: false,
        }
    }

    /// Pages of a list resumed at a checkpointed [`Pages::position`] (`None`: from the start).
    pub fn pages_from(&'a self, req: LeverRequest, position: Option<String>) -> Pages<'a, L> {
        Pages {
            next: position,
            ..self.pages(req)
        }
    }

    pub async fn opportunity(&self, id: &str) -> Result<Opportunity, LeverError> {
        decode(
            self.send(LeverRequest::get(format!("/opportunities/{}", seg(id)?)))
                .await?,
        )
    }

    /// Whether Lever still has the opportunity (404: it does not).
    pub async fn opportunity_exists(&self, id: &str) -> Result<bool, LeverError> {
        let req = LeverRequest::get(format!("/opportunities/{}", seg(id)?));
        match self.send(req).await {
            Ok(_) => Ok(true),
            Err(LeverError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the credentials see confidential candidates: Lever refuses `confidentiality=all`
    /// (403) to a key created without confidential access. One request.
    pub async fn sees_confidential(&self) -> Result<bool, LeverError> {
        let req = LeverRequest::get("/opportunities")
            .query("limit", "1")
            .query("confidentiality", "all");
        match self.send(req).await {
            Ok(_) => Ok(true),
            Err(LeverError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn stages(&self) -> Result<Vec<Stage>, LeverError> {
        self.pages(LeverRequest::get("/stages")).collect().await
    }

    pub async fn archive_reasons(&self) -> Result<Vec<ArchiveReason>, LeverError> {
        self.pages(LeverRequest::get("/archive_reasons"))
            .collect()
            .await
    }

    pub async fn users(&self, include_deactivated: bool) -> Result<Vec<User>, LeverError> {
        let req = LeverRequest::get("/users");
        let req = if include_deactivated {
            req.query("includeDeactivated", "true")
        } else {
            req
        };
        self.pages(req).collect().await
    }

    pub async fn feedback_templates(&self) -> Result<Vec<FeedbackTemplate>, LeverError> {
        self.pages(LeverRequest::get("/feedback_templates"))
            .collect()
            .await
    }

    pub async fn notes(&self, opp: &str) -> Result<Vec<Note>, LeverError> {
        self.pages(LeverRequest::get(format!(
            "/opportunities/{}/notes",
            seg(opp)?
        )))
        .collect()
        .await
    }

    pub async fn create_note(
        &self,
        opp: &str,
        value: &str,
        secret: bool,
        perform_as: Option<&str>,
    ) -> Result<Note, LeverError> {
        let body = json!({"value": value, "secret": secret, "notifyFollowers": false});
        decode(
            self.send(
                LeverRequest::create(format!("/opportunities/{}/notes", seg(opp)?), body)
                    .perform_as(perform_as),
            )
            .await?,
        )
    }

    pub async fn feedback(&self, opp: &str) -> Result<Vec<Feedback>, LeverError> {
        self.pages(LeverRequest::get(format!(
            "/opportunities/{}/feedback",
            seg(opp)?
        )))
        .collect()
        .await
    }

    pub async fn create_feedback(
        &self,
        opp: &str,
        body: Value,
        perform_as: &str,
    ) -> Result<Feedback, LeverError> {
        let req = LeverRequest::create(format!("/opportunities/{}/feedback", seg(opp)?), body)
            .perform_as(Some(perform_as));
        decode(self.send(req).await?)
    }

    pub async fn move_stage(
        &self,
        opp: &str,
        stage: &str,
        perform_as: Option<&str>,
    ) -> Result<Opportunity, LeverError> {
        let req = LeverRequest::put(
            format!("/opportunities/{}/stage", seg(opp)?),
            json!({"stage": stage}),
        )
        .perform_as(perform_as);
        decode(self.send(req).await?)
    }

    /// Archives with `reason`, or unarchives with `None`.
    pub async fn set_archived(
        &self,
        opp: &str,
        reason: Option<&str>,
        perform_as: Option<&str>,
    ) -> Result<Opportunity, LeverError> {
        let req = LeverRequest::put(
            format!("/opportunities/{}/archived", seg(opp)?),
            json!({"reason": reason}),
        )
        .perform_as(perform_as);
        decode(self.send(req).await?)
    }

    /// `op` is one of addTags, removeTags, addLinks, removeLinks; `field` is `tags` or `links`.
    pub async fn edit_set(
        &self,
        opp: &str,
        op: &str,
        field: &str,
        values: &[String],
        perform_as: Option<&str>,
    ) -> Result<Opportunity, LeverError> {
        let req = LeverRequest::post_idempotent(
            format!("/opportunities/{}/{op}", seg(opp)?),
            json!({ field: values }),
        )
        .perform_as(perform_as);
        decode(self.send(req).await?)
    }

    pub async fn panels(&self, opp: &str) -> Result<Vec<Panel>, LeverError> {
        self.pages(LeverRequest::get(format!(
            "/opportunities/{}/panels",
            seg(opp)?
        )))
        .collect()
        .await
    }

    pub async fn panel(&self, opp: &str, panel: &str) -> Result<Panel, LeverError> {
        decode(
            self.send(LeverRequest::get(format!(
                "/opportunities/{}/panels/{}",
                seg(opp)?,
                seg(panel)?
            )))
            .await?,
        )
    }

    pub async fn create_panel(
        &self,
        opp: &str,
        body: Value,
        perform_as: &str,
    ) -> Result<Panel, LeverError> {
        let req = LeverRequest::create(format!("/opportunities/{}/panels", seg(opp)?), body)
            .perform_as(Some(perform_as));
        decode(self.send(req).await?)
    }

    pub async fn update_panel(
        &self,
        opp: &str,
        panel: &str,
        body: Value,
        perform_as: &str,
    ) -> Result<Panel, LeverError> {
        let req = LeverRequest::put(
            format!("/opportunities/{}/panels/{}", seg(opp)?, seg(panel)?),
            body,
        )
        .perform_as(Some(perform_as));
        decode(self.send(req).await?)
    }

    pub async fn delete_panel(
        &self,
        opp: &str,
        panel: &str,
        perform_as: &str,
    ) -> Result<(), LeverError> {
        let req = LeverRequest::delete(format!(
            "/opportunities/{}/panels/{}",
            seg(opp)?,
            seg(panel)?
        ))
        .perform_as(Some(perform_as));
        match self.send(req).await {
            // Already gone: the delete's effect holds.
            Ok(_) | Err(LeverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn files(&self, opp: &str) -> Result<Vec<LeverFile>, LeverError> {
        self.pages(LeverRequest::get(format!(
            "/opportunities/{}/files",
            seg(opp)?
        )))
        .collect()
        .await
    }

    pub async fn upload_file(
        &self,
        opp: &str,
        upload: Upload,
        perform_as: &str,
    ) -> Result<LeverFile, LeverError> {
        let req = LeverRequest::upload(format!("/opportunities/{}/files", seg(opp)?), upload)
            .perform_as(Some(perform_as));
        decode(self.send(req).await?)
    }

    pub async fn user(&self, id: &str) -> Result<User, LeverError> {
        decode(
            self.send(LeverRequest::get(format!("/users/{}", seg(id)?)))
                .await?,
        )
    }

    /// Webhooks made through the API (`GET /webhooks` answers `{data}` alone, without tokens).
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, LeverError> {
        self.pages(LeverRequest::get("/webhooks")).collect().await
    }

    /// Creates a webhook; the answer is the only place its signature token is ever shown.
    pub async fn create_webhook(&self, url: &str, event: &str) -> Result<Webhook, LeverError> {
        decode(
            self.send(LeverRequest::create(
                "/webhooks",
                json!({"url": url, "event": event}),
            ))
            .await?,
        )
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), LeverError> {
        match self
            .send(LeverRequest::delete(format!("/webhooks/{}", seg(id)?)))
            .await
        {
            Ok(_) | Err(LeverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every posting, all pages; `confidentiality` is Lever's filter (`all` where the key may see
    /// confidential ones; Lever's default is non-confidential only).
    pub async fn postings(
        &self,
        confidentiality: Option<&str>,
    ) -> Result<Vec<Posting>, LeverError> {
        let req = LeverRequest::get("/postings");
        let req = match confidentiality {
            Some(c) => req.query("confidentiality", c),
            None => req,
        };
        self.pages(req).collect().await
    }

    pub async fn posting(&self, id: &str) -> Result<Posting, LeverError> {
        decode(
            self.send(LeverRequest::get(format!("/postings/{}", seg(id)?)))
                .await?,
        )
    }

    /// An opportunity as raw JSON with `expand` (e.g. `stage`, `applications`, `contact`).
    pub async fn opportunity_expanded(
        &self,
        id: &str,
        expand: &[&str],
    ) -> Result<Value, LeverError> {
        let mut req = LeverRequest::get(format!("/opportunities/{}", seg(id)?));
        for e in expand {
            req = req.query("expand", *e);
        }
        Ok(unwrap_data(self.send(req).await?))
    }
}
