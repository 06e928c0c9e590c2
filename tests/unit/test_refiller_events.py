"""The refiller's events: an EventBridge schedule refills every pool, a manual `{"pool": NAME, "target": N}` one
pool; anything else is rejected with a clear message before any DynamoDB call."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refiller.app
from codepool.config import DEFAULT_POOL, MAX_TARGET, PoolConfig
from codepool.errors import InvalidRequestError, PoolNotFoundError
from codepool.formats import CodeFormat
from refiller.app import requested_refills
from tests.support.events import load_event

TICKETS = PoolConfig(
    name="tickets", format=CodeFormat(alphabet="numeric", length=6, prefix="T-"), target=20, low_watermark=5
)
POOLS = {DEFAULT_POOL.name: DEFAULT_POOL, TICKETS.name: TICKETS}


def test_the_scheduled_event_refills_every_pool_to_its_own_target() -> None:
    assert requested_refills(load_event("eventbridge-scheduled.json"), POOLS) == [(DEFAULT_POOL, None), (TICKETS, None)]


@pytest.mark.parametrize("event", [{"detail-type": "Scheduled Event"}, {"source": "aws.events"}])
def test_either_mark_of_an_eventbridge_event_is_a_schedule(event: dict[str, Any]) -> None:
    assert [pool for pool, _ in requested_refills(event, POOLS)] == [DEFAULT_POOL, TICKETS]


def test_the_manual_event_file_refills_one_pool_to_its_target() -> None:
    assert requested_refills(load_event("refill-manual.json"), POOLS) == [(DEFAULT_POOL, 50)]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"pool": "tickets"}, [(TICKETS, None)]),
        ({"pool": "tickets", "target": None}, [(TICKETS, None)]),
        ({"pool": "tickets", "target": 0}, [(TICKETS, 0)]),
        ({"pool": "tickets", "target": 7}, [(TICKETS, 7)]),
        ({"pool": "default", "target": MAX_TARGET}, [(DEFAULT_POOL, MAX_TARGET)]),
    ],
)
def test_a_manual_event_refills_the_named_pool(event: dict[str, Any], expected: list[Any]) -> None:
    assert requested_refills(event, POOLS) == expected


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, r"expected an EventBridge Scheduled Event or \{'pool': NAME, 'target': N\}; got keys \[\]"),
        ({"target": 5}, r"got keys \['target'\]"),
        ({"pool": "default", "extra": 1}, r"got keys \['extra', 'pool'\]"),
        ({"pool": "default", "target": 5, "detail": {}}, r"got keys \['detail', 'pool', 'target'\]"),
        ({"pool": 7}, "'pool' must be a string"),
        ({"pool": None}, "'pool' must be a string"),
        ({"pool": ["default"]}, "'pool' must be a string"),
        ({"pool": "default", "target": True}, "'target' must be an integer"),
        ({"pool": "default", "target": 5.0}, "'target' must be an integer"),
        ({"pool": "default", "target": "many"}, "'target' must be an integer"),
        ({"pool": "default", "target": "5"}, "'target' must be an integer"),
        ({"pool": "default", "target": -1}, f"target must be between 0 and {MAX_TARGET}, got -1"),
        ({"pool": "default", "target": MAX_TARGET + 1}, f"between 0 and {MAX_TARGET}, got {MAX_TARGET + 1}"),
    ],
)
def test_a_malformed_manual_event_is_an_invalid_request(event: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        requested_refills(event, POOLS)


def test_an_unknown_pool_is_pool_not_found() -> None:
    with pytest.raises(PoolNotFoundError, match="unknown pool 'nope'") as raised:
        requested_refills({"pool": "nope", "target": 5}, POOLS)
    assert raised.value.pool == "nope"


@pytest.fixture
def refiller_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The refiller's environment with a pools file and an endpoint nothing listens on: a rejected event must be
    rejected before the handler opens a client, and if it ever did open one, it fails fast instead of reaching AWS."""
    pools = tmp_path / "pools.toml"
    pools.write_text('[pools.tickets]\nalphabet = "numeric"\nlength = 6\nprefix = "T-"\ntarget = 20\n')
    monkeypatch.setenv("POOLS_FILE", str(pools))
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    refiller.app.container.close()
    yield
    refiller.app.container.close()


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"pool": "tickets", "target": "many"}, InvalidRequestError),
        ({"pool": "tickets", "extra": 1}, InvalidRequestError),
        ({"target": 5}, InvalidRequestError),
        ({"pool": "nope"}, PoolNotFoundError),
    ],
)
def test_the_handler_rejects_a_malformed_manual_event(
    refiller_env: None, event: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        refiller.app.lambda_handler(copy.deepcopy(event), None)  # type: ignore[arg-type]
