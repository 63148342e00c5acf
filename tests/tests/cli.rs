//! The vendor's admin tool (`lever-bridge`, infra/cli) against the local stack's admin API (the
//! stand-in for API Gateway that `make test` starts): connect → test → owner → webhooks → status
//! against the Lever simulator, and a one-line error with a non-zero exit for a wrong key, an
//! unknown tenant and a stack that is not running.

use lever_bridge_tests::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn admin_url() -> String {
    std::env::var("LEVER_BRIDGE_ADMIN_API")
        .expect("LEVER_BRIDGE_ADMIN_API is not set: run the tests with `make test`")
}

/// Runs the tool with `args` (and `stdin`): exit code, stdout, stderr.
fn cli(url: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(cli_binary())
        .arg("--url")
        .arg(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (built by `make test`)", cli_binary().display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok_json(url: &str, args: &[&str], stdin: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = cli(url, &all, stdin);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn the_tool_walks_a_tenant_from_connect_to_status() {
    let url = admin_url();
    let tenant = unique("cli");
    // The stack's simulator takes the demo key; `custom` is its environment.
    let connected = ok_json(
        &url,
        &["connect", &tenant, "--environment", "custom"],
        "demo-key\n",
    );
    assert_eq!(connected["tenantId"], tenant.as_str(), "{connected}");
    ok_json(&url, &["test", &tenant], "");
    let users = ok_json(&url, &["users", &tenant], "");
    let owner = users["users"]
        .as_array()
        .and_then(|u| u.first())
        .and_then(|u| u["id"].as_str())
        .expect("a user")
        .to_string();
    ok_json(&url, &["owner", &tenant, &owner], "");
    ok_json(&url, &["webhooks", "register", &tenant], "");
    let listed = ok_json(&url, &["webhooks", "list", &tenant], "");
    assert_eq!(
        listed["webhooks"].as_array().map(Vec::len),
        Some(10),
        "{listed}"
    );
    // A command from the samples onto push-note's queue (the stack's mapping carries it out).
    let queue = format!(
        "{}/123456789012/{}-push-note",
        std::env::var("AWS_ENDPOINT_URL").unwrap(),
        std::env::var("STACK_NAME").unwrap()
    );
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/events/command.note.json");
    let command_id = unique("cli-note");
    let sent = ok_json(
        &url,
        &[
            "send",
            "note",
            "--file",
            sample,
            "--tenant",
            &tenant,
            "--command-id",
            &command_id,
            "--queue-url",
            &queue,
        ],
        "",
    );
    assert!(sent["queued"].is_string(), "{sent}");
    let mut done = 0;
    for _ in 0..120 {
        let status = ok_json(&url, &["status", &tenant], "");
        done = status["pushes"]["pushesDone"].as_u64().unwrap_or(0);
        if done >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(done, 1, "the sent note was carried out");
    // A command that breaks its schema is refused before anything is queued.
    let (code, _, err) = cli(
        &url,
        &["send", "note", "--queue-url", &queue],
        r#"{"commandId": "c", "tenantId": "t", "opportunityId": "o", "text": 5}"#,
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with("lever-bridge: the note command breaks its schema: /text"),
        "{err}"
    );
    // admin-status, as its role confines it (the tenant's /webhooks secret only), names the kind
    // of credentials from the tenant record.
    assert_eq!(ok_json(&url, &["status", &tenant], "")["auth"], "apiKey");
    let (code, out, err) = cli(&url, &["status", &tenant], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("tenantId: {tenant}")),
        "human output: {out}"
    );
    let (code, _, err) = cli(&url, &["disconnect", &tenant], "");
    assert_eq!(code, 3, "no confirmation without a terminal: {err}");
    ok_json(&url, &["disconnect", &tenant, "--yes"], "");
}

#[test]
fn what_fails_says_so_in_one_line_and_exits_non_zero() {
    let url = admin_url();
    let one_line = |err: &str| err.trim().lines().count() == 1 && err.starts_with("lever-bridge: ");
    let (code, _, err) = cli(
        &url,
        &["connect", &unique("cli-bad"), "--environment", "custom"],
        "not-a-key\n",
    );
    assert!(code == 3 && one_line(&err), "wrong key: {code} {err}");
    assert!(err.contains("invalid_api_key"), "{err}");
    let (code, _, err) = cli(&url, &["status", "no-such-tenant"], "");
    assert!(code == 3 && one_line(&err), "unknown tenant: {code} {err}");
    assert!(err.contains("unknown_tenant"), "{err}");
    let (code, _, err) = cli("http://127.0.0.1:9", &["status", "acme"], "");
    assert!(code == 5 && one_line(&err), "no stack: {code} {err}");
    assert!(err.contains("cannot reach the admin API"), "{err}");
}
