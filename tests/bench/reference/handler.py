"""The candidateStageChange webhook as most teams would write it in Python 3.11 with Powertools.

The reference the Rust function is measured against (`make bench`): the same work, done the usual
way. API Gateway HTTP API (payload 2.0) event in; the tenant's signature tokens from Secrets Manager
(Powertools parameters, cached per instance for 5 minutes, re-read once on a mismatch); Lever's
signature checked with hmac; the Powertools Idempotency utility (DynamoDB persistence layer) keyed
on Lever's delivery token; the candidate's stage updated in DynamoDB, guarded by triggeredAt; one
vendor event published to EventBridge. Clients are built once per instance, at import.

Environment: TABLE_NAME, EVENT_BUS_NAME, SECRET_PREFIX (as the Rust functions read them) and
IDEMPOTENCY_TABLE_NAME (Powertools' table: partition key `id`, TTL on `expiration`).
"""

import hashlib
import hmac
import json
import os
import time

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import ClientError

KIND = "candidateStageChange"
MAX_BODY_BYTES = 256 * 1024
MAX_AGE_MS = 15 * 24 * 3600 * 1000
MAX_SKEW_MS = 5 * 60 * 1000
SECRET_TTL_SECONDS = 300

TABLE = os.environ["TABLE_NAME"]
BUS = os.environ["EVENT_BUS_NAME"]
SECRET_PREFIX = os.environ["SECRET_PREFIX"]

logger = Logger(service="lever-bridge")
metrics = Metrics(namespace="LeverBridge", service="lever-bridge")
dynamodb = boto3.client("dynamodb")
events = boto3.client("events")
secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
persistence = DynamoDBPersistenceLayer(
    table_name=os.environ["IDEMPOTENCY_TABLE_NAME"], boto3_client=dynamodb
)
# Lever re-runs deliveries for two weeks: keep the records as long.
idempotency = IdempotencyConfig(
    event_key_jmespath="token", expires_after_seconds=15 * 24 * 3600
)


def reply(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def error(status, code, message):
    return reply(status, {"error": code, "message": message})


def signature_tokens(tenant, force=False):
    secret = secrets.get(
        SECRET_PREFIX + tenant + "/webhooks",
        transform="json",
        max_age=SECRET_TTL_SECONDS,
        force_fetch=force,
    )
    tokens = (secret.get("webhookTokens") or {}).get(KIND) or []
    return [tokens] if isinstance(tokens, str) else tokens


def signed(tokens, delivery):
    message = (delivery["token"] + str(delivery["triggeredAt"])).encode()
    expected = delivery["signature"]
    return any(
        hmac.compare_digest(
            hmac.new(t.encode(), message, hashlib.sha256).hexdigest(), expected
        )
        for t in tokens
        if t
    )


def verified(tenant, delivery):
    try:
        if signed(signature_tokens(tenant), delivery):
            return True
        return signed(signature_tokens(tenant, force=True), delivery)
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise


@idempotent_function(
    data_keyword_argument="delivery",
    persistence_store=persistence,
    config=idempotency,
)
def apply(tenant, delivery):
    data = delivery["data"]
    opportunity = data["opportunityId"]
    at = delivery["triggeredAt"]
    values = {
        ":o": {"S": opportunity},
        ":v": {"S": data["toStageId"]},
        ":t": {"N": str(at)},
    }
    update = "SET opportunityId = :o, stageId = :v, stageSince = :t"
    if data.get("contactId"):
        values[":c"] = {"S": data["contactId"]}
        update += ", contactId = if_not_exists(contactId, :c)"
    stale = False
    try:
        dynamodb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"T#{tenant}#O#{opportunity}"}, "sk": {"S": "#CANDIDATE"}},
            UpdateExpression=update,
            ConditionExpression="attribute_not_exists(deletedAt) AND "
            "(attribute_not_exists(stageSince) OR stageSince < :t)",
            ExpressionAttributeValues=values,
        )
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        stale = True
    detail = {
        "id": f"{tenant}/{delivery['token']}",
        "tenantId": tenant,
        "kind": KIND,
        "opportunityId": opportunity,
        "contactId": data.get("contactId"),
        "before": {"stageId": data.get("fromStageId")},
        "after": {"stageId": data["toStageId"]},
        "at": at,
        "stale": stale,
    }
    out = events.put_events(
        Entries=[
            {
                "Source": "lever-bridge",
                "DetailType": KIND,
                "Detail": json.dumps(detail),
                "EventBusName": BUS,
            }
        ]
    )
    if out.get("FailedEntryCount"):
        raise RuntimeError("the vendor event was not published")
    return {"status": "stale" if stale else "accepted"}


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    idempotency.register_lambda_context(context)
    tenant = (event.get("pathParameters") or {}).get("tenantId", "")
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES:
        return error(413, "payload_too_large", "the body is too large")
    try:
        delivery = json.loads(body)
    except ValueError:
        return error(400, "invalid_json", "the body is not JSON")
    if not isinstance(delivery, dict) or not all(
        isinstance(delivery.get(k), t)
        for k, t in (("event", str), ("token", str), ("triggeredAt", int), ("signature", str))
    ):
        return error(400, "invalid_envelope", "event, token, triggeredAt and signature are required")
    if delivery["event"] != KIND:
        return error(400, "wrong_event", f"this endpoint receives `{KIND}` deliveries")
    now = int(time.time() * 1000)
    if not now - MAX_AGE_MS <= delivery["triggeredAt"] <= now + MAX_SKEW_MS:
        return error(401, "outside_window", "triggeredAt is outside the accepted window")
    try:
        if not verified(tenant, delivery):
            return error(401, "unauthorized", "the signature could not be verified")
    except ClientError:
        logger.exception("secret store unavailable")
        return error(503, "unavailable", "the secret store is unavailable; retry later")
    data = delivery.get("data") or {}
    if not data:
        return reply(200, {"status": "test"})
    if not data.get("opportunityId") or not data.get("toStageId"):
        return reply(200, {"status": "ignored"})
    try:
        result = apply(tenant=tenant, delivery=delivery)
    except Exception:
        logger.exception("delivery not applied; Lever will retry")
        return error(503, "unavailable", "the delivery could not be applied; retry later")
    logger.info("webhook accepted", extra={"tenant": tenant, "status": result["status"]})
    metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=1)
    return reply(200, result)
