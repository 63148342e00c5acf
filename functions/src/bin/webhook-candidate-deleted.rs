//! Receives Lever's `candidateDeleted` webhook: POST /webhooks/{tenantId}/candidateDeleted.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_webhook(lever_bridge::webhook::EventKind::CandidateDeleted).await
}
