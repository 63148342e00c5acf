//! The thin glue between Lambda (lambda_http) and the handlers.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::events::EventBridgeSink;
use crate::receiver::{Receiver, Reply};
use crate::secrets::{CachedSecrets, SecretsManagerStore};
use crate::store::dynamo::DynamoStore;
use crate::webhook::EventKind;
pub use lambda_http::Error;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};

/// Runs the webhook function for `kind`: clients and caches are built once per cold start.
pub async fn run_webhook(kind: EventKind) -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    store.warm_up().await;
    let secrets = SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &config.secret_prefix,
    );
    let receiver = Receiver {
        kind,
        store,
        events: EventBridgeSink::new(aws_sdk_eventbridge::Client::new(&aws), &config.event_bus),
        secrets: CachedSecrets::new(secrets, SystemClock, config.secret_ttl_ms),
        clock: SystemClock,
    };
    let receiver = &receiver;
    lambda_http::run(service_fn(move |req: Request| async move {
        let reply = match (req.method().as_str(), tenant_of(&req)) {
            ("POST", Some(tenant)) => receiver.receive(&tenant, req.body().as_ref()).await,
            ("POST", None) => Reply { status: 404, body: serde_json::json!({"error": "not_found", "message": "POST /webhooks/{tenantId}/{event}"}) },
            _ => Reply { status: 405, body: serde_json::json!({"error": "method_not_allowed", "message": "webhooks are POSTed"}) },
        };
        http_reply(reply)
    }))
    .await
}

/// The tenant id from API Gateway's path parameter, or from the raw path (`cargo lambda watch`
/// serves functions under `/lambda-url/<function>/...`).
fn tenant_of(req: &Request) -> Option<String> {
    if let Some(t) = req.path_parameters().first("tenantId") {
        return Some(t.to_string());
    }
    let path = req.raw_http_path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.iter().rposition(|s| *s == "webhooks")?;
    segments.get(at + 1).map(|s| s.to_string())
}

fn http_reply(reply: Reply) -> Result<Response<Body>, std::convert::Infallible> {
    let mut res = Response::new(Body::Text(reply.body.to_string()));
    *res.status_mut() = lambda_http::http::StatusCode::from_u16(reply.status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real API Gateway HTTP API (payload 2.0) requests parse and yield the tenant.
    #[test]
    fn api_gateway_v2_requests_parse() {
        let body = include_str!("../tests/data/apigw_v2_webhook.json");
        let req = lambda_http::request::from_str(body).expect("API Gateway v2 request parses");
        assert_eq!(req.method(), "POST");
        assert_eq!(tenant_of(&req).as_deref(), Some("acme"));
        assert!(req.body().as_ref().starts_with(b"{\"event\""));

        let b64 = include_str!("../tests/data/apigw_v2_webhook_base64.json");
        let req = lambda_http::request::from_str(b64).expect("base64 body parses");
        assert!(
            req.body().as_ref().starts_with(b"{\"event\""),
            "base64 bodies are decoded"
        );

        let watch = include_str!("../tests/data/lambda_url_watch.json");
        let req = lambda_http::request::from_str(watch).expect("function URL request parses");
        assert_eq!(tenant_of(&req).as_deref(), Some("demo"));
    }
}
