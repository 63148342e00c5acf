//! On a schedule: posts each conversation that has been quiet long enough as one transcript note.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_transcript_flush().await
}
