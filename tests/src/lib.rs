//! Test support and the local stack: AWS clients pointed at the local emulator, fresh tables,
//! tenants, and correctly signed Lever deliveries.

use aws_config::{BehaviorVersion, SdkConfig};
use lever_bridge::secrets::{Redacted, SecretStore, SecretsManagerStore, TenantSecret};
use lever_bridge::store::dynamo::{DynamoStore, create_table};
use lever_bridge::store::{Tenant, TenantStore};
use lever_bridge::webhook::{EventKind, sign};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

pub mod bus;
pub mod contract;
pub mod gateway;
pub mod openapi;
pub mod simulator;
pub mod stream;

/// AWS configuration for the local emulator. `make test` and `make dev` export `AWS_ENDPOINT_URL`;
/// without it these tests would talk to real AWS, so they refuse to run.
pub async fn aws() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run the tests with `make test`, which starts the local AWS emulator");
    assert!(
        endpoint.contains("127.0.0.1") || endpoint.contains("localhost"),
        "AWS_ENDPOINT_URL must point at the local emulator, not {endpoint}"
    );
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The names the local stack gave its table, bus and tenant secrets (`make dev` and `make test`
/// export them; the functions under `cargo lambda watch` get the same from the template).
#[derive(Debug, Clone)]
pub struct LocalStack {
    pub table: String,
    pub event_bus: String,
    pub secret_prefix: String,
}

impl LocalStack {
    /// The upload bucket (the template's UploadBucket; `lever-bridge-dev setup` makes it).
    pub fn upload_bucket(&self) -> String {
        format!("{}-uploads", self.event_bus)
    }

    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var(k).unwrap_or_else(|_| {
                panic!("{k} is not set: run with `make test` or `make dev`, which start the local stack")
            })
        };
        LocalStack {
            table: var("TABLE_NAME"),
            event_bus: var("EVENT_BUS_NAME"),
            secret_prefix: var("SECRET_PREFIX"),
        }
    }
}

/// What `infra/template_env.py` read from the template for the local stack (LEVER_BRIDGE_FUNCTIONS):
/// each function's environment and routes, and the local URL of each HTTP API.
pub fn functions_file() -> Value {
    let path = std::env::var("LEVER_BRIDGE_FUNCTIONS")
        .expect("LEVER_BRIDGE_FUNCTIONS is not set: run with `make test` or `make dev` (tests/stack.sh writes it)");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A name no other test uses, so tests run in parallel on one emulator.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A new, empty table with the production key schema.
pub async fn fresh_table(aws: &SdkConfig) -> (DynamoStore, String) {
    let client = aws_sdk_dynamodb::Client::new(aws);
    let name = unique("tbl");
    create_table(&client, &name).await.expect("table created");
    (DynamoStore::new(client, &name), name)
}

/// Makes the emulator cancel `table`'s next `times` transactions with `code` as DynamoDB does under
/// load (`TransactionConflict`, `ThrottlingError`) or for a write it refuses (`ValidationError`):
/// through `tests/moto_server.py`'s fault table.
pub async fn cancel_next_transactions(table: &str, code: &str, times: usize) {
    use aws_sdk_dynamodb::types::AttributeValue as AV;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    const FAULTS: &str = "moto-faults";
    let client = aws_sdk_dynamodb::Client::new(&aws().await);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let created = client
        .create_table()
        .table_name(FAULTS)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await;
    if let Err(e) = created {
        assert!(
            e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()),
            "{e:?}"
        );
    }
    for _ in 0..times {
        client
            .put_item()
            .table_name(FAULTS)
            .item("pk", AV::S(table.to_string()))
            .item("sk", AV::S(unique("fault")))
            .item("code", AV::S(code.to_string()))
            .send()
            .await
            .unwrap();
    }
}

/// A store a test starts empty: in memory, or DynamoDB (a fresh table) in the local emulator.
pub trait FreshStore: Sized {
    fn fresh() -> impl std::future::Future<Output = Self>;
}

impl FreshStore for DynamoStore {
    async fn fresh() -> Self {
        fresh_table(&aws().await).await.0
    }
}

impl FreshStore for lever_bridge::store::memory::InMemoryStore {
    async fn fresh() -> Self {
        Self::default()
    }
}

/// A store and the secret store tests pair it with: in memory, or DynamoDB (a fresh table) and
/// Secrets Manager (a fresh prefix) in the local emulator.
pub trait Backend:
    FreshStore
    + lever_bridge::store::WebhookStore
    + TenantStore
    + lever_bridge::store::CommandStore
    + lever_bridge::store::TranscriptStore
    + lever_bridge::store::StatsStore
    + lever_bridge::store::AdminStore
    + lever_bridge::store::SyncStore
    + lever_bridge::store::OutboxStore
    + lever_bridge::store::DeletionStore
    + Clone
    + Send
    + Sync
    + 'static
{
    type Secrets: SecretStore + Clone + Send + Sync + 'static;
    fn make() -> impl std::future::Future<Output = (Self, Self::Secrets)>;
    /// The store's stream from its start, as the relay's event source mapping reads it.
    fn tap(&self) -> impl std::future::Future<Output = stream::Tap>;
    /// A vendor bus that can be down, and the relay's dead-letter queue, of the same kind.
    fn test_bus() -> impl std::future::Future<Output = bus::TestBus>;
    /// The relay's event source mapping onto `events`, from the stream's start.
    fn mapping<E: lever_bridge::events::EventSink>(
        &self,
        events: E,
    ) -> impl std::future::Future<Output = stream::Mapping<Self, E, lever_bridge::clock::SystemClock>>
    {
        async move {
            let relay = lever_bridge::relay::Relay::new(
                self.clone(),
                events,
                std::sync::Arc::new(lever_bridge::relay::dead_letters::DeadLetterQueue::memory()),
                lever_bridge::clock::SystemClock,
            );
            stream::Mapping::new(self.tap().await, relay)
        }
    }
}

impl Backend for DynamoStore {
    type Secrets = std::sync::Arc<SecretsManagerStore>;
    async fn make() -> (Self, Self::Secrets) {
        let aws = aws().await;
        let (store, _) = fresh_table(&aws).await;
        let prefix = format!("{}/", unique("secrets"));
        let secrets = SecretsManagerStore::new(
            aws_sdk_secretsmanager::Client::new(&aws),
            prefix,
            lever_bridge::secrets::Parts::ALL,
        );
        (store, std::sync::Arc::new(secrets))
    }
    async fn tap(&self) -> stream::Tap {
        stream::Tap::dynamo(&aws().await, self.table()).await
    }
    async fn test_bus() -> bus::TestBus {
        bus::TestBus::emulated().await
    }
}

impl Backend for lever_bridge::store::memory::InMemoryStore {
    type Secrets = std::sync::Arc<lever_bridge::secrets::InMemorySecrets>;
    async fn make() -> (Self, Self::Secrets) {
        (Self::default(), Default::default())
    }
    async fn tap(&self) -> stream::Tap {
        stream::Tap::memory(self)
    }
    async fn test_bus() -> bus::TestBus {
        bus::TestBus::memory()
    }
}

/// Runs each listed test on both stores, in memory and on DynamoDB in the local emulator: each test
/// is generic over the store (`name::<Store>()`); one whose arguments differ per store lists them as
/// `name(memory args; dynamo args)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident $(($($memory:expr),*; $($dynamo:expr),*))?),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                super::$name::<lever_bridge::store::memory::InMemoryStore>($($($memory),*)?).await
            })*
        }
        mod dynamodb_emulator {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                super::$name::<lever_bridge::store::dynamo::DynamoStore>($($($dynamo),*)?).await
            })*
        }
    };
}

/// The admin CLI (`infra/cli`, the vendor's tool), as `make test` builds it.
pub fn cli_binary() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_string());
    std::path::Path::new(&target).join("debug/lever-bridge")
}

/// A benchmark's `--name value` arguments (`cargo bench … -- --tenants 50`).
pub struct BenchArgs(Vec<String>);

impl BenchArgs {
    pub fn from_env() -> Self {
        BenchArgs(std::env::args().collect())
    }

    pub fn value(&self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|x| x == name)?;
        self.0.get(i + 1).cloned()
    }

    /// A whole number, `default` when absent; anything else stops the benchmark naming it.
    pub fn number(&self, name: &str, default: usize) -> usize {
        self.value(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}"))
        })
    }
}

/// A tenant secret holding only a Lever API key.
pub fn api_key_secret(key: &str) -> TenantSecret {
    TenantSecret {
        api_key: Some(Redacted::new(key)),
        ..Default::default()
    }
}

/// Random bytes as hex, for tokens (the local stack and tests only).
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret holding `signature_token` for every event kind.
pub fn secret_for_all(signature_token: &str) -> TenantSecret {
    TenantSecret {
        api_key: Some(Redacted::new(format!("local-{}", random_hex(8)))),
        webhook_tokens: EventKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), vec![Redacted::new(signature_token)]))
            .collect(),
        ..Default::default()
    }
}

/// Creates (or replaces) a tenant: its record in the table and its secret.
pub async fn create_tenant(
    aws: &SdkConfig,
    table: &str,
    secret_prefix: &str,
    id: &str,
    secret: &TenantSecret,
    lever_base_url: &str,
) {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), table);
    store
        .put_tenant(&Tenant {
            auth: secret.auth_kind().map(str::to_string),
            ..tenant_record(id, lever_base_url, None)
        })
        .await
        .expect("tenant record written");
    SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(aws),
        secret_prefix,
        lever_bridge::secrets::Parts::ALL,
    )
    .save(id, secret)
    .await
    .expect("tenant secret written");
}

/// The webhook URL-key secret of the tests' in-process receivers and admin APIs.
pub const URL_KEY_SECRET: &str = "the tests' webhook URL key secret, 32 characters or more";

pub fn url_keys() -> lever_bridge::urlkey::UrlKeys {
    lever_bridge::urlkey::UrlKeys::new(URL_KEY_SECRET)
}

/// The tenant's URL key (first generation) under [`URL_KEY_SECRET`].
pub fn url_key(tenant: &str) -> String {
    url_keys().key(tenant, 0)
}

/// The local stack's webhook URL keys: its `<stack>/webhook-url-key` secret in the emulator.
pub async fn local_url_keys(aws: &SdkConfig, stack: &str) -> lever_bridge::urlkey::UrlKeys {
    let out = aws_sdk_secretsmanager::Client::new(aws)
        .get_secret_value()
        .secret_id(format!("{stack}/webhook-url-key"))
        .send()
        .await
        .expect("the local stack's webhook URL key secret (lever-bridge-dev setup)");
    lever_bridge::urlkey::UrlKeys::new(out.secret_string().unwrap_or_default())
}

/// A connected tenant record, connected with an API key.
pub fn tenant_record(id: &str, lever_base_url: &str, owner: Option<&str>) -> Tenant {
    Tenant {
        owner_user_id: owner.map(str::to_string),
        auth: Some("apiKey".into()),
        ..Tenant::connected(id, lever_base_url, now_ms())
    }
}

/// Time skipped ahead by [`skip_ahead`]: process-wide, so that the simulator's Lever and the
/// functions' [`SkippingClock`] agree.
static SKIPPED_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The tests' time: the system's, plus what [`skip_ahead`] has skipped.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + SKIPPED_MS.load(Ordering::SeqCst)
}

/// Moves [`now_ms`] ahead by `ms` at once: a benchmark skips the idle time between scheduled runs,
/// so a day of them takes minutes, while time runs at its real pace (Lever's rate limit with it)
/// whenever something is running.
pub fn skip_ahead(ms: i64) {
    SKIPPED_MS.fetch_add(ms.max(0), Ordering::SeqCst);
}

/// A [`lever_bridge::clock::Clock`] reading [`now_ms`]: the functions' time when a benchmark skips
/// ahead.
#[derive(Debug, Default, Clone, Copy)]
pub struct SkippingClock;

impl lever_bridge::clock::Clock for SkippingClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A delivery as Lever sends it: `token` random per delivery, signed with `signature_token`.
pub fn delivery(
    kind: EventKind,
    signature_token: &str,
    triggered_at: i64,
    data: Value,
) -> (String, Vec<u8>) {
    let token = random_hex(24);
    let body = json!({
        "token": token,
        "triggeredAt": triggered_at,
        "event": kind.as_str(),
        "signature": sign(signature_token, &token, triggered_at),
        "data": data,
    });
    (token, body.to_string().into_bytes())
}

/// A plausible `data` for each kind, keyed on one opportunity (ids as Lever shapes them).
pub fn sample_data(kind: EventKind, opportunity: &str) -> Value {
    match kind {
        EventKind::ApplicationCreated => {
            json!({"opportunityId": opportunity, "applicationId": "app-1", "postingId": "posting-1", "contactId": "contact-1"})
        }
        EventKind::CandidateStageChange => json!({
            "opportunityId": opportunity, "candidateId": opportunity, "contactId": "contact-1",
            "fromStageId": "lead-new", "toStageId": "00922a60-7c15-422b-b086-f62000824fd7"
        }),
        EventKind::CandidateArchiveChange => json!({
            "opportunityId": opportunity, "fromArchived": null,
            "toArchived": {"archivedAt": 1_700_000_000_000i64, "reason": "63dd55b2-a99f-4e7b-985f-22c7bf80ab42"}
        }),
        EventKind::CandidateHired | EventKind::CandidateDeleted => {
            json!({"opportunityId": opportunity, "contactId": "contact-1"})
        }
        EventKind::InterviewCreated | EventKind::InterviewUpdated | EventKind::InterviewDeleted => {
            json!({
                "opportunityId": opportunity, "interviewId": "iv-1", "panelId": "panel-1", "date": 1_700_000_000_000i64
            })
        }
        EventKind::ContactCreated | EventKind::ContactUpdated => {
            json!({"contactId": "contact-1", "name": "Ada Lovelace"})
        }
    }
}

/// Counts the requests an SDK client sends (each attempt), to measure round trips; in all and by
/// operation (the `X-Amz-Target` of JSON protocols such as DynamoDB's).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(
    std::sync::Arc<AtomicU64>,
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
);

impl RequestCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Requests by operation name (e.g. `UpdateItem`).
    pub fn by_operation(&self) -> std::collections::BTreeMap<String, u64> {
        self.1.lock().unwrap().clone()
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }
    fn read_before_transmit(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let target = ctx
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("other");
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        *self.1.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

/// A DynamoDB client whose requests are counted.
pub fn counted_dynamodb(aws: &SdkConfig) -> (aws_sdk_dynamodb::Client, RequestCounter) {
    let counter = RequestCounter::default();
    let config = aws_sdk_dynamodb::config::Builder::from(aws)
        .interceptor(counter.clone())
        .build();
    (aws_sdk_dynamodb::Client::from_conf(config), counter)
}

/// A deadline like an invocation's with a minute left: time for any OAuth refresh.
pub fn invocation() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(60)
}
