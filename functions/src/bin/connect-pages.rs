//! The connect pages a connect link opens: API key, permission checklist, owner, webhooks, status (see the README's Connect pages).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_pages().await
}
