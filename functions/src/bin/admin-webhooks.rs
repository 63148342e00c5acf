//! Onboarding API, register webhooks, paste tokens: /admin/tenants/... (see the README's Onboarding API).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_admin(lever_bridge::admin::http::Group::Webhooks).await
}
