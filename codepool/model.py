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
    pool: str = "default"
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


def shard_of(key: str, shards: int) -> int:
    """A code always lands in the same shard, so writing it twice overwrites one slot instead of adding two."""
    return zlib.crc32(key.encode()) % shards


@dataclass(frozen=True, slots=True)
class PoolStats:
    pool: str
    available: int
    by_shard: list[int]
    target: int
    low_watermark: int

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "available": self.available,
            "availableByShard": self.by_shard,
            "target": self.target,
            "lowWatermark": self.low_watermark,
            "belowLowWatermark": self.available < self.low_watermark,
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
    unprocessed_retries: int = 0
    took_ms: float = 0.0
    rounds: int = 0
    """Rounds of candidates drawn (a round cut by the deadline included)."""
    complete: bool = False
    """The pool reached `target` (`available_before + written >= target`, as far as this refill knows)."""
    stopped: str | None = None
    """Why an incomplete refill ended: "deadline" (out of time; the next run goes on) or "error" (it raised)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "availableBefore": self.available_before,
            "target": self.target,
            "written": self.written,
            "skippedIssued": self.skipped_issued,
            "skippedAvailable": self.skipped_available,
            "skippedRepeated": self.skipped_repeated,
            "batchRequests": self.batch_requests,
            "unprocessedRetries": self.unprocessed_retries,
            "tookMs": round(self.took_ms, 1),
            "rounds": self.rounds,
            "complete": self.complete,
            "stopped": self.stopped,
        }


def utc_timestamp(epoch_seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-11-28T08:00:00.123Z."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
