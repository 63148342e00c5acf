//! The thin glue between Lambda (lambda_http) and the handlers.

use crate::clock::SystemClock;
use crate::config::{Config, Env};
use crate::events::EventBridgeSink;
use crate::function::Function;
use crate::receiver::{Receiver, Reply};
use crate::secrets::{CachedSecrets, SecretsManagerStore};
use crate::store::dynamo::DynamoStore;
use crate::webhook::EventKind;
pub use lambda_http::Error;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use std::sync::Arc;

/// How long a warm instance trusts a cached tenant secret.
const SECRET_TTL_MS: i64 = 300_000;

/// CloudWatch embedded-metric-format metrics, flushed after each invocation (namespace
/// LeverBridge, dimension `Service` = the stack's name).
fn metrics(service: &str) -> &'static metrics_cloudwatch_embedded::Collector {
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("LeverBridge")
        .with_dimension("Service", service.to_string())
        .lambda_cold_start_metric("ColdStart")
        .with_lambda_request_id("RequestId")
        .init()
        .expect("the metrics recorder is installed once")
}

/// What every function builds once per cold start: its configuration, AWS clients, the store (its
/// connection opened during init, so the first invocation does not pay for the TLS handshake).
struct Cold {
    config: Config,
    aws: aws_config::SdkConfig,
    store: DynamoStore,
    secrets: SecretsManagerStore,
    secrets_client: aws_sdk_secretsmanager::Client,
    metrics: &'static metrics_cloudwatch_embedded::Collector,
}

impl Cold {
    /// The vendor's EventBridge bus.
    fn vendor_bus(&self) -> EventBridgeSink {
        EventBridgeSink::new(
            aws_sdk_eventbridge::Client::new(&self.aws),
            &self.config.event_bus,
        )
    }

    /// The relay's dead-letter queue (`RELAY_DEAD_LETTER_QUEUE_URL`).
    fn dead_letters(&self) -> crate::relay::dead_letters::DeadLetterQueue {
        crate::relay::dead_letters::DeadLetterQueue::Sqs {
            client: aws_sdk_sqs::Client::new(&self.aws),
            url: self.config.relay_dead_letter_queue_url.clone(),
        }
    }

    /// The Lever client, paced by the configured per-key bucket.
    fn lever(&self) -> crate::lever::HttpLever {
        crate::lever::HttpLever::new(
            crate::lever::RateLimiter::new(self.config.lever.rate_per_sec, self.config.lever.burst),
            crate::lever::RetryPolicy::default(),
        )
    }

    /// The webhook URLs' key secret (`WEBHOOK_URL_KEY_SECRET_NAME`), read once at cold start.
    async fn url_keys(&self) -> Result<crate::urlkey::UrlKeys, Error> {
        let Some(name) = &self.config.url_key_secret else {
            return Err("this function has no WEBHOOK_URL_KEY_SECRET_NAME".into());
        };
        let out = self
            .secrets_client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the webhook URL key secret `{name}`: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?;
        let secret = out
            .secret_string()
            .filter(|s| s.len() >= 32)
            .ok_or_else(|| {
                format!(
                    "the webhook URL key secret `{name}` must be a string of 32 or more characters"
                )
            })?;
        Ok(crate::urlkey::UrlKeys::new(secret))
    }

    /// The OAuth client, when the deployment has one (its secret read on first use).
    fn oauth(&self) -> Option<Arc<crate::lever::oauth::OAuthClient>> {
        self.config.oauth.clone().map(|c| {
            Arc::new(crate::lever::oauth::OAuthClient::new(
                c,
                Some(self.secrets_client.clone()),
            ))
        })
    }
}

/// Reads the function's configuration (failing the cold start, naming what is missing, when its
/// environment lacks a variable it reads) and builds its clients.
async fn cold_start(function: Function) -> Result<Cold, Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::load(function, &Env::process()).map_err(|e| {
        tracing::error!(function = function.name(), error = %e, "configuration");
        e
    })?;
    let metrics = metrics(&config.stack_name);
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    if function.reads_table_items() {
        store.warm_up().await;
    }
    let secrets_client = aws_sdk_secretsmanager::Client::new(&aws);
    let secrets = SecretsManagerStore::new(
        secrets_client.clone(),
        &config.secret_prefix,
        function.secret_parts(),
    );
    Ok(Cold {
        config,
        aws,
        store,
        secrets,
        secrets_client,
        metrics,
    })
}

/// Runs a function taking JSON events (SQS, schedule, direct invocation) with `handle`.
async fn run_json<F, Fut>(
    metrics: &'static metrics_cloudwatch_embedded::Collector,
    handle: F,
) -> Result<(), Error>
where
    F: Fn(serde_json::Value, std::time::Instant) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, crate::queue::Unreadable>>,
{
    use lambda_http::lambda_runtime::LambdaEvent;
    let handle = &handle;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
            handle(event.payload, deadline_of(&event.context))
                .await
                .inspect_err(
                    |e| tracing::error!(error = %e, "the batch fails: it comes back whole"),
                )
        }),
    )
    .await
}

/// Runs the webhook function for `kind`.
pub async fn run_webhook(kind: EventKind) -> Result<(), Error> {
    let cold = cold_start(Function::Webhook(kind)).await?;
    let keys = cold.url_keys().await?;
    let Cold {
        store,
        secrets,
        metrics,
        ..
    } = cold;
    let receiver = Receiver::new(
        kind,
        store,
        CachedSecrets::new(secrets, SystemClock, SECRET_TTL_MS),
        SystemClock,
        keys,
    );
    let receiver = &receiver;
    metrics_cloudwatch_embedded::lambda::service::run_http(
        metrics,
        service_fn(move |req: Request| async move {
            use tracing::Instrument;
            let reply = match (req.method().as_str(), webhook_path(&req)) {
                ("POST", Some((tenant, key))) => {
                    let span = tracing::info_span!(
                        "webhook",
                        event = kind.as_str(),
                        tenant = tenant.as_str()
                    );
                    receiver
                        .receive(&tenant, &key, req.body().as_ref())
                        .instrument(span)
                        .await
                }
                ("POST", None) => Reply::error(
                    404,
                    "not_found",
                    "POST /webhooks/{tenantId}/{urlKey}/{event}",
                ),
                _ => Reply::error(405, "method_not_allowed", "webhooks are POSTed"),
            };
            http_reply(reply)
        }),
    )
    .await
}

/// Runs the push function for `kind`, triggered by its SQS queue or invoked with one command.
pub async fn run_push(kind: crate::push::command::PushKind) -> Result<(), Error> {
    let cold = cold_start(Function::Push(kind)).await?;
    let (lever, oauth) = (cold.lever(), cold.oauth());
    let uploads = cold
        .config
        .upload_bucket
        .as_deref()
        .map(|bucket| crate::files::Uploads::new(crate::files::s3_client(&cold.aws), bucket));
    let mut pusher = crate::push::Pusher::new(kind, lever, cold.store, cold.secrets, SystemClock);
    pusher.tenants.set_oauth(oauth);
    pusher.uploads = uploads;
    let pusher = &pusher;
    run_json(cold.metrics, move |payload, deadline| {
        crate::push::handle_event(pusher, payload, deadline)
    })
    .await
}

type Transcripts = crate::transcript::Transcripts<
    crate::lever::HttpLever,
    DynamoStore,
    SecretsManagerStore,
    SystemClock,
>;

fn transcripts(cold: Cold, oauth: Option<Arc<crate::lever::oauth::OAuthClient>>) -> Transcripts {
    let flush = crate::transcript::FlushConfig {
        max_note_chars: cold.config.transcript_max_note_chars,
        ..Default::default()
    };
    let mut t = crate::transcript::Transcripts::new(
        cold.lever(),
        cold.store,
        cold.secrets,
        SystemClock,
        flush,
    );
    t.tenants.set_oauth(oauth);
    t
}

/// Runs `transcript-ingest` (its SQS queue, or one message invoked directly). Its own entry point,
/// so the binary does not link the flush's rendering and time-zone data. Ingest never calls Lever.
pub async fn run_transcript_ingest() -> Result<(), Error> {
    let cold = cold_start(Function::TranscriptIngest).await?;
    let metrics = cold.metrics;
    let transcripts = &transcripts(cold, None);
    run_json(metrics, move |payload, _| {
        crate::queue::each_item(payload, 16, move |m| transcripts.ingest(m))
    })
    .await
}

/// Runs `transcript-flush` (the schedule).
pub async fn run_transcript_flush() -> Result<(), Error> {
    let cold = cold_start(Function::TranscriptFlush).await?;
    let (metrics, oauth) = (cold.metrics, cold.oauth());
    let transcripts = &transcripts(cold, oauth);
    run_json(metrics, move |_, deadline| async move {
        Ok(serde_json::to_value(transcripts.flush(deadline).await).unwrap_or_default())
    })
    .await
}

/// Runs `sync` (every minute): the due backfills and reconciliations with Lever.
pub async fn run_sync() -> Result<(), Error> {
    let cold = cold_start(Function::Sync).await?;
    let (lever, oauth) = (cold.lever(), cold.oauth());
    let config = crate::sync::SyncConfig {
        interval_ms: cold.config.sync_interval_ms,
        parked_max_days: cold.config.parked_max_days,
        ..Default::default()
    };
    let mut syncer = crate::sync::Syncer::new(lever, cold.store, cold.secrets, SystemClock, config);
    syncer.tenants.set_oauth(oauth);
    let syncer = &syncer;
    run_json(cold.metrics, move |_, deadline| async move {
        Ok(serde_json::to_value(syncer.run(deadline).await).unwrap_or_default())
    })
    .await
}

/// Runs `relay`: the table's stream (the outbox), batch by batch, onto the vendor's bus.
pub async fn run_relay() -> Result<(), Error> {
    let cold = cold_start(Function::Relay).await?;
    let relay = crate::relay::Relay::new(
        cold.store.clone(),
        cold.vendor_bus(),
        Arc::new(cold.dead_letters()),
        SystemClock,
    );
    let relay = &relay;
    run_json(cold.metrics, move |payload, _| async move {
        let answer = relay.handle_payload(payload).await?;
        Ok(serde_json::to_value(answer).unwrap_or_default())
    })
    .await
}

/// Runs an admin function serving `groups` of the onboarding API (IAM-authorised behind API
/// Gateway; open on loopback under `cargo lambda watch`).
pub async fn run_admin(group: crate::admin::http::Group) -> Result<(), Error> {
    let cold = cold_start(Function::Admin(group)).await?;
    let (lever, oauth) = (cold.lever(), cold.oauth());
    let queues = (!cold.config.push_queue_urls.is_empty()).then(|| {
        Arc::new(crate::push::parked::PushQueues::Sqs {
            client: aws_sdk_sqs::Client::new(&cold.aws),
            urls: cold.config.push_queue_urls.iter().cloned().collect(),
        })
    });
    let url_keys = match cold.config.url_key_secret {
        Some(_) => Some(cold.url_keys().await?),
        None => None,
    };
    let mut settings = crate::admin::Settings::new(&cold.config, oauth, queues, url_keys);
    if group == crate::admin::http::Group::Events {
        settings.replay = Some(Arc::new(crate::relay::dead_letters::Replayer {
            queue: Arc::new(cold.dead_letters()),
            bus: crate::events::Bus::EventBridge(cold.vendor_bus()),
        }));
    }
    let admin = crate::admin::Admin::new(lever, cold.store, cold.secrets, SystemClock, settings);
    let admin = &admin;
    let groups = [group];
    let groups = &groups;
    metrics_cloudwatch_embedded::lambda::service::run_http(
        cold.metrics,
        service_fn(move |req: Request| async move {
            let path = req.raw_http_path();
            let query = req.uri().query().unwrap_or_default();
            let deadline = deadline_of(&req.lambda_context());
            let reply = admin
                .handle_until(
                    groups.as_slice(),
                    req.method().as_str(),
                    path,
                    query,
                    req.body().as_ref(),
                    deadline,
                )
                .await;
            let mut res = respond(reply.status, reply.content_type, reply.body)?;
            if let Some(to) = reply
                .location
                .and_then(|l| lambda_http::http::HeaderValue::from_str(&l).ok())
            {
                res.headers_mut().insert("location", to);
            }
            Ok::<_, std::convert::Infallible>(res)
        }),
    )
    .await
}

/// Runs the connect pages: the admin API's logic behind HTML pages, with a browser session.
pub async fn run_pages() -> Result<(), Error> {
    let cold = cold_start(Function::ConnectPages).await?;
    let (lever, oauth) = (cold.lever(), cold.oauth());
    let queues = (!cold.config.push_queue_urls.is_empty()).then(|| {
        Arc::new(crate::push::parked::PushQueues::Sqs {
            client: aws_sdk_sqs::Client::new(&cold.aws),
            urls: cold.config.push_queue_urls.iter().cloned().collect(),
        })
    });
    let url_keys = Some(cold.url_keys().await?);
    let settings = crate::admin::Settings::new(&cold.config, oauth, queues, url_keys);
    let brand = &cold.config.brand;
    let admin = crate::admin::Admin::new(lever, cold.store, cold.secrets, SystemClock, settings);
    let admin = &admin;
    metrics_cloudwatch_embedded::lambda::service::run_http(
        cold.metrics,
        service_fn(move |req: Request| async move {
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
            let page = crate::pages::PageRequest {
                method: req.method().as_str(),
                path: req.raw_http_path(),
                query: req.uri().query().unwrap_or_default(),
                cookie: header("cookie"),
                fetch_site: header("sec-fetch-site"),
                body: req.body().as_ref(),
            };
            let deadline = deadline_of(&req.lambda_context());
            let page = crate::pages::serve_until(admin, brand, page, deadline).await;
            let mut res = Response::new(Body::Text(page.body));
            *res.status_mut() = lambda_http::http::StatusCode::from_u16(page.status)
                .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in page.headers {
                if let Ok(v) = lambda_http::http::HeaderValue::from_str(&value) {
                    res.headers_mut().append(name, v);
                }
            }
            Ok::<_, std::convert::Infallible>(res)
        }),
    )
    .await
}

/// lambda_http's tracing (and tracing-subscriber), for tests that capture log lines.
pub use lambda_http::tracing as logging;

/// The invocation's deadline less a reserve to record the outcome before Lambda stops the instance.
fn deadline_of(ctx: &lambda_http::lambda_runtime::Context) -> std::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // Lambda sends the deadline as epoch ms, always ahead of the invocation's start. cargo lambda
    // watch sends a fixed 600000 (a budget, not a time): a deadline already past is read as one,
    // capped at Lambda's 15 minutes.
    let left = match ctx.deadline.checked_sub(now_ms) {
        Some(left) => left,
        None => ctx.deadline.min(900_000),
    };
    // The reserve scales with the budget: 2 s of a long invocation, a quarter of a short one.
    let reserve = (left / 4).min(2_000);
    std::time::Instant::now() + std::time::Duration::from_millis(left - reserve)
}

/// The tenant id from API Gateway's path parameter, or from the raw path (`cargo lambda watch`
/// serves functions under `/lambda-url/<function>/...`).
/// The tenant and URL key of `/webhooks/{tenantId}/{urlKey}/{event}`: API Gateway's path
/// parameters, or the raw path (a function URL, `cargo lambda watch`).
fn webhook_path(req: &Request) -> Option<(String, String)> {
    let params = req.path_parameters();
    if let (Some(t), Some(k)) = (params.first("tenantId"), params.first("urlKey")) {
        return Some((t.to_string(), k.to_string()));
    }
    let path = req.raw_http_path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.iter().rposition(|s| *s == "webhooks")?;
    match segments.get(at + 1..at + 4)? {
        [tenant, key, _event] => Some((tenant.to_string(), key.to_string())),
        _ => None,
    }
}

fn http_reply(reply: Reply) -> Result<Response<Body>, std::convert::Infallible> {
    respond(reply.status, "application/json", reply.body.to_string())
}

fn respond(
    status: u16,
    content_type: &'static str,
    body: String,
) -> Result<Response<Body>, std::convert::Infallible> {
    let mut res = Response::new(Body::Text(body));
    *res.status_mut() = lambda_http::http::StatusCode::from_u16(status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static(content_type),
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
        let key = "0.0123456789abcdef0123456789abcdef".to_string();
        assert_eq!(webhook_path(&req), Some(("acme".into(), key.clone())));
        assert!(req.body().as_ref().starts_with(b"{\"event\""));

        let b64 = include_str!("../tests/data/apigw_v2_webhook_base64.json");
        let req = lambda_http::request::from_str(b64).expect("base64 body parses");
        assert!(
            req.body().as_ref().starts_with(b"{\"event\""),
            "base64 bodies are decoded"
        );

        let watch = include_str!("../tests/data/lambda_url_watch.json");
        let req = lambda_http::request::from_str(watch).expect("function URL request parses");
        assert_eq!(webhook_path(&req), Some(("demo".into(), key)));
    }
}
