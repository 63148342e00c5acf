//! Carries out `file` commands from its SQS queue (or one command, invoked directly): report files
//! from the upload bucket, streamed into Lever.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_push(lever_bridge::push::command::PushKind::File).await
}
