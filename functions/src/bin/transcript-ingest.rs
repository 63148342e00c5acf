//! Stores SMS messages (from its SQS queue, or one invoked directly) for their conversation's transcript.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_transcript_ingest().await
}
