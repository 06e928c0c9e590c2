"""The suite bites: deliberate breakages, applied through the code's own seams (the repository port and its named
conditions), each make the history checker report a violation; the unbroken code, in the same scenario, passes.

Each scenario runs on DynamoDB Local, records a history as the soak does and checks it against the table.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

import codepool.dynamodb.repository as repository_module
from codepool.components import Components
from codepool.config import PoolConfig, Settings
from codepool.dynamodb.repository import DynamoDBRepository
from codepool.errors import StoreUnavailableError, UniqueCodesError
from codepool.formats import CodeFormat
from codepool.issuing import issue_codes
from codepool.model import Candidate, IssuedCode, IssueRequest, shard_of
from codepool.refilling import refill_pool
from codepool.repository import ClaimOutcome, CodeRepository, IdempotencyRecord
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal, EngineMissingError
from tests.reliability.history import Operation, Report, Request, check, classify, records_from_items
from tests.support.tables import drop_table, issued_records, make_table

POOL = PoolConfig(
    name="mutants", format=CodeFormat(alphabet="unambiguous", length=8), target=1, low_watermark=0, shards=1
)
POOLS = {POOL.name: POOL}


@pytest.fixture(scope="module")
def engine() -> Iterator[DynamoDBLocal]:
    try:
        running = DynamoDBLocal().start()
    except EngineMissingError as exc:
        pytest.fail(f"the mutant tests need AWS DynamoDB Local: {exc}", pytrace=False)
    yield running
    running.stop()


@pytest.fixture
def table(engine: DynamoDBLocal) -> Iterator[Settings]:
    settings = make_table(engine.endpoint_url)
    yield settings
    drop_table(settings)


@pytest.fixture
async def container(table: Settings) -> AsyncIterator[Container]:
    async with Container.open(table, POOLS) as opened:
        yield opened


@dataclass
class Scenario:
    """Clients issuing through components of their own (each a container), their history, and the verdict."""

    container: Container
    repository: CodeRepository
    operations: list[Operation] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def client(self) -> Components:
        return Components.over(self.repository, POOLS)

    async def issue(self, client: Components, tag: str, key: str | None = None) -> Operation:
        request = Request(tag=tag, pool=POOL.name, count=1, reference="mutant", key=key)
        operation = Operation(f"op{next(self._ids)}", "test", request)
        self.operations.append(operation)
        body = IssueRequest(pool=POOL.name, used_by=tag, reference="mutant")
        try:
            result = await issue_codes(client, body, idempotency_key=key)
        except StoreUnavailableError as exc:
            operation.detail = str(exc)  # indeterminate: it may have written
        except UniqueCodesError as exc:
            operation.outcome, operation.detail = "fail", exc.code
        else:
            status_body = {"codes": [code.to_json() for code in result.codes]}
            operation.outcome, operation.codes, operation.detail = classify(201, status_body)
        return operation

    async def verdict(self) -> Report:
        items = await issued_records(self.container.client, self.container.settings.table_name)
        return check(self.operations, records_from_items(items.values()))


async def one_available_code(container: Container) -> Candidate:
    await refill_pool(container.repository, POOL, 1)
    (candidate,) = await container.repository.find_candidates(POOL.name, 0, "0", 10)
    return candidate


# --- the scenarios: each provokes exactly the situation its breakage mishandles ---------------------------------


async def stale_slot(scenario: Scenario) -> None:
    """A refill re-adds the slot of a code issued meanwhile (its check ran just before the claim)."""
    await one_available_code(scenario.container)
    first = await scenario.issue(scenario.client(), "first")
    issued = first.codes[0]
    key = POOL.format.canonical(issued)
    await scenario.container.repository.add_available(
        POOL.name, [Candidate(key=key, code=issued, shard=shard_of(key, POOL.shards))]
    )
    await scenario.issue(scenario.client(), "second")


async def two_claimers_one_slot(scenario: Scenario) -> None:
    """Two containers hold the same candidate; both claim it."""
    await one_available_code(scenario.container)
    left, right = scenario.client(), scenario.client()
    for client in (left, right):
        # Both windows now hold the one slot (an attempt that claimed nothing puts its candidates back).
        held = await client.prefetcher.take(POOL, 1)
        client.prefetcher.settle(POOL.name, held, ClaimOutcome())
    await scenario.issue(left, "left")
    await scenario.issue(right, "right")


async def retry_after_a_crash(scenario: Scenario) -> None:
    """A request with a key dies after its claim; the client retries with the same key."""
    await refill_pool(scenario.container.repository, POOL, 1)
    client = scenario.client()
    await scenario.issue(client, "keyed", key="k-1")
    await refill_pool(scenario.container.repository, POOL, 1)
    await scenario.issue(scenario.client(), "keyed", key="k-1")


async def replayed_retry(scenario: Scenario) -> None:
    """A request with a key succeeds; its retry must get the same code."""
    await refill_pool(scenario.container.repository, POOL, 1)
    await scenario.issue(scenario.client(), "keyed", key="k-2")
    await refill_pool(scenario.container.repository, POOL, 1)
    await scenario.issue(scenario.client(), "keyed", key="k-2")


# --- the breakages ------------------------------------------------------------------------------------------------


class IdempotencyOutsideTheClaim(DynamoDBRepository):
    """The key's record is a second write after the claim; the first request dies between the two."""

    crashed = False

    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        outcome: ClaimOutcome = await super().claim(pool, candidates, records, None, now)
        if idempotency is not None and outcome.issued is not None and not IdempotencyOutsideTheClaim.crashed:
            IdempotencyOutsideTheClaim.crashed = True
            raise StoreUnavailableError("the process died before writing the idempotency record")
        return outcome


class LostRaceIsASuccess(DynamoDBRepository):
    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        outcome: ClaimOutcome = await super().claim(pool, candidates, records, idempotency, now)
        if outcome.lost:
            return ClaimOutcome(issued=list(records))
        return outcome


class ReplayClaimsAfresh(DynamoDBRepository):
    """When the key is taken, claim again without it instead of returning the stored codes."""

    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        outcome: ClaimOutcome = await super().claim(pool, candidates, records, idempotency, now)
        if outcome.replayed is not None:
            return await super().claim(pool, candidates, records, None, now)
        return outcome

    async def get_idempotency(self, key: str, now: int) -> IdempotencyRecord | None:
        return None


Breakage = Callable[[pytest.MonkeyPatch, Container], CodeRepository]
ALWAYS = "attribute_exists(pk) OR attribute_not_exists(pk)"


def no_never_issued_condition(monkeypatch: pytest.MonkeyPatch, container: Container) -> CodeRepository:
    monkeypatch.setattr(repository_module, "CODE_NEVER_ISSUED", ALWAYS)
    return container.repository


def no_slot_exists_condition(monkeypatch: pytest.MonkeyPatch, container: Container) -> CodeRepository:
    monkeypatch.setattr(repository_module, "SLOT_STILL_AVAILABLE", ALWAYS)
    return container.repository


def unbroken(monkeypatch: pytest.MonkeyPatch, container: Container) -> CodeRepository:
    return container.repository


def replaced_by(kind: type[DynamoDBRepository]) -> Breakage:
    def breakage(monkeypatch: pytest.MonkeyPatch, container: Container) -> CodeRepository:
        return kind(container.client, container.settings.table_name)

    return breakage


Play = Callable[[Scenario], Awaitable[None]]
MUTANTS: list[tuple[str, Breakage, Play, str]] = [
    ("claim without the never-issued condition", no_never_issued_condition, stale_slot, "duplicate"),
    ("lost race treated as a success", replaced_by(LostRaceIsASuccess), two_claimers_one_slot, "duplicate"),
    (
        "idempotency record written outside the claim",
        replaced_by(IdempotencyOutsideTheClaim),
        retry_after_a_crash,
        "codes recorded for one request",
    ),
    ("replay path returning a fresh claim", replaced_by(ReplayClaimsAfresh), replayed_retry, "different codes"),
]


@pytest.mark.parametrize(("name", "breakage", "scenario", "violation"), MUTANTS, ids=[m[0] for m in MUTANTS])
async def test_each_breakage_is_caught_by_the_checker(
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    breakage: Breakage,
    scenario: Play,
    violation: str,
) -> None:
    IdempotencyOutsideTheClaim.crashed = False
    run = Scenario(container, breakage(monkeypatch, container))
    await scenario(run)
    report = await run.verdict()
    with capsys.disabled():
        print(f"\nmutant {name!r}: {report.summary()}")
    assert not report.valid, f"the checker missed {name!r}"
    assert any(violation in text for text in report.violations), report.violations


@pytest.mark.parametrize(("name", "scenario"), [(m[0], m[2]) for m in MUTANTS], ids=[m[0] for m in MUTANTS])
async def test_the_unbroken_code_passes_every_scenario(
    container: Container, monkeypatch: pytest.MonkeyPatch, name: str, scenario: Play
) -> None:
    run = Scenario(container, unbroken(monkeypatch, container))
    await scenario(run)
    report = await run.verdict()
    assert report.valid, report.violations
    assert report.ok >= 1


async def test_without_the_slot_condition_uniqueness_still_holds(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An equivalent mutant, kept to prove a design claim: uniqueness rests on the CODE# put alone (README "Data
    model"); the slot condition only tells a lost race from a stale slot. Both scenarios stay valid without it."""
    run = Scenario(container, no_slot_exists_condition(monkeypatch, container))
    await stale_slot(run)
    await two_claimers_one_slot(run)
    report = await run.verdict()
    assert report.valid, report.violations
    assert report.duplicated == 0
    assert report.ok >= 2
