//! Lever's Data API (v1): one request primitive ([`LeverApi::send`]) with rate limiting, retries and
//! typed errors, and the calls the bundle makes on top of it ([`calls`]).
//!
//! Writes that create something (a note, feedback, a panel) are not retried after the request may
//! have reached Lever (timeout, dropped connection, 5xx other than 503): the error says
//! [`LeverError::outcome_unknown`], and the caller reconciles before trying again.

pub mod calls;
pub mod models;
pub mod oauth;
mod ratelimit;

pub use ratelimit::RateLimiter;

use crate::secrets::Redacted;
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// Lever's environments (lever-api.md §2).
pub const PRODUCTION: &str = "https://api.lever.co/v1";
pub const SANDBOX: &str = "https://api.sandbox.lever.co/v1";
/// UNCERTAIN: Lever's EU host is not confirmed by a recording.
pub const EU: &str = "https://api.eu.lever.co/v1";

#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP Basic with the key as user name and an empty password.
    ApiKey(Redacted),
    /// OAuth access token.
    Bearer(Redacted),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::ApiKey(_) => "ApiKey([redacted])",
            Auth::Bearer(_) => "Bearer([redacted])",
        })
    }
}

impl Auth {
    /// A stable, non-secret name for the credential: the rate limiter's bucket key and a log field.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let secret = match self {
            Auth::ApiKey(k) | Auth::Bearer(k) => k.expose(),
        };
        hex::encode(&sha2::Sha256::digest(secret.as_bytes())[..8])
    }
}

/// A customer's Lever account as the client sees it.
#[derive(Debug, Clone)]
pub struct Account {
    pub base_url: String,
    pub auth: Auth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// One call to Lever.
#[derive(Debug, Clone)]
pub struct LeverRequest {
    pub method: Method,
    /// Below the base URL, e.g. `/opportunities/<id>/notes`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Whether sending it twice has the effect of sending it once (reads, PUTs, DELETEs, tag sets).
    pub idempotent: bool,
    /// A file sent as `multipart/form-data` (its `file` field) instead of a JSON body.
    pub upload: Option<std::sync::Arc<Upload>>,
}

/// A file to upload. Its bytes are streamed from `source`, opened again for each attempt, so no
/// attempt holds the whole file in memory.
pub struct Upload {
    pub name: String,
    pub content_type: String,
    pub length: u64,
    pub source: std::sync::Arc<dyn FileSource>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// Where an upload's bytes come from (an S3 object: `crate::files`).
pub trait FileSource: Send + Sync {
    /// A fresh stream of the file's bytes.
    fn open(&self) -> futures::future::BoxFuture<'_, Result<reqwest::Body, String>>;
}

impl LeverRequest {
    pub fn get(path: impl Into<String>) -> Self {
        LeverRequest {
            method: Method::Get,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent: true,
            upload: None,
        }
    }
    /// A file upload: creates something, not safe to repeat blindly.
    pub fn upload(path: impl Into<String>, upload: Upload) -> Self {
        LeverRequest {
            method: Method::Post,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent: false,
            upload: Some(std::sync::Arc::new(upload)),
        }
    }
    /// A write that creates something: not safe to repeat blindly.
    pub fn create(path: impl Into<String>, body: Value) -> Self {
        LeverRequest {
            method: Method::Post,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            idempotent: false,
            upload: None,
        }
    }
    pub fn put(path: impl Into<String>, body: Value) -> Self {
        LeverRequest {
            method: Method::Put,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            idempotent: true,
            upload: None,
        }
    }
    /// A POST whose effect is a set operation (addTags, addLinks): repeating it changes nothing.
    pub fn post_idempotent(path: impl Into<String>, body: Value) -> Self {
        LeverRequest {
            method: Method::Post,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            idempotent: true,
            upload: None,
        }
    }
    pub fn delete(path: impl Into<String>) -> Self {
        LeverRequest {
            method: Method::Delete,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent: true,
            upload: None,
        }
    }
    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_string(), v.into()));
        self
    }
    pub fn perform_as(self, user: Option<&str>) -> Self {
        match user {
            Some(u) => self.query("perform_as", u),
            None => self,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeverError {
    /// 401: the key is wrong or was deleted; the tenant must reconnect.
    #[error("Lever rejected the credentials (401): {0}")]
    Unauthorized(String),
    /// 403: the key lacks a permission.
    #[error("Lever refused: the API key lacks a permission (403): {0}")]
    Forbidden(String),
    #[error("not found in Lever (404): {0}")]
    NotFound(String),
    /// 400, 422 and other 4xx: the request itself is wrong.
    #[error("Lever rejected the request ({status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    #[error("Lever's rate limit (429) held after retries")]
    RateLimited,
    /// 5xx. `sent` is false for 503 (maintenance: nothing was done).
    #[error("Lever failed ({status}): {message}")]
    Server { status: u16, message: String },
    /// No answer: `maybe_applied` when the request may have reached Lever.
    #[error("no answer from Lever: {message}")]
    Transport {
        message: String,
        maybe_applied: bool,
    },
    #[error("the time left for this invocation ran out")]
    Deadline,
    #[error("Lever's answer could not be read: {0}")]
    Decode(String),
}

impl LeverError {
    /// Worth trying again later (the command goes back to its queue).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LeverError::RateLimited
                | LeverError::Server { .. }
                | LeverError::Transport { .. }
                | LeverError::Deadline
        )
    }
    /// The write may have happened although no success was seen: reconcile before repeating it.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            LeverError::Transport { maybe_applied, .. } => *maybe_applied,
            LeverError::Server { status, .. } => *status != 503,
            LeverError::Decode(_) => true,
            _ => false,
        }
    }
}

/// The one primitive every Lever call goes through; tests fake it, production sends HTTP.
pub trait LeverApi: Send + Sync {
    /// Sends `req` for `account`, giving up at `deadline`. Answers the parsed JSON body (Null for 204).
    fn send(
        &self,
        account: &Account,
        req: LeverRequest,
        deadline: Instant,
    ) -> impl Future<Output = Result<Value, LeverError>> + Send;
}

impl<T: LeverApi + ?Sized> LeverApi for std::sync::Arc<T> {
    fn send(
        &self,
        account: &Account,
        req: LeverRequest,
        deadline: Instant,
    ) -> impl Future<Output = Result<Value, LeverError>> + Send {
        (**self).send(account, req, deadline)
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Per-request timeout (shortened near the deadline).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(8),
            timeout: Duration::from_secs(15),
        }
    }
}

/// The HTTP client: one per cold start, shared by every tenant.
pub struct HttpLever {
    http: reqwest::Client,
    limiter: RateLimiter,
    retry: RetryPolicy,
}

impl HttpLever {
    pub fn new(limiter: RateLimiter, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("lever-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        HttpLever {
            http,
            limiter,
            retry,
        }
    }

    async fn attempt(
        &self,
        account: &Account,
        req: &LeverRequest,
        timeout: Duration,
    ) -> Result<(Value, Option<Duration>), (LeverError, Option<Duration>)> {
        let url = format!("{}{}", account.base_url.trim_end_matches('/'), req.path);
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut b = self
            .http
            .request(method, url)
            .query(&req.query)
            .timeout(timeout);
        b = match &account.auth {
            Auth::ApiKey(k) => b.basic_auth(k.expose(), Some("")),
            Auth::Bearer(t) => b.bearer_auth(t.expose()),
        };
        if let Some(body) = &req.body {
            b = b.json(body);
        }
        if let Some(up) = &req.upload {
            // Nothing was sent when the file cannot be read.
            let stream = up.source.open().await.map_err(|message| {
                let err = LeverError::Transport {
                    message: format!("the file could not be read: {message}"),
                    maybe_applied: false,
                };
                (err, None)
            })?;
            let part = reqwest::multipart::Part::stream_with_length(stream, up.length)
                .file_name(up.name.clone())
                .mime_str(&up.content_type)
                .map_err(|e| (transport(&e), None))?;
            b = b.multipart(reqwest::multipart::Form::new().part("file", part));
        }
        let res = b.send().await.map_err(|e| (transport(&e), None))?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        let bytes = res.bytes().await.map_err(|e| (transport(&e), None))?;
        if (200..300).contains(&status) {
            if bytes.is_empty() {
                return Ok((Value::Null, None));
            }
            return serde_json::from_slice(&bytes)
                .map(|v| (v, None))
                .map_err(|e| (LeverError::Decode(e.to_string()), None));
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = body
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        let err = match status {
            401 => LeverError::Unauthorized(message),
            403 => LeverError::Forbidden(message),
            404 => LeverError::NotFound(message),
            429 => LeverError::RateLimited,
            500..=599 => LeverError::Server { status, message },
            _ => LeverError::Rejected {
                status,
                code,
                message,
            },
        };
        Err((err, retry_after))
    }
}

/// An upload may take the time left (30 MB at a slow link is longer than a JSON call's timeout).
fn timeout_for(req: &LeverRequest, retry: &RetryPolicy, left: Duration) -> Duration {
    if req.upload.is_some() {
        left
    } else {
        retry.timeout.min(left)
    }
}

/// The longest pause a `Retry-After` may ask for; longer asks are capped (the deadline decides).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A `Retry-After` value: seconds (fractions accepted) or an HTTP-date (RFC 9110 §10.2.3), as a pause
/// from `now` of at most [`MAX_RETRY_AFTER`]. Anything else (`NaN`, negative, garbage) is no advice.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let pause = match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s.min(60.0)),
        Ok(_) => return None,
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or_default(),
    };
    Some(pause.min(MAX_RETRY_AFTER))
}

fn transport(e: &reqwest::Error) -> LeverError {
    // A connect failure means nothing was sent; anything later may have reached Lever.
    LeverError::Transport {
        message: without_url(e),
        maybe_applied: !e.is_connect(),
    }
}

/// reqwest's message without the URL (which holds tenant ids, never keys, but keep logs plain).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "the connection failed"
    };
    kind.to_string()
}

/// Whether to try `err` again: reads and set operations on any retryable error; creating writes only
/// when Lever surely did nothing (429, 503, no connection).
fn should_retry(req: &LeverRequest, err: &LeverError) -> bool {
    err.is_retryable() && err != &LeverError::Deadline && (req.idempotent || !err.outcome_unknown())
}

impl LeverApi for HttpLever {
    async fn send(
        &self,
        account: &Account,
        req: LeverRequest,
        deadline: Instant,
    ) -> Result<Value, LeverError> {
        let key = account.auth.fingerprint();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let wait = self.limiter.reserve(&key);
            if Instant::now() + wait >= deadline {
                return Err(LeverError::Deadline);
            }
            tokio::time::sleep(wait).await;
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(50) {
                return Err(LeverError::Deadline);
            }
            let (err, retry_after) = match self
                .attempt(account, &req, timeout_for(&req, &self.retry, left))
                .await
            {
                Ok((v, _)) => return Ok(v),
                Err(e) => e,
            };
            if err == LeverError::RateLimited {
                metrics::counter!("Lever429").increment(1);
                self.limiter.penalize(&key);
            }
            if attempt >= self.retry.max_attempts || !should_retry(&req, &err) {
                return Err(err);
            }
            // Full jitter: a random pause up to the exponential bound, or Lever's Retry-After.
            let bound = self
                .retry
                .cap
                .min(self.retry.base * 2u32.saturating_pow(attempt - 1));
            let pause = retry_after.unwrap_or_else(|| bound.mul_f64(fastrand::f64()));
            if Instant::now() + pause >= deadline {
                return Err(err);
            }
            tracing::debug!(attempt, error = %err, pause_ms = pause.as_millis() as u64, "retrying a Lever call");
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_ignores_the_rest() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let at = |v| retry_after(v, now);
        assert_eq!(at("2"), Some(Duration::from_secs(2)));
        assert_eq!(at(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(at("3600"), Some(MAX_RETRY_AFTER));
        for nonsense in ["NaN", "nan", "inf", "-1", "-inf", "soon", ""] {
            assert_eq!(at(nonsense), None, "{nonsense}");
        }
        assert_eq!(
            at("Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            at("Sunday, 06-Nov-94 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            at("Sun Nov  6 08:50:07 1994"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            at("Sun, 06 Nov 1994 08:49:00 GMT"),
            Some(Duration::ZERO),
            "a date passed"
        );
        assert_eq!(at("Mon, 07 Nov 1994 08:49:37 GMT"), Some(MAX_RETRY_AFTER));
    }

    /// Lever (or a proxy before it) answering `Retry-After: NaN` used to panic the function
    /// (`Duration::from_secs_f64`); now it is no advice, and the retry waits its own backoff.
    #[tokio::test]
    async fn a_nonsense_retry_after_is_retried_not_a_panic() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let answers = [
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: NaN\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"data\":[]}",
            ];
            for answer in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await.unwrap();
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let lever = HttpLever::new(RateLimiter::new(10.0, 20), RetryPolicy::default());
        let account = Account {
            base_url: format!("http://127.0.0.1:{port}"),
            auth: Auth::ApiKey(Redacted::new("k")),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = lever
            .send(&account, LeverRequest::get("/users"), deadline)
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({"data": []}));
    }

    #[test]
    fn credentials_never_print() {
        let a = Account {
            base_url: PRODUCTION.into(),
            auth: Auth::ApiKey(Redacted::new("super-secret-key")),
        };
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("super-secret-key"), "{dbg}");
        assert_eq!(a.auth.fingerprint().len(), 16);
        assert!(!a.auth.fingerprint().contains("super"));
    }

    #[test]
    fn creating_writes_are_not_repeated_when_they_may_have_landed() {
        let note =
            LeverRequest::create("/opportunities/o/notes", serde_json::json!({"value": "x"}));
        let read = LeverRequest::get("/opportunities/o");
        let timeout = LeverError::Transport {
            message: "timed out".into(),
            maybe_applied: true,
        };
        let refused = LeverError::Transport {
            message: "could not connect".into(),
            maybe_applied: false,
        };
        let boom = LeverError::Server {
            status: 500,
            message: String::new(),
        };
        let maintenance = LeverError::Server {
            status: 503,
            message: String::new(),
        };
        assert!(!should_retry(&note, &timeout) && !should_retry(&note, &boom));
        assert!(
            should_retry(&note, &refused)
                && should_retry(&note, &maintenance)
                && should_retry(&note, &LeverError::RateLimited)
        );
        assert!(should_retry(&read, &timeout) && should_retry(&read, &boom));
        assert!(!should_retry(&read, &LeverError::Forbidden(String::new())));
        assert!(
            timeout.outcome_unknown()
                && !refused.outcome_unknown()
                && !LeverError::RateLimited.outcome_unknown()
        );
    }
}
