"""API Gateway (REST payload v1 and HTTP API payload v2) -> services -> JSON responses.

Routes: POST /codes (and POST / for the demo's test event), GET /codes/{code}, GET /pools,
GET /pools/{pool}, GET /openapi.json. Errors are `{"error": {"code", "message"}}`; see `issuer.openapi`.
Another method on a known path is `405 method_not_allowed` with `Allow` (`OPTIONS` is `204` with `Allow`).
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.api_gateway import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    Router,
)
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from codepool.config import resolve_pool
from codepool.deadline import RESPONSE_MARGIN_SECONDS, Deadline, within
from codepool.errors import (
    InvalidRequestError,
    PoolExhaustedError,
    StoreAccessError,
    UnavailableError,
    UniqueCodesError,
)
from codepool.issuing import ClaimThrottledError, IssueResult, issue_codes
from codepool.queries import lookup_code
from codepool.runtime import Container, ContainerHolder
from issuer.http import error_body, error_response, json_response, status_of, unavailable_message
from issuer.identity import caller_identity
from issuer.openapi import openapi_document
from issuer.requests import parse_issue_body

logger = Logger(service="unique-codes-issuer")
metrics = Metrics(namespace="UniqueCodes", service="issuer")
container = ContainerHolder()
router = Router()  # type: ignore[no-untyped-call]


@router.post("/")
@router.post("/codes")
def issue() -> Response[str]:
    event = router.current_event
    request = parse_issue_body(_request_body(event))
    idempotency_key = event.headers.get("idempotency-key")
    caller = caller_identity(event.raw_event)
    request_id = _request_id(event.raw_event)
    deadline = _deadline()

    async def claim(runtime: Container) -> IssueResult:
        return await issue_codes(
            runtime.components,
            request,
            request_id=request_id,
            idempotency_key=idempotency_key,
            caller=caller,
            deadline=deadline,
        )

    result = container.run(claim)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    if not result.replayed:
        metrics.add_dimension(name="pool", value=request.pool)
        metrics.add_metric(name="CodesIssued", unit=MetricUnit.Count, value=len(result.codes))
        metrics.add_metric(name="ClaimRetries", unit=MetricUnit.Count, value=result.lost_races)
        metrics.add_metric(name="ClaimThrottles", unit=MetricUnit.Count, value=result.throttles)
    codes = [code.to_json() for code in result.codes]
    body = codes[0] if request.count == 1 else {"codes": codes}
    return json_response(201, body, headers)


@router.get("/codes/<code>")
def lookup(code: str) -> Response[str]:
    pool = router.current_event.get_query_string_value(name="pool", default_value=None)
    deadline = _deadline()

    async def find(runtime: Container) -> dict[str, Any]:
        async with within(deadline, "looking up a code"):
            return (await lookup_code(runtime.repository, runtime.pools, code, pool)).to_json()

    return json_response(200, container.run(find))


@router.get("/pools")
def list_pools() -> Response[str]:
    pools = container.pools
    return json_response(200, {"pools": [pool.describe() for pool in pools.values()]})


@router.get("/pools/<name>")
def show_pool(name: str) -> Response[str]:
    pool = resolve_pool(container.pools, name)
    deadline = _deadline()

    async def stats(runtime: Container) -> dict[str, Any]:
        async with within(deadline, f"counting pool {pool.name!r}"):
            return (await runtime.components.stats.get(pool)).to_json()

    return json_response(200, {**pool.describe(), **container.run(stats)})


@router.get("/openapi.json")
def openapi() -> Response[str]:
    return json_response(200, openapi_document())


def _request_body(event: BaseProxyEvent) -> str | None:
    try:
        return event.decoded_body
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRequestError("request body must be UTF-8 JSON") from exc


def _deadline() -> Deadline:
    """This invocation's deadline: the configured request budget, or less if Lambda has less time left."""
    context = router.lambda_context
    remaining = context.get_remaining_time_in_millis() if context is not None else None
    return Deadline.for_invocation(container.settings.request_budget, remaining, RESPONSE_MARGIN_SECONDS)


def _request_id(event: dict[str, Any]) -> str | None:
    context = event.get("requestContext") or {}
    request_id = context.get("requestId")
    return str(request_id) if request_id else None


def _build_resolver(resolver: APIGatewayRestResolver | APIGatewayHttpResolver) -> Any:
    resolver.include_router(router)

    @resolver.exception_handler(UniqueCodesError)  # type: ignore[untyped-decorator]
    def handle_domain_error(error: UniqueCodesError) -> Response[str]:
        status = status_of(error)
        if status == 500:
            logger.exception("server misconfiguration")
        elif isinstance(error, StoreAccessError):
            logger.error("request not served: an operator must act", extra={"error": error.code, "reason": str(error)})
        elif status >= 500:
            logger.warning("request not served", extra={"error": error.code, "reason": str(error)})
        if isinstance(error, PoolExhaustedError):
            metrics.add_dimension(name="pool", value=error.pool)
            metrics.add_metric(name="PoolExhausted", unit=MetricUnit.Count, value=1)
        if isinstance(error, ClaimThrottledError):
            metrics.add_metric(name="ClaimThrottles", unit=MetricUnit.Count, value=error.throttles)
        headers = {"Retry-After": str(error.retry_after)} if isinstance(error, UnavailableError) else None
        return error_response(status, error.code, unavailable_message(error), headers)

    @resolver.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def handle_unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return error_response(500, "internal_error", "internal error; see the function's logs")

    @resolver.not_found
    def handle_not_found(_: Exception) -> Response[str]:
        event = resolver.current_event
        method = event.http_method.upper()
        supported = _methods_of(resolver, event.path)
        if not supported:
            return error_response(404, "route_not_found", f"no route {event.http_method} {event.path}")
        allow = ", ".join(sorted({*supported, "OPTIONS"}))
        if method == "OPTIONS":
            return Response(status_code=204, content_type=None, body="", headers={"Allow": allow})
        message = f"{event.http_method} is not allowed on {event.path}; allowed: {allow}"
        return error_response(405, "method_not_allowed", message, {"Allow": allow})

    return resolver


def _methods_of(resolver: APIGatewayRestResolver | APIGatewayHttpResolver, path: str) -> set[str]:
    """The methods the routes matching `path` answer; empty when no route matches it with any method.

    Powertools only tells "no route for this method and path" (the not-found handler); the resolver's compiled
    routes (private, but what its own `_resolve` matches against) tell whether the path is known at all.
    """
    routes = resolver._static_routes + resolver._dynamic_routes
    return {route.method for route in routes if route.rule.match(path)}


rest_api = _build_resolver(APIGatewayRestResolver())
http_api = _build_resolver(APIGatewayHttpResolver())


def _has_control_characters(path: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in path)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resolver = http_api if event.get("version") == "2.0" else rest_api
    logger.set_correlation_id(_request_id(event))
    path = str(event.get("rawPath") or event.get("path") or "")
    if _has_control_characters(path):
        # Route patterns end in `$`, which also matches before a trailing newline: "/pools/%0A" would reach
        # GET /pools. No route has control characters, so none can match.
        body = error_body("route_not_found", "no route for a path with control characters")
        return {"statusCode": 404, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
    try:
        response: dict[str, Any] = resolver.resolve(event, context)
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()
    return response
