"""The fault proxy forwards faithfully to DynamoDB Local, and each fault reaches aiobotocore as it would from AWS."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from codepool.config import Settings
from codepool.dynamodb.client import open_client
from codepool.dynamodb.keys import code_key
from localdev.engines import DynamoDBLocal, free_port
from tests.support.fault_proxy import (
    SHUTDOWN_SECONDS,
    CancelTransaction,
    Delay,
    DropResponse,
    FaultProxy,
    Hang,
    Reset,
    Respond,
    Rule,
    dynamodb_error,
    empty_error,
    html_error,
    transaction_cancelled,
)
from tests.support.tables import scan_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

TARGET = "DynamoDB_20120810."
SLACK = 0.5
"""For timing bounds on a loaded 2-core machine."""


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal) -> Iterator[FaultProxy]:
    with FaultProxy(dynamodb_local.endpoint_url, seed=1) as running:
        yield running


@pytest.fixture
def stub() -> Iterator[FaultProxy]:
    with FaultProxy(None, seed=1) as running:
        yield running


def through(proxy: FaultProxy, settings: Settings, read_timeout: float = 2.0) -> Settings:
    """`settings` pointed at the proxy, with one attempt per call so every fault reaches the caller."""
    return dataclasses.replace(
        settings, endpoint_url=proxy.url, read_timeout=read_timeout, connect_timeout=1.0, max_attempts=1
    )


def stub_settings(stub: FaultProxy) -> Settings:
    return through(stub, Settings(table_name="stubbed"))


async def put(client: DynamoDBClient, settings: Settings, code: str, **attributes: str) -> None:
    item: dict[str, Any] = {**code_key(code), **{name: {"S": value} for name, value in attributes.items()}}
    await client.put_item(TableName=settings.table_name, Item=item)


async def get(client: DynamoDBClient, settings: Settings, code: str) -> dict[str, Any] | None:
    found = await client.get_item(TableName=settings.table_name, Key=code_key(code), ConsistentRead=True)
    item: dict[str, Any] | None = found.get("Item")
    return item


def puts(settings: Settings, *codes: str) -> list[TransactWriteItemTypeDef]:
    return [{"Put": {"TableName": settings.table_name, "Item": code_key(code)}} for code in codes]


async def eventually(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {seconds} s")


def error_code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


# --- forwarding ---------------------------------------------------------------------------------------------------


async def test_forwards_writes_and_reads_and_logs_each_operation(proxy: FaultProxy, local_table: Settings) -> None:
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        await put(client, local_table, "ABC", usedBy="u1")
        item = await get(client, local_table, "ABC")
        direct = await open_client(local_table, stack)
        stored = await get(direct, local_table, "ABC")
        answer = await client.get_item(TableName=local_table.table_name, Key=code_key("ABC"))

    assert item == {**code_key("ABC"), "usedBy": {"S": "u1"}}
    assert stored == item
    assert proxy.count("PutItem") == 1
    assert proxy.count("GetItem") == 2
    assert proxy.count() == 3
    seen = [(exchange.operation, exchange.fault, exchange.upstream_status, exchange.status) for exchange in proxy.log]
    assert seen == [
        ("PutItem", None, 200, 200),
        ("GetItem", None, 200, 200),
        ("GetItem", None, 200, 200),
    ]
    # DynamoDB Local's own headers come back: its request id, and its CRC32 (which botocore checks when present).
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    assert headers["server"].startswith("Jetty")
    assert "x-amz-crc32" in headers
    assert answer["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]
    assert json.loads(proxy.log[0].request_body)["TableName"] == local_table.table_name


async def test_forwards_the_body_and_headers_byte_for_byte(proxy: FaultProxy, local_table: Settings) -> None:
    """A raw request through the proxy gets the same answer as straight to DynamoDB Local, unsigned or not."""
    body = json.dumps({"TableName": local_table.table_name, "Key": code_key("NOPE")}).encode()
    headers = {
        "X-Amz-Target": TARGET + "GetItem",
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0",
        "X-Amz-Date": "20260101T000000Z",
    }
    assert local_table.endpoint_url is not None
    async with aiohttp.ClientSession() as session:
        answers = []
        for url in (proxy.url, local_table.endpoint_url):
            async with session.post(url, data=body, headers=headers) as response:
                answers.append((response.status, await response.read(), response.headers["Content-Type"]))
    assert answers[0] == answers[1]
    assert answers[0][:2] == (200, b"{}")


# --- answers without forwarding -----------------------------------------------------------------------------------


async def test_a_throttling_error_once_then_the_next_call_passes(proxy: FaultProxy, local_table: Settings) -> None:
    rule = proxy.add(Rule(dynamodb_error("ThrottlingException"), operation="GetItem", times=1))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        await put(client, local_table, "T1")
        with pytest.raises(ClientError) as raised:
            await get(client, local_table, "T1")
        assert await get(client, local_table, "T1") == code_key("T1")

    assert error_code(raised.value) == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Message"] == "Rate of requests exceeds the allowed throughput."
    assert rule.fired == 1
    assert rule.used_up
    assert [exchange.fault for exchange in proxy.log] == [None, rule.fault, None]
    assert proxy.log[1].upstream_status is None  # answered by the proxy, never forwarded


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("RequestLimitExceeded", 400),
        ("TransactionConflictException", 400),
        ("ExpiredTokenException", 400),
        ("UnrecognizedClientException", 400),
        ("InvalidSignatureException", 400),
        ("AccessDeniedException", 400),
        ("ResourceNotFoundException", 400),
        ("ValidationException", 400),
        ("InternalServerError", 500),
    ],
)
async def test_every_dynamodb_error_reaches_the_client_with_its_code_and_status(
    stub: FaultProxy, code: str, status: int
) -> None:
    stub.add(Rule(dynamodb_error(code)))
    settings = stub_settings(stub)
    async with AsyncExitStack() as stack:
        client = await open_client(settings, stack)
        with pytest.raises(ClientError) as raised:
            await get(client, settings, "X")
    assert error_code(raised.value) == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert raised.value.response["Error"]["Message"]


def test_credential_errors_come_from_the_coral_namespace() -> None:
    assert json.loads(dynamodb_error("ExpiredTokenException").body)["__type"] == (
        "com.amazon.coral.service#ExpiredTokenException"
    )
    assert json.loads(dynamodb_error("ThrottlingException").body)["__type"] == (
        "com.amazonaws.dynamodb.v20120810#ThrottlingException"
    )
    assert dynamodb_error("ValidationException", "bad", status=418) == Respond(
        418, b'{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"bad"}'
    )


async def test_a_cancelled_transaction_names_a_reason_per_action_and_writes_nothing(
    proxy: FaultProxy, local_table: Settings
) -> None:
    proxy.add(Rule(CancelTransaction("ThrottlingError"), operation="TransactWriteItems", times=1))
    proxy.add(Rule(CancelTransaction("TransactionConflict", only_first=True), operation="TransactWriteItems", times=1))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        with pytest.raises(ClientError) as all_throttled:
            await client.transact_write_items(TransactItems=puts(local_table, "A1", "A2", "A3"))
        with pytest.raises(ClientError) as first_conflicts:
            await client.transact_write_items(TransactItems=puts(local_table, "B1", "B2"))
        direct = await open_client(local_table, stack)
        items = await scan_table(direct, local_table.table_name)

    assert error_code(all_throttled.value) == "TransactionCanceledException"
    assert [reason["Code"] for reason in all_throttled.value.response["CancellationReasons"]] == ["ThrottlingError"] * 3
    assert all_throttled.value.response["Error"]["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[ThrottlingError, ThrottlingError, ThrottlingError]"
    )
    assert first_conflicts.value.response["CancellationReasons"] == [
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
        {"Code": "None"},
    ]
    assert items == []
    assert proxy.count("TransactWriteItems") == 2


async def test_a_fixed_cancellation_matches_what_dynamodb_local_sends(proxy: FaultProxy, local_table: Settings) -> None:
    """A real cancellation by DynamoDB Local and the injected one parse to the same error."""
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        await put(client, local_table, "C1")
        conditional = puts(local_table, "C1", "C2")
        conditional[0]["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        with pytest.raises(ClientError) as real:
            await client.transact_write_items(TransactItems=conditional)
        proxy.add(Rule(transaction_cancelled(["ConditionalCheckFailed", "None"]), operation="TransactWriteItems"))
        with pytest.raises(ClientError) as injected:
            await client.transact_write_items(TransactItems=puts(local_table, "C3", "C4"))

    assert proxy.log[1].upstream_status == 400
    assert injected.value.response["Error"] == real.value.response["Error"]
    assert injected.value.response["CancellationReasons"] == real.value.response["CancellationReasons"]


async def test_an_html_503_keeps_its_status(proxy: FaultProxy, local_table: Settings) -> None:
    proxy.add(Rule(html_error(503), operation="PutItem", times=1))
    proxy.add(Rule(empty_error(502), operation="PutItem", times=1))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        with pytest.raises(ClientError) as html:
            await put(client, local_table, "H1")
        with pytest.raises(ClientError) as empty:
            await put(client, local_table, "H1")

    assert html.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert html.value.response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "text/html"
    assert error_code(html.value) == "503"
    assert empty.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    assert "content-type" not in empty.value.response["ResponseMetadata"]["HTTPHeaders"]


async def test_stub_mode_answers_500_no_upstream(stub: FaultProxy) -> None:
    settings = stub_settings(stub)
    async with AsyncExitStack() as stack:
        client = await open_client(settings, stack)
        with pytest.raises(ClientError) as raised:
            await get(client, settings, "X")
    async with aiohttp.ClientSession() as session, session.post(stub.url, data=b"{}") as response:
        status, body = response.status, await response.json(content_type=None)

    assert error_code(raised.value) == "InternalServerError"
    assert raised.value.response["Error"]["Message"] == "no upstream"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert (status, body) == (
        500,
        {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "no upstream"},
    )
    assert [exchange.operation for exchange in stub.log] == ["GetItem", None]


# --- connections that end badly -----------------------------------------------------------------------------------


async def test_a_hang_times_out_on_the_client_without_blocking_other_requests(
    proxy: FaultProxy, local_table: Settings
) -> None:
    proxy.add(Rule(Hang(), operation="GetItem"))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table, read_timeout=0.5), stack)
        started = time.monotonic()
        hanging = asyncio.create_task(get(client, local_table, "G1"))
        await eventually(lambda: proxy.count("GetItem") == 1)
        await put(client, local_table, "G1")
        answered_while_hanging = not hanging.done()
        with pytest.raises(ReadTimeoutError):
            await hanging
        elapsed = time.monotonic() - started
        await eventually(lambda: proxy.log[0].done)  # the proxy noticed the client go

    assert answered_while_hanging
    assert 0.5 <= elapsed < 1.5 + SLACK
    assert [(exchange.operation, exchange.status) for exchange in proxy.log] == [("GetItem", None), ("PutItem", 200)]


async def test_a_hard_reset_is_an_endpoint_connection_error(proxy: FaultProxy, local_table: Settings) -> None:
    """aiohttp reports the RST as ClientOSError(ECONNRESET); aiobotocore maps that to EndpointConnectionError."""
    proxy.add(Rule(Reset(), operation="PutItem"))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        with pytest.raises(EndpointConnectionError) as raised:
            await put(client, local_table, "R1")
        direct = await open_client(local_table, stack)
        stored = await get(direct, local_table, "R1")

    assert isinstance(raised.value.kwargs["error"], aiohttp.ClientOSError)
    assert stored is None
    assert proxy.log[0].upstream_status is None


async def test_a_plain_close_is_a_connection_closed_error(proxy: FaultProxy, local_table: Settings) -> None:
    """aiohttp reports the FIN as ServerDisconnectedError; aiobotocore maps that to ConnectionClosedError."""
    proxy.add(Rule(Reset(hard=False), operation="PutItem"))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        with pytest.raises(ConnectionClosedError) as raised:
            await put(client, local_table, "R2")
    assert isinstance(raised.value.kwargs["error"], aiohttp.ServerDisconnectedError)


async def test_a_dropped_response_loses_the_answer_but_not_the_write(
    proxy: FaultProxy, local_table: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    proxy.add(Rule(DropResponse(), operation="PutItem", times=1))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table), stack)
        with pytest.raises(ConnectionClosedError):
            await put(client, local_table, "D1", usedBy="lost")
        direct = await open_client(local_table, stack)
        stored = await get(direct, local_table, "D1")
        again = await get(client, local_table, "D1")  # the client recovers on a new connection

    assert stored == {**code_key("D1"), "usedBy": {"S": "lost"}}
    assert again == stored
    dropped = proxy.log[0]
    assert (dropped.operation, dropped.upstream_status, dropped.status) == ("PutItem", 200, None)
    assert isinstance(dropped.fault, DropResponse)
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


async def test_a_delayed_write_lands_after_the_client_gave_up(proxy: FaultProxy, local_table: Settings) -> None:
    proxy.add(Rule(Delay(0.8), operation="PutItem"))
    async with AsyncExitStack() as stack:
        client = await open_client(through(proxy, local_table, read_timeout=0.3), stack)
        direct = await open_client(local_table, stack)
        with pytest.raises(ReadTimeoutError):
            await put(client, local_table, "L1")
        before = await get(direct, local_table, "L1")
        await eventually(lambda: proxy.log[0].done)
        after = await get(direct, local_table, "L1")

    assert before is None
    assert after == code_key("L1")
    assert proxy.log[0].upstream_status == 200


# --- rules --------------------------------------------------------------------------------------------------------


async def test_rules_apply_in_order_and_used_up_ones_are_skipped(stub: FaultProxy) -> None:
    first = stub.add(Rule(dynamodb_error("ThrottlingException"), operation="Query", times=2))
    second = stub.add(Rule(dynamodb_error("ValidationException"), times=1))
    other = stub.add(Rule(dynamodb_error("ResourceNotFoundException"), operation="Scan"))
    settings = stub_settings(stub)
    codes = []
    async with AsyncExitStack() as stack:
        client = await open_client(settings, stack)
        for _ in range(4):
            with pytest.raises(ClientError) as raised:
                await client.query(TableName=settings.table_name, KeyConditionExpression="pk = :p")
            codes.append(error_code(raised.value))
        stub.clear()
        with pytest.raises(ClientError) as cleared:
            await client.scan(TableName=settings.table_name)

    assert codes == ["ThrottlingException", "ThrottlingException", "ValidationException", "InternalServerError"]
    assert (first.fired, second.fired, other.fired) == (2, 1, 0)
    assert error_code(cleared.value) == "InternalServerError"
    assert stub.count("Query") == 4
    assert stub.count("Scan") == 1


async def outcomes_at_half_rate(seed: int) -> tuple[list[str], int]:
    """40 GetItems through a stub proxy throttling each with probability 0.5."""
    codes = []
    with FaultProxy(None, seed=seed) as stub:
        rule = stub.add(Rule(dynamodb_error("ThrottlingException"), operation="GetItem", rate=0.5))
        settings = stub_settings(stub)
        async with AsyncExitStack() as stack:
            client = await open_client(settings, stack)
            for _ in range(40):
                with pytest.raises(ClientError) as raised:
                    await get(client, settings, "X")
                codes.append(error_code(raised.value))
    return codes, rule.fired


async def test_a_rate_is_reproducible_from_the_seed() -> None:
    codes, fired = await outcomes_at_half_rate(seed=1)
    again, fired_again = await outcomes_at_half_rate(seed=1)

    throttled = codes.count("ThrottlingException")
    assert 0 < throttled < 40
    assert throttled == fired
    assert (again, fired_again) == (codes, fired)
    # One draw from random.Random(seed) per request the rule could apply to.
    draws = random.Random(1)
    assert codes == ["ThrottlingException" if draws.random() < 0.5 else "InternalServerError" for _ in range(40)]


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="rate"):
        Rule(Hang(), rate=1.5)
    with pytest.raises(ValueError, match="times"):
        Rule(Hang(), times=-1)


# --- lifecycle ----------------------------------------------------------------------------------------------------


async def test_an_unreachable_upstream_resets_the_clients_connection() -> None:
    with FaultProxy(f"http://127.0.0.1:{free_port()}") as proxy:
        settings = through(proxy, Settings(table_name="nowhere"))
        async with AsyncExitStack() as stack:
            client = await open_client(settings, stack)
            with pytest.raises(EndpointConnectionError):
                await get(client, settings, "X")
    exchange = proxy.log[0]
    assert (exchange.upstream_status, exchange.status) == (None, None)
    assert exchange.error is not None
    assert exchange.error.startswith("ClientConnectorError")


def test_a_synchronous_caller_with_its_own_event_loop_can_use_it(stub: FaultProxy) -> None:
    """As a Lambda handler does: asyncio.run() per call, while the proxy's loop runs in its own thread."""
    stub.add(Rule(dynamodb_error("ProvisionedThroughputExceededException"), times=1))
    settings = stub_settings(stub)

    async def code_of_one_call() -> str:
        async with AsyncExitStack() as stack:
            client = await open_client(settings, stack)
            try:
                await get(client, settings, "X")
            except ClientError as exc:
                return error_code(exc)
            return "ok"

    assert [asyncio.run(code_of_one_call()) for _ in range(2)] == [
        "ProvisionedThroughputExceededException",
        "InternalServerError",
    ]


async def test_stop_ends_hung_delayed_and_forwarded_requests_at_once_and_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    with socket.socket() as black_hole:  # listens, never accepts: an upstream that never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        proxy = FaultProxy(f"http://127.0.0.1:{black_hole.getsockname()[1]}", seed=0).start()
        proxy.add(Rule(Hang(), operation="Hang"))
        proxy.add(Rule(Delay(30), operation="Delay"))
        proxy.add(Rule(Reset(), operation="Reset"))
        async with aiohttp.ClientSession() as session:

            async def call(operation: str) -> BaseException | None:
                try:
                    async with session.post(proxy.url, data=b"{}", headers={"X-Amz-Target": TARGET + operation}):
                        return None
                except aiohttp.ClientError as exc:
                    return exc

            calls = [asyncio.create_task(call(operation)) for operation in ("Hang", "Delay", "Reset", "Forwarded")]
            await eventually(lambda: proxy.count() == 4)
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await asyncio.to_thread(proxy.stop)
            stopped_in = time.monotonic() - started
            errors = await asyncio.gather(*calls)

    assert stopped_in < SHUTDOWN_SECONDS  # nothing waited for aiohttp's grace period
    assert [type(error) for error in errors] == [
        aiohttp.ServerDisconnectedError,  # the hang, ended by stop()
        aiohttp.ServerDisconnectedError,  # the delay, ended by stop() before forwarding
        aiohttp.ClientOSError,  # the reset
        aiohttp.ClientOSError,  # the forward, failed by stop(): the proxy resets the client's connection
    ]
    assert all(exchange.done for exchange in proxy.log)
    assert proxy.log[3].error is not None
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    proxy.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not started"):
        _ = FaultProxy(None).url
