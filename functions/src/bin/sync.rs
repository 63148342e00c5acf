//! Every minute: the due backfills (a newly connected tenant's candidates) and hourly
//! reconciliations with Lever (changes no webhook delivered).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_sync().await
}
