use super::*;

impl DynamoStore {
    /// Keys of the tenant's dedup records, from the deliveries index (keys only).
    async fn delivery_keys(&self, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut keys = Vec::new();
        for kind in crate::webhook::EventKind::ALL {
            self.query_index(
                DELIVERIES_INDEX,
                "hookKey",
                hook_key(tenant, kind),
                |items| {
                    keys.extend(
                        items
                            .iter()
                            .filter_map(|i| Some((get_s(i, "pk")?, get_s(i, "sk")?))),
                    );
                    true
                },
            )
            .await?;
        }
        Ok(keys)
    }
}

impl AdminStore for DynamoStore {
    async fn put_oauth_state(&self, p: &OAuthPending) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_oauth_state(&p.state_hash)))
            .item("sk", s(SK_OAUTH_STATE))
            .item("tenantId", s(p.tenant_id.as_str()))
            .item("environment", s(p.environment.as_str()))
            .item("stateExpiresAt", n(p.expires_at))
            .item("toPages", AV::Bool(p.return_to_pages))
            .item("expiresAt", n(p.expires_at / 1000 + 3600))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthPending>, StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk_oauth_state(state_hash)))
            .key("sk", s(SK_OAUTH_STATE))
            // Expiry is checked here, not left to TTL (which deletes late).
            .condition_expression("attribute_exists(pk) AND stateExpiresAt > :now")
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        Ok(conditional(res)?.and_then(|out| {
            out.attributes().map(|item| OAuthPending {
                state_hash: state_hash.to_string(),
                tenant_id: get_s(item, "tenantId").unwrap_or_default(),
                environment: get_s(item, "environment").unwrap_or_default(),
                expires_at: get_n(item, "stateExpiresAt").unwrap_or(0),
                return_to_pages: item
                    .get("toPages")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
            })
        }))
    }

    async fn put_connect_link(&self, l: &ConnectLink) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(&l.tenant_id)))
            .item("sk", s(SK_CONNECT_LINK))
            .item("tokenHash", s(l.token_hash.as_str()))
            .item("createdAt", n(l.created_at))
            .item("linkExpiresAt", n(l.expires_at))
            .item("sessionExpiresAt", n(l.session_expires_at))
            // Gone by TTL a day after it could last be used.
            .item(
                "expiresAt",
                n(l.expires_at.max(l.session_expires_at) / 1000 + 86_400),
            );
        if let (Some(at), Some(h)) = (l.opened_at, &l.session_hash) {
            put = put
                .item("openedAt", n(at))
                .item("sessionHash", s(h.as_str()));
        }
        put.send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn connect_link(&self, tenant: &str) -> Result<Option<ConnectLink>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_CONNECT_LINK))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item().map(|i| ConnectLink {
            tenant_id: tenant.to_string(),
            token_hash: get_s(i, "tokenHash").unwrap_or_default(),
            created_at: get_n(i, "createdAt").unwrap_or(0),
            expires_at: get_n(i, "linkExpiresAt").unwrap_or(0),
            opened_at: get_n(i, "openedAt"),
            session_hash: get_s(i, "sessionHash"),
            session_expires_at: get_n(i, "sessionExpiresAt").unwrap_or(0),
        }))
    }

    async fn open_connect_link(
        &self,
        tenant: &str,
        token_hash: &str,
        session_hash: &str,
        session_expires_at: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_CONNECT_LINK))
            .update_expression(
                "SET openedAt = :now, sessionHash = :s, sessionExpiresAt = :se, expiresAt = :ttl",
            )
            .condition_expression(
                "tokenHash = :t AND linkExpiresAt > :now AND attribute_not_exists(openedAt)",
            )
            .expression_attribute_values(":t", s(token_hash))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":s", s(session_hash))
            .expression_attribute_values(":se", n(session_expires_at))
            .expression_attribute_values(":ttl", n(session_expires_at / 1000 + 86_400))
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn delete_connect_link(&self, tenant: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_CONNECT_LINK))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.attributes().is_some())
    }

    async fn set_owner(
        &self,
        tenant: &str,
        user: &str,
        event: &crate::events::VendorEvent,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_TENANT))
            .update_expression("SET ownerUserId = :u, #outbox = :o")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#outbox", OUTBOX_ATTRIBUTE)
            .expression_attribute_values(":u", s(user))
            .expression_attribute_values(
                ":o",
                s(crate::events::to_outbox(std::slice::from_ref(event))),
            )
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn tenant_event(
        &self,
        tenant: &str,
        event: &crate::events::VendorEvent,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_TENANT))
            .update_expression("SET #outbox = :o")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#outbox", OUTBOX_ATTRIBUTE)
            .expression_attribute_values(
                ":o",
                s(crate::events::to_outbox(std::slice::from_ref(event))),
            )
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn put_postings(
        &self,
        tenant: &str,
        postings: &[PostingRecord],
    ) -> Result<(), StoreError> {
        let requests = postings
            .iter()
            .map(|p| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .item("pk", s(pk_tenant(tenant)))
                    .item("sk", s(sk_posting(&p.id)))
                    .item("postingId", s(p.id.as_str()))
                    .item("title", s(p.title.as_str()))
                    .item("postingState", opt_s(&p.state))
                    .item("confidential", AV::Bool(p.confidential))
                    .item("gone", AV::Bool(p.gone))
                    .item("syncedAt", n(p.synced_at));
                Ok(WriteRequest::builder()
                    .put_request(build(put.build())?)
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_all(requests).await
    }

    async fn postings(&self, tenant: &str) -> Result<Vec<PostingRecord>, StoreError> {
        let items = self.query_prefix(&pk_tenant(tenant), SK_POSTING).await?;
        Ok(items
            .iter()
            .map(|i| PostingRecord {
                id: get_s(i, "postingId").unwrap_or_default(),
                title: get_s(i, "title").unwrap_or_default(),
                state: get_s(i, "postingState"),
                confidential: i
                    .get("confidential")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
                gone: i
                    .get("gone")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
                synced_at: get_n(i, "syncedAt").unwrap_or(0),
            })
            .collect())
    }

    async fn set_role(
        &self,
        tenant: &str,
        role: &str,
        posting: Option<&str>,
    ) -> Result<(), StoreError> {
        let pk = s(pk_tenant(tenant));
        let sk = s(sk_role(role));
        match posting {
            Some(p) => {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", pk)
                    .item("sk", sk)
                    .item("roleId", s(role))
                    .item("postingId", s(p))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", pk)
                    .key("sk", sk)
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }

    async fn roles(&self, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
        let items = self.query_prefix(&pk_tenant(tenant), SK_ROLE).await?;
        Ok(items
            .iter()
            .filter_map(|i| Some((get_s(i, "roleId")?, get_s(i, "postingId")?)))
            .collect())
    }

    async fn delete_tenant_data(&self, tenant: &str) -> Result<(), StoreError> {
        let mut keys: Vec<(String, String)> = Vec::new();
        for pk in [pk_tenant(tenant), pk_parked(tenant)] {
            keys.extend(
                self.query_all(&pk)
                    .await?
                    .iter()
                    .filter_map(|i| Some((get_s(i, "pk")?, get_s(i, "sk")?))),
            );
        }
        keys.extend(self.delivery_keys(tenant).await?);
        // The lease stays: the deletion holds it, and turns it into the deleted tenant's mark.
        keys.retain(|(_, sk)| sk != SK_OAUTH_LEASE);
        keys.sort();
        keys.dedup();
        self.delete_all(keys).await
    }
}
