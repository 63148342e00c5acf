//! Receives Lever's `interviewCreated` webhook: POST /webhooks/{tenantId}/interviewCreated.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_webhook(lever_bridge::webhook::EventKind::InterviewCreated).await
}
