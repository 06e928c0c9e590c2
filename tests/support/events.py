"""The JSON events in tests/events/ and calling the issuer handler with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import issuer.app

EVENTS = Path(__file__).resolve().parents[1] / "events"

Event = dict[str, Any]


def load_event(name: str) -> Event:
    event: Event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def rest(method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None) -> Event:
    """The console's REST v1 test event, turned into this request."""
    event = load_event("apigateway-aws-proxy.json")
    event.update(httpMethod=method, path=path, resource=path, body=body)
    event["headers"] = {**event["headers"], **(headers or {})}
    return event


def call(event: Event, context: Any = None) -> tuple[int, dict[str, str], Any]:
    """Invoke `issuer.app.lambda_handler`: status, headers (first value of each), decoded JSON body."""
    return decode(issuer.app.lambda_handler(event, context))


def decode(response: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """A proxy integration's response: status, headers (first value of each), decoded JSON body."""
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name] = values[0]
    body = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], headers, body
