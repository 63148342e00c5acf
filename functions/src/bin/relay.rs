//! Publishes the vendor events the table's stream carries (the outbox) on the vendor's bus.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_relay().await
}
