"""The largest request the API accepts is written for real: 25 codes of the longest format, every metadata field
at its byte limit in 4-byte characters, the longest Idempotency-Key (`codepool.dynamodb.sizes` bounds it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import issuer.app
import refiller.app
from codepool.config import Settings
from codepool.dynamodb.keys import IDEMPOTENCY_PREFIX, PARTITION_KEY
from codepool.dynamodb.sizes import MAX_POOL_NAME_LENGTH, item_size, worst_case_claim
from codepool.formats import MAX_CODE_LENGTH
from codepool.model import MAX_COUNT, MAX_IDEMPOTENCY_KEY_LENGTH, METADATA_LIMITS
from codepool.runtime import Container
from tests.support.events import call, rest
from tests.support.tables import Item, scan_table

POOL = "p" * MAX_POOL_NAME_LENGTH
# 32 + 96 + 32 characters: the longest display form a pool may have.
LONGEST_FORMAT = (
    f'alphabet = "numeric"\nlength = 48\nprefix = "{"A" * 32}"\npostfix = "{"Z" * 32}"\npattern = "{"#-" * 48}"'
)


@pytest.fixture
def longest_pool(local_table: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    pools = tmp_path / "pools.toml"
    pools.write_text(f"[pools.{POOL}]\n{LONGEST_FORMAT}\ntarget = 40\nshards = 64\n")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", str(local_table.endpoint_url))
    monkeypatch.setenv("TABLE_NAME", local_table.table_name)
    monkeypatch.setenv("POOLS_FILE", str(pools))
    issuer.app.container.close()
    refiller.app.container.close()
    refiller.app.lambda_handler({"pool": POOL}, None)  # type: ignore[arg-type]
    yield local_table
    issuer.app.container.close()
    refiller.app.container.close()


def test_the_worst_case_request_is_accepted_stored_and_replayed(longest_pool: Settings) -> None:
    metadata = {name: "\U0001f600" * (limit // 4) for name, limit in METADATA_LIMITS.items()}
    body = json.dumps({"pool": POOL, "count": MAX_COUNT, **metadata})
    headers = {"Idempotency-Key": "k" * MAX_IDEMPOTENCY_KEY_LENGTH}
    status, _, first = call(rest("POST", "/codes", body, headers))
    assert status == 201, first
    codes = [code["code"] for code in first["codes"]]
    assert len(set(codes)) == MAX_COUNT
    assert all(len(code) == MAX_CODE_LENGTH for code in codes)
    assert all(code["usedBy"] == metadata["usedBy"] for code in first["codes"])

    status, headers_again, again = call(rest("POST", "/codes", body, headers))
    assert (status, headers_again.get("Idempotent-Replayed")) == (201, "true")
    assert again == first

    async def stored(runtime: Container) -> list[Item]:
        return await scan_table(runtime.client, runtime.settings.table_name)

    items = issuer.app.container.run(stored)
    (record,) = [item for item in items if item[PARTITION_KEY]["S"].startswith(IDEMPOTENCY_PREFIX)]
    # The stored record is no larger than the computed worst case.
    assert item_size(record) <= worst_case_claim().largest_item_bytes
