"""moto's server, with DynamoDB transactions that cost the same however large the table is.

moto backs up every table a TransactWriteItems touches with a deep copy of the whole table (to roll
back on a cancelled transaction), its stream included, so each transaction costs time proportional to
everything the table and its stream ever held: after a few thousand deliveries it dominates (a
webhook's transaction went from 33 to 132 ms as a streamed table grew from 200 to 600 items), and
tests and benchmarks would measure moto's copy. Real DynamoDB has no such cost. This launcher backs
up only the items the transaction touches and, on cancellation, restores exactly those and takes back
the stream records the partial writes (and the restore) added, as DynamoDB writes no stream record
for a cancelled transaction: the same outcome (all or nothing, the same errors, the same stream), at a
cost independent of the table's size. Writes are serialised, so that a conditional write is atomic as in
DynamoDB (moto's check-then-write is not across its request threads). Everything else is moto as installed.

Tests can make DynamoDB cancel a table's next transactions as it does under load: an item
`{"pk": <table name>, "sk": <any, in order>, "code": "TransactionConflict" | "ThrottlingError" |
"ValidationError" ...}` put into the table `moto-faults` cancels the next TransactWriteItems on that table
with that code as the last item's cancellation reason (the others `None`), writing nothing, and is used up.

IAM, as the local stack enforces it (tests/local_iam.py switches enforcement on once every function's role
is made): the stack's own identity, access key `local` with secret `local`, is an IAM user with an
allow-all policy, so the tools and tests keep their credentials once moto checks every request. Where
moto's authorizer differs from AWS's, it is made to agree: TransactWriteItems is authorised through the
actions of its parts (PutItem, UpdateItem, DeleteItem, ConditionCheckItem) and TransactGetItems through
GetItem, SQS's batch calls through their single actions (SendMessage, DeleteMessage,
ChangeMessageVisibility), a refusal of a JSON-protocol call (DynamoDB, Secrets Manager, EventBridge, SQS)
is the HTTP 400 `AccessDeniedException` AWS answers, naming the action, rather than IAM's XML, and `?` in
a policy's pattern matches one character instead of breaking moto's matcher. With MOTO_DENIALS=<file>
every refusal is appended to the file (who, which action).

Run with the stack's venv: `.venv/bin/python tests/moto_server.py -H 127.0.0.1 -p PORT` (the local
stack does).
"""

import base64
import copy
import json
import os
import re
import sys
import threading
import time

import moto.dynamodb.models as models
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.models.table import Table
from moto.server import main


class _NoTableCopy:
    """`copy` as moto's DynamoDB backend sees it: tables are not copied (see above)."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(x, *args, **kwargs):
        return x if isinstance(x, Table) else copy.deepcopy(x, *args, **kwargs)


models.copy = _NoTableCopy()
_transact_write_items = models.DynamoDBBackend.transact_write_items


def _key(table, op):
    if "Key" in op:
        return op["Key"]
    item = op["Item"]
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


FAULTS = "moto-faults"


def _injected_fault(self, transact_items):
    """The cancellation queued in FAULTS for the transaction's first table, used up, if any."""
    faults = self.tables.get(FAULTS)
    names = [op.get("TableName") for entry in transact_items for op in entry.values()]
    if faults is None or not names:
        return None
    queued = sorted(faults.all_items(), key=lambda i: i.range_key.value if i.range_key else "")
    for item in queued:
        if item.hash_key.value == names[0]:
            faults.delete_item(item.hash_key, item.range_key)
            code = item.attrs["code"].value
            errors = [(None, None, None)] * (len(names) - 1) + [(code, f"{code} (injected)", None)]
            return TransactionCanceledException(errors)
    return None


def transact_write_items(self, transact_items):
    fault = _injected_fault(self, transact_items)
    if fault is not None:
        raise fault
    backup = []
    streams = {
        name: len(table.stream_shard.items)
        for name, table in self.tables.items()
        if table.stream_shard is not None
        and any(op.get("TableName") == name for entry in transact_items for op in entry.values())
    }
    for entry in transact_items:
        for op in entry.values():
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            try:
                key = _key(table, op)
                old = self.get_item(table.name, key)
            except Exception:  # malformed: moto's own checks answer it
                continue
            backup.append((table.name, key, copy.deepcopy(old.to_json()["Attributes"]) if old else None))
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, old in reversed(backup):
            if old is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, old)
        for name, length in streams.items():
            del self.tables[name].stream_shard.items[length:]
        raise


models.DynamoDBBackend.transact_write_items = transact_write_items

# DynamoDB applies each conditional write atomically; moto checks the condition and then writes, in
# a server thread per request, so two concurrent writes could both pass a condition only one of
# them may (20 concurrent copies of a delivery, two of them "accepted"). One lock over the writes
# makes them as atomic as DynamoDB's (re-entrant: a cancelled transaction restores with put_item).
_write_lock = threading.RLock()


def _atomic(method):
    def wrapper(*args, **kwargs):
        with _write_lock:
            return method(*args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(models.DynamoDBBackend, _name, _atomic(getattr(models.DynamoDBBackend, _name)))


# The capacity ledger: with MOTO_CAPACITY_LEDGER=<file>, every DynamoDB data request appends one JSON
# line: its operation, the read and write units DynamoDB would bill for it and where they land (the
# table's and each index's partition key). Units follow DynamoDB's rules, not moto's constants: item
# sizes from attribute names and values (numbers by significant digits, 3 bytes and 1 per element for
# lists and maps); a write bills the larger of the item before and after, in 1 KB units, doubled in a
# transaction (a condition check too); an index write when an index entry is added, removed or its
# projected attributes change (two when its key changes); reads in 4 KB units, half for an eventually
# consistent read, a query by the items it returns (a filter's discards are not seen: a lower bound).
LEDGER = os.environ.get("MOTO_CAPACITY_LEDGER")
_ledger_lock = threading.Lock()


def _value_size(v):
    ((t, x),) = v.items()
    if t == "S":
        return len(x.encode("utf-8"))
    if t == "N":
        return _number_size(x)
    if t == "B":
        return len(base64.b64decode(x)) if isinstance(x, str) else len(x)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "L":
        return 3 + sum(1 + _value_size(e) for e in x)
    if t == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(e) for k, e in x.items())
    if t == "SS":
        return sum(len(e.encode("utf-8")) for e in x)
    if t == "NS":
        return sum(_number_size(e) for e in x)
    if t == "BS":
        return sum(len(base64.b64decode(e)) if isinstance(e, str) else len(e) for e in x)
    return 0


def _number_size(x):
    digits = len(x.lstrip("-").replace(".", "").strip("0")) or 1
    return (digits + 1) // 2 + 1


def _item_size(attrs):
    return sum(len(k.encode("utf-8")) + _value_size(v) for k, v in attrs.items())


def _plain(attrs):
    return json.loads(json.dumps(attrs, default=str))


def _snapshot(backend, table_name, key):
    """The item's size and its entries in each global index: (index key, projection, size)."""
    table = backend.tables.get(table_name)
    if table is None:
        return None
    try:
        item = backend.get_item(table_name, key)
    except Exception:
        return None
    pk = key.get(table.hash_key_attr, {}).get("S", "?")
    if item is None:
        return {"pk": pk, "size": 0, "indexes": {}}
    attrs = _plain(item.to_json()["Attributes"])
    indexes = {}
    for index in table.global_indexes:
        names = [k["AttributeName"] for k in index.schema]
        if all(n in attrs for n in names):
            projected = _plain(index.project(item).to_json()["Attributes"])
            hash_name = next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
            key_values = json.dumps([attrs[n] for n in names], sort_keys=True)
            indexes[index.name] = (
                key_values,
                json.dumps(projected, sort_keys=True),
                _item_size(projected),
                next(iter(attrs[hash_name].values())),
            )
    return {"pk": pk, "size": _item_size(attrs), "indexes": indexes}


def _units(size, per):
    return max(1, -(-size // per))


def _write_parts(table_name, before, after, factor, check=False):
    parts = []
    if before is None or after is None:
        return parts
    parts.append(["w", table_name, after["pk"], factor * _units(max(before["size"], after["size"]), 1024)])
    if check:
        return parts
    for name in set(before["indexes"]) | set(after["indexes"]):
        b, a = before["indexes"].get(name), after["indexes"].get(name)
        if b and a and b[0] == a[0]:
            if b[1] != a[1]:
                parts.append(["w", name, a[3], _units(max(b[2], a[2]), 1024)])
            continue
        for entry in (b, a):
            if entry:
                parts.append(["w", name, entry[3], _units(entry[2], 1024)])
    return parts


def _read_parts(name, pk, size, consistent, factor=1):
    return [["r", name, pk, factor * _units(size, 4096) * (1 if consistent else 0.5)]]


def _record(op, parts, failed=False):
    line = {"t": time.time(), "op": op, "parts": parts}
    if failed:
        line["failed"] = True
    with _ledger_lock:
        with open(LEDGER, "a") as f:
            f.write(json.dumps(line) + "\n")


def _item_key(table, item):
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None and table.range_key_attr in item:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _writes_of(handler):
    """(table, key, transaction factor, is a condition check) for each item a write request touches."""
    backend, body, op = handler.dynamodb_backend, handler.body, handler._ledger_op
    out = []
    if op in ("PutItem", "UpdateItem", "DeleteItem"):
        table = backend.tables.get(body.get("TableName"))
        if table is not None:
            key = body.get("Key") or _item_key(table, body.get("Item", {}))
            out.append((table.name, key, 1, False))
    elif op == "BatchWriteItem":
        for name, requests in body.get("RequestItems", {}).items():
            table = backend.tables.get(name)
            for r in requests:
                if table is not None and "PutRequest" in r:
                    out.append((name, _item_key(table, r["PutRequest"]["Item"]), 1, False))
                elif table is not None and "DeleteRequest" in r:
                    out.append((name, r["DeleteRequest"]["Key"], 1, False))
    elif op == "TransactWriteItems":
        for entry in body.get("TransactItems", []):
            for kind, w in entry.items():
                table = backend.tables.get(w.get("TableName"))
                if table is not None:
                    key = w.get("Key") or _item_key(table, w.get("Item", {}))
                    out.append((table.name, key, 2, kind == "ConditionCheck"))
    return out


def _ledgered(op, method):
    def wrapper(self):
        self._ledger_op = op
        body = self.body
        backend = self.dynamodb_backend
        if op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"):
            writes = [(w, _snapshot(backend, w[0], w[1])) for w in _writes_of(self)]
            failed = False
            try:
                return method(self)
            except Exception:
                failed = True
                raise
            finally:
                parts = []
                for (name, key, factor, check), before in writes:
                    after = before if failed else _snapshot(backend, name, key)
                    parts += _write_parts(name, before, after, factor, check)
                _record(op, parts, failed)
        result = method(self)
        parts = []
        if op == "GetItem":
            snap = _snapshot(backend, body.get("TableName"), body.get("Key", {}))
            if snap is not None:
                parts = _read_parts(body["TableName"], snap["pk"], snap["size"], body.get("ConsistentRead", False))
        elif op in ("BatchGetItem", "TransactGetItems"):
            if op == "BatchGetItem":
                gets = [(n, k, r.get("ConsistentRead", False), 1) for n, r in body.get("RequestItems", {}).items() for k in r.get("Keys", [])]
            else:
                gets = [(g["Get"]["TableName"], g["Get"]["Key"], True, 2) for g in body.get("TransactItems", [])]
            for name, key, consistent, factor in gets:
                snap = _snapshot(backend, name, key)
                if snap is not None:
                    parts += _read_parts(name, snap["pk"], snap["size"], consistent, factor)
        elif op in ("Query", "Scan"):
            out = getattr(result, "result", None) or {}
            items = [_plain(i) for i in out.get("Items", [])]
            index = body.get("IndexName")
            table = backend.tables.get(body.get("TableName"))
            pk = "?"
            if items and table is not None:
                hash_name = table.hash_key_attr
                if index:
                    gsi = next((g for g in table.global_indexes if g.name == index), None)
                    if gsi is not None:
                        hash_name = next(k["AttributeName"] for k in gsi.schema if k["KeyType"] == "HASH")
                pk = next(iter(items[0].get(hash_name, {"S": "?"}).values()))
            size = sum(_item_size(i) for i in items)
            parts = _read_parts(index or body.get("TableName"), pk, size, body.get("ConsistentRead", False))
        _record(op, parts)
        return result

    wrapper.__name__ = method.__name__
    return wrapper


if LEDGER:
    from moto.dynamodb.responses import DynamoHandler

    for _op, _name in [
        ("PutItem", "put_item"),
        ("UpdateItem", "update_item"),
        ("DeleteItem", "delete_item"),
        ("BatchWriteItem", "batch_write_item"),
        ("TransactWriteItems", "transact_write_items"),
        ("GetItem", "get_item"),
        ("BatchGetItem", "batch_get_item"),
        ("TransactGetItems", "transact_get_items"),
        ("Query", "query"),
        ("Scan", "scan"),
    ]:
        setattr(DynamoHandler, _name, _ledgered(_op, getattr(DynamoHandler, _name)))


# IAM (see above).
from moto.core.exceptions import JsonRESTError
from moto.iam import access_control
from moto.iam.models import iam_backends

LOCAL_ACCOUNT = "123456789012"
LOCAL_USER = "lever-bridge-local"
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def _local_user():
    """The stack's own IAM user, with the fixed access key `local`/`local` every tool uses."""
    iam = iam_backends[LOCAL_ACCOUNT]["global"]
    iam.create_user(region_name="us-east-1", user_name=LOCAL_USER, path="/", tags=[])
    iam.put_user_policy(LOCAL_USER, "allow-all", ALLOW_ALL)
    key = iam.create_access_key(LOCAL_USER)
    del iam.access_keys[key.physical_resource_id]
    key.access_key_id = key.secret_access_key = "local"
    iam.access_keys[key.physical_resource_id] = key


# The actions AWS authorises a call through, where they are not the call's own name.
_PARTS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_SINGLE = {
    "sqs:SendMessageBatch": ["sqs:SendMessage"],
    "sqs:DeleteMessageBatch": ["sqs:DeleteMessage"],
    "sqs:ChangeMessageVisibilityBatch": ["sqs:ChangeMessageVisibility"],
    "dynamodb:TransactGetItems": ["dynamodb:GetItem"],
}


def _actions(request):
    action = request._action
    if action == "dynamodb:TransactWriteItems":
        try:
            items = json.loads(request._body or b"{}").get("TransactItems", [])
        except ValueError:
            return [action]
        parts = sorted({_PARTS[k] for item in items for k in item if k in _PARTS})
        return [f"dynamodb:{p}" for p in parts] or [action]
    return _SINGLE.get(action, [action])


_check_action_permitted = access_control.IAMRequestBase.check_action_permitted


def check_action_permitted(self, resource):
    own = self._action
    try:
        for action in _actions(self):
            self._action = action
            _check_action_permitted(self, resource)
    finally:
        self._action = own


access_control.IAMRequestBase.check_action_permitted = check_action_permitted
_raise_access_denied = access_control.IAMRequest._raise_access_denied


DENIALS = os.environ.get("MOTO_DENIALS")


def raise_access_denied(self):
    # With MOTO_DENIALS=<file>, each refusal appends a line: who was refused what (tests/local_iam.py
    # --check-denials tells the refusals the tests provoked from calls a role was never given).
    if DENIALS:
        with _ledger_lock, open(DENIALS, "a") as f:
            f.write(json.dumps({"principal": self._access_key.arn, "action": self._action}) + "\n")
    if "X-Amz-Target" in self._headers or "x-amz-target" in self._headers:
        action = self._action
        raise JsonRESTError(
            "AccessDeniedException",
            f"User: {self._access_key.arn} is not authorized to perform: {action}"
            f" because no identity-based policy allows the {action} action",
        )
    _raise_access_denied(self)


access_control.IAMRequest._raise_access_denied = raise_access_denied
access_control.IAMPolicyStatement._match = staticmethod(
    lambda pattern, string: re.match("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$", string)
)

if __name__ == "__main__":
    _local_user()
    main(sys.argv[1:])
