"""unique-codes core: code formats, pools, the storage port and its DynamoDB adapter, and the services."""

from codepool.config import DEFAULT_POOL, PoolConfig, Settings, load_pools
from codepool.errors import (
    ClaimContentionError,
    CodeNotFoundError,
    ConfigError,
    IdempotencyMismatchError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PoolEmptyError,
    PoolNotFoundError,
    RefillError,
    StoreAccessError,
    StoreUnavailableError,
    UnavailableError,
    UniqueCodesError,
)
from codepool.formats import ALPHABET_PRESETS, CodeFormat
from codepool.model import MAX_COUNT, METADATA_LIMITS, IssuedCode, IssueRequest, PoolStats, RefillSummary

__all__ = [
    "ALPHABET_PRESETS",
    "DEFAULT_POOL",
    "MAX_COUNT",
    "METADATA_LIMITS",
    "ClaimContentionError",
    "CodeFormat",
    "CodeNotFoundError",
    "ConfigError",
    "IdempotencyMismatchError",
    "InvalidRequestError",
    "IssueRequest",
    "IssuedCode",
    "NotFoundError",
    "PayloadTooLargeError",
    "PoolConfig",
    "PoolEmptyError",
    "PoolNotFoundError",
    "PoolStats",
    "RefillError",
    "RefillSummary",
    "Settings",
    "StoreAccessError",
    "StoreUnavailableError",
    "UnavailableError",
    "UniqueCodesError",
    "load_pools",
]
