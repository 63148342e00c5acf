"""The capacity ledger's billing rules (tests/moto_server.py) against DynamoDB's documented ones, and
the IAM authorizer's corrections against AWS's documented actions.

Run by `make test` with the stack's venv: `.venv/bin/python tests/moto_server_test.py`.
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import moto_server as m  # noqa: E402


class ItemSize(unittest.TestCase):
    def test_strings_and_names_count_their_utf8_bytes(self):
        self.assertEqual(m._item_size({"pk": {"S": "T#acme"}}), 2 + 6)
        self.assertEqual(m._item_size({"name": {"S": "Zoë"}}), 4 + 4)

    def test_numbers_count_a_byte_per_two_significant_digits_plus_one(self):
        self.assertEqual(m._number_size("7"), 2)
        self.assertEqual(m._number_size("1796429763826"), 7 + 1)
        # Leading and trailing zeroes are trimmed: a round timestamp is two digits.
        self.assertEqual(m._number_size("1700000000000"), 1 + 1)
        self.assertEqual(m._number_size("-0.0012300"), 2 + 1)

    def test_lists_and_maps_add_three_bytes_and_one_per_element(self):
        self.assertEqual(m._value_size({"L": [{"S": "ab"}, {"N": "1"}]}), 3 + (1 + 2) + (1 + 2))
        self.assertEqual(m._value_size({"M": {"k": {"BOOL": True}}}), 3 + 1 + 1 + 1)


def snap(size, indexes=None, pk="T#a"):
    return {"pk": pk, "size": size, "indexes": indexes or {}}


class WriteUnits(unittest.TestCase):
    def test_a_write_bills_the_larger_of_before_and_after_in_1kb_units(self):
        self.assertEqual(m._write_parts("t", snap(0), snap(1500), 1), [["w", "t", "T#a", 2]])
        self.assertEqual(m._write_parts("t", snap(3000), snap(10), 1), [["w", "t", "T#a", 3]])

    def test_a_transaction_doubles_and_a_condition_check_is_billed_like_a_write(self):
        self.assertEqual(m._write_parts("t", snap(100), snap(100), 2, check=True), [["w", "t", "T#a", 2]])

    def test_an_index_entry_whose_key_moves_is_two_index_writes(self):
        before = snap(100, {"due": ("[1]", "{}", 50, "DUE#1")})
        after = snap(100, {"due": ("[2]", "{}", 50, "DUE#2")})
        parts = m._write_parts("t", before, after, 1)
        self.assertEqual(parts[1:], [["w", "due", "DUE#1", 1], ["w", "due", "DUE#2", 1]])

    def test_an_unchanged_index_entry_is_not_written(self):
        entry = {"due": ("[1]", "{}", 50, "DUE#1")}
        self.assertEqual(m._write_parts("t", snap(100, entry), snap(120, entry), 1), [["w", "t", "T#a", 1]])


class ReadUnits(unittest.TestCase):
    def test_reads_bill_4kb_units_and_half_when_eventually_consistent(self):
        self.assertEqual(m._read_parts("t", "T#a", 5000, True), [["r", "t", "T#a", 2]])
        self.assertEqual(m._read_parts("t", "T#a", 5000, False), [["r", "t", "T#a", 1.0]])
        self.assertEqual(m._read_parts("t", "T#a", 0, False), [["r", "t", "T#a", 0.5]])


class Request:
    """What the authorizer sees of a request: its action and body."""

    def __init__(self, action, body=b""):
        self._action, self._body = action, body


class Authorizer(unittest.TestCase):
    def test_a_transaction_is_authorised_through_each_kind_of_part(self):
        body = b'{"TransactItems": [{"Put": {}}, {"Update": {}}, {"ConditionCheck": {}}, {"Put": {}}]}'
        self.assertEqual(
            m._actions(Request("dynamodb:TransactWriteItems", body)),
            ["dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        )
        self.assertEqual(m._actions(Request("dynamodb:TransactGetItems")), ["dynamodb:GetItem"])

    def test_sqs_batches_are_authorised_as_their_single_actions(self):
        self.assertEqual(m._actions(Request("sqs:SendMessageBatch")), ["sqs:SendMessage"])
        self.assertEqual(m._actions(Request("sqs:DeleteMessageBatch")), ["sqs:DeleteMessage"])
        self.assertEqual(m._actions(Request("dynamodb:BatchWriteItem")), ["dynamodb:BatchWriteItem"])

    def test_wildcards_match_as_iam_does(self):
        match = m.access_control.IAMPolicyStatement._match
        self.assertTrue(match("arn:aws:secretsmanager:*:secret:t/*/lever-??????", "arn:aws:secretsmanager:x:secret:t/a/lever-AbC123"))
        self.assertFalse(match("arn:aws:secretsmanager:*:secret:t/*/lever-??????", "arn:aws:secretsmanager:x:secret:t/a/lever-AbC12"))
        self.assertFalse(match("arn:aws:sqs:us-east-1:1:q.x", "arn:aws:sqs:us-east-1:1:qyx"))


if __name__ == "__main__":
    unittest.main()
