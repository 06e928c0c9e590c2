"""HTTP answers of the issuer, in Lambda and in `unique-codes serve`: JSON bodies and the status of each error.

Powertools' event handler is imported on first use, not with this module: `POST /codes` answers without it
(`json_proxy_response`), and its import is about 40 ms of a cold start (benchmarks/profile_warm.py --importtime).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Response

JSON = "application/json"

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
    from aws_lambda_powertools.event_handler.api_gateway import Response

    return Response(status_code=status, content_type=JSON, body=_json(body), headers=headers)


def json_proxy_response(
    status: int, body: Any, headers: dict[str, str] | None, *, multi_value_headers: bool
) -> dict[str, Any]:
    """What a resolver answers for `json_response(status, body, headers)`, built without Powertools."""
    all_headers = dict(headers or {})
    all_headers.setdefault("Content-Type", JSON)  # after the others, as `Response` adds it
    return _proxy_layout(status, _json(body), all_headers, [], multi_value_headers)


def _json(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[str]:
    return json_response(status, error_body(code, message), headers)


def proxy_response(response: Response[str], *, multi_value_headers: bool) -> dict[str, Any]:
    """The proxy integration's answer for one of our responses (a `str` body: no serialising, no base64, no
    compression, no CORS), laid out as Powertools' resolvers lay it out: REST (payload v1) with
    `multiValueHeaders`, HTTP API (payload v2) with `headers` (repeated values joined) and `cookies`."""
    cookies = [str(cookie) for cookie in response.cookies]
    return _proxy_layout(response.status_code, response.body, response.headers, cookies, multi_value_headers)


def _proxy_layout(
    status: int,
    body: str | None,
    all_headers: Mapping[str, str | Sequence[str] | None],
    cookies: list[str],
    multi_value_headers: bool,
) -> dict[str, Any]:
    answer: dict[str, Any] = {"statusCode": status, "body": body, "isBase64Encoded": False}
    headers = {name: value for name, value in all_headers.items() if value is not None}
    if multi_value_headers:
        values = {name: [value] if isinstance(value, str) else list(value) for name, value in headers.items()}
        if cookies:
            values.setdefault("Set-Cookie", []).extend(cookies)
        answer["multiValueHeaders"] = values
    else:
        answer["headers"] = {
            name: value if isinstance(value, str) else ", ".join(value) for name, value in headers.items()
        }
        answer["cookies"] = cookies
    return answer
