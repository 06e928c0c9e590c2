"""Methods a path does not support: `405 method_not_allowed` with `Allow` and our JSON body, the same in the Lambda
router (REST v1 and HTTP API v2 events) and in `unique-codes serve` (whatever the method, not the standard
library's HTML 501). `OPTIONS` is `204` with `Allow`; `HEAD` is a `405` without a body; a path no route knows is
`404 route_not_found` whatever the method."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.serving import serving
from tests.support.events import Event, call, load_event, rest

UNSUPPORTED = ["PUT", "DELETE", "PATCH", "TRACE"]
ALLOW = {
    "/codes": "OPTIONS, POST",
    "/": "OPTIONS, POST",
    "/pools/default": "GET, OPTIONS",
    "/pools": "GET, OPTIONS",
    "/codes/ABCD2345": "GET, OPTIONS",
    "/openapi.json": "GET, OPTIONS",
}


def http_api(method: str, path: str) -> Event:
    """The HTTP API (payload v2) event for this request."""
    event = load_event("http-api-v2-post-codes.json")
    event.update(rawPath=path, routeKey=f"{method} {path}", body=None)
    event["requestContext"].update(routeKey=f"{method} {path}")
    event["requestContext"]["http"].update(method=method, path=path)
    return event


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pools = '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 50\n'
    with serving("dynamodb-local", pools, tmp_path_factory.mktemp("methods")) as url:
        yield url


def send(url: str, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    address = urlsplit(url)
    connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.request(method, path, body=b"{}" if method not in {"HEAD", "OPTIONS", "TRACE"} else None)
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def assert_method_not_allowed(method: str, path: str, status: int, headers: dict[str, str], body: Any) -> None:
    assert status == 405, (method, path, body)
    assert headers["Allow"] == ALLOW[path]
    assert headers["Content-Type"] == "application/json"
    assert body["error"]["code"] == "method_not_allowed"
    assert method in body["error"]["message"]
    assert ALLOW[path] in body["error"]["message"]


@pytest.mark.parametrize("path", ["/codes", "/pools/default"])
@pytest.mark.parametrize("method", UNSUPPORTED)
def test_lambda_answers_405_with_allow(method: str, path: str) -> None:
    status, headers, body = call(rest(method, path))
    assert_method_not_allowed(method, path, status, headers, body)
    status, headers, body = call(http_api(method, path))
    assert_method_not_allowed(method, path, status, headers, body)


@pytest.mark.parametrize("path", list(ALLOW))
def test_lambda_knows_every_routes_methods(path: str) -> None:
    status, headers, body = call(rest("PATCH", path))
    assert_method_not_allowed("PATCH", path, status, headers, body)


def test_lambda_answers_options_with_allow_and_head_with_405() -> None:
    assert call(rest("OPTIONS", "/pools/default")) == (204, {"Allow": "GET, OPTIONS"}, None)
    status, headers, body = call(rest("HEAD", "/pools"))
    assert_method_not_allowed("HEAD", "/pools", status, headers, body)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "GET"])
def test_lambda_unknown_path_is_404_whatever_the_method(method: str) -> None:
    for event in (rest(method, "/nowhere"), http_api(method, "/nowhere")):
        status, _, body = call(event)
        assert (status, body["error"]["code"]) == (404, "route_not_found")


def test_lambda_control_characters_stay_404() -> None:
    status, _, body = call(rest("PUT", "/pools\n"))
    assert (status, body["error"]["code"]) == (404, "route_not_found")


@pytest.mark.parametrize("path", ["/codes", "/pools/default"])
@pytest.mark.parametrize("method", [*UNSUPPORTED, "BREW"])
def test_serve_answers_405_with_allow(served: str, method: str, path: str) -> None:
    status, headers, payload = send(served, method, path)
    assert_method_not_allowed(method, path, status, headers, json.loads(payload))


def test_serve_answers_options_with_allow_and_no_body(served: str) -> None:
    status, headers, payload = send(served, "OPTIONS", "/codes")
    assert (status, headers["Allow"], payload) == (204, "OPTIONS, POST", b"")
    assert "Content-Length" not in headers


def test_serve_answers_head_with_405_headers_and_no_body(served: str) -> None:
    address = urlsplit(served)
    connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.request("HEAD", "/pools/default")
        response = connection.getresponse()
        assert (response.status, response.headers["Allow"], response.read()) == (405, "GET, OPTIONS", b"")
        # On the same connection: HEAD's answer carried no body that would be misread as the next answer.
        connection.request("GET", "/pools/default")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["name"]) == (200, "default")
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["PUT", "TRACE", "BREW"])
def test_serve_unknown_path_is_404_whatever_the_method(served: str, method: str) -> None:
    status, headers, payload = send(served, method, "/nowhere")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(payload)["error"]["code"] == "route_not_found"
