"""API Gateway (REST payload v1 and HTTP API payload v2) -> services -> JSON responses.

Routes: POST /codes (and POST / for the demo's test event), GET /codes/{code}, GET /pools,
GET /pools/{pool}, GET /openapi.json. Errors are `{"error": {"code", "message"}}`; see `issuer.openapi`.
Another method on a known path is `405 method_not_allowed` with `Allow` (`OPTIONS` is `204` with `Allow`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
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
from codepool.formats import compact
from codepool.issuing import ClaimThrottledError, IssueResult, issue_codes
from codepool.queries import lookup_code
from codepool.runtime import Container, ContainerHolder, register_snapshot_hooks
from issuer.http import (
    error_body,
    error_response,
    json_proxy_response,
    json_response,
    proxy_response,
    status_of,
    unavailable_message,
)
from issuer.identity import caller_identity
from issuer.requests import parse_issue_body

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, APIGatewayRestResolver, Response
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

Route = TypeVar("Route", bound=Callable[..., Any])


class Routes:
    """The routes, recorded at import and registered on Powertools' resolvers when one is first needed
    (`_resolver`): `POST /codes` is answered without them, so a cold start does not import the event handler.
    Inside a route, `current_event` and `lambda_context` are the resolver's, as on a Powertools `Router`."""

    def __init__(self) -> None:
        self.table: list[tuple[str, str, Callable[..., Any]]] = []

    def get(self, rule: str) -> Callable[[Route], Route]:
        return self._add("GET", rule)

    def post(self, rule: str) -> Callable[[Route], Route]:
        return self._add("POST", rule)

    def _add(self, method: str, rule: str) -> Callable[[Route], Route]:
        def register(route: Route) -> Route:
            self.table.append((method, rule, route))
            return route

        return register

    def register_on(self, resolver: APIGatewayRestResolver | APIGatewayHttpResolver) -> None:
        for method, rule, route in self.table:
            resolver.route(rule, method)(route)

    @property
    def current_event(self) -> BaseProxyEvent:
        from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

        return BaseRouter.current_event

    @property
    def lambda_context(self) -> LambdaContext:
        from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

        return BaseRouter.lambda_context


logger = Logger(service="unique-codes-issuer")
metrics = Metrics(namespace="UniqueCodes", service="issuer")
container = ContainerHolder()
router = Routes()


@router.post("/")
@router.post("/codes")
def issue() -> Response[str]:
    return json_response(*_issue(router.current_event.raw_event, router.lambda_context))


def _issue(event: dict[str, Any], context: LambdaContext | None) -> tuple[int, Any, dict[str, str] | None]:
    """POST /codes: the status, JSON body and headers of the answer."""
    request = parse_issue_body(_request_body(event))
    idempotency_key = _header(event, "idempotency-key")
    caller = caller_identity(event)
    request_id = _request_id(event)
    deadline = _deadline_for(context)

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
        metrics.add_dimension(name="pool", value=result.codes[0].pool)
        metrics.add_metric(name="CodesIssued", unit=MetricUnit.Count, value=len(result.codes))
        metrics.add_metric(name="ClaimRetries", unit=MetricUnit.Count, value=result.lost_races)
        metrics.add_metric(name="ClaimThrottles", unit=MetricUnit.Count, value=result.throttles)
    codes = [code.to_json() for code in result.codes]
    body = codes[0] if request.count == 1 else {"codes": codes}
    return 201, body, headers


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
    from issuer.openapi import openapi_document  # a rare route: not every cold start's import

    return json_response(200, openapi_document())


def _request_body(event: dict[str, Any]) -> str | None:
    """The body as Powertools' `decoded_body` reads it: base64-decoded when the event says so."""
    body = event.get("body")
    if not (event.get("isBase64Encoded") and body):
        return body
    try:
        return base64.b64decode(body.encode()).decode()
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRequestError("request body must be UTF-8 JSON") from exc


def _header(event: dict[str, Any], name: str) -> Any:
    """A request header by its lower-case `name`, as Powertools' `event.headers` reads it: any case, the last of
    several spellings winning."""
    found = None
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            found = value
    return found


def _deadline() -> Deadline:
    return _deadline_for(router.lambda_context)


def _deadline_for(context: LambdaContext | None) -> Deadline:
    """This invocation's deadline: the configured request budget, or less if Lambda has less time left."""
    remaining = context.get_remaining_time_in_millis() if context is not None else None
    return Deadline.for_invocation(container.settings.request_budget, remaining, RESPONSE_MARGIN_SECONDS)


def _request_id(event: dict[str, Any]) -> str | None:
    context = event.get("requestContext") or {}
    request_id = context.get("requestId")
    return str(request_id) if request_id else None


def _build_resolver(resolver: APIGatewayRestResolver | APIGatewayHttpResolver) -> Any:
    from aws_lambda_powertools.event_handler.api_gateway import Response  # imported with the resolvers (`_resolver`)

    router.register_on(resolver)

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


_resolvers: dict[bool, Any] = {}
ISSUE_PATHS = frozenset({"/", "/codes"})


def _resolver(http_api_event: bool) -> Any:
    """The resolver for HTTP API (payload v2) events or REST (v1) ones; both are built on the first call."""
    if not _resolvers:
        from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, APIGatewayRestResolver

        _resolvers.update(
            {False: _build_resolver(APIGatewayRestResolver()), True: _build_resolver(APIGatewayHttpResolver())}
        )
    return _resolvers[http_api_event]


def _routable(event: dict[str, Any], http_api_event: bool) -> dict[str, Any]:
    """The event with each Unicode dash or space in its path as an ASCII `-`.

    Such characters come with pasted codes (an en dash, U+2013, between groups; a no-break space), and a look-up
    takes them for the separators they are (`compact`). But Powertools' route patterns take only word characters
    and ASCII URI punctuation, so `GET /codes/lawx<U+2013>2jah` would be no route at all (`404 route_not_found`).
    Other text is left as it is."""
    key = "rawPath" if http_api_event else "path"
    path = event.get(key)
    if not isinstance(path, str) or path.isascii():
        return event
    routable = "".join("-" if not char.isascii() and not compact(char) else char for char in path)
    return {**event, key: routable} if routable != path else event


def _has_control_characters(path: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in path)


def _is_issue_request(event: dict[str, Any], http_api_event: bool) -> bool:
    """Whether the resolver would route `event` to `issue` (POST / or POST /codes), read as it reads the method and
    the path; an event of another shape is left to the resolver."""
    if http_api_event:
        request_context = event.get("requestContext")
        request_context = request_context if isinstance(request_context, dict) else {}
        http = request_context.get("http")
        method = http.get("method") if isinstance(http, dict) else None
        stage, path = request_context.get("stage"), event.get("rawPath")
        if not isinstance(stage, str) or not isinstance(path, str):
            return False
        if stage != "$default":
            path = path[len("/" + stage) :]  # Powertools cuts the stage's length off whatever the path starts with
    else:
        method, path = event.get("httpMethod"), event.get("path")
    return isinstance(method, str) and method.upper() == "POST" and path in ISSUE_PATHS


def _issue_directly(event: dict[str, Any], context: LambdaContext, http_api_event: bool) -> dict[str, Any]:
    """`issue` without the resolver's routing, middleware and event classes (see `lambda_handler`), answering as
    the resolver would: an error goes through the same exception handlers, the response through the same layout."""
    try:
        return json_proxy_response(*_issue(event, context), multi_value_headers=not http_api_event)
    except Exception as error:
        handlers = _resolver(http_api_event).exception_handler_manager
        response = handlers.lookup_exception_handler(type(error))(error)
    return proxy_response(response, multi_value_headers=not http_api_event)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    http_api_event = event.get("version") == "2.0"
    logger.set_correlation_id(_request_id(event))
    path = str(event.get("rawPath") or event.get("path") or "")
    if _has_control_characters(path):
        # Route patterns end in `$`, which also matches before a trailing newline: "/pools/%0A" would reach
        # GET /pools. No route has control characters, so none can match.
        body = error_body("route_not_found", "no route for a path with control characters")
        return {"statusCode": 404, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
    try:
        # The hot path skips the resolver: its event classes, routing, middleware and response builder were
        # ~140 µs of a warm claim here, and its import ~40 ms of a cold one (benchmarks/profile_warm.py).
        if _is_issue_request(event, http_api_event):
            response = _issue_directly(event, context, http_api_event)
        else:
            response = _resolver(http_api_event).resolve(_routable(event, http_api_event), context)
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()
    return response


def before_snapshot() -> None:
    """SnapStart, before the snapshot: the resolvers, settings, pools and botocore's service data built in."""
    _resolver(http_api_event=False)
    container.prepare_snapshot()


def after_restore() -> None:
    """SnapStart, in each restored container: fresh random state, then the loop and the client."""
    container.restore()


register_snapshot_hooks(before_snapshot, after_restore)
