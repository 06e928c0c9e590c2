"""Pool counts are reused for a few seconds per container, so their read cost does not grow with request rate."""

from __future__ import annotations

import pytest

from codepool.config import PoolConfig
from codepool.errors import AmbiguousCodeError, CodeNotFoundError, InvalidCodeError, PoolNotFoundError
from codepool.formats import CodeFormat
from codepool.model import IssuedCode, PoolLedger, issue_rate
from codepool.queries import POOL_STATS_TTL_SECONDS, PoolStatsCache, lookup_code, pool_stats
from codepool.refilling import refill_pool
from tests.support.fakes import InMemoryRepository

POOL = PoolConfig(name="vouchers", format=CodeFormat(alphabet="unambiguous", length=8), target=100, low_watermark=20)


async def test_pool_counts_are_read_once_per_ttl_whatever_the_request_rate() -> None:
    repository = InMemoryRepository()
    await refill_pool(repository, POOL, 100)
    now = [1000.0]
    cache = PoolStatsCache(repository, clock=lambda: now[0])
    repository.requests = 0
    for _ in range(50):
        assert (await cache.get(POOL)).available == 100
    assert repository.requests == POOL.shards + 1  # one count per shard, one read of the ledger
    now[0] += POOL_STATS_TTL_SECONDS
    await cache.get(POOL)
    assert repository.requests == 2 * (POOL.shards + 1)


CASE_SENSITIVE = PoolConfig(name="mixed", format=CodeFormat(alphabet="base62", length=6), target=10, low_watermark=0)
UPPER = PoolConfig(name="upper", format=CodeFormat(alphabet="alphanumeric", length=6), target=10, low_watermark=0)
CHECKED = PoolConfig(
    name="checked", format=CodeFormat(alphabet="numeric", length=6, check="damm"), target=10, low_watermark=0
)
TYPED_POOLS = {pool.name: pool for pool in (CASE_SENSITIVE, UPPER, CHECKED)}


def _issue(repository: InMemoryRepository, pool: PoolConfig, code: str) -> None:
    repository.issued[pool.format.canonical(code)] = IssuedCode(code=code, pool=pool.name, issued_at="t")


async def test_a_lookup_never_answers_with_another_pools_code() -> None:
    # The bug: a case-sensitive pool issued ab12cd; someone types the case-insensitive pool's AB12CD in lower case.
    repository = InMemoryRepository()
    _issue(repository, UPPER, "AB12CD")
    assert (await lookup_code(repository, TYPED_POOLS, "ab12cd")).pool == "upper"
    _issue(repository, CASE_SENSITIVE, "ab12cd")
    with pytest.raises(AmbiguousCodeError, match=r"\['mixed', 'upper'\]"):
        await lookup_code(repository, TYPED_POOLS, "ab12cd")
    assert (await lookup_code(repository, TYPED_POOLS, "ab12cd", pool="mixed")).pool == "mixed"
    assert (await lookup_code(repository, TYPED_POOLS, "ab12cd", pool="upper")).code == "AB12CD"


async def test_a_record_of_a_pool_whose_format_rejects_the_text_is_not_an_answer() -> None:
    repository = InMemoryRepository()
    # A record is only reached through a pool whose format resolves the text to its key.
    repository.issued["AB1234"] = IssuedCode(code="AB1234", pool="checked", issued_at="t")
    with pytest.raises(CodeNotFoundError):
        await lookup_code(repository, TYPED_POOLS, "ab1234")


async def test_a_wrong_check_character_is_invalid_code_without_any_read() -> None:
    repository = InMemoryRepository()
    code = CHECKED.format.generate()
    typo = code[:-1] + str((int(code[-1]) + 1) % 10)
    with pytest.raises(InvalidCodeError, match="check character"):
        await lookup_code(repository, {"checked": CHECKED}, typo)
    assert repository.requests == 0


async def test_text_no_pool_could_have_issued_is_not_found_without_any_read() -> None:
    repository = InMemoryRepository()
    with pytest.raises(CodeNotFoundError):
        await lookup_code(repository, TYPED_POOLS, "this is not a code")
    assert repository.requests == 0


async def test_an_unknown_pool_in_a_lookup_is_pool_not_found() -> None:
    with pytest.raises(PoolNotFoundError):
        await lookup_code(InMemoryRepository(), TYPED_POOLS, "AB12CD", pool="nope")


def test_the_issue_rate_looks_one_hour_back_from_the_ledgers_snapshots() -> None:
    now = 100_000.0
    snapshots = ((now - 7200, 0), (now - 3700, 1_000), (now - 1800, 3_000))
    rate, window = issue_rate(snapshots, now, issued_now=4_000)
    assert window == 3700  # the latest snapshot at least an hour old
    assert rate == pytest.approx(3_000 * 3600 / 3700)
    young_rate, young_window = issue_rate(((now - 600, 0),), now, issued_now=100)
    assert young_rate == pytest.approx(600.0)  # a young pool: a shorter window, scaled to an hour
    assert young_window == 600
    assert issue_rate((), now, 5) == (None, 0.0)


async def test_pool_statistics_forecast_when_the_pool_and_the_keyspace_run_dry() -> None:
    repository = InMemoryRepository()
    await refill_pool(repository, POOL, 100)
    now = 50_000.0
    # The ledger: 1,100 written so far, 100 of them still available, so 1,000 issued; 900 issued an hour ago.
    repository.ledgers[POOL.name] = PoolLedger(written=1_100, snapshots=((now - 3600, 900),))
    stats = (await pool_stats(repository, POOL, now=now)).to_json()
    assert (stats["available"], stats["issued"], stats["issueRatePerHour"]) == (100, 1_000, 100.0)
    assert stats["forecast"]["poolDryInSeconds"] == 3600
    usable = POOL.format.usable_keyspace()
    assert stats["usableKeyspace"] == usable
    assert stats["forecast"]["keyspaceExhaustedInSeconds"] == round((usable - 1_000) / 100 * 3600)
    assert (stats["exhausted"], stats["swept"]) == (False, False)
