//! `lever-bridge`: the vendor's tool for a deployed stack's admin API. Requests are signed with
//! SigV4 (service `execute-api`) with the usual AWS credentials; the API's URL comes from the
//! stack's `AdminBaseUrl` output (CloudFormation `DescribeStacks`) or `--url`. Human output by
//! default, `--json` for scripts; the exit code says what failed (see `Failure::code`).

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "lever-bridge",
    version,
    about = "Connect and run customers' Lever accounts through a lever-bridge stack"
)]
struct Cli {
    /// The admin API's base URL (default: the stack's AdminBaseUrl output).
    #[arg(long, global = true, env = "LEVER_BRIDGE_ADMIN_URL")]
    url: Option<String>,
    /// The CloudFormation stack whose AdminBaseUrl output to use.
    #[arg(
        long,
        global = true,
        default_value = "lever-bridge",
        env = "LEVER_BRIDGE_STACK"
    )]
    stack: String,
    /// Print the API's answers as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect a customer's Lever account: an API key (prompted without echo, or from stdin), or
    /// with --oauth the link for the customer's Lever admin to open.
    Connect {
        tenant: String,
        /// production, sandbox, eu (or custom, where the stack allows it).
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        oauth: bool,
    },
    /// Test the connection, permission by permission.
    Test { tenant: String },
    /// The account's users (to pick the owner from).
    Users { tenant: String },
    /// Set the Lever user writes are attributed to.
    Owner { tenant: String, user_id: String },
    /// Webhooks: register them in Lever, paste a token, rotate the URL key.
    Webhooks {
        #[command(subcommand)]
        action: Webhooks,
    },
    /// The tenant's status (webhooks, pushes, backfill, problems).
    Status {
        tenant: String,
        /// Show it again every 5 s until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Start a new backfill of every candidate.
    Sync { tenant: String },
    /// Commands parked because Lever refused the tenant's credentials.
    Parked {
        #[command(subcommand)]
        action: Parked,
    },
    /// The relay's dead-lettered events.
    Events {
        #[command(subcommand)]
        action: Events,
    },
    /// Send a command onto its push queue (from a file, or stdin), checked against its schema
    /// first; --tenant, --opportunity and --command-id replace the file's.
    Send {
        /// note, feedback, stage, archive, tagsLinks, interview or file.
        kind: String,
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        opportunity: Option<String>,
        #[arg(long)]
        command_id: Option<String>,
        /// The queue's URL (default: the stack's Push<Kind>QueueUrl output).
        #[arg(long)]
        queue_url: Option<String>,
    },
    /// A connect link for the customer's Lever admin (the connect pages); a new one revokes the last.
    ConnectLink {
        tenant: String,
        /// Revoke the tenant's link (and end its session) instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Disconnect the tenant: its secrets and data are deleted.
    Disconnect {
        tenant: String,
        /// Do not ask to confirm.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum Webhooks {
    /// Each webhook's URL, whether its token is set, and its last delivery (from the status).
    List {
        tenant: String,
    },
    Register {
        tenant: String,
    },
    /// Paste the signature token Lever shows for one event's webhook (read from stdin or prompted).
    Token {
        tenant: String,
        event: String,
    },
    RotateUrl {
        tenant: String,
    },
}

#[derive(Subcommand)]
enum Parked {
    List { tenant: String },
    Replay { tenant: String },
}

#[derive(Subcommand)]
enum Events {
    Replay {
        #[arg(long)]
        max: Option<u64>,
        #[arg(long)]
        dry_run: bool,
    },
}

/// What went wrong, and the exit code that says so.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// Exit codes: 1 other, 3 the request was refused (4xx: fix the input), 4 Lever refused or failed
/// (502), 5 the stack or a service is unavailable (503, no connection), 6 not signed or not allowed.
fn code_of(status: u16) -> u8 {
    match status {
        401 | 403 => 6,
        400..=499 => 3,
        502 => 4,
        503 | 504 => 5,
        _ => 1,
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
    aws: aws_config::SdkConfig,
}

impl Api {
    async fn new(cli: &Cli) -> Result<Api, Failure> {
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let base = match &cli.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => stack_url(&aws, &cli.stack).await?,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(35))
            .build()
            .map_err(|e| Failure::new(1, e.to_string()))?;
        Ok(Api { base, http, aws })
    }

    /// One request, signed when credentials are at hand (the local stack takes unsigned ones).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        if !body.is_empty() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        headers.extend(self.sign(method, &url, &headers, body.as_bytes()).await?);
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("a method"),
            &url,
        );
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let res = req.body(body).send().await.map_err(|e| {
            Failure::new(
                5,
                format!(
                    "cannot reach the admin API at {}: {}. Is the stack deployed (or `make dev` running)? Pass --url or --stack",
                    self.base,
                    e.without_url()
                ),
            )
        })?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            let message = value["message"]
                .as_str()
                .or(value.as_str())
                .unwrap_or("no message")
                .to_string();
            let code = value["error"].as_str().unwrap_or("error");
            return Err(Failure::new(
                code_of(status),
                format!("{code} (HTTP {status}): {message}"),
            ));
        }
        Ok(value)
    }

    async fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, Failure> {
        use aws_credential_types::provider::ProvideCredentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let Some(provider) = self.aws.credentials_provider() else {
            return Ok(Vec::new());
        };
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| Failure::new(6, format!("no AWS credentials to sign with: {e}")))?;
        let region = self
            .aws
            .region()
            .map_or("us-east-1".to_string(), |r| r.to_string());
        let identity = creds.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name("execute-api")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Failure::new(1, e.to_string()))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| Failure::new(1, e.to_string()))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| Failure::new(1, format!("signing failed: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

/// The contract's command schemas (shared/schemas/), by kind.
const COMMAND_SCHEMAS: &[(&str, &str)] = &[
    (
        "note",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/command.note.schema.json"
        )),
    ),
    (
        "feedback",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/command.feedback.schema.json"
        )),
    ),
    (
        "stage",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/command.stage.schema.json"
        )),
    ),
    (
        "archive",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/command.archive.schema.json"
        )),
    ),
    (
        "tagsLinks",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/command.tagsLinks.schema.json"
        )),
    ),
    (
        "interview",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/command.interview.schema.json"
        )),
    ),
    (
        "file",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/command.file.schema.json"
        )),
    ),
];

/// Why `command` breaks the schema of `kind`, one line per rule (empty when it keeps to it).
fn schema_errors(kind: &str, command: &Value) -> Result<Vec<String>, Failure> {
    let Some((_, text)) = COMMAND_SCHEMAS.iter().find(|(k, _)| *k == kind) else {
        let kinds: Vec<&str> = COMMAND_SCHEMAS.iter().map(|(k, _)| *k).collect();
        return Err(Failure::new(
            3,
            format!("no command kind `{kind}`: one of {}", kinds.join(", ")),
        ));
    };
    let schema: Value = serde_json::from_str(text).expect("the embedded schemas are JSON");
    let validator = jsonschema::validator_for(&schema).expect("the embedded schemas compile");
    Ok(validator
        .iter_errors(command)
        .map(|e| format!("{} {e}", e.instance_path()))
        .collect())
}

/// The queue output of a command kind: `PushTagsLinksQueueUrl` for `tagsLinks`.
fn queue_output(kind: &str) -> String {
    let mut c = kind.chars();
    let first = c.next().map(|f| f.to_ascii_uppercase()).unwrap_or_default();
    format!("Push{first}{}QueueUrl", c.as_str())
}

/// The stack's `AdminBaseUrl` output.
async fn stack_url(aws: &aws_config::SdkConfig, stack: &str) -> Result<String, Failure> {
    stack_output(aws, stack, "AdminBaseUrl").await
}

/// One of the stack's outputs.
async fn stack_output(
    aws: &aws_config::SdkConfig,
    stack: &str,
    key: &str,
) -> Result<String, Failure> {
    let cf = aws_sdk_cloudformation::Client::new(aws);
    let out = cf
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            Failure::new(
                5,
                format!(
                    "cannot read stack `{stack}`'s outputs: {}. Pass --stack NAME, or --url with the admin API's URL",
                    aws_sdk_cloudformation::error::DisplayErrorContext(&e)
                ),
            )
        })?;
    out.stacks()
        .first()
        .and_then(|s| s.outputs().iter().find(|o| o.output_key() == Some(key)))
        .and_then(|o| o.output_value())
        .map(|u| u.trim_end_matches('/').to_string())
        .ok_or_else(|| Failure::new(1, format!("stack `{stack}` has no {key} output")))
}

/// A secret from stdin when it is not a terminal, else from a prompt that does not echo.
fn secret(prompt: &str) -> Result<String, Failure> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(|e| Failure::new(1, e.to_string()))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::new(1, e.to_string()))?;
        s
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(Failure::new(3, "nothing was entered"));
    }
    Ok(value)
}

fn segment(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect()
}

/// A value as `key: value` lines, nested objects indented.
fn human(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match v {
                    Value::Object(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        human(v, indent + 2, out);
                    }
                    Value::Array(a) if a.iter().any(|x| x.is_object()) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        for x in a {
                            out.push_str(&format!("{pad}  -\n"));
                            human(x, indent + 4, out);
                        }
                    }
                    other => out.push_str(&format!("{pad}{k}: {}\n", scalar(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn print(cli: &Cli, v: &Value) {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        let mut out = String::new();
        human(v, 0, &mut out);
        print!("{out}");
    }
}

/// `send`: the command checked against its schema, then one SQS message on its kind's queue.
async fn send(
    cli: &Cli,
    kind: &str,
    file: Option<&std::path::Path>,
    ids: [(&str, &Option<String>); 3],
    queue_url: Option<&str>,
) -> Result<Value, Failure> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| Failure::new(3, format!("{}: {e}", f.display())))?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Failure::new(1, e.to_string()))?;
            s
        }
    };
    let mut command: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::new(3, format!("the command is not JSON: {e}")))?;
    for (field, value) in ids {
        if let (Some(v), Some(o)) = (value, command.as_object_mut()) {
            o.insert(field.into(), json!(v));
        }
    }
    let errors = schema_errors(kind, &command)?;
    if !errors.is_empty() {
        return Err(Failure::new(
            3,
            format!(
                "the {kind} command breaks its schema: {}",
                errors.join("; ")
            ),
        ));
    }
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let url = match queue_url {
        Some(u) => u.to_string(),
        None => stack_output(&aws, &cli.stack, &queue_output(kind)).await?,
    };
    let out = aws_sdk_sqs::Client::new(&aws)
        .send_message()
        .queue_url(&url)
        .message_body(command.to_string())
        .send()
        .await
        .map_err(|e| {
            Failure::new(
                5,
                format!(
                    "the {kind} queue did not take the command: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ),
            )
        })?;
    Ok(json!({
        "queued": out.message_id(),
        "queue": url,
        "commandId": command["commandId"],
    }))
}

/// `status --watch`: a running backfill as a progress bar, the whole status whenever none runs.
async fn watch(cli: &Cli, api: &Api, path: &str) -> Result<(), Failure> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} candidates")
            .expect("a progress template"),
    );
    loop {
        let v = api.call("GET", path, None).await?;
        let sync = &v["sync"];
        if cli.json || !sync["running"].as_bool().unwrap_or(false) {
            bar.finish_and_clear();
            print(cli, &v);
            if !cli.json {
                println!("---");
            }
        } else {
            let done = sync["done"].as_u64().unwrap_or(0);
            bar.set_length(sync["estimatedTotal"].as_u64().unwrap_or(done).max(done));
            bar.set_position(done);
            bar.set_message(format!(
                "{} {}",
                scalar(&v["tenantId"]),
                scalar(&sync["mode"])
            ));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn run(cli: &Cli) -> Result<(), Failure> {
    if let Command::Send {
        kind,
        file,
        tenant,
        opportunity,
        command_id,
        queue_url,
    } = &cli.command
    {
        let ids = [
            ("tenantId", tenant),
            ("opportunityId", opportunity),
            ("commandId", command_id),
        ];
        let answer = send(cli, kind, file.as_deref(), ids, queue_url.as_deref()).await?;
        print(cli, &answer);
        return Ok(());
    }
    let api = Api::new(cli).await?;
    let t = |id: &str| format!("/admin/tenants/{}", segment(id));
    let answer = match &cli.command {
        Command::Connect {
            tenant,
            environment,
            oauth: true,
        } => {
            let mut q = format!("tenantId={}", segment(tenant));
            if let Some(e) = environment {
                q.push_str(&format!("&environment={}", segment(e)));
            }
            let v = api
                .call("GET", &format!("/admin/oauth/authorize?{q}"), None)
                .await?;
            if !cli.json {
                println!(
                    "Send this link to the customer's Lever admin (valid 10 minutes):\n{}",
                    scalar(&v["authorizeUrl"])
                );
                return Ok(());
            }
            v
        }
        Command::Connect {
            tenant,
            environment,
            oauth: false,
        } => {
            let key = secret("Lever API key: ")?;
            let mut body = json!({"tenantId": tenant, "apiKey": key});
            if let Some(e) = environment {
                body["environment"] = json!(e);
            }
            api.call("POST", "/admin/tenants", Some(body)).await?
        }
        Command::Test { tenant } => {
            api.call("POST", &format!("{}/test", t(tenant)), None)
                .await?
        }
        Command::Users { tenant } => {
            api.call("GET", &format!("{}/users", t(tenant)), None)
                .await?
        }
        Command::Owner { tenant, user_id } => {
            api.call(
                "PUT",
                &format!("{}/owner", t(tenant)),
                Some(json!({"userId": user_id})),
            )
            .await?
        }
        Command::Webhooks { action } => match action {
            Webhooks::List { tenant } => {
                let v = api
                    .call("GET", &format!("{}/status", t(tenant)), None)
                    .await?;
                json!({"tenantId": v["tenantId"], "webhooks": v["webhooks"]})
            }
            Webhooks::Register { tenant } => {
                api.call("POST", &format!("{}/webhooks", t(tenant)), None)
                    .await?
            }
            Webhooks::Token { tenant, event } => {
                let token = secret(&format!("Signature token of the {event} webhook: "))?;
                api.call(
                    "PUT",
                    &format!("{}/webhooks/{}/token", t(tenant), segment(event)),
                    Some(json!({"token": token})),
                )
                .await?
            }
            Webhooks::RotateUrl { tenant } => {
                api.call("POST", &format!("{}/webhooks/urlKey", t(tenant)), None)
                    .await?
            }
        },
        Command::Status {
            tenant,
            watch: true,
        } => {
            return watch(cli, &api, &format!("{}/status", t(tenant))).await;
        }
        Command::Status {
            tenant,
            watch: false,
        } => {
            api.call("GET", &format!("{}/status", t(tenant)), None)
                .await?
        }
        Command::Send { .. } => unreachable!("sent above"),
        Command::Sync { tenant } => {
            api.call("POST", &format!("{}/sync", t(tenant)), None)
                .await?
        }
        Command::Parked { action } => match action {
            Parked::List { tenant } => {
                api.call("GET", &format!("{}/parked", t(tenant)), None)
                    .await?
            }
            Parked::Replay { tenant } => {
                api.call("POST", &format!("{}/parked/replay", t(tenant)), None)
                    .await?
            }
        },
        Command::Events {
            action: Events::Replay { max, dry_run },
        } => {
            let mut body = json!({"dryRun": dry_run});
            if let Some(m) = max {
                body["max"] = json!(m);
            }
            api.call("POST", "/admin/events/replay", Some(body)).await?
        }
        Command::ConnectLink {
            tenant,
            revoke: true,
        } => {
            api.call("DELETE", &format!("{}/connect-link", t(tenant)), None)
                .await?
        }
        Command::ConnectLink {
            tenant,
            revoke: false,
        } => {
            let v = api
                .call("POST", &format!("{}/connect-link", t(tenant)), None)
                .await?;
            if !cli.json {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let minutes = (v["expiresAt"].as_i64().unwrap_or(now) - now) / 60_000;
                println!(
                    "Send this link to the customer's Lever admin (it opens once, within {minutes} minutes):\n{}",
                    scalar(&v["url"])
                );
                return Ok(());
            }
            v
        }
        Command::Disconnect { tenant, yes } => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Failure::new(
                        3,
                        "disconnecting deletes the tenant's secrets and data: pass --yes to confirm",
                    ));
                }
                eprint!(
                    "Disconnect `{tenant}`? Its Lever credentials, webhook tokens and data are deleted. Type the tenant id to confirm: "
                );
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| Failure::new(1, e.to_string()))?;
                if line.trim() != tenant {
                    return Err(Failure::new(3, "not confirmed: nothing was changed"));
                }
            }
            api.call("DELETE", &t(tenant), None).await?
        }
    };
    print(cli, &answer);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("lever-bridge: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
