"""Value objects that cross the core's boundary: what a client asks for and what it gets back."""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_COUNT = 25
"""Most codes one request may claim; they are claimed in one transaction (2 items each, 100 at most)."""

METADATA_LIMITS = {"usedBy": 256, "reference": 256, "description": 1024}
"""Longest value, in UTF-8 bytes, of each metadata field a client may attach to an issued code. Bytes, not
characters, because DynamoDB's item and transaction limits are in bytes (`codepool.dynamodb.sizes`)."""

MAX_IDEMPOTENCY_KEY_LENGTH = 255
"""Longest Idempotency-Key, in UTF-8 bytes."""
MAX_REQUEST_ID_LENGTH = 128
"""Longest API Gateway request id recorded with a code (theirs are 36); a longer one is not recorded."""


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8; a lone surrogate (JSON allows `"\\ud800"`) has no UTF-8 form."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (a lone surrogate)") from None


@dataclass(frozen=True, slots=True)
class IssueRequest:
    pool: str | None = None
    """None: the `default` pool, or the only pool there is (`config.resolve_pool`)."""
    count: int = 1
    used_by: str | None = None
    reference: str | None = None
    description: str | None = None

    def metadata(self) -> dict[str, str]:
        values = {"usedBy": self.used_by, "reference": self.reference, "description": self.description}
        return {key: value for key, value in values.items() if value is not None}

    def fingerprint(self) -> str:
        """What makes two requests 'the same' for idempotency: every field that changes the outcome."""
        canonical = json.dumps(
            {"pool": self.pool, "count": self.count, **self.metadata()}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    pool: str
    issued_at: str
    metadata: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "pool": self.pool,
            "issuedAt": self.issued_at,
            **self.metadata,
        }
        if self.request_id:
            body["requestId"] = self.request_id
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> IssuedCode:
        metadata = {key: body[key] for key in METADATA_LIMITS if key in body}
        return cls(
            code=body["code"],
            pool=body["pool"],
            issued_at=body["issuedAt"],
            metadata=metadata,
            request_id=body.get("requestId"),
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """An available code as found in the pool: its key (canonical form) and how it is shown."""

    key: str
    code: str
    shard: int
    written_at: int | None = None
    """When the slot was written (epoch ms, the writer's clock), as read from the pool; None: not read, or a slot
    written before slots carried it."""


def shard_of(key: str, shards: int) -> int:
    """A code always lands in the same shard, so writing it twice overwrites one slot instead of adding two."""
    return zlib.crc32(key.encode()) % shards


@dataclass
class RefillCarry:
    """What one refill leaves unresolved for the next refill of the same pool in the same container (the
    refiller's, kept across warm invocations): a ledger addition still pending (token, amount, when first sent,
    monotonic) and slots of writes whose outcome stayed unknown, typically because the engine was down."""

    pending: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    uncertain: dict[str, list[Candidate]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SweepState:
    """The refiller's walk over a keyspace once random draws stop paying (`codepool.refilling`): it visits the
    code numbered `(start + i * step) % keyspace` for i = 0, 1, ... (`step` coprime to the keyspace, so every
    code once, in an order that is not the codes' own), and `cursor` is the next i. Every code before the
    cursor is issued, available or blocked; `cursor == keyspace` means every code is."""

    start: int
    step: int
    cursor: int = 0

    def done(self, keyspace: int) -> bool:
        return self.cursor >= keyspace

    def number(self, i: int, keyspace: int) -> int:
        return (self.start + i * self.step) % keyspace


@dataclass(frozen=True, slots=True)
class PoolLedger:
    """What a pool's counts cannot tell, kept in one item per pool by the refiller and `unique-codes import`.

    `written + imported - stale - available` is the number of codes issued from the pool: every count is added
    once per write that landed (`CodeRepository.add_to_ledger`'s token), and `stale` counts the slots claims
    removed without issuing them (their code was issued already). It is exact but for a blind overwrite of a
    slot by an unchecked refill round (odds at most 1/1000 per code, `refilling.AVAILABLE_CHECK_RATIO`), and
    never used to decide anything that keeps codes unique.
    `snapshots` are (epoch seconds, issued) pairs of the last refill runs, for the issue rate."""

    written: int = 0
    imported: int = 0
    stale: int = 0
    snapshots: tuple[tuple[float, int], ...] = ()
    sweep: SweepState | None = None

    def issued(self, available: int) -> int:
        return max(0, self.written + self.imported - self.stale - available)


SNAPSHOT_HORIZON_SECONDS = 3 * 3600
"""How far back the ledger keeps snapshots: the issue rate looks one hour back."""
RATE_WINDOW_SECONDS = 3600


def issue_rate(snapshots: tuple[tuple[float, int], ...], now: float, issued_now: int) -> tuple[float | None, float]:
    """(codes issued per hour over the last hour, or None without an earlier snapshot; the seconds it covers).

    Uses the latest snapshot at least an hour old, or the oldest one when none is: the window may be shorter
    than an hour for a young pool, never longer than the snapshots' spacing past it."""
    earlier = [snap for snap in snapshots if snap[0] < now]
    if not earlier:
        return None, 0.0
    old_enough = [snap for snap in earlier if now - snap[0] >= RATE_WINDOW_SECONDS]
    at, issued_then = max(old_enough) if old_enough else min(earlier)
    window = now - at
    if window <= 0:
        return None, 0.0
    return max(0, issued_now - issued_then) * 3600 / window, window


@dataclass(frozen=True, slots=True)
class PoolStats:
    pool: str
    available: int
    by_shard: list[int]
    target: int
    low_watermark: int
    keyspace: int = 0
    usable_keyspace: int = 0
    """The keyspace less the codes the blocklist blocks; for an imported-only pool, the codes imported."""
    issued: int = 0
    issue_rate_per_hour: float | None = None
    rate_window_seconds: float = 0.0
    exhausted: bool = False
    """Nothing is available and no refill can add a code (keyspace swept, or an imported-only pool used up)."""
    swept: bool = False
    """The refiller walked the whole keyspace: every code left is available, no more can be generated."""
    margin: int = 0
    """0 when `available` (and so `issued`) were counted exactly; else both are estimates, off by at most this
    many codes in 95 % of cases (`codepool.queries.PoolDepth`)."""

    @property
    def fraction_used(self) -> float:
        return self.issued / self.usable_keyspace if self.usable_keyspace else 1.0

    def to_json(self) -> dict[str, Any]:
        rate = self.issue_rate_per_hour
        remaining = max(0, self.usable_keyspace - self.issued)
        return {
            "pool": self.pool,
            "available": self.available,
            "availableByShard": self.by_shard,
            "target": self.target,
            "lowWatermark": self.low_watermark,
            "belowLowWatermark": self.available < self.low_watermark,
            "keyspace": self.keyspace,
            "usableKeyspace": self.usable_keyspace,
            "issued": self.issued,
            "fractionUsed": round(self.fraction_used, 6),
            "issueRatePerHour": None if rate is None else round(rate, 1),
            "rateWindowSeconds": round(self.rate_window_seconds),
            "forecast": {
                # At the last hour's rate: when the pool runs dry if no refill comes, when the keyspace is used up.
                "poolDryInSeconds": None if not rate else round(self.available / rate * 3600),
                "keyspaceExhaustedInSeconds": None if not rate else round(remaining / rate * 3600),
            },
            "exhausted": self.exhausted,
            "swept": self.swept,
            "countsExact": self.margin == 0,
            "countsMargin": self.margin,
        }


@dataclass(slots=True)
class RefillSummary:
    pool: str
    available_before: int
    target: int
    written: int = 0
    skipped_issued: int = 0
    skipped_available: int = 0
    skipped_repeated: int = 0
    batch_requests: int = 0
    check_requests: int = 0
    """BatchGetItem requests (one per 100 keys) spent checking candidates: the sample, the checks, the sweep."""
    unprocessed_retries: int = 0
    took_ms: float = 0.0
    rounds: int = 0
    """Rounds of candidates drawn (a round cut by the deadline included)."""
    complete: bool = False
    """The pool reached `target` (`available_before + written >= target`, as far as this refill knows)."""
    stopped: str | None = None
    """Why an incomplete refill ended: "deadline" (out of time; the next run goes on) or "error" (it raised)."""
    fill_fraction: float = 0.0
    """Share of the usable keyspace issued or available when the refill started: it decides the checks."""
    checked: bool = True
    """Whether candidates were checked against issued codes before writing (above CHECK_FILL_FRACTION)."""
    swept: int = 0
    """Codes of the keyspace this refill's sweep settled (moved its cursor past): over all refills, each code
    is settled once."""
    exhausted: bool = False
    """No code can be added to the pool any more: its keyspace is swept (or it is imported-only)."""
    uncounted: int = 0
    """Codes written that the ledger may not count: its last addition got no answer before the refill ended."""
    unsettled: int = 0
    """Slots of writes whose outcome stayed unknown (no answer, and the read that would tell failed too): the
    ledger does not count them, though some may have landed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "availableBefore": self.available_before,
            "uncounted": self.uncounted,
            "unsettled": self.unsettled,
            "target": self.target,
            "written": self.written,
            "skippedIssued": self.skipped_issued,
            "skippedAvailable": self.skipped_available,
            "skippedRepeated": self.skipped_repeated,
            "batchRequests": self.batch_requests,
            "checkRequests": self.check_requests,
            "unprocessedRetries": self.unprocessed_retries,
            "tookMs": round(self.took_ms, 1),
            "rounds": self.rounds,
            "complete": self.complete,
            "stopped": self.stopped,
            "fillFraction": round(self.fill_fraction, 6),
            "checked": self.checked,
            "swept": self.swept,
            "exhausted": self.exhausted,
        }


def utc_timestamp(epoch_seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-11-28T08:00:00.123Z."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
