"""`unique-codes serve`: the issuer Lambda behind a local HTTP server, the refiller on a schedule.

Each HTTP request becomes the API Gateway REST (payload v1) event Lambda would receive and goes through
`issuer.app.lambda_handler` in one of a fixed set of worker *processes*, which play concurrent Lambda
containers: like containers, they share nothing (the handler module's resolvers, metrics and container are
per-process state, and are not meant to be shared by threads). A scheduler thread invokes
`refiller.app.lambda_handler` with an EventBridge "Scheduled Event", as the deployed schedule does.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import multiprocessing
import signal
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

from issuer.http import error_body

logger = logging.getLogger("unique_codes.serve")

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""API Gateway's own payload limit; the issuer applies its much smaller limit on top."""
INTEGRATION_TIMEOUT_SECONDS = 29.0
"""API Gateway gives up on a Lambda integration after 29 s; so does the local server."""


def _start_container() -> None:
    # Ctrl-C reaches the whole process group; only the server decides when containers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import issuer.app  # the "init phase": imports before the first request

    # Lambda freezes a container and never closes its client; a local one closes it on the way out.
    atexit.register(issuer.app.container.close)


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


def local_context(function_name: str, timeout_seconds: float = 28.0) -> LambdaContext:
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
    def __init__(self, host: str, port: int, containers: int, refill_interval: float) -> None:
        # Imported here, not at module level: the worker processes import this module too, and need no refiller.
        from refiller.app import container as refiller_container
        from refiller.app import lambda_handler as refiller_handler

        self._refiller = refiller_handler
        self._refiller_container = refiller_container
        # "spawn": a fork would copy this process's threads' locks (the embedded moto server's among them).
        self._workers = ProcessPoolExecutor(
            max_workers=containers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_container
        )
        self._refill_interval = refill_interval
        self._stopping = threading.Event()
        self._refill_lock = threading.Lock()
        self.server = _Server((host, port), self._request_handler())

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def invoke_issuer(self, event: dict[str, Any]) -> dict[str, Any]:
        future = self._workers.submit(_invoke_issuer, event)
        try:
            return future.result(timeout=INTEGRATION_TIMEOUT_SECONDS)
        except FutureTimeoutError:
            body = error_body("timeout", "the issuer did not answer in time")
            return {"statusCode": 504, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}

    def start_containers(self, count: int) -> None:
        """Run every container's init phase now rather than on its first request."""
        for future in [self._workers.submit(_start_container) for _ in range(count)]:
            future.result()

    def refill(self) -> dict[str, Any]:
        # One refiller "container" at a time, as its reserved concurrency of 1 on AWS.
        with self._refill_lock:
            result: dict[str, Any] = self._refiller(
                scheduled_event(), local_context("unique-codes-refiller", timeout_seconds=300.0)
            )
            return result

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
        while not self._stopping.wait(self._refill_interval):
            try:
                self.refill()
            except Exception:
                # A failed run is retried on the next tick, as EventBridge would; it must not stop the server.
                logger.exception("scheduled refill failed")

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "unique-codes"

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_PUT(self) -> None:
                self._forward()

            def do_DELETE(self) -> None:
                self._forward()

            def do_PATCH(self) -> None:
                self._forward()

            def log_message(self, format: str, *args: Any) -> None:
                logger.info("%s %s", self.address_string(), format % args)

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
                self.send_header("Content-Length", str(len(payload)))
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up waiting; as with API Gateway, the issued code stays recorded.
                    logger.info("client disconnected before the response was sent")
                    self.close_connection = True

        return Handler
