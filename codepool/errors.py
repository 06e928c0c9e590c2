"""Everything unique-codes raises on purpose.

UniqueCodesError
├── ConfigError                  a pools file, setting or argument is wrong (names what and why)
├── InvalidRequestError          a client sent something malformed or out of bounds        -> 400
│   ├── InvalidCodeError         a typed code whose check character is wrong (a typo)      -> 400
│   └── PayloadTooLargeError     the body is over the documented limit                     -> 413
├── NotFoundError                unknown pool, code or route                               -> 404
│   ├── PoolNotFoundError
│   └── CodeNotFoundError
├── AmbiguousCodeError           typed text is an issued code of more than one pool        -> 409
├── IdempotencyMismatchError     same Idempotency-Key, different request                   -> 422
└── UnavailableError             retry later (carries retry_after seconds)                 -> 503
    ├── PoolEmptyError           the pool has no code left to claim; a refill will add more
    │   └── PoolExhaustedError   ...and never will: every code of its keyspace (or import) is issued
    ├── ClaimContentionError     every bounded claim attempt lost a race
    └── StoreUnavailableError    DynamoDB failed, throttled or did not answer within the request's deadline
        └── StoreAccessError     DynamoDB refused our credentials or permissions (an operator must act)
RefillError                      a refill could not write everything (counts what it did write)
"""

from __future__ import annotations


class UniqueCodesError(Exception):
    """Base class: `code` is the stable machine-readable name used in HTTP error bodies."""

    code = "error"


class ConfigError(UniqueCodesError):
    code = "invalid_configuration"


class InvalidRequestError(UniqueCodesError):
    code = "invalid_request"


class InvalidCodeError(InvalidRequestError):
    code = "invalid_code"


class PayloadTooLargeError(InvalidRequestError):
    code = "payload_too_large"


class NotFoundError(UniqueCodesError):
    code = "not_found"


class PoolNotFoundError(NotFoundError):
    code = "pool_not_found"

    def __init__(self, pool: str) -> None:
        super().__init__(f"unknown pool {pool!r}")
        self.pool = pool


class CodeNotFoundError(NotFoundError):
    code = "code_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"no issued code {code!r}")


class AmbiguousCodeError(UniqueCodesError):
    code = "ambiguous_code"

    def __init__(self, typed: str, pools: list[str]) -> None:
        super().__init__(
            f"{typed!r} is an issued code of pools {pools}; say which with ?pool=NAME (or lookup --pool NAME)"
        )
        self.pools = pools


class IdempotencyMismatchError(UniqueCodesError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request body")


class UnavailableError(UniqueCodesError):
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PoolEmptyError(UnavailableError):
    """Fewer codes than a claim asked for: `left` is how many the claim found (none, or fewer than asked)."""

    code = "pool_empty"

    def __init__(self, pool: str, retry_after: int = 30, message: str | None = None, *, left: int = 0) -> None:
        message = message or f"pool {pool!r} has no codes left; the refiller adds more on its schedule"
        super().__init__(message, retry_after)
        self.pool = pool
        self.left = left


class PoolExhaustedError(PoolEmptyError):
    """A refill cannot help: every code the pool's format allows (less blocked ones) was issued, or, for an
    imported-only pool, every imported code. A new pool (or a longer format, or an import) is what it needs."""

    code = "pool_exhausted"

    def __init__(self, pool: str, why: str, *, left: int = 0) -> None:
        super().__init__(pool, 3600, f"pool {pool!r} is exhausted: {why}; no refill can add codes to it", left=left)


class ClaimContentionError(UnavailableError):
    code = "claim_contention"

    def __init__(self, pool: str, attempts: int) -> None:
        super().__init__(f"lost {attempts} claim races in pool {pool!r} in a row; retry", retry_after=1)


class StoreUnavailableError(UnavailableError):
    code = "store_unavailable"


class StoreAccessError(StoreUnavailableError):
    """Expired or unrecognised credentials, a missing permission: the client can only wait, an operator must act,
    so it is answered like any other store trouble (503) but logged as an error."""


class RefillError(UniqueCodesError):
    code = "refill_failed"

    def __init__(self, message: str, written: int) -> None:
        super().__init__(f"{message} (wrote {written} codes before failing)")
        self.written = written
