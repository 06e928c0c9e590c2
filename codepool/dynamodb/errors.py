"""Turn what botocore raises after its own bounded retries into the domain's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from codepool.errors import StoreUnavailableError

_RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


@contextmanager
def store_errors(operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _RETRYABLE_CODES:
            raise StoreUnavailableError(f"DynamoDB {operation} kept failing: {code}", retry_after=1) from exc
        if code == "ResourceNotFoundException":
            raise StoreUnavailableError(
                f"DynamoDB {operation}: the table does not exist (run `unique-codes create-table`)",
                retry_after=5,
            ) from exc
        raise
    except BotoCoreError as exc:
        # Connect/read timeouts and refused connections, after the SDK's own retries.
        raise StoreUnavailableError(f"DynamoDB {operation} unreachable: {exc}", retry_after=1) from exc
