//! Receives Lever's `contactCreated` webhook: POST /webhooks/{tenantId}/contactCreated.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_webhook(lever_bridge::webhook::EventKind::ContactCreated).await
}
