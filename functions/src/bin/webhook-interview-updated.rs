//! Receives Lever's `interviewUpdated` webhook: POST /webhooks/{tenantId}/interviewUpdated.

#[tokio::main]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_webhook(lever_bridge::webhook::EventKind::InterviewUpdated).await
}
