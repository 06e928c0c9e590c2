"""The largest write one request can make fits DynamoDB's limits by construction, with margin."""

from __future__ import annotations

from typing import Any

from codepool.dynamodb.keys import code_key
from codepool.dynamodb.sizes import (
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
    item_size,
    transactional_write_units,
    worst_case_claim,
)


def test_item_size_follows_dynamodbs_rules() -> None:
    # Names and values in UTF-8 bytes; a list costs 3 bytes plus 1 per element; numbers about 1 byte per 2 digits.
    item: dict[str, dict[str, Any]] = {
        "pk": {"S": "X" * 7},
        "n": {"N": "1234567890"},
        "l": {"L": [{"S": "é"}, {"S": "x"}]},
    }
    assert item_size(item) == (2 + 7) + (1 + 6) + (1 + 3 + (2 + 1) + (1 + 1))
    assert item_size(code_key("AB")) == len("pk") + len(code_key("AB")["pk"]["S"]) + len("sk") + len("CODE")


def test_write_units_are_two_per_started_kilobyte() -> None:
    assert transactional_write_units(1) == 2
    assert transactional_write_units(1024) == 2
    assert transactional_write_units(1025) == 4


def test_the_worst_case_claim_fits_dynamodbs_limits_with_margin() -> None:
    worst = worst_case_claim()
    assert worst.items <= MAX_TRANSACTION_ITEMS
    assert worst.largest_item_bytes * 10 < MAX_ITEM_BYTES
    assert worst.transaction_bytes * 10 < MAX_TRANSACTION_BYTES
    # README "Limits" states this figure.
    assert worst.write_units == 214
