"""`unique-codes serve`: the issuer Lambda behind a local HTTP server, the refiller on a schedule.

Each HTTP request becomes the API Gateway REST (payload v1) event Lambda would receive and goes through
`issuer.app.lambda_handler` in one of a fixed set of worker *processes*, which play concurrent Lambda
containers: like containers, they share nothing (the handler module's resolvers, metrics and container are
per-process state, and are not meant to be shared by threads). A scheduler thread invokes
`refiller.app.lambda_handler` with an EventBridge "Scheduled Event", as the deployed schedule does.

Each process holds exactly one container (`ContainerHolder`): a worker its issuer's, closed when the worker
exits; this process the refiller's, closed on shutdown.

The server listens at once, and answers every request with `503 not_ready` + `Retry-After` until the table
exists and every pool was filled once. A failed start-up fill (the engine is not up yet, a hiccup) is logged and
retried every `NOT_READY_RETRY_SECONDS`, then the schedule takes over.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

from codepool.config import Settings
from codepool.dynamodb.client import open_client
from issuer.http import error_body
from localdev.schema import create_table

logger = logging.getLogger("unique_codes.serve")

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""API Gateway's own payload limit; the issuer applies its much smaller limit on top."""
INTEGRATION_TIMEOUT_SECONDS = 29.0
"""API Gateway gives up on a Lambda integration after 29 s; so does the local server."""
NOT_READY_RETRY_SECONDS = 2
"""Until the pools were filled once: how often a failed fill is retried, and the `Retry-After` of `not_ready`."""
NO_BODY_STATUSES = frozenset({204, 304})


def _start_container() -> None:
    # Ctrl-C reaches the whole process group; only the server decides when containers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import issuer.app  # the "init phase": imports before the first request

    # Lambda freezes a container and never closes its client; a local one closes it on the way out.
    atexit.register(issuer.app.container.close)


def _container_pid() -> int:
    """A no-op task: submitting one per container makes the executor start them all (each runs its init once)."""
    return os.getpid()


def _invoke_issuer(event: dict[str, Any]) -> dict[str, Any]:
    from issuer.app import lambda_handler

    return lambda_handler(event, local_context("unique-codes-issuer"))


def scheduled_event() -> dict[str, Any]:
    """The event EventBridge sends to the refiller on every tick of its schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "local",
        "resources": ["arn:aws:events:local:000000000000:rule/unique-codes-refill"],
        "detail": {},
    }


def rest_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload v1) for one HTTP request."""
    parts = urlsplit(target)
    path = unquote(parts.path) or "/"
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    request_id = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "local",
            "httpMethod": method,
            "path": path,
            "resourcePath": path,
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


class _LocalContext(LambdaContext):
    """Powertools' context type, with a real clock: Lambda's remaining time is what handlers size deadlines by."""

    def __init__(self, timeout_seconds: float) -> None:
        self._ends_at = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return max(0, int((self._ends_at - time.monotonic()) * 1000))


def local_context(function_name: str, timeout_seconds: float = 10.0) -> LambdaContext:
    """A Lambda context object with the attributes handlers and Powertools read; the timeouts default to the
    issuer's in infra/template.yaml."""
    context = _LocalContext(timeout_seconds)
    context._function_name = function_name
    context._function_version = "$LATEST"
    context._invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
    context._memory_limit_in_mb = 512
    context._aws_request_id = str(uuid.uuid4())
    context._log_group_name = f"/aws/lambda/{function_name}"
    context._log_stream_name = "local"
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 resets connections as soon as a few dozen clients connect at once.
    request_queue_size = 256


class LocalApi:
    """The HTTP server, the issuer's worker processes and the refiller's schedule.

    `target_cap` caps every pool's refill target (for moto, whose claims slow down with the table's size).
    """

    def __init__(
        self, host: str, port: int, containers: int, refill_interval: float, *, target_cap: int | None = None
    ) -> None:
        # Imported here, not at module level: the worker processes import this module too, and need no refiller.
        from refiller.app import container as refiller_container
        from refiller.app import lambda_handler as refiller_handler

        self._refiller = refiller_handler
        self._refiller_container = refiller_container
        # "spawn": a fork would copy this process's threads' locks (the embedded moto server's among them).
        self._workers = ProcessPoolExecutor(
            max_workers=containers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_container
        )
        self._containers = containers
        self._containers_started = False
        self._refill_interval = refill_interval
        self._target_cap = target_cap
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._refill_lock = threading.Lock()
        self.server = _Server((host, port), self._request_handler())

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def ready(self) -> bool:
        """The table exists and every pool was filled once; until then every request is `503 not_ready`."""
        return self._ready.is_set()

    def invoke_issuer(self, event: dict[str, Any]) -> dict[str, Any]:
        future = self._workers.submit(_invoke_issuer, event)
        try:
            return future.result(timeout=INTEGRATION_TIMEOUT_SECONDS)
        except FutureTimeoutError:
            body = error_body("timeout", "the issuer did not answer in time")
            return {"statusCode": 504, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}

    def start_containers(self) -> None:
        """Start every container (its init phase runs as it starts) rather than on its first request."""
        for future in [self._workers.submit(_container_pid) for _ in range(self._containers)]:
            future.result()

    def refill(self) -> list[dict[str, Any]]:
        """One refiller run over every pool: its summaries. Raises if any pool failed (after trying them all)."""
        # One refiller "container" at a time, as its reserved concurrency of 1 on AWS.
        with self._refill_lock:
            if self._stopping.is_set():  # the refiller's container is closed, or about to be: do not reopen it
                return []
            if self._target_cap is None:
                result = self._refiller(scheduled_event(), _refiller_context())
                refilled: list[dict[str, Any]] = result["refilled"]
                return refilled
            return self._refill_capped(self._target_cap)

    def _refill_capped(self, cap: int) -> list[dict[str, Any]]:
        """Each pool refilled to at most `cap` codes, with the refiller's manual event, one pool at a time."""
        summaries: list[dict[str, Any]] = []
        failures: list[Exception] = []
        for pool in self._refiller_container.pools.values():
            try:
                event = {"pool": pool.name, "target": min(pool.target, cap)}
                summaries.extend(self._refiller(event, _refiller_context())["refilled"])
            except Exception as exc:  # the refiller logged it; the pools after it are still refilled
                failures.append(exc)
        if failures:
            raise failures[0]
        return summaries

    def serve_forever(self) -> None:
        scheduler = threading.Thread(target=self._schedule_refills, name="refill-schedule", daemon=True)
        scheduler.start()
        try:
            self.server.serve_forever()
        finally:
            self._stopping.set()
            self._workers.shutdown(wait=True, cancel_futures=True)
            self.server.server_close()
            with self._refill_lock:
                self._refiller_container.close()

    def shutdown(self) -> None:
        self._stopping.set()
        self.server.shutdown()

    def _schedule_refills(self) -> None:
        """Fill the pools until that succeeds once (every NOT_READY_RETRY_SECONDS), then every refill interval."""
        delay = 0.0
        while not self._stopping.wait(delay):
            try:
                if not self.ready:
                    self._prepare()
                summaries = self.refill()
            except Exception as exc:
                if self.ready:
                    # A failed run is retried on the next tick, as EventBridge would; it must not stop the server.
                    logger.exception("scheduled refill failed; next run in %.0f s", self._refill_interval)
                    delay = self._refill_interval
                else:
                    logger.warning(
                        "not ready: filling the pools failed (%s: %s); retrying in %d s",
                        type(exc).__name__,
                        exc,
                        NOT_READY_RETRY_SECONDS,
                    )
                    delay = NOT_READY_RETRY_SECONDS
                continue
            if not self.ready and not self._stopping.is_set():
                self._ready.set()
                available = ", ".join(f"{s['pool']} {s['availableBefore'] + s['written']}" for s in summaries)
                logger.info("ready: codes available per pool: %s", available)
            delay = self._refill_interval

    def _prepare(self) -> None:
        """What must be there before the first fill: the issuer's containers (once) and the table (idempotent)."""
        if not self._containers_started:
            self.start_containers()
            self._containers_started = True
        asyncio.run(_ensure_table(Settings.from_env()))

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "unique-codes"

            def __getattr__(self, name: str) -> Callable[[], None]:
                # `handle_one_request` calls `do_<METHOD>`, and answers the stdlib's HTML 501 for a method without
                # one: every method goes to the issuer instead, whose router answers 405 (or 404) in our JSON.
                if name.startswith("do_"):
                    return self._forward
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("%s %s", self.address_string(), format % args)

            def _forward(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    self._reply(400, error_body("invalid_request", "bad Content-Length"))
                    return
                if length > MAX_REQUEST_BYTES or length < 0:
                    self.close_connection = True
                    self._reply(413, error_body("payload_too_large", "request body too large"))
                    return
                body = self.rfile.read(length) if length else b""
                if not api.ready:
                    message = "unique-codes serve is filling its pools; retry after Retry-After seconds"
                    retry = {"Content-Type": "application/json", "Retry-After": str(NOT_READY_RETRY_SECONDS)}
                    self._send(503, json.dumps(error_body("not_ready", message)).encode(), retry)
                    return
                headers = dict(self.headers.items())
                event = rest_event(self.command, self.path, headers, body, self.client_address[0])
                response = api.invoke_issuer(event)
                self._reply_lambda(response)

            def _reply_lambda(self, response: dict[str, Any]) -> None:
                body = response.get("body") or ""
                payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
                headers: dict[str, str] = dict(response.get("headers") or {})
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    headers[name] = ", ".join(values)
                self._send(int(response["statusCode"]), payload, headers)

            def _reply(self, status: int, document: Any) -> None:
                self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in {"content-length", "connection"}:
                        self.send_header(name, value)
                if status in NO_BODY_STATUSES:
                    payload = b""
                else:
                    self.send_header("Content-Length", str(len(payload)))
                try:
                    self.end_headers()
                    if self.command != "HEAD":  # a HEAD answer has the headers of its body, without it
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up waiting; as with API Gateway, the issued code stays recorded.
                    logger.info("client disconnected before the response was sent")
                    self.close_connection = True

        return Handler


def _refiller_context() -> LambdaContext:
    return local_context("unique-codes-refiller", timeout_seconds=300.0)


async def _ensure_table(settings: Settings) -> None:
    async with AsyncExitStack() as stack:
        await create_table(await open_client(settings, stack), settings.table_name)
