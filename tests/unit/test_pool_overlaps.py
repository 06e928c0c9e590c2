"""Invariant 1 for every pools file the loader accepts: one text is one code, however the pools read it.

The property test draws pools files (alphabets with every case mix and look-alike characters, affixes in
either case, patterns, check schemes, lengths 1-3, shared and disjoint prefixes), issues every pool of each
file the loader accepts dry on the in-memory fake, and checks the issued codes (`violations`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from codepool.components import Components
from codepool.config import PoolConfig, parse_pools, resolve_pool
from codepool.errors import (
    ClaimContentionError,
    ConfigError,
    InvalidCodeError,
    InvalidRequestError,
    PoolEmptyError,
    PoolExhaustedError,
    UniqueCodesError,
)
from codepool.formats import ALPHABET_PRESETS, CheckCharacterError, CodeFormat, compact
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from codepool.queries import lookup_code
from codepool.refilling import refill_pool
from tests.support.fakes import InMemoryRepository

LOWER_AND_MIXED = {
    "lower": {"alphabet": "abcdefghijklmnopqrstuvwxyz0123456789", "length": 2, "target": 100},
    "mixed": {"alphabet": "base62", "length": 2, "target": 100},
}
VIP_AND_BASE62 = {
    "vip": {"alphabet": "numeric", "prefix": "a", "length": 1, "target": 5},
    "mixed": {"alphabet": "base62", "length": 2, "target": 100},
}
MAX_KEYSPACE = 400
"""Codes a drawn pool may have: each example issues every pool dry."""


async def issue_dry(pools: Mapping[str, PoolConfig]) -> InMemoryRepository:
    """Issue every pool until it is exhausted, one code per pool in turn (so pools race for shared keys)."""
    repository = InMemoryRepository()
    components = Components.over(repository, pools)
    active = list(pools.values())
    while active:
        for pool in list(active):
            try:
                await issue_codes(components, IssueRequest(pool=pool.name))
            except PoolExhaustedError:
                active.remove(pool)
            except PoolEmptyError:
                await refill_pool(repository, pool)
            except ClaimContentionError:
                continue  # its slots were another pool's codes (a shared key): those claims deleted them
    return repository


async def violations(repository: InMemoryRepository, pools: Mapping[str, PoolConfig]) -> list[str]:
    """Texts issued twice (exactly, without separators, or as any pool that accepts them reads them), and issued
    codes whose look-up does not return exactly their own record."""
    found: list[str] = []
    issued = list(repository.issued.values())
    readers: dict[tuple[str, str], str] = {}
    texts: dict[str, str] = {}
    for record in issued:
        text = compact(record.code)
        if text in texts:
            found.append(f"{record.code!r} ({record.pool}) and {texts[text]!r} are the same text")
        texts[text] = record.code
        for pool in pools.values():
            try:
                key = pool.format.resolve(record.code)
            except CheckCharacterError:
                found.append(f"pool {pool.name} reads {record.code!r} ({record.pool}) as a typo")
                continue
            if key is None:
                continue
            other = readers.setdefault((pool.name, key), record.code)
            if other != record.code:
                found.append(f"pool {pool.name} reads {record.code!r} and {other!r} as one code {key!r}")
        try:
            looked_up = await lookup_code(repository, pools, record.code)
        except UniqueCodesError as exc:
            found.append(f"look-up of {record.code!r} ({record.pool}): {exc}")
            continue
        if (looked_up.code, looked_up.pool) != (record.code, record.pool):
            found.append(f"look-up of {record.code!r} ({record.pool}) found {looked_up.code!r} ({looked_up.pool})")
    return found


def unchecked(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, PoolConfig]:
    """The pools as they were before the loader compared them: each valid on its own."""
    return {
        name: PoolConfig(
            name=name,
            format=CodeFormat(
                alphabet=table["alphabet"],
                length=table["length"],
                prefix=table.get("prefix", ""),
                postfix=table.get("postfix", ""),
            ),
            target=table["target"],
            low_watermark=0,
        )
        for name, table in tables.items()
    }


@pytest.mark.parametrize(
    ("tables", "named"),
    [(LOWER_AND_MIXED, ("lower", "mixed")), (VIP_AND_BASE62, ("vip", "mixed"))],
    ids=["lower-and-base62", "numeric-prefix-and-base62"],
)
def test_the_reproduced_pools_files_are_refused_naming_both_pools(
    tables: dict[str, Any], named: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError, match="can issue the same code under two keys") as refused:
        parse_pools({"pools": tables}, source="pools.toml")
    message = str(refused.value)
    assert message.startswith("pools.toml: ")
    assert all(f"'{name}'" in message for name in named)


@pytest.mark.parametrize("tables", [LOWER_AND_MIXED, VIP_AND_BASE62], ids=["lower-and-base62", "numeric-prefix"])
async def test_without_the_refusal_those_files_issue_one_text_twice(tables: dict[str, Any]) -> None:
    # The control: the checker below does find what the loader now refuses.
    small = {name: {**table, "target": min(20, table["target"])} for name, table in tables.items()}
    pools = unchecked(small)
    repository = await issue_dry(pools)
    assert any("same text" in found or "as one code" in found for found in await violations(repository, pools))


@pytest.mark.parametrize(
    "tables",
    [
        {"a": {"alphabet": "unambiguous", "length": 8}, "b": {"alphabet": "unambiguous", "length": 8}},
        {"t": {"alphabet": "numeric", "length": 6, "prefix": "T-"}, "u": {"alphabet": "unambiguous", "length": 8}},
        {
            "x": {"alphabet": "base62", "length": 2, "prefix": "X", "target": 100},
            "y": {"alphabet": "numeric", "length": 3, "target": 100},
        },
        {
            "lower": {"alphabet": "abcdef", "length": 2, "target": 10},
            "upper": {"alphabet": "ABCDEF", "length": 2, "target": 10},
        },
    ],
    ids=["same-format", "prefix-and-length", "prefix-no-pool-reads", "one-key-either-case"],
)
def test_pools_that_read_shared_texts_alike_or_not_at_all_load(tables: dict[str, Any]) -> None:
    assert set(parse_pools({"pools": tables})) == set(tables)


def test_a_look_alike_reading_is_refused_too() -> None:
    # `numeric` reads a typed B as 8: an `unambiguous` code B2345678 would look up as numeric's 82345678.
    tables = {"n": {"alphabet": "numeric", "length": 8}, "u": {"alphabet": "unambiguous", "length": 8}}
    with pytest.raises(ConfigError, match="'n' and 'u'"):
        parse_pools({"pools": tables})


def test_a_pools_file_defines_the_pools_and_names_the_default_with_an_empty_table() -> None:
    assert list(parse_pools({})) == ["default"]
    assert list(parse_pools({"pools": {"pins": {"alphabet": "numeric", "length": 4, "target": 100}}})) == ["pins"]
    named = parse_pools(
        {"pools": {"default": {}, "pins": {"alphabet": "numeric", "length": 4, "prefix": "P", "target": 100}}}
    )
    assert list(named) == ["default", "pins"]
    assert named["default"].format.alphabet == "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def test_a_request_without_a_pool_gets_the_default_or_the_only_pool_or_a_clear_error() -> None:
    only = parse_pools({"pools": {"pins": {"alphabet": "numeric", "length": 4, "target": 100}}})
    assert resolve_pool(only, None).name == "pins"
    assert resolve_pool(parse_pools({}), None).name == "default"
    two = parse_pools(
        {
            "pools": {
                "a": {"alphabet": "numeric", "length": 4, "target": 100},
                "b": {"alphabet": "hex", "length": 6, "target": 100},
            }
        }
    )
    with pytest.raises(InvalidRequestError, match="name a pool: there is no 'default' pool, the pools are a, b"):
        resolve_pool(two, None)


async def test_a_typo_of_a_checked_code_is_invalid_not_a_default_code_not_found() -> None:
    pins = {
        "pins": {
            "alphabet": "numeric",
            "length": 4,
            "check": "damm",
            "prefix": "PIN-",
            "pattern": "##-###",
            "target": 100,
        }
    }
    pools = parse_pools({"pools": pins})
    repository = InMemoryRepository()
    assert pools["pins"].format.resolve("PIN-17-330") is not None
    with pytest.raises(InvalidCodeError):
        await lookup_code(repository, pools, "PIN-17-331")


CHARACTERS = "aAbB01OoIlL58SsZz2cC"


@st.composite
def pool_tables(draw: st.DrawFn, index: int) -> dict[str, Any]:
    length = draw(st.integers(1, 3))
    most = max(2, int(MAX_KEYSPACE ** (1 / length)))
    if draw(st.booleans()):
        preset = draw(st.sampled_from(["numeric", "hex", "uppercase", "base62", "crockford", "unambiguous"]))
        alphabet = preset
        if len(ALPHABET_PRESETS[preset]) ** length > MAX_KEYSPACE:
            length = 1
    else:
        chosen = draw(st.lists(st.sampled_from(CHARACTERS), min_size=2, max_size=min(6, most), unique=True))
        alphabet = "".join(chosen)
    table: dict[str, Any] = {"alphabet": alphabet, "length": length}
    affixes = st.sampled_from(["", "", "a", "A", "b1", "B1", "x-", "X"])
    table["prefix"] = draw(affixes)
    table["postfix"] = draw(st.sampled_from(["", "", "", "a", "Z"]))
    size = len(ALPHABET_PRESETS.get(alphabet, alphabet))
    schemes = ["luhn"] * (size % 2 == 0) + ["damm"] * (size == 10) + ["crockford"] * (alphabet == "crockford")
    table["check"] = draw(st.sampled_from([None, None, *schemes]))
    body = length + (1 if table["check"] else 0)
    if body > 1 and draw(st.booleans()):
        cut = draw(st.integers(1, body - 1))
        table["pattern"] = "#" * cut + "-" + "#" * (body - cut)
    table["shards"] = draw(st.integers(1, 2))
    table["default_blocklist"] = False
    return {key: value for key, value in table.items() if value is not None}


@st.composite
def pools_files(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(2, 3))
    return {f"p{index}": draw(pool_tables(index)) for index in range(count)}


def loaded(tables: dict[str, Any]) -> dict[str, PoolConfig] | str:
    """The pools the loader makes of `tables`, each with the largest target its keyspace allows, or why it refuses
    the file: "invalid pool" (one pool on its own) or "refused pair"."""
    sized = {}
    for name, table in tables.items():
        try:
            keyspace = CodeFormat(**{k: v for k, v in table.items() if k != "shards"}).keyspace
        except ConfigError:
            return "invalid pool"
        sized[name] = {**table, "target": max(1, keyspace // 2), "low_watermark": 0}
    try:
        return parse_pools({"pools": sized})
    except ConfigError as exc:
        if "can issue the same code under two keys" not in str(exc):
            raise
        return "refused pair"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pools_files())
def test_every_pools_file_the_loader_accepts_issues_each_text_once_and_looks_each_up_as_its_own(
    tables: dict[str, Any],
) -> None:
    pools = loaded(tables)
    if isinstance(pools, str):
        event(pools)
        return
    repository = asyncio.run(issue_dry(pools))
    shared = len(repository.issued) < sum(pool.format.keyspace for pool in pools.values())
    event("accepted, pools sharing keys" if shared else "accepted, disjoint pools")
    assert asyncio.run(violations(repository, pools)) == []
