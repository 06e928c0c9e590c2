"""Count what a DynamoDB client sends, and what it costs, through botocore's own event hooks.

Every HTTP attempt is counted (SDK retries included), by operation. Request units are computed twice:
- `engine`: the `ConsumedCapacity` the engine reports (we add `ReturnConsumedCapacity=TOTAL` to every call);
- `priced`: DynamoDB's on-demand pricing rules applied to the request and response, because DynamoDB Local
  under-reports: it bills a 2-item `TransactWriteItems` as 2 units (AWS: 2 WRU per item, so 4), reports
  nothing for a failed conditional write (AWS charges it) and rounds `BatchGetItem` over the whole batch
  (AWS rounds each key, found or not, up to 4 KB).
The priced units are the ones the cost table uses.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

KB = 1024
READ_UNIT_BYTES = 4 * KB
TRANSACTION_FACTOR = 2
SLOT_ITEM_BYTES = 40
"""About the size of a pool slot item (pk, sk and code of an 8-character code)."""
ALL_OPERATIONS = "*"
"""The key of `InFlightMeter` counts over every operation."""


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item as DynamoDB sizes it: attribute names plus values (S/N/B/BOOL/NULL are enough here)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, content),) = value.items()
        if kind == "S":
            size += len(content.encode())
        elif kind == "N":
            size += (len(content.lstrip("-").replace(".", "")) + 1) // 2 + 1
        elif kind == "B":
            size += len(content)
        else:
            size += 1
    return size


def write_units(item: dict[str, Any] | None) -> int:
    return max(1, math.ceil(item_size(item or {}) / KB))


@dataclass
class Units:
    wru: float = 0.0
    rru: float = 0.0

    def add(self, other: Units) -> None:
        self.wru += other.wru
        self.rru += other.rru


@dataclass
class RequestMeter:
    """Attach to one or more clients; all of them add to the same counts."""

    requests: Counter[str] = field(default_factory=Counter)
    priced: Units = field(default_factory=Units)
    engine: Units = field(default_factory=Units)
    engine_reported: Counter[str] = field(default_factory=Counter)

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("provide-client-params.dynamodb.*", self._before_call)
        events.register("before-send.dynamodb.*", self._on_send)
        events.register("after-call.dynamodb.*", self._after_call)

    def reset(self) -> None:
        self.requests.clear()
        self.engine_reported.clear()
        self.priced = Units()
        self.engine = Units()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.total_requests,
            "by_operation": dict(sorted(self.requests.items())),
            "priced_wru": self.priced.wru,
            "priced_rru": self.priced.rru,
            "engine_wru": self.engine.wru,
            "engine_rru": self.engine.rru,
        }

    def _before_call(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        context["bench_params"] = dict(params)

    def _on_send(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        name = target.decode() if isinstance(target, bytes) else str(target)
        self.requests[name.rpartition(".")[2] or "unknown"] += 1

    def _after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("bench_params", {})
        self.priced.add(_priced_units(model.name, params, parsed))
        reported = parsed.get("ConsumedCapacity")
        if reported is None:
            return
        self.engine_reported[model.name] += 1
        for entry in reported if isinstance(reported, list) else [reported]:
            units = float(entry.get("CapacityUnits", 0.0))
            if model.name in {"Query", "Scan", "GetItem", "BatchGetItem", "TransactGetItems"}:
                self.engine.rru += units
            else:
                self.engine.wru += units


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def _priced_units(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> Units:
    """On-demand request units of one call, from the pricing rules (items here are far below 1 KB)."""
    if operation in {"PutItem", "DeleteItem", "UpdateItem"}:
        # A write whose condition fails is still charged.
        return Units(wru=write_units(params.get("Item") or params.get("Key")))
    if operation == "TransactWriteItems":
        total = 0
        for action in params.get("TransactItems", []):
            ((_, body),) = action.items()
            total += TRANSACTION_FACTOR * write_units(body.get("Item") or body.get("Key"))
        return Units(wru=total)
    if operation == "BatchWriteItem":
        unprocessed = sum(len(v) for v in (parsed.get("UnprocessedItems") or {}).values())
        requested = [r for rs in params.get("RequestItems", {}).values() for r in rs]
        written = requested[: len(requested) - unprocessed]
        return Units(wru=sum(write_units(r.get("PutRequest", {}).get("Item")) for r in written))
    if operation == "BatchGetItem":
        unprocessed = sum(len(v.get("Keys", [])) for v in (parsed.get("UnprocessedKeys") or {}).values())
        rru = 0.0
        for request in params.get("RequestItems", {}).values():
            rru += len(request.get("Keys", [])) * _read_units(0, bool(request.get("ConsistentRead")))
        return Units(rru=rru - unprocessed * 0.5)
    if operation == "GetItem":
        return Units(rru=_read_units(item_size(parsed.get("Item") or {}), bool(params.get("ConsistentRead"))))
    if operation in {"Query", "Scan"}:
        # Query bills the summed size of the items it read (before projection), rounded up once.
        partition = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if "Items" in parsed:
            read = sum(item_size(item) + len("pk") + len(partition) for item in parsed["Items"])
        else:  # Select=COUNT returns no items; it still reads them
            read = int(parsed.get("ScannedCount", 0)) * SLOT_ITEM_BYTES
        return Units(rru=_read_units(read, bool(params.get("ConsistentRead"))))
    return Units()


@dataclass
class InFlightMeter:
    """How many HTTP requests a client (or several) has in flight at once, by operation.

    A request is in flight from botocore's `before-send` (the signed request leaves for the wire) to its
    `response-received` (body read and parsed, or the attempt failed), so SDK retries count as requests and a
    backoff sleep does not. `max_by_operation` is the peak; `mean_by_operation` the time-weighted mean over
    the interval since `reset`.
    """

    current: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)
    area: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    last: float = 0.0

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-send.dynamodb.*", self._on_send)
        events.register("response-received.dynamodb.*", self._on_response)

    def detach(self, client: Any) -> None:
        events = client.meta.events
        events.unregister("before-send.dynamodb.*", self._on_send)
        events.unregister("response-received.dynamodb.*", self._on_response)

    def reset(self) -> None:
        """Start a new interval: peaks and means from now on (requests already in flight still count)."""
        now = time.perf_counter()
        self.peak = Counter({op: n for op, n in self.current.items() if n})
        self.area = {}
        self.started = self.last = now

    def snapshot(self) -> dict[str, Any]:
        self._advance(time.perf_counter())
        span = max(self.last - self.started, 1e-9)
        total_peak = self.peak.get(ALL_OPERATIONS, 0)
        return {
            "max_in_flight": total_peak,
            "max_by_operation": {op: n for op, n in sorted(self.peak.items()) if op != ALL_OPERATIONS},
            "mean_in_flight": self.area.get(ALL_OPERATIONS, 0.0) / span,
            "mean_by_operation": {op: a / span for op, a in sorted(self.area.items()) if op != ALL_OPERATIONS},
        }

    def _advance(self, now: float) -> None:
        elapsed = now - self.last
        for op, n in self.current.items():
            if n:
                self.area[op] = self.area.get(op, 0.0) + n * elapsed
        self.last = now

    def _change(self, event_name: str, delta: int) -> None:
        self._advance(time.perf_counter())
        operation = event_name.rpartition(".")[2] or "unknown"
        for op in (operation, ALL_OPERATIONS):
            self.current[op] += delta
            self.peak[op] = max(self.peak[op], self.current[op])

    def _on_send(self, event_name: str = "", **_: Any) -> None:
        self._change(event_name, +1)

    def _on_response(self, event_name: str = "", **_: Any) -> None:
        self._change(event_name, -1)
