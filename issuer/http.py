"""HTTP answers of the issuer, in Lambda and in `unique-codes serve`: JSON bodies and the status of each error."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Response

from codepool.errors import (
    AmbiguousCodeError,
    IdempotencyMismatchError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    StoreUnavailableError,
    UnavailableError,
    UniqueCodesError,
)

STATUS_BY_ERROR: list[tuple[type[UniqueCodesError], int]] = [
    (PayloadTooLargeError, 413),
    (InvalidRequestError, 400),
    (NotFoundError, 404),
    (AmbiguousCodeError, 409),
    (IdempotencyMismatchError, 422),
    (UnavailableError, 503),
]
"""Most specific first: the first class an error is an instance of decides its status."""


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of every HTTP error: `{"error": {"code", "message"}}`."""
    return {"error": {"code": code, "message": message}}


def status_of(error: UniqueCodesError) -> int:
    """The HTTP status of a domain error; 500 only for one the API never expects (a configuration error)."""
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(error, kind)), 500)


def unavailable_message(error: UniqueCodesError) -> str:
    """The error's message; for store trouble, also what a client should do about it."""
    if isinstance(error, StoreUnavailableError):
        # A write can commit after the SDK gave up waiting for its answer: only a retry with the same key is
        # sure to get that code back instead of a second one.
        return f"{error}. Retry after Retry-After seconds with the same Idempotency-Key (send one if you did not)."
    return str(error)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[str]:
    return json_response(status, error_body(code, message), headers)
