"""moto's server, with DynamoDB transactions that cost the same however large the table is.

moto backs up every table a TransactWriteItems touches with a deep copy of the whole table (to roll
back on a cancelled transaction), its stream included, so each transaction costs time proportional to
everything the table and its stream ever held: after a few thousand deliveries it dominates (a
webhook's transaction went from 33 to 132 ms as a streamed table grew from 200 to 600 items), and
tests and benchmarks would measure moto's copy. Real DynamoDB has no such cost. This launcher backs
up only the items the transaction touches and, on cancellation, restores exactly those and takes back
the stream records the partial writes (and the restore) added, as DynamoDB writes no stream record
for a cancelled transaction: the same outcome (all or nothing, the same errors, the same stream), at a
cost independent of the table's size. Everything else is moto as installed.

Tests can make DynamoDB cancel a table's next transactions as it does under load: an item
`{"pk": <table name>, "sk": <any, in order>, "code": "TransactionConflict" | "ThrottlingError" |
"ValidationError" ...}` put into the table `moto-faults` cancels the next TransactWriteItems on that table
with that code as the last item's cancellation reason (the others `None`), writing nothing, and is used up.

Run with the stack's venv: `.venv/bin/python tests/moto_server.py -H 127.0.0.1 -p PORT` (the local
stack does).
"""

import copy
import sys

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

if __name__ == "__main__":
    main(sys.argv[1:])
