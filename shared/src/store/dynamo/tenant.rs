use super::*;

impl TenantStore for DynamoStore {
    async fn set_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.update_tenant_status(id, status, reason, now_ms).await
    }

    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.tenant_put(t).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn connect_tenant(&self, t: &Tenant, now_ms: i64) -> Result<(), StoreError> {
        let event = crate::events::tenant_event(&t.id, t.status, None, now_ms);
        self.tenant_put(t)
            .item(OUTBOX_ATTRIBUTE, s(crate::events::to_outbox(&[event])))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(id)))
            .key("sk", s(SK_TENANT))
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let status = get_s(item, "tenantStatus").unwrap_or_default();
        Ok(Some(Tenant {
            id: id.to_string(),
            lever_base_url: get_s(item, "leverBaseUrl")
                .ok_or_else(|| StoreError::Malformed("tenant without leverBaseUrl".into()))?,
            owner_user_id: get_s(item, "ownerUserId"),
            status: serde_json::from_value(Value::String(status))
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
            status_reason: get_s(item, "statusReason"),
            time_zone: get_s(item, "timeZone"),
            transcript_quiet_minutes: get_n(item, "transcriptQuietMinutes"),
            created_at: get_n(item, "createdAt").unwrap_or(0),
            auth: get_s(item, "authKind"),
        }))
    }

    async fn set_tenant_auth(&self, id: &str, auth: Option<&str>) -> Result<(), StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(id)))
            .key("sk", s(SK_TENANT))
            .condition_expression("attribute_exists(pk)");
        let req = match auth {
            Some(kind) => req
                .update_expression("SET authKind = :a")
                .expression_attribute_values(":a", s(kind)),
            None => req.update_expression("REMOVE authKind"),
        };
        conditional(req.send().await)?;
        Ok(())
    }

    async fn acquire_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(tenant)))
            .item("sk", s(SK_OAUTH_LEASE))
            .item("holder", s(holder))
            .item("leaseUntil", n(until_ms))
            // TTL cleans up a lease whose holder died; the condition below never relies on it.
            .item("expiresAt", n(until_ms / 1000 + 3600))
            .condition_expression("attribute_not_exists(pk) OR leaseUntil < :now")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn mark_deleted(&self, tenant: &str, until_ms: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(tenant)))
            .item("sk", s(SK_OAUTH_LEASE))
            .item("holder", s(DELETED_HOLDER))
            .item("leaseUntil", n(until_ms))
            .item("expiresAt", n(until_ms / 1000 + 3600))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn clear_deleted(&self, tenant: &str) -> Result<(), StoreError> {
        self.release_refresh_lease(tenant, DELETED_HOLDER).await
    }

    async fn release_refresh_lease(&self, tenant: &str, holder: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_OAUTH_LEASE))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        conditional(res).map(drop)
    }
}

impl DynamoStore {
    fn tenant_put(
        &self,
        t: &Tenant,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        let status = serde_json::to_value(t.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(&t.id)))
            .item("sk", s(SK_TENANT))
            .item("tenantId", s(t.id.as_str()))
            .item("leverBaseUrl", s(t.lever_base_url.as_str()))
            .item("ownerUserId", opt_s(&t.owner_user_id))
            .item("tenantStatus", s(status))
            .item("statusReason", opt_s(&t.status_reason))
            .item("timeZone", opt_s(&t.time_zone))
            .item(
                "transcriptQuietMinutes",
                t.transcript_quiet_minutes.map_or(AV::Null(true), n),
            )
            .item("createdAt", n(t.created_at))
            .item("authKind", opt_s(&t.auth))
    }

    async fn update_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let name = |s: TenantStatus| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let update = || {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk_tenant(id)))
                .key("sk", s(SK_TENANT))
                .expression_attribute_values(":s", s(name(status)))
                .expression_attribute_values(":r", s(reason))
                .expression_attribute_values(":now", n(now_ms))
        };
        // A transition the vendor is told of (see `transition_event`) carries its event; whether
        // it is one is the condition, so only the write that makes it tells it.
        let disconnected = name(TenantStatus::Disconnected);
        let transition = match status {
            TenantStatus::Disconnected => Some("tenantStatus <> :s"),
            TenantStatus::Connected => Some("tenantStatus = :d"),
            TenantStatus::Degraded => None,
        };
        if let Some(condition) = transition {
            let reason = Some(reason).filter(|r| !r.is_empty());
            let event = crate::events::tenant_event(id, status, reason, now_ms);
            let mut req = update()
                .update_expression(format!(
                    "SET tenantStatus = :s, statusReason = :r, statusAt = :now, {OUTBOX_ATTRIBUTE} = :o"
                ))
                .condition_expression(format!("attribute_exists(pk) AND {condition}"))
                .expression_attribute_values(":o", s(crate::events::to_outbox(&[event])));
            if status == TenantStatus::Connected {
                req = req.expression_attribute_values(":d", s(disconnected.as_str()));
            }
            if conditional(req.send().await)?.is_some() {
                return Ok(());
            }
        }
        let res = update()
            .update_expression("SET tenantStatus = :s, statusReason = :r, statusAt = :now")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        conditional(res).map(drop)
    }
}
