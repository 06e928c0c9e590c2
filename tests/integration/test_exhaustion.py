"""A pool issued to its very last code, on DynamoDB Local: every usable code exactly once, then `pool_exhausted`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import issuer.app
from codepool.config import PoolConfig, Settings
from codepool.errors import PoolEmptyError, PoolExhaustedError
from codepool.formats import CodeFormat
from codepool.issuing import issue_codes
from codepool.model import IssueRequest, RefillSummary
from codepool.queries import pool_stats
from codepool.refilling import refill_pool
from codepool.runtime import Container
from tests.support.events import call, rest

pytestmark = pytest.mark.integration

DAMM = PoolConfig(
    name="damm4",
    format=CodeFormat(alphabet="numeric", length=4, check="damm"),
    target=2_000,
    low_watermark=0,
    shards=4,
)


async def test_a_4_digit_damm_pool_is_issued_to_the_last_code_then_exhausted(local_table: Settings) -> None:
    fmt = DAMM.format
    usable = {fmt.canonical(code) for n in range(fmt.keyspace) if (code := fmt.code_for(n)) is not None}
    assert 9_900 < len(usable) < 10_000  # the default blocklist blocks a few (leet: 455 reads ASS)
    issued: list[str] = []
    refills: list[RefillSummary] = []
    count = 25
    short_messages: list[str] = []
    async with Container.open(local_table, pools={DAMM.name: DAMM}) as container:
        components = container.components
        while True:
            try:
                result = await issue_codes(components, IssueRequest(pool=DAMM.name, count=count))
            except PoolExhaustedError as exc:
                if count == 1:
                    exhausted = exc
                    break
                short_messages.append(str(exc))
                count = 1  # fewer than 25 are left: the last few, one by one
                continue
            except PoolEmptyError:  # not exhausted yet: a refill will fix it
                refills.append(await refill_pool(container.repository, DAMM))
                assert len(refills) < 20, "refills stopped making progress"
                continue
            issued.extend(code.code for code in result.codes)
        stats = await pool_stats(container.repository, DAMM)
        final = await refill_pool(container.repository, DAMM)

    keys = [fmt.canonical(code) for code in issued]
    assert len(keys) == len(set(keys)), "a code was issued twice"
    assert set(keys) == usable, "every usable code is issued, and nothing else"
    assert all(fmt.matches(code) for code in issued)
    assert exhausted.code == "pool_exhausted"
    assert len(short_messages) == 1
    assert "codes are left, fewer than the 25 asked for" in short_messages[0]
    assert "all or none" in short_messages[0]
    assert "every other code of its keyspace" in str(exhausted)
    # Bounded cost: over all the refills, the sweep settles each code of the keyspace exactly once.
    assert sum(summary.swept for summary in refills) == fmt.keyspace
    sweeping = [summary for summary in refills if summary.swept]
    assert sweeping
    written = sum(summary.written for summary in sweeping)
    reads = sum(summary.check_requests for summary in sweeping)
    print(f"sweep: {written} codes written over {len(sweeping)} refills, {reads / written:.3f} BatchGetItem per code")
    assert reads / written < 0.1
    assert (final.exhausted, final.written, final.swept) == (True, 0, 0)
    assert (stats.available, stats.issued, stats.exhausted, stats.swept) == (0, len(usable), True, True)
    assert stats.usable_keyspace == len(usable)
    assert stats.to_json()["fractionUsed"] == 1.0


@pytest.fixture
def exhausted_pool_env(local_table: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    pools = tmp_path / "pools.toml"
    # Imported-only and nothing imported: exhausted from the start, no refill can help.
    pools.write_text('[pools.cards]\nalphabet = "numeric"\nlength = 8\nimported_only = true\ntarget = 10\n')
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", str(local_table.endpoint_url))
    monkeypatch.setenv("TABLE_NAME", local_table.table_name)
    monkeypatch.setenv("POOLS_FILE", str(pools))
    issuer.app.container.close()
    yield local_table
    issuer.app.container.close()


def test_an_exhausted_pool_is_a_503_pool_exhausted_distinct_from_pool_empty(exhausted_pool_env: Settings) -> None:
    status, headers, body = call(rest("POST", "/codes", '{"pool": "cards"}'))
    assert status == 503
    assert body["error"]["code"] == "pool_exhausted"
    assert "imported-only" in body["error"]["message"]
    assert int(headers["Retry-After"]) >= 60
    status, _, pool = call(rest("GET", "/pools/cards"))
    assert status == 200
    assert (pool["exhausted"], pool["importedOnly"], pool["available"]) == (True, True, 0)
