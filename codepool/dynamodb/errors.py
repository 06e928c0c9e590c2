"""Turn what botocore raises after its own bounded retries into the domain's errors.

The table in README "Errors" lists every case; `tests/integration/test_store_errors.py` has one test per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from codepool.errors import StoreAccessError, StoreUnavailableError

THROTTLING_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
"""Capacity trouble, retried by the SDK; what is left after its attempts is a 503."""
TRANSIENT_CODES = frozenset(
    {
        "InternalServerError",
        "ServiceUnavailable",
        # An item of this request is held by another container's transaction (e.g. a stale slot being
        # claimed); botocore does not retry it, `DynamoDBRepository` does, then it is a 503.
        "TransactionConflictException",
        # A transaction with this ClientRequestToken is still running (the SDK retried while the first
        # attempt was in flight); the SDK retries it as throttling.
        "TransactionInProgressException",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredTokenException",
        "ExpiredToken",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
        "AccessDeniedException",
        "RequestExpired",
    }
)
"""Nothing a client can fix and nothing a retry soon fixes: 503, and an error in the logs for an operator."""


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def store_errors(operation: str) -> Iterator[None]:
    """Map the engine's trouble to `StoreUnavailableError` (503); let through what the caller handles
    (`TransactionCanceledException`) and what would be our own bug (`ValidationException`: a 500)."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in CREDENTIAL_CODES:
            raise StoreAccessError(f"DynamoDB {operation} refused our credentials: {code}", retry_after=30) from exc
        if code == "ResourceNotFoundException":
            raise StoreAccessError(
                f"DynamoDB {operation}: the table does not exist (run `unique-codes create-table`)", retry_after=30
            ) from exc
        if code in THROTTLING_CODES or code in TRANSIENT_CODES:
            raise StoreUnavailableError(f"DynamoDB {operation} kept failing: {code}", retry_after=1) from exc
        if http_status(exc) >= 500:
            # An HTML or empty body from a load balancer or proxy: botocore names the error after the status.
            raise StoreUnavailableError(
                f"DynamoDB {operation} answered HTTP {http_status(exc)} ({code or 'no error code'})", retry_after=1
            ) from exc
        raise
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StoreAccessError(f"DynamoDB {operation}: no usable AWS credentials ({exc})", retry_after=30) from exc
    except BotoCoreError as exc:
        # Connect/read timeouts and refused or reset connections, after the SDK's own retries.
        raise StoreUnavailableError(f"DynamoDB {operation} unreachable: {exc}", retry_after=1) from exc
