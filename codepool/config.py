"""Configuration: pool definitions from `POOLS_FILE` (TOML) and settings from the environment.

Fails loudly, naming the file, the pool and the field that is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codepool.deadline import DEFAULT_REFILL_BUDGET_SECONDS, DEFAULT_REQUEST_BUDGET_SECONDS
from codepool.errors import ConfigError, InvalidRequestError, PoolNotFoundError
from codepool.formats import CodeFormat
from codepool.overlaps import refuse_misread_pools

DEFAULT_TABLE_NAME = "UniqueCodes"
DEFAULT_REGION = "us-east-1"
LOCAL_CREDENTIAL = "local"
"""What local engines get as access key and secret: they accept any, and without some botocore would probe the
instance metadata service and stall for seconds."""
MAX_TARGET = 10_000_000
MAX_SHARDS = 64
POOL_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

_FORMAT_FIELDS = {"alphabet", "length", "prefix", "postfix", "pattern", "check", "blocklist", "default_blocklist"}
_SIZE_FIELDS = {"target", "low_watermark", "shards", "imported_only"}


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """A pool: its code format and how full the refiller keeps it.

    `shards` spreads the pool's available codes over that many DynamoDB partitions so concurrent claimers
    start in different places and no single partition is hot. An `imported_only` pool holds only the codes
    `unique-codes import` loaded into it: the refiller never generates codes for it, and once they are all
    issued the pool is exhausted.
    """

    name: str
    format: CodeFormat
    target: int = 10_000
    low_watermark: int = 2_000
    shards: int = 4
    imported_only: bool = False

    def __post_init__(self) -> None:
        if not POOL_NAME_PATTERN.fullmatch(self.name):
            raise ConfigError(f"pool name {self.name!r} must match {POOL_NAME_PATTERN.pattern}")
        if not 1 <= self.target <= MAX_TARGET:
            raise ConfigError(f"pool {self.name!r}: target must be between 1 and {MAX_TARGET}")
        if not 0 <= self.low_watermark <= self.target:
            raise ConfigError(f"pool {self.name!r}: low_watermark must be between 0 and target ({self.target})")
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ConfigError(f"pool {self.name!r}: shards must be between 1 and {MAX_SHARDS}")
        if not self.imported_only and self.format.keyspace < 2 * self.target:
            raise ConfigError(
                f"pool {self.name!r}: {self.format.keyspace} possible codes cannot keep {self.target} "
                "available; lengthen the code or widen the alphabet"
            )

    def describe(self) -> dict[str, Any]:
        fmt = self.format
        return {
            "name": self.name,
            "alphabet": fmt.alphabet,
            "length": fmt.length,
            "prefix": fmt.prefix,
            "postfix": fmt.postfix,
            "pattern": fmt.pattern,
            "check": fmt.check,
            "blocklist": list(fmt.blocklist),
            "defaultBlocklist": fmt.default_blocklist,
            "importedOnly": self.imported_only,
            "example": fmt.generate(),
            "keyspace": fmt.keyspace,
            "entropyBits": round(fmt.entropy_bits, 1),
            "target": self.target,
            "lowWatermark": self.low_watermark,
            "shards": self.shards,
        }


DEFAULT_POOL = PoolConfig(name="default", format=CodeFormat(alphabet="unambiguous", length=8))


def resolve_pool(pools: Mapping[str, PoolConfig], name: str | None) -> PoolConfig:
    """The pool called `name`; without a name, the `default` pool, or the only pool there is."""
    if name is None:
        if DEFAULT_POOL.name in pools:
            return pools[DEFAULT_POOL.name]
        if len(pools) == 1:
            return next(iter(pools.values()))
        raise InvalidRequestError(f"name a pool: there is no 'default' pool, the pools are {', '.join(sorted(pools))}")
    try:
        return pools[name]
    except KeyError:
        raise PoolNotFoundError(name) from None


def parse_pools(document: Mapping[str, Any], source: str = "pools file") -> dict[str, PoolConfig]:
    """`{"pools": {name: {...}}}` -> pools by name. A file defines the pools: the built-in `default` pool is there
    only without a file (or pools), or where the file names it with an empty `[pools.default]` table. Refuses
    pools that could issue one code under two keys (`codepool.overlaps`)."""
    unknown_top = set(document) - {"pools"}
    if unknown_top:
        raise ConfigError(f"{source}: unknown top-level keys {sorted(unknown_top)}; expected [pools.<name>]")
    tables = document.get("pools", {})
    if not isinstance(tables, Mapping):
        raise ConfigError(f"{source}: 'pools' must be a table of [pools.<name>] tables")
    if not tables:
        return {DEFAULT_POOL.name: DEFAULT_POOL}
    pools = {}
    for name, table in tables.items():
        named_only = name == DEFAULT_POOL.name and isinstance(table, Mapping) and not table
        pools[name] = DEFAULT_POOL if named_only else _parse_pool(name, table, source)
    refuse_misread_pools(pools, source)
    return pools


def _parse_pool(name: str, table: Any, source: str) -> PoolConfig:
    where = f"{source}: [pools.{name}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - _FORMAT_FIELDS - _SIZE_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if "alphabet" not in table or "length" not in table:
        raise ConfigError(f"{where}: 'alphabet' and 'length' are required")
    _expect(where, table, str, "alphabet", "prefix", "postfix", "pattern", "check")
    _expect(where, table, int, "length", "target", "low_watermark", "shards")
    for flag in ("default_blocklist", "imported_only"):
        if flag in table and not isinstance(table[flag], bool):
            raise ConfigError(f"{where}: {flag!r} must be true or false, got {table[flag]!r}")
    blocklist = table.get("blocklist", [])
    if not isinstance(blocklist, list) or not all(isinstance(word, str) for word in blocklist):
        raise ConfigError(f"{where}: 'blocklist' must be a list of strings")
    try:
        fmt = CodeFormat(
            alphabet=table["alphabet"],
            length=table["length"],
            prefix=table.get("prefix", ""),
            postfix=table.get("postfix", ""),
            pattern=table.get("pattern"),
            check=table.get("check"),
            blocklist=tuple(blocklist),
            default_blocklist=table.get("default_blocklist", True),
        )
        target = table.get("target", 10_000)
        return PoolConfig(
            name=name,
            format=fmt,
            target=target,
            low_watermark=table.get("low_watermark", target // 5),
            shards=table.get("shards", 4),
            imported_only=table.get("imported_only", False),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _expect(where: str, table: Mapping[str, Any], kind: type, *keys: str) -> None:
    for key in keys:
        value = table.get(key)
        # bool is an int in Python; `length = true` is still a mistake.
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ConfigError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")


def load_pools(path: str | os.PathLike[str] | None) -> dict[str, PoolConfig]:
    if path is None:
        return parse_pools({})
    file = Path(path)
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"POOLS_FILE {str(file)!r} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"POOLS_FILE {str(file)!r} is not valid TOML: {exc}") from exc
    return parse_pools(document, source=str(file))


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str = DEFAULT_TABLE_NAME
    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    pools_file: str | None = None
    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    max_attempts: int = 4
    request_budget: float = DEFAULT_REQUEST_BUDGET_SECONDS
    """Seconds one API request may spend, every DynamoDB call and retry included (`codepool.deadline`)."""
    refill_budget: float = DEFAULT_REFILL_BUDGET_SECONDS
    """Seconds one refiller run may spend; on Lambda its remaining time usually decides first."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "table_name": env.get("TABLE_NAME") or DEFAULT_TABLE_NAME,
            "endpoint_url": env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None,
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            "pools_file": env.get("POOLS_FILE") or None,
        }
        for name, key, kind in (
            ("connect_timeout", "DYNAMODB_CONNECT_TIMEOUT", float),
            ("read_timeout", "DYNAMODB_READ_TIMEOUT", float),
            ("max_attempts", "DYNAMODB_MAX_ATTEMPTS", int),
            ("request_budget", "REQUEST_BUDGET_SECONDS", float),
            ("refill_budget", "REFILL_BUDGET_SECONDS", float),
        ):
            if env.get(key):
                try:
                    values[name] = kind(env[key])
                except ValueError as exc:
                    raise ConfigError(f"{key} must be a number, got {env[key]!r}") from exc
                if not values[name] > 0 or values[name] != values[name] or values[name] == float("inf"):
                    raise ConfigError(f"{key} must be a positive finite number, got {env[key]!r}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def local_credentials(self) -> dict[str, str]:
        """Keyword arguments for a boto3/aioboto3 `Session`: placeholder keys when talking to a local endpoint
        without credentials in the environment, else none (the SDK's own chain finds them)."""
        if self.endpoint_url and not os.environ.get("AWS_ACCESS_KEY_ID"):
            return {"aws_access_key_id": LOCAL_CREDENTIAL, "aws_secret_access_key": LOCAL_CREDENTIAL}
        return {}
