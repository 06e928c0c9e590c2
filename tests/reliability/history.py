"""A Jepsen-style history of client operations, and the checker that holds it against the table.

Every operation is recorded when it is invoked and again when it completes:

- `ok`: a `2xx` with its codes;
- `fail`: a definite error (`4xx`, or a `503` that says nothing was claimed for the request: `pool_empty`,
  `claim_contention`);
- `info`: indeterminate (a timeout, a reset connection, a `5xx` from the store, a process killed mid-request):
  the request may or may not have claimed codes.

Each process appends to a file of its own, one JSON line per event, written and flushed before it goes on, so
a process killed at any moment leaves a history that ends in an `invoke` without its completion: an `info`.

Every request carries a tag in `usedBy` (the same for every attempt of one idempotency key, since a retry must
send the same body), so each code record in the table says which request claimed it. After the run,
`check(history, records)` proves:

1. **no duplicate**: no code was delivered to two different requests;
2. **no lost acknowledgement**: every delivered code is recorded, with the pool, `usedBy` and `reference` the
   client was told;
3. **one set per key**: an idempotency key has at most one set of codes in the table, and every success for it
   returned exactly that set (a retry after a crash or a lost response gets the same codes, or a clean error);

and counts what was recorded but never delivered ("burned": a write that committed after its client gave up)
and the indeterminate requests whose key a later retry recovered.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["ok", "fail", "info"]
DEFINITE_503 = frozenset({"pool_empty", "pool_exhausted", "claim_contention"})
"""503s that the issuer answers before it claimed anything for the request."""


@dataclass(frozen=True, slots=True)
class Request:
    """What a client asked for; `tag` goes into `usedBy` and names the request (or the key) in the table."""

    tag: str
    pool: str
    count: int
    reference: str
    key: str | None = None

    def body(self) -> dict[str, Any]:
        return {"pool": self.pool, "count": self.count, "usedBy": self.tag, "reference": self.reference}


@dataclass(slots=True)
class Operation:
    id: str
    process: str
    request: Request
    outcome: Outcome = "info"
    codes: list[str] = field(default_factory=list)
    detail: str = "killed or never completed"
    retry_of: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """An issued code as the table holds it."""

    code: str
    pool: str
    used_by: str
    reference: str


def classify(status: int, body: Any) -> tuple[Outcome, list[str], str]:
    """An HTTP answer as a history outcome: (outcome, codes, detail)."""
    if 200 <= status < 300 and isinstance(body, dict):
        codes = [body["code"]] if "code" in body else [code["code"] for code in body.get("codes", [])]
        return "ok", codes, str(status)
    error = body.get("error", {}).get("code", "") if isinstance(body, dict) else ""
    if 400 <= status < 500 or (status == 503 and error in DEFINITE_503):
        return "fail", [], f"{status} {error}"
    return "info", [], f"{status} {error}"


class HistoryWriter:
    """One process's history file: append-only JSON lines, each written with one `write` to an O_APPEND file."""

    def __init__(self, path: Path, process: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.process = process

    def invoked(self, operation_id: str, request: Request, retry_of: str | None = None) -> None:
        self._write(
            {
                "event": "invoke",
                "id": operation_id,
                "process": self.process,
                "retryOf": retry_of,
                "tag": request.tag,
                "pool": request.pool,
                "count": request.count,
                "reference": request.reference,
                "key": request.key,
            }
        )

    def completed(self, operation_id: str, outcome: Outcome, codes: list[str], detail: str) -> None:
        self._write({"event": "complete", "id": operation_id, "outcome": outcome, "codes": codes, "detail": detail})

    def close(self) -> None:
        os.close(self._fd)

    def _write(self, entry: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())


def read_history(paths: Iterable[Path]) -> list[Operation]:
    """Every operation of every file, in invocation order per file; an invoke without completion is `info`."""
    operations: dict[str, Operation] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill mid-write: that operation stays indeterminate
            if entry["event"] == "invoke":
                request = Request(entry["tag"], entry["pool"], entry["count"], entry["reference"], entry["key"])
                operations[entry["id"]] = Operation(entry["id"], entry["process"], request, retry_of=entry["retryOf"])
            elif entry["id"] in operations:
                operation = operations[entry["id"]]
                operation.outcome, operation.codes, operation.detail = entry["outcome"], entry["codes"], entry["detail"]
    return list(operations.values())


@dataclass(slots=True)
class Report:
    invoked: int = 0
    ok: int = 0
    fail: int = 0
    info: int = 0
    delivered: int = 0
    recorded: int = 0
    burned: int = 0
    recovered: int = 0
    duplicated: int = 0
    lost: int = 0
    mismatched: int = 0
    second_sets: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.violations

    def figures(self) -> dict[str, int]:
        return {
            "ops": self.invoked,
            "ok": self.ok,
            "fail": self.fail,
            "info": self.info,
            "delivered": self.delivered,
            "recorded": self.recorded,
            "duplicated": self.duplicated,
            "lost": self.lost,
            "mismatched": self.mismatched,
            "second_sets": self.second_sets,
            "burned": self.burned,
            "recovered": self.recovered,
        }

    def summary(self) -> str:
        figures = " ".join(f"{name}={value}" for name, value in self.figures().items())
        verdict = "valid" if self.valid else f"INVALID ({len(self.violations)} violations)"
        return f"history: {figures} -> {verdict}"


MAX_LISTED_VIOLATIONS = 20


def check(operations: Iterable[Operation], records: Mapping[str, Record]) -> Report:
    """Hold the history against the table's issued-code records (by code)."""
    operations = list(operations)
    report = Report(invoked=len(operations), recorded=len(records))
    for operation in operations:
        setattr(report, operation.outcome, getattr(report, operation.outcome) + 1)

    def violation(text: str) -> None:
        if len(report.violations) < MAX_LISTED_VIOLATIONS:
            report.violations.append(text)
        else:
            report.violations[-1] = f"... and more ({text})"

    delivered_to: dict[str, set[str]] = defaultdict(set)
    for operation in _successes(operations):
        for code in operation.codes:
            delivered_to[code].add(operation.request.tag)
    report.delivered = len(delivered_to)
    for code, tags in sorted(delivered_to.items()):
        if len(tags) > 1:
            report.duplicated += 1
            violation(f"duplicate: {code} was delivered to {len(tags)} requests {sorted(tags)}")

    for operation in _successes(operations):
        request = operation.request
        if len(operation.codes) != request.count or len(set(operation.codes)) != request.count:
            violation(f"{operation.id}: asked for {request.count} codes, got {operation.codes}")
        for code in operation.codes:
            record = records.get(code)
            if record is None:
                report.lost += 1
                violation(f"lost: {code} was delivered to {operation.id} but is not in the table")
            elif (record.pool, record.used_by, record.reference) != (request.pool, request.tag, request.reference):
                report.mismatched += 1
                violation(f"mismatch: {code} delivered to {request.tag} is recorded for {record.used_by}")

    recorded_by_tag: dict[str, set[str]] = defaultdict(set)
    for record in records.values():
        recorded_by_tag[record.used_by].add(record.code)
    for tag, attempts in _by_tag(operations).items():
        first = attempts[0].request
        successes = [attempt for attempt in attempts if attempt.outcome == "ok"]
        sets = {frozenset(attempt.codes) for attempt in successes}
        recorded = recorded_by_tag.get(tag, set())
        if first.key is not None:
            if len(sets) > 1:
                report.second_sets += 1
                violation(f"key {first.key}: its successes returned different codes {sorted(map(sorted, sets))}")
            if len(recorded) > first.count:
                report.second_sets += 1
                violation(f"key {first.key}: {len(recorded)} codes recorded for one request of {first.count}")
            if successes and any(attempt.outcome == "info" for attempt in attempts):
                report.recovered += sum(1 for attempt in attempts if attempt.outcome == "info")
        delivered = {code for attempt in successes for code in attempt.codes}
        report.burned += len(recorded - delivered)
    return report


def _successes(operations: Iterable[Operation]) -> Iterator[Operation]:
    return (operation for operation in operations if operation.outcome == "ok")


def _by_tag(operations: Iterable[Operation]) -> dict[str, list[Operation]]:
    grouped: dict[str, list[Operation]] = defaultdict(list)
    for operation in operations:
        grouped[operation.request.tag].append(operation)
    return grouped


def records_from_items(items: Iterable[Mapping[str, Any]]) -> dict[str, Record]:
    """Issued-code items (`tests.support.tables.issued_records` values) as `Record`s by code."""
    records: dict[str, Record] = {}
    for item in items:
        code = item["code"]["S"]
        records[code] = Record(
            code=code,
            pool=item["pool"]["S"],
            used_by=item.get("usedBy", {}).get("S", ""),
            reference=item.get("reference", {}).get("S", ""),
        )
    return records
