"""Bad input to POST /codes, on the in-memory fake instead of DynamoDB: every case gets its JSON error and writes
nothing (not even a read: it is rejected before the first call). A few of these run end to end on both engines in
`tests/integration/test_handlers.py`.

Twice: through `issuer.app.lambda_handler` with `issuer.app.container` replaced by a holder over the fake
(`tests.support.fake_issuer`; routing, body decoding, the error handlers, the response), and through the functions
it calls (`parse_issue_body`, `issue_codes`, `status_of`), which holds even if the handler's use of its container
changes.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

import issuer.app
from codepool.components import Components
from codepool.config import DEFAULT_POOL
from codepool.errors import InvalidRequestError, PayloadTooLargeError, PoolNotFoundError, UniqueCodesError
from codepool.issuing import issue_codes
from codepool.refilling import refill_pool
from issuer.http import status_of
from issuer.requests import parse_issue_body
from tests.support.events import Event, call, rest
from tests.support.fake_issuer import FakeContainerHolder
from tests.support.fakes import InMemoryRepository

POOLS = {DEFAULT_POOL.name: DEFAULT_POOL}
FILL = 60

BAD_BODIES: list[tuple[str, type[UniqueCodesError], int, str]] = [
    ("{", InvalidRequestError, 400, "invalid_request"),
    ("[1, 2]", InvalidRequestError, 400, "invalid_request"),
    ('"text"', InvalidRequestError, 400, "invalid_request"),
    ('{"count": 0}', InvalidRequestError, 400, "invalid_request"),
    ('{"count": -3}', InvalidRequestError, 400, "invalid_request"),
    ('{"count": 26}', InvalidRequestError, 400, "invalid_request"),
    ('{"count": "2"}', InvalidRequestError, 400, "invalid_request"),
    ('{"count": 1.5}', InvalidRequestError, 400, "invalid_request"),
    ('{"count": true}', InvalidRequestError, 400, "invalid_request"),
    ('{"pool": 7}', InvalidRequestError, 400, "invalid_request"),
    ('{"usedBy": ["a"]}', InvalidRequestError, 400, "invalid_request"),
    ('{"colour": "red"}', InvalidRequestError, 400, "invalid_request"),
    ('{"usedBy": "' + "x" * 257 + '"}', InvalidRequestError, 400, "invalid_request"),
    ('{"reference": "' + "x" * 257 + '"}', InvalidRequestError, 400, "invalid_request"),
    ('{"description": "' + "x" * 1025 + '"}', InvalidRequestError, 400, "invalid_request"),
    ('{"pool": "nope"}', PoolNotFoundError, 404, "pool_not_found"),
    ('{"description": "' + "x" * 17000 + '"}', PayloadTooLargeError, 413, "payload_too_large"),
]
CASE_IDS = [body if len(body) < 40 else f"{body[:24]}...({len(body)} chars)" for body, *_ in BAD_BODIES]


@pytest.fixture
def repository() -> InMemoryRepository:
    repository = InMemoryRepository()
    asyncio.run(refill_pool(repository, DEFAULT_POOL, FILL))
    repository.requests = 0
    return repository


@pytest.fixture
def fake_issuer(repository: InMemoryRepository, monkeypatch: pytest.MonkeyPatch) -> InMemoryRepository:
    """`issuer.app.lambda_handler` over `repository` (the default pool, filled) for this test."""
    monkeypatch.setattr(issuer.app, "container", FakeContainerHolder(repository, POOLS))
    return repository


def assert_untouched(repository: InMemoryRepository) -> None:
    assert repository.requests == 0
    assert not repository.issued
    assert not repository.idempotency
    assert len(repository.available_keys(DEFAULT_POOL.name)) == FILL


def assert_json_error(response: tuple[int, dict[str, str], object], status: int, code: str) -> None:
    got_status, headers, body = response
    assert isinstance(body, dict)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]
    assert headers["Content-Type"] == "application/json"


def test_the_fake_issuer_issues_a_good_request(fake_issuer: InMemoryRepository) -> None:
    """The control: the same handler and fake answer a well-formed request with codes that were written."""
    status, _, body = call(rest("POST", "/codes", '{"count": 2, "usedBy": "bob"}'))
    assert status == 201
    assert {code["code"] for code in body["codes"]} == {record.code for record in fake_issuer.issued.values()}
    assert len(fake_issuer.issued) == 2
    assert fake_issuer.requests > 0


@pytest.mark.parametrize(("body", "error", "status", "code"), BAD_BODIES, ids=CASE_IDS)
def test_bad_input_gets_a_json_error_and_writes_nothing(
    fake_issuer: InMemoryRepository, body: str, error: type[UniqueCodesError], status: int, code: str
) -> None:
    assert_json_error(call(rest("POST", "/codes", body)), status, code)
    assert_untouched(fake_issuer)


def test_bad_input_to_the_demo_route_too(fake_issuer: InMemoryRepository) -> None:
    assert_json_error(call(rest("POST", "/", '{"count": 26}')), 400, "invalid_request")
    assert_untouched(fake_issuer)


def base64_event(raw: bytes) -> Event:
    event = rest("POST", "/codes", base64.b64encode(raw).decode())
    event["isBase64Encoded"] = True
    return event


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(base64_event(b"\xff\xfe"), id="body-not-utf8"),
        pytest.param(rest("POST", "/codes", "{}", {"Idempotency-Key": "k" * 256}), id="idempotency-key-256-bytes"),
        pytest.param(rest("POST", "/codes", "{}", {"Idempotency-Key": "\U0001f600" * 64}), id="key-256-utf8-bytes"),
    ],
)
def test_a_bad_body_encoding_or_idempotency_key_is_400(fake_issuer: InMemoryRepository, event: Event) -> None:
    assert_json_error(call(event), 400, "invalid_request")
    assert_untouched(fake_issuer)


async def attempt(repository: InMemoryRepository, body: str) -> None:
    """What the route does with a body, without the handler around it."""
    await issue_codes(Components.over(repository, POOLS), parse_issue_body(body), idempotency_key="key")


@pytest.mark.parametrize(("body", "error", "status", "code"), BAD_BODIES, ids=CASE_IDS)
async def test_bad_input_is_the_right_error_before_any_call(
    repository: InMemoryRepository, body: str, error: type[UniqueCodesError], status: int, code: str
) -> None:
    with pytest.raises(UniqueCodesError) as raised:
        await attempt(repository, body)
    assert type(raised.value) is error
    assert status_of(raised.value) == status
    assert raised.value.code == code
    assert str(raised.value)
    assert_untouched(repository)
