//! Carries out `stage` commands from its SQS queue (or one command, invoked directly) into Lever.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_push(lever_bridge::push::command::PushKind::Stage).await
}
