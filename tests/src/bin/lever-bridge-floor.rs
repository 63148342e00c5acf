//! The floor a webhook function is measured against (tests/benches/runtime.rs): a Lambda runtime
//! that does for each delivery only what no receiver can skip, one HMAC check of the signature and
//! one signed DynamoDB write on a kept-alive connection, and nothing else (no dedup, no tenant, no
//! secret read, no metrics, no logs).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let token = std::env::var("FLOOR_SIGNATURE_TOKEN")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let (table, token, client) = (&table, &token, &client);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let body: Value = serde_json::from_str(event.payload["body"].as_str().unwrap_or("{}"))?;
        let signed = lever_bridge::webhook::verify(
            body["signature"].as_str().unwrap_or(""),
            body["token"].as_str().unwrap_or(""),
            body["triggeredAt"].as_i64().unwrap_or(0),
            &[token],
        );
        if !signed {
            return Ok::<_, Error>(json!({"statusCode": 401}));
        }
        use aws_sdk_dynamodb::types::AttributeValue::S;
        client
            .put_item()
            .table_name(table)
            .item("pk", S(format!("FLOOR#{}", event.context.request_id)))
            .item("sk", S("#".into()))
            .send()
            .await?;
        Ok(json!({"statusCode": 200}))
    }))
    .await
}
