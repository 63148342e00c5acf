//! The table's key layout, in one place: one table, `pk`/`sk` strings, TTL on `expiresAt`.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | tenant | `T#<tenant>` | `#TENANT` |
//! | tenant figures; last rejection per webhook kind | `T#<tenant>` | `#STATS`; `REJECT#<event>` |
//! | secret lease (OAuth refresh, secret writes); pending OAuth authorization | `T#<tenant>` / `OAUTH#<state hash>` | `#OAUTHLEASE` / `#OAUTHSTATE` |
//! | sync job | `T#<tenant>` | `#SYNC` |
//! | connect link and its browser session (token hashes) | `T#<tenant>` | `#CONNECTLINK` |
//! | postings and the vendor's roles | `T#<tenant>` | `POSTING#<id>`, `ROLE#<roleId>` |
//! | dedup record of a delivery (a deletion pending Lever's word, too) | `T#<tenant>#D#<token>` | `#DEDUP` |
//! | candidate (stage, archive, hired; tombstone once deleted) | `T#<tenant>#O#<opportunity>` | `#CANDIDATE` |
//! | application / interview of a candidate | `T#<tenant>#O#<opportunity>` | `APP#<id>` / `IV#<id>` |
//! | SMS conversation and its messages | `T#<tenant>#O#<opportunity>` | `#CONV`, `MSG#<sentAt>#<messageId>` |
//! | contact | `T#<tenant>#C#<contact>` | `#CONTACT` |
//! | push command | `T#<tenant>#CMD#<commandId>` | `#CMD` |
//! | parked commands of a tenant | `T#<tenant>#PARKED` | `<commandId>` |
//! | vendor interview → Lever panel | `T#<tenant>#IVMAP#<interviewId>` | `#MAP` |
//! | an event the relay published | `RELAYED#<event id>` | `#RELAYED` |
//!
//! Every item that owes the vendor events carries them in `outbox` (a JSON array), written with
//! the change they report; the table's stream (new and old images) takes them to the relay.
//!
//! Indexes: `due` (`dueShard`, `dueAt`; sparse), `deliveries` (`hookKey`, `triggeredAt`; keys only)
//! and `contacts` (`contactKey`; sparse, keys only: the candidates of a contact).
//! Attribute names are compound words so none is a DynamoDB reserved word.

use super::*;
use aws_sdk_dynamodb::Client;

pub(super) const SK_CANDIDATE: &str = "#CANDIDATE";
pub(super) const SK_DEDUP: &str = "#DEDUP";
pub(super) const SK_CONTACT: &str = "#CONTACT";
pub(super) const SK_TENANT: &str = "#TENANT";
pub(super) const SK_OAUTH_LEASE: &str = "#OAUTHLEASE";
pub(super) const SK_OAUTH_STATE: &str = "#OAUTHSTATE";
pub(super) const SK_SYNC: &str = "#SYNC";
pub(super) const SK_CONNECT_LINK: &str = "#CONNECTLINK";
/// The `due` index partition of sync jobs (conversations use `DUE#<n>`).
pub(super) const SYNC_SHARD: &str = "SYNC";
/// The `due` index partition of `candidateDeleted` deliveries waiting for Lever's word.
pub(super) const DELETION_SHARD: &str = "DELETE";

pub(super) fn pk_opp(t: &str, o: &str) -> String {
    format!("T#{t}#O#{o}")
}
pub(super) fn pk_dedup(d: &Delivery<'_>) -> String {
    format!("T#{}#D#{}", d.tenant, d.token)
}
pub(super) fn pk_pending_deletion(p: &PendingDeletion) -> String {
    format!("T#{}#D#{}", p.tenant, p.token)
}
pub(super) fn pk_tenant(t: &str) -> String {
    format!("T#{t}")
}
/// What the relay published: one small item per event id.
pub(super) fn pk_relayed(event_id: &str) -> String {
    format!("RELAYED#{event_id}")
}
pub(super) const SK_RELAYED: &str = "#RELAYED";
pub(super) fn pk_oauth_state(state_hash: &str) -> String {
    format!("OAUTH#{state_hash}")
}
pub(super) const SK_APPLICATION: &str = "APP#";
pub(super) const SK_INTERVIEW: &str = "IV#";
pub(super) fn sk_application(application: &str) -> String {
    format!("{SK_APPLICATION}{application}")
}
pub(super) fn sk_interview(interview: &str) -> String {
    format!("{SK_INTERVIEW}{interview}")
}
pub(super) fn sk_rejection(kind: crate::webhook::EventKind) -> String {
    format!("REJECT#{}", kind.as_str())
}
pub(super) fn pk_contact(t: &str, c: &str) -> String {
    format!("T#{t}#C#{c}")
}

pub(super) fn pk_command(t: &str, id: &str) -> String {
    format!("T#{t}#CMD#{id}")
}
pub(super) fn pk_parked(t: &str) -> String {
    format!("T#{t}#PARKED")
}
pub(super) fn pk_interview_map(t: &str, id: &str) -> String {
    format!("T#{t}#IVMAP#{id}")
}
pub(super) const SK_COMMAND: &str = "#CMD";
pub(super) const SK_MAP: &str = "#MAP";

pub(super) const SK_CONVERSATION: &str = "#CONV";
/// Index of accepted deliveries per tenant and kind, by `triggeredAt` (keys only).
pub const DELIVERIES_INDEX: &str = "deliveries";
pub(super) const SK_STATS: &str = "#STATS";

pub(super) fn hook_key(tenant: &str, kind: crate::webhook::EventKind) -> String {
    format!("T#{tenant}#K#{}", kind.as_str())
}
/// Index of candidates by their contact (`contactKey`, the contact item's `pk`; keys only): a
/// Lever contact may have several opportunities, and its item is kept while one is stored.
pub const CONTACTS_INDEX: &str = "contacts";

/// Index of conversations waiting for their transcript: sparse (only conversations with messages
/// to post carry `dueShard`), sharded so no partition is hot, sorted by `dueAt`.
pub const DUE_INDEX: &str = "due";
pub(super) const DUE_SHARDS: u64 = 8;

pub(super) const SK_MESSAGE: &str = "MSG#";
pub(super) fn sk_message(m: &Message) -> String {
    format!("{SK_MESSAGE}{:013}#{}", m.sent_at, m.message_id)
}

pub(super) fn due_partition(shard: u64) -> String {
    format!("DUE#{shard}")
}

pub(super) fn due_shard(key: &ConversationKey) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{}/{}", key.tenant, key.opportunity).as_bytes());
    due_partition(u64::from(h[0]) % DUE_SHARDS)
}

pub(super) const SK_POSTING: &str = "POSTING#";
pub(super) const SK_ROLE: &str = "ROLE#";
pub(super) fn sk_posting(id: &str) -> String {
    format!("{SK_POSTING}{id}")
}
pub(super) fn sk_role(role: &str) -> String {
    format!("{SK_ROLE}{role}")
}

/// Creates the table as the SAM template does (local stack and tests only).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType as T, TimeToLiveSpecification,
    };
    let attr = |name: &str, t: T| {
        build(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(t)
                .build(),
        )
    };
    let key = |name: &str, kt| {
        build(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build(),
        )
    };
    let due = GlobalSecondaryIndex::builder()
        .index_name(DUE_INDEX)
        .key_schema(key("dueShard", KeyType::Hash)?)
        .key_schema(key("dueAt", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("tenantId")
                .non_key_attributes("opportunityId")
                .build(),
        );
    let deliveries = GlobalSecondaryIndex::builder()
        .index_name(DELIVERIES_INDEX)
        .key_schema(key("hookKey", KeyType::Hash)?)
        .key_schema(key("triggeredAt", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        );
    let contacts = GlobalSecondaryIndex::builder()
        .index_name(CONTACTS_INDEX)
        .key_schema(key("contactKey", KeyType::Hash)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        );
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", T::S)?)
        .attribute_definitions(attr("sk", T::S)?)
        .attribute_definitions(attr("dueShard", T::S)?)
        .attribute_definitions(attr("dueAt", T::N)?)
        .attribute_definitions(attr("hookKey", T::S)?)
        .attribute_definitions(attr("triggeredAt", T::N)?)
        .attribute_definitions(attr("contactKey", T::S)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(build(due.build())?)
        .global_secondary_indexes(build(deliveries.build())?)
        .global_secondary_indexes(build(contacts.build())?)
        // The outbox: the relay reads what each write added to an item's `outbox`.
        .stream_specification(build(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
                .build(),
        )?)
        .send()
        .await;
    match created {
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(unavailable(e)),
        Ok(_) => {}
    }
    let ttl = build(
        TimeToLiveSpecification::builder()
            .attribute_name("expiresAt")
            .enabled(true)
            .build(),
    )?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
