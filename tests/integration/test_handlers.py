"""Both Lambda handlers, driven by the JSON events in tests/events/, on both engines."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

import issuer.app
import refiller.app
from codepool.config import Settings
from codepool.issuing import scoped_idempotency_key
from codepool.runtime import Container
from issuer.identity import caller_identity
from tests.support.events import Event, call, load_event, rest
from tests.support.tables import issued_records


@pytest.fixture
def lambda_env(table: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    pools = tmp_path / "pools.toml"
    pools.write_text(
        '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 60\n\n'
        '[pools.tickets]\nalphabet = "numeric"\nlength = 6\nprefix = "T-"\ntarget = 20\nshards = 2\n'
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", str(table.endpoint_url))
    monkeypatch.setenv("TABLE_NAME", table.table_name)
    monkeypatch.setenv("POOLS_FILE", str(pools))
    issuer.app.container.close()
    refiller.app.container.close()
    yield table
    issuer.app.container.close()
    refiller.app.container.close()


@pytest.fixture
def filled(lambda_env: Settings) -> Settings:
    result = refiller.app.lambda_handler(load_event("refill-manual.json"), None)  # type: ignore[arg-type]
    assert result["refilled"][0]["written"] == 50
    return lambda_env


def issued_count() -> int:
    async def count(runtime: Container) -> int:
        return len(await issued_records(runtime.client, runtime.settings.table_name))

    return issuer.app.container.run(count)


def test_console_rest_v1_test_event_returns_a_code(filled: Settings) -> None:
    status, headers, body = call(load_event("apigateway-aws-proxy.json"))
    assert status == 201
    assert headers["Content-Type"] == "application/json"
    assert len(body["code"]) == 8
    assert body["pool"] == "default"
    assert body["requestId"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_http_api_v2_event_issues_with_metadata_and_lookup_finds_it(filled: Settings) -> None:
    status, _, body = call(load_event("http-api-v2-post-codes.json"))
    assert status == 201
    assert (body["usedBy"], body["reference"]) == ("alice@example.com", "order-42")
    typed = f"{body['code'][:4].lower()}-{body['code'][4:].lower()}"
    status, _, found = call(rest("GET", f"/codes/{typed}"))
    assert status == 200
    assert found == body


def test_base64_body_is_decoded(filled: Settings) -> None:
    event = rest("POST", "/codes", base64.b64encode(b'{"count": 2}').decode())
    event["isBase64Encoded"] = True
    status, _, body = call(event)
    assert status == 201
    assert len(body["codes"]) == 2


def test_pools_file_pool_with_prefix(lambda_env: Settings) -> None:
    refiller.app.lambda_handler(load_event("eventbridge-scheduled.json"), None)  # type: ignore[arg-type]
    status, _, body = call(rest("POST", "/codes", '{"pool": "tickets"}'))
    assert status == 201
    assert body["code"].startswith("T-")
    assert len(body["code"]) == 8
    status, _, pools = call(rest("GET", "/pools"))
    assert status == 200
    assert {pool["name"] for pool in pools["pools"]} == {"default", "tickets"}
    status, _, pool = call(rest("GET", "/pools/tickets"))
    assert status == 200
    assert pool["available"] == 19


def test_idempotency_key_replays_and_rejects_another_body(filled: Settings) -> None:
    key = {"Idempotency-Key": "order-42-attempt"}
    first = call(rest("POST", "/codes", '{"count": 2, "usedBy": "bob"}', key))
    again = call(rest("POST", "/codes", '{"count": 2, "usedBy": "bob"}', {"idempotency-key": "order-42-attempt"}))
    assert first[0] == again[0] == 201
    assert first[2] == again[2]
    assert again[1]["Idempotent-Replayed"] == "true"
    status, _, body = call(rest("POST", "/codes", '{"count": 1}', key))
    assert status == 422
    assert body["error"]["code"] == "idempotency_key_reused"
    assert issued_count() == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{", 400, "invalid_request"),
        ('{"pool": "nope"}', 404, "pool_not_found"),
        ('{"description": "' + "x" * 17000 + '"}', 413, "payload_too_large"),
    ],
    ids=["malformed-json", "unknown-pool", "body-over-16-kib"],
)
def test_bad_input_gets_a_json_error_and_writes_nothing(filled: Settings, body: str, status: int, code: str) -> None:
    """One case per status, end to end on both engines (the 422 of a reused key is in
    `test_idempotency_key_replays_and_rejects_another_body`); every case runs on the in-memory fake in
    `tests/unit/test_issuer_bad_input.py`."""
    got_status, headers, got = call(rest("POST", "/codes", body))
    assert (got_status, got["error"]["code"]) == (status, code)
    assert got["error"]["message"]
    assert headers["Content-Type"] == "application/json"
    assert issued_count() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("DELETE", "/nope"), ("GET", "/pools/nope"), ("GET", "/pools/\n"), ("GET", "/pools\n")],
)
def test_unknown_routes_and_pools_are_404(lambda_env: Settings, method: str, path: str) -> None:
    status, _, body = call(rest(method, path))
    assert status == 404
    assert body["error"]["code"] in {"route_not_found", "pool_not_found"}


def test_unknown_code_is_404(lambda_env: Settings) -> None:
    status, _, body = call(rest("GET", "/codes/NOSUCH22"))
    assert status == 404
    assert body["error"]["code"] == "code_not_found"


def test_empty_pool_is_503_with_retry_after(lambda_env: Settings) -> None:
    status, headers, body = call(load_event("apigateway-aws-proxy.json"))
    assert status == 503
    assert int(headers["Retry-After"]) > 0
    assert body["error"]["code"] == "pool_empty"


def test_openapi_document_describes_every_route(lambda_env: Settings) -> None:
    status, _, document = call(rest("GET", "/openapi.json"))
    assert status == 200
    assert set(document["paths"]) == {"/", "/codes", "/codes/{code}", "/pools", "/pools/{pool}", "/openapi.json"}
    schema = document["paths"]["/codes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/IssueRequest"}
    assert document["components"]["schemas"]["IssueRequest"]["properties"]["count"]["maximum"] == 25


def test_scheduled_refill_summarises_every_pool(lambda_env: Settings) -> None:
    result = refiller.app.lambda_handler(load_event("eventbridge-scheduled.json"), None)  # type: ignore[arg-type]
    summary = {entry["pool"]: entry for entry in result["refilled"]}
    assert summary["tickets"]["written"] == 20
    assert summary["default"]["written"] == 60
    again = refiller.app.lambda_handler(load_event("eventbridge-scheduled.json"), None)  # type: ignore[arg-type]
    assert [entry["written"] for entry in again["refilled"]] == [0, 0]


def test_idempotency_keys_belong_to_the_authenticated_caller(filled: Settings) -> None:
    def as_caller(subject: str) -> Event:
        event = load_event("http-api-v2-post-codes.json")
        event["headers"]["idempotency-key"] = "shared-key"
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": subject}, "scopes": None}}
        return event

    alice = call(as_caller("alice"))
    mallory = call(as_caller("mallory"))
    assert alice[0] == mallory[0] == 201
    assert mallory[2]["code"] != alice[2]["code"], "another caller must not receive alice's code"
    assert call(as_caller("alice"))[2] == alice[2]


def test_a_v2_lambda_authorizers_context_scopes_keys_and_no_key_reaches_another_scope(filled: Settings) -> None:
    def as_user(user_id: str) -> Event:
        event = load_event("http-api-v2-lambda-authorizer.json")  # simple responses: no principalId
        event["requestContext"]["authorizer"]["lambda"]["userId"] = user_id
        return event

    alice = call(as_user("alice"))
    bob = call(as_user("bob"))
    assert alice[0] == bob[0] == 201
    assert bob[2]["code"] != alice[2]["code"], "another caller must not receive alice's code"
    assert call(as_user("alice"))[2] == alice[2]

    # A caller without an identity sending alice's key as it is stored gets a code of its own.
    anonymous = load_event("http-api-v2-post-codes.json")
    alice_identity = caller_identity(as_user("alice"))
    anonymous["headers"]["idempotency-key"] = scoped_idempotency_key(alice_identity, "order-42-voucher")
    status, _, body = call(anonymous)
    assert status == 201
    assert body["code"] != alice[2]["code"]
