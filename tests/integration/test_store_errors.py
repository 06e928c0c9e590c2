"""Every error DynamoDB can return, injected by a proxy in front of DynamoDB Local, and the answer the API gives.

One test per row of README "Errors": the status, `error.code`, `Retry-After`, and what was written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import issuer.app
import refiller.app
from codepool.config import Settings
from codepool.dynamodb.keys import code_key
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal
from tests.support.events import call, rest
from tests.support.fault_proxy import (
    CancelTransaction,
    DropResponse,
    Fault,
    FaultProxy,
    Hang,
    Reset,
    Respond,
    Rule,
    dynamodb_error,
    empty_error,
    html_error,
)
from tests.support.tables import drop_table, issued_records, make_table

# Two SDK attempts, short timeouts: each row answers within a second or two.
ENVIRONMENT = {
    "DYNAMODB_CONNECT_TIMEOUT": "0.5",
    "DYNAMODB_READ_TIMEOUT": "0.5",
    "DYNAMODB_MAX_ATTEMPTS": "2",
    "REQUEST_BUDGET_SECONDS": "3",
}


@dataclass
class Bench:
    proxy: FaultProxy
    settings: Settings

    def issued(self) -> int:
        async def count(runtime: Container) -> int:
            return len(await issued_records(runtime.client, runtime.settings.table_name))

        self.proxy.clear()
        return issuer.app.container.run(count)


@pytest.fixture(scope="module")
def bench(dynamodb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    settings = make_table(dynamodb_local.endpoint_url)
    pools = tmp_path_factory.mktemp("pools") / "pools.toml"
    pools.write_text('[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 400\n')
    with FaultProxy(dynamodb_local.endpoint_url, seed=7) as proxy, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
        env.setenv("TABLE_NAME", settings.table_name)
        env.setenv("POOLS_FILE", str(pools))
        for name, value in ENVIRONMENT.items():
            env.setenv(name, value)
        issuer.app.container.close()
        refiller.app.container.close()
        refiller.app.lambda_handler({"pool": "default"}, None)  # type: ignore[arg-type]
        yield Bench(proxy, settings)
        issuer.app.container.close()
        refiller.app.container.close()
    drop_table(settings)


@pytest.fixture
def faults(bench: Bench) -> Iterator[Bench]:
    bench.proxy.clear()
    yield bench
    bench.proxy.clear()


def inject(bench: Bench, operation: str, fault: Fault, times: int | None = None) -> Rule:
    if operation == "Query":
        # A warm container claims from the window it prefetched: start a cold one, whose first claim queries.
        issuer.app.container.close()
    return bench.proxy.add(Rule(fault, operation=operation, times=times))


def issue(key: str | None = None) -> tuple[int, dict[str, str], dict[str, object]]:
    headers = {"Idempotency-Key": key} if key else None
    status, response_headers, body = call(rest("POST", "/codes", '{"usedBy": "errors"}', headers))
    return status, response_headers, body


def assert_unavailable(answer: tuple[int, dict[str, str], dict[str, object]], *words: str) -> str:
    status, headers, body = answer
    assert status == 503, body
    assert int(headers["Retry-After"]) >= 1
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "store_unavailable"
    message = str(error["message"])
    for word in words:
        assert word in message
    assert "Idempotency-Key" in message
    return message


SDK_ERRORS = [
    ("ThrottlingException", dynamodb_error("ThrottlingException")),
    ("ProvisionedThroughputExceededException", dynamodb_error("ProvisionedThroughputExceededException")),
    ("RequestLimitExceeded", dynamodb_error("RequestLimitExceeded")),
    ("InternalServerError", dynamodb_error("InternalServerError")),
    ("ServiceUnavailable", dynamodb_error("ServiceUnavailable")),
    ("TransactionInProgressException", dynamodb_error("TransactionInProgressException")),
    ("TransactionConflictException", dynamodb_error("TransactionConflictException")),
    ("HTTP 500", html_error(500)),
    ("HTTP 502", html_error(502)),
    ("HTTP 503", html_error(503)),
    ("HTTP 504", html_error(504)),
    ("HTTP 500", empty_error(500)),
]


@pytest.mark.parametrize(("cause", "fault"), SDK_ERRORS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(SDK_ERRORS)])
@pytest.mark.parametrize("operation", ["Query", "TransactWriteItems"])
def test_engine_trouble_is_a_503_that_names_it_and_writes_nothing(
    faults: Bench, cause: str, fault: Fault, operation: str
) -> None:
    before = faults.issued()
    inject(faults, operation, fault)
    assert_unavailable(issue(), cause)
    assert faults.issued() == before


CREDENTIAL_ERRORS = ["ExpiredTokenException", "UnrecognizedClientException", "InvalidSignatureException"]


@pytest.mark.parametrize("code", [*CREDENTIAL_ERRORS, "AccessDeniedException"])
def test_credential_errors_are_503_and_logged_as_errors(
    faults: Bench, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    inject(faults, "Query", dynamodb_error(code))
    assert_unavailable(issue(), code)
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert any(code in str(getattr(record, "reason", "")) for record in errors), caplog.records


def test_a_missing_table_is_503_and_says_how_to_create_it(faults: Bench) -> None:
    inject(faults, "Query", dynamodb_error("ResourceNotFoundException"))
    assert_unavailable(issue(), "create-table")


@pytest.mark.parametrize("fault", [Hang(), Reset()], ids=["no-answer", "connection-reset"])
def test_an_unreachable_engine_is_a_503(faults: Bench, fault: Fault) -> None:
    inject(faults, "Query", fault)
    assert_unavailable(issue())


def test_our_own_malformed_request_is_the_only_500(faults: Bench) -> None:
    """A ValidationException means we built a bad request: no client input can cause one (limits are bounded by
    construction, tests/unit/test_sizes.py), so it is a bug, answered 500 and logged with its traceback."""
    inject(faults, "Query", dynamodb_error("ValidationException"))
    status, _, body = issue()
    assert status == 500
    assert body["error"] == {"code": "internal_error", "message": "internal error; see the function's logs"}


def test_a_conflict_outside_a_transaction_is_retried_by_us(faults: Bench) -> None:
    """botocore's retry modes leave TransactionConflictException to the caller: two in a row are absorbed."""
    before = faults.issued()
    rule = inject(faults, "Query", dynamodb_error("TransactionConflictException"), times=2)
    status, _, body = issue()
    assert status == 201, body
    assert rule.fired == 2
    assert faults.issued() == before + 1


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"])
def test_a_throttled_claim_backs_off_and_keeps_its_candidates(faults: Bench, reason: str) -> None:
    issue()  # warm: the container holds a prefetched window
    queries = faults.proxy.count("Query")
    rule = inject(faults, "TransactWriteItems", CancelTransaction(reason), times=3)
    status, _, body = issue()
    assert status == 201, body
    assert rule.fired == 3
    assert faults.proxy.count("Query") == queries, "a throttled claim must not drop the prefetched window"


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"])
def test_a_claim_throttled_to_the_end_is_a_503_with_the_real_cause(faults: Bench, reason: str) -> None:
    before = faults.issued()
    inject(faults, "TransactWriteItems", CancelTransaction(reason))
    assert_unavailable(issue("throttled-" + reason), reason)
    assert faults.issued() == before


def lookup_bench(faults: Bench) -> str:
    status, _, body = issue()
    assert status == 201
    return str(body["code"])


def test_unprocessed_lookup_keys_are_retried_not_answered_404(faults: Bench) -> None:
    code = lookup_bench(faults)
    table = faults.settings.table_name
    unprocessed = {"Responses": {table: []}, "UnprocessedKeys": {table: {"Keys": [code_key(code)]}}}
    rule = inject(faults, "BatchGetItem", Respond(200, json.dumps(unprocessed)), times=2)
    status, _, body = call(rest("GET", f"/codes/{code}"))
    assert status == 200, body
    assert body["code"] == code
    assert rule.fired == 2


def test_lookup_keys_that_stay_unprocessed_are_a_503_not_a_404(faults: Bench) -> None:
    code = lookup_bench(faults)
    table = faults.settings.table_name
    unprocessed = {"Responses": {table: []}, "UnprocessedKeys": {table: {"Keys": [code_key(code)]}}}
    inject(faults, "BatchGetItem", Respond(200, json.dumps(unprocessed)))
    assert_unavailable(call(rest("GET", f"/codes/{code}")), "UnprocessedKeys")


def test_a_lookup_answer_without_responses_is_not_a_crash(faults: Bench) -> None:
    code = lookup_bench(faults)
    inject(faults, "BatchGetItem", Respond(200, "{}"))
    status, _, body = call(rest("GET", f"/codes/{code}"))
    assert (status, body["error"]["code"]) == (404, "code_not_found")


@pytest.mark.parametrize(("path", "operation"), [("/codes/ABCD2345", "BatchGetItem"), ("/pools/default", "Query")])
def test_reads_under_throttling_are_503(faults: Bench, path: str, operation: str) -> None:
    inject(faults, operation, dynamodb_error("ThrottlingException"))
    assert_unavailable(call(rest("GET", path)), "ThrottlingException")


def test_the_refiller_fails_loudly_on_engine_trouble(faults: Bench, tmp_path: Path) -> None:
    inject(faults, "Query", dynamodb_error("ThrottlingException"))
    with pytest.raises(Exception, match="ThrottlingException"):
        refiller.app.lambda_handler({"pool": "default"}, None)  # type: ignore[arg-type]


def test_a_response_lost_after_the_claim_committed_is_recovered_by_the_same_token(faults: Bench) -> None:
    """The proxy lets the claim commit and drops its answer: the SDK's retry carries the same ClientRequestToken,
    so DynamoDB answers with that transaction's success instead of running it again. One code, delivered once."""
    issue()  # warm: the next request only claims
    before = faults.issued()
    claims = faults.proxy.count("TransactWriteItems")
    rule = inject(faults, "TransactWriteItems", DropResponse(), times=1)
    status, _, body = issue()
    assert status == 201, body
    assert rule.fired == 1
    attempts = [e for e in faults.proxy.log if e.operation == "TransactWriteItems"][claims:]
    assert [e.upstream_status for e in attempts] == [200, 200]
    assert faults.issued() == before + 1
