//! Operations API, the relay's dead letters: POST /admin/events/replay (see the README's Vendor events).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lever_bridge::lambda::Error> {
    lever_bridge::lambda::run_admin(lever_bridge::admin::http::Group::Events).await
}
