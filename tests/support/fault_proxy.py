"""A seeded, fault-injecting HTTP proxy in front of DynamoDB Local, for tests.

Faults DynamoDB Local never produces (throttling, transaction conflicts, 5xx with an HTML body, a connection reset,
a response lost after the write committed) are injected here; everything else is forwarded unchanged.

    with FaultProxy(dynamodb_local.endpoint_url, seed=1) as proxy:
        proxy.add(Rule(dynamodb_error("ThrottlingException"), operation="GetItem", times=1))
        settings = dataclasses.replace(settings, endpoint_url=proxy.url)
        ...
        assert proxy.count("GetItem") == 2

The proxy runs an aiohttp server on its own event loop in a daemon thread, so synchronous tests (a Lambda handler
running its own loop) and asynchronous ones can both use it. Rules are tried in the order added; the first that
matches answers the request. A rule matches when its operation (the `X-Amz-Target` suffix) fits, its `times` is not
used up, and, if its `rate` is below 1, a draw from the proxy's own `random.Random(seed)` falls under the rate, so a
run with the same seed and the same request sequence injects the same faults.

With `upstream=None` (stub mode) a request no rule answers gets a 500 `InternalServerError` saying "no upstream".

What an aiobotocore client (one attempt) raises for the connection faults:

    Hang()                                  botocore ReadTimeoutError, after the client's read_timeout
    Reset()          (TCP RST)              botocore EndpointConnectionError (from aiohttp ClientOSError ECONNRESET)
    Reset(hard=False), DropResponse()  (FIN)  botocore ConnectionClosedError (from aiohttp ServerDisconnectedError)
    DropResponse(hard=True)                 botocore EndpointConnectionError; the write happened all the same
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeAlias

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810"
CORAL_SERVICE_NAMESPACE = "com.amazon.coral.service"
CREDENTIAL_ERRORS = frozenset(
    {
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "AccessDeniedException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "UnknownOperationException",
    }
)
"""Codes DynamoDB reports from its front door (authentication, routing), namespaced `com.amazon.coral.service`."""

ERROR_STATUS = {"InternalServerError": 500, "ServiceUnavailable": 503}
"""Every other DynamoDB error code comes with 400."""

ERROR_MESSAGES = {
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API."
    ),
    "RequestLimitExceeded": (
        "Throughput exceeds the current throughput limit for your account. "
        "Please contact AWS Support at https://aws.amazon.com/support request a limit increase"
    ),
    "TransactionConflictException": "Transaction is ongoing for the item",
    "TransactionInProgressException": "Transaction is in progress",
    "ConditionalCheckFailedException": "The conditional request failed",
    "ExpiredTokenException": "The security token included in the request is expired",
    "UnrecognizedClientException": "The security token included in the request is invalid.",
    "InvalidSignatureException": (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    ),
    "AccessDeniedException": "User is not authorized to perform this action on this resource",
    "ResourceNotFoundException": "Requested resource not found",
    "ValidationException": "One or more parameter values were invalid",
    "ItemCollectionSizeLimitExceededException": "Collection size exceeded.",
    "LimitExceededException": "Too many operations for a given subscriber.",
    "InternalServerError": "Internal server error",
    "ServiceUnavailable": "Service unavailable",
}

CANCELLATION_MESSAGES = {
    "ConditionalCheckFailed": "The conditional request failed",
    "ThrottlingError": (
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
        "table or index so please try again shortly. If exceptions persist, check if you have a hot key: "
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html."
    ),
    "ProvisionedThroughputExceeded": ERROR_MESSAGES["ProvisionedThroughputExceededException"],
    "TransactionConflict": "Transaction is ongoing for the item",
    "ItemCollectionSizeLimitExceeded": "Collection size exceeded.",
    "ValidationError": "One or more parameter values were invalid",
}
"""What DynamoDB says for each cancellation reason; a `None` reason carries no message at all."""

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED_REQUEST = HOP_BY_HOP | {"host", "content-length"}
NOT_FORWARDED_RESPONSE = HOP_BY_HOP | {"content-length"}
"""aiohttp sets Host and Content-Length itself. Content-Encoding is kept in both directions: the proxy never
decompresses, so the bytes (and DynamoDB's `x-amz-crc32` over them) stay as the upstream sent them."""

COMPACT = (",", ":")
"""DynamoDB writes its JSON without spaces."""

POLL_SECONDS = 0.05
"""How often a hanging request looks whether its client has gone."""
SHUTDOWN_SECONDS = 2.0
"""How long `stop` lets a request handler finish before aiohttp cancels it (none should take that long: stop ends
hangs and delays, and closing the upstream session fails the forwards)."""
STARTUP_SECONDS = 10.0


# --- faults -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer with this status, body and headers; nothing is forwarded."""

    status: int
    body: bytes | str
    content_type: str | None = JSON_CONTENT_TYPE
    headers: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CancelTransaction:
    """A 400 `TransactionCanceledException` with one cancellation reason per action of the request's `TransactItems`:
    `reason` for every action, or, with `only_first`, `reason` for the first and `"None"` for the rest (what
    DynamoDB sends when one item fails a condition). Nothing is forwarded."""

    reason: str = "ThrottlingError"
    only_first: bool = False


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: keep the connection open until the client gives up or the proxy stops."""


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait, then forward (in stub mode: answer as the stub). The request is forwarded even if the client gave up
    meanwhile, as a request already on the wire still reaches DynamoDB: a late write after a client timeout."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Close the client's connection without forwarding. `hard` (the default) sends a TCP RST (SO_LINGER 0): the
    client sees "connection reset by peer"; otherwise a plain close (FIN): the client sees "server disconnected"."""

    hard: bool = True


@dataclass(frozen=True, slots=True)
class DropResponse:
    """Forward, let the upstream answer (a write commits), then close the client's connection without the answer.
    The exchange's `upstream_status` records what the upstream said. `hard` as for `Reset`; default a plain close."""

    hard: bool = False


Fault: TypeAlias = Respond | CancelTransaction | Hang | Delay | Reset | DropResponse


def error_body(code: str, message: str, namespace: str | None = None) -> bytes:
    if namespace is None:
        namespace = CORAL_SERVICE_NAMESPACE if code in CREDENTIAL_ERRORS else DYNAMODB_NAMESPACE
    return json.dumps({"__type": f"{namespace}#{code}", "message": message}, separators=COMPACT).encode()


def dynamodb_error(
    code: str, message: str | None = None, status: int | None = None, *, namespace: str | None = None
) -> Respond:
    """DynamoDB's JSON error for `code`, with its usual message and status (400; 500 for InternalServerError, 503
    for ServiceUnavailable) unless given."""
    text = ERROR_MESSAGES.get(code, code) if message is None else message
    return Respond(ERROR_STATUS.get(code, 400) if status is None else status, error_body(code, text, namespace))


def cancellation_body(reasons: list[str]) -> bytes:
    """A `TransactionCanceledException` body exactly as DynamoDB sends it (note the capital `Message`)."""
    entries: list[dict[str, str]] = []
    for reason in reasons:
        entry = {"Code": reason}
        if reason != "None":
            entry["Message"] = CANCELLATION_MESSAGES.get(reason, reason)
        entries.append(entry)
    message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(reasons)}]"
    return json.dumps(
        {
            "__type": f"{DYNAMODB_NAMESPACE}#TransactionCanceledException",
            "CancellationReasons": entries,
            "Message": message,
        },
        separators=COMPACT,
    ).encode()


def transaction_cancelled(reasons: list[str]) -> Respond:
    """A fixed `TransactionCanceledException`; `reasons` must have one entry per action of the request (see
    `CancelTransaction` for one that counts the actions itself)."""
    return Respond(400, cancellation_body(reasons))


def transaction_cancelled_all(reason: str) -> CancelTransaction:
    """`reason` for every action of the transaction."""
    return CancelTransaction(reason)


def html_error(status: int, body: str | None = None) -> Respond:
    """What a load balancer in front of a service says: an HTML page, not DynamoDB JSON."""
    phrase = _reason_phrase(status)
    page = f"<html><body><h1>{status} {phrase}</h1></body></html>" if body is None else body
    return Respond(status, page, content_type="text/html")


def empty_error(status: int) -> Respond:
    """A status with an empty body and no content type."""
    return Respond(status, b"", content_type=None)


def _reason_phrase(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return "Error"


# --- rules and the log --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Rule:
    """Apply `fault` to requests of `operation` (None: any), at most `times` times (None: unlimited), each with
    probability `rate`. `fired` counts how often it was applied."""

    fault: Fault
    operation: str | None = None
    times: int | None = None
    rate: float = 1.0
    fired: int = field(default=0, init=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must not be negative, got {self.times}")

    @property
    def used_up(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass(slots=True)
class Exchange:
    """One request the proxy saw, and what became of it.

    `status` is what the client got (None: no answer: a hang, a reset, a dropped response); `upstream_status` is
    what the upstream answered to a forwarded request (None: not forwarded, or the upstream failed: see `error`)."""

    operation: str | None
    fault: Fault | None
    request_body: bytes
    started: float
    upstream_status: int | None = None
    status: int | None = None
    error: str | None = None
    done: bool = False


def operation_of(target: str | None) -> str | None:
    """`DynamoDB_20120810.TransactWriteItems` -> `TransactWriteItems`."""
    if not target:
        return None
    return target.rpartition(".")[2]


# --- the proxy ----------------------------------------------------------------------------------------------------


class FaultProxy:
    def __init__(self, upstream: str | None, *, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.seed = seed
        self._random = random.Random(seed)  # reproducible fault draws, not cryptography
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._log: list[Exchange] = []
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._session: aiohttp.ClientSession | None = None

    # lifecycle

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_SECONDS):
            raise RuntimeError(f"the fault proxy did not start within {STARTUP_SECONDS} s")
        if self._error is not None:
            self._thread.join()
            self._thread, self._loop, error, self._error = None, None, self._error, None
            raise RuntimeError("the fault proxy failed to start") from error
        return self

    def stop(self) -> None:
        """Stop listening, end hanging requests (their connections are closed unanswered), cancel forwards still
        running after a short grace period, and close the upstream session. Idempotent."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None:
            return
        if stopping is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join()
        self._thread = None
        self._loop = None
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError("the fault proxy failed") from error

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._port}"

    # rules and the log

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule (the log stays)."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    @property
    def log(self) -> list[Exchange]:
        with self._lock:
            return list(self._log)

    def count(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for exchange in self._log if operation is None or exchange.operation == operation)

    def _choose(self, operation: str | None, body: bytes) -> Exchange:
        """Pick the first matching rule and log the request, atomically, so concurrent requests draw in order."""
        with self._lock:
            fault: Fault | None = None
            for rule in self._rules:
                if rule.used_up or (rule.operation is not None and rule.operation != operation):
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                fault = rule.fault
                break
            exchange = Exchange(operation=operation, fault=fault, request_body=body, started=time.monotonic())
            self._log.append(exchange)
            return exchange

    # the server thread

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # raised again in the caller's thread by start() or stop()
            self._error = exc
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        # No timeouts towards the upstream: the client's timeouts are what is under test. No automatic headers and
        # no decompression: what the client sent is what the upstream gets, and back.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None),
            connector=aiohttp.TCPConnector(limit=0),
            auto_decompress=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        try:
            await runner.setup()
            await web.SockSite(runner, self._listen()).start()
            self._ready.set()
            await self._stopping.wait()
        finally:
            for site in list(runner.sites):
                await site.stop()  # no new connections
            # Forwards still waiting on the upstream fail at once (their clients' connections are reset), rather
            # than holding up the shutdown: a frozen DynamoDB Local never answers.
            await self._session.close()
            await runner.cleanup()
            self._session = None

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        return sock

    # handling one request

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        exchange = self._choose(operation_of(request.headers.get("X-Amz-Target")), body)
        try:
            return await self._apply(request, exchange, body)
        finally:
            exchange.done = True

    async def _apply(self, request: web.Request, exchange: Exchange, body: bytes) -> web.StreamResponse:
        assert self._stopping is not None
        if self._stopping.is_set():
            return _abort(request, hard=False)
        fault = exchange.fault
        if isinstance(fault, Respond):
            return self._answer(exchange, fault.status, fault.body, fault.content_type, fault.headers)
        if isinstance(fault, CancelTransaction):
            return self._answer(exchange, 400, cancellation_body(cancellation_reasons(fault, body)), JSON_CONTENT_TYPE)
        if isinstance(fault, Hang):
            await self._wait(request, None)
            return _abort(request, hard=False)
        if isinstance(fault, Reset):
            return _abort(request, hard=fault.hard)
        if isinstance(fault, Delay) and not await self._wait(request, fault.seconds):
            return _abort(request, hard=False)  # the proxy is stopping
        if self.upstream is None:
            if isinstance(fault, DropResponse):
                return _abort(request, hard=fault.hard)
            no_upstream = error_body("InternalServerError", "no upstream")
            return self._answer(exchange, 500, no_upstream, JSON_CONTENT_TYPE)
        forwarded = await self._forward(request, exchange, body)
        if forwarded is None or isinstance(fault, DropResponse):
            return _abort(request, hard=fault.hard if isinstance(fault, DropResponse) else True)
        exchange.status = forwarded.status
        return forwarded

    def _answer(
        self,
        exchange: Exchange,
        status: int,
        body: bytes | str,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        data = body.encode() if isinstance(body, str) else body
        answer: CIMultiDict[str] = CIMultiDict()
        answer["x-amzn-RequestId"] = uuid.uuid4().hex.upper()
        if content_type is not None:
            answer["Content-Type"] = content_type
        if content_type == JSON_CONTENT_TYPE:
            answer["x-amz-crc32"] = str(zlib.crc32(data))
        answer.update(headers or {})
        exchange.status = status
        response = web.Response(status=status, body=data, headers=answer)
        if content_type is None and "Content-Type" not in answer:
            # An empty body has no content type; aiohttp would otherwise say application/octet-stream.
            response.headers.popall("Content-Type", None)
        return response

    async def _wait(self, request: web.Request, seconds: float | None) -> bool:
        """Sleep `seconds` (None: until the client goes); False if the proxy started stopping meanwhile."""
        stopping = self._stopping
        assert stopping is not None
        if seconds is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), seconds)
            return not stopping.is_set()
        while not stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), POLL_SECONDS)
        return not stopping.is_set()

    async def _forward(self, request: web.Request, exchange: Exchange, body: bytes) -> web.Response | None:
        """The upstream's answer as a response for the client; None if the upstream could not be reached."""
        session = self._session
        assert session is not None
        assert self.upstream is not None
        headers = _filtered(request.headers, NOT_FORWARDED_REQUEST)
        url = URL(self.upstream + request.raw_path, encoded=True)
        try:
            async with session.request(
                request.method, url, data=body, headers=headers, allow_redirects=False
            ) as upstream:
                data = await upstream.read()
                exchange.upstream_status = upstream.status
                return web.Response(
                    status=upstream.status,
                    reason=upstream.reason,
                    body=data,
                    headers=_filtered(upstream.headers, NOT_FORWARDED_RESPONSE),
                )
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:  # RuntimeError: the session closed (stopping)
            exchange.error = f"{type(exc).__name__}: {exc}"
            return None


def cancellation_reasons(fault: CancelTransaction, body: bytes) -> list[str]:
    """One reason per action of the request's `TransactItems` (one, if it has none)."""
    actions = 1
    with contextlib.suppress(ValueError, TypeError, KeyError):
        document: Any = json.loads(body)
        actions = max(1, len(document["TransactItems"]))
    return [fault.reason if index == 0 or not fault.only_first else "None" for index in range(actions)]


def _filtered(headers: CIMultiDictProxy[str], dropped: frozenset[str]) -> CIMultiDict[str]:
    named = {token.strip().lower() for token in headers.get("Connection", "").split(",") if token.strip()}
    return CIMultiDict(
        (name, value) for name, value in headers.items() if name.lower() not in dropped and name.lower() not in named
    )


def _abort(request: web.Request, *, hard: bool) -> web.Response:
    """Close the client's connection unanswered. The response returned is never sent: aiohttp's attempt to write it
    to the closed transport raises a ConnectionError, which it treats as a client disconnect and does not log."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        if hard:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=599)
