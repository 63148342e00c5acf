use super::*;
use std::collections::HashSet;

impl OutboxStore for DynamoStore {
    async fn relayed(&self, ids: &[String]) -> Result<HashSet<String>, StoreError> {
        let keys = ids
            .iter()
            .map(|id| (pk_relayed(id), SK_RELAYED.to_string()))
            .collect();
        Ok(self
            .get_all(keys)
            .await?
            .iter()
            .filter_map(|item| get_s(item, "eventId"))
            .collect())
    }

    async fn mark_relayed(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        let expires_at = n(expiry_secs(now_ms));
        let requests = ids
            .iter()
            .map(|id| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .item("pk", s(pk_relayed(id)))
                    .item("sk", s(SK_RELAYED))
                    .item("eventId", s(id.as_str()))
                    .item("expiresAt", expires_at.clone())
                    .build();
                build(put).map(|p| WriteRequest::builder().put_request(p).build())
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_all(requests).await
    }
}
