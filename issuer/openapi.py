"""The HTTP API's OpenAPI 3.1 description, built from the same limits the code enforces.

Every field of every JSON answer is described, with its type and whether it is always there, so a generated
client has each as a typed attribute; `tests/unit/test_openapi_contract.py` holds each answer to the document with
no undescribed field allowed. The document does not forbid other fields in answers: a later version may add one,
and a client should ignore a field it does not know.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

from codepool.checks import SCHEMES
from codepool.formats import TYPED_SEPARATORS
from codepool.model import MAX_COUNT, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_REQUEST_ID_LENGTH, METADATA_LIMITS
from codepool.queries import MAX_TYPED_CODE_LENGTH
from issuer.requests import MAX_BODY_BYTES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json(description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **more}


def _all_required(properties: dict[str, Any], description: str) -> dict[str, Any]:
    """An object that always carries every one of `properties`."""
    return {"type": "object", "description": description, "required": list(properties), "properties": properties}


def _integer(description: str, minimum: int | None = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    return schema


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _boolean(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
UNAVAILABLE = {
    **_error(
        "The pool has fewer codes than `count` (`pool_empty`: a refill adds more; the message says about how many "
        "are left, a claim being all or none) or is exhausted (`pool_exhausted`: every code of its "
        "keyspace or import is issued; no refill helps), claims kept colliding, or DynamoDB is unavailable; retry "
        "after Retry-After seconds "
        "(`unique-codes serve` also answers `not_ready` while it fills its pools at start-up)"
    ),
    "headers": RETRY_AFTER,
}
NOT_READY = {
    **_error("`unique-codes serve` only: still filling its pools at start-up (`not_ready`); retry after Retry-After"),
    "headers": RETRY_AFTER,
}
METHOD_NOT_ALLOWED = {
    **_error("A method the path does not support (`method_not_allowed`); `Allow` lists those it does"),
    "headers": {"Allow": {"schema": {"type": "string"}, "description": "the path's methods, e.g. `GET, OPTIONS`"}},
}
REPLAYED = {
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "present on a retry with an Idempotency-Key already used with this body: the first answer again",
    }
}

NULL_IS_ABSENT = "`null` is the same as leaving the field out."
"""Why the request's string fields are `["string", "null"]`: the API has always read a `null` as a missing field,
and clients that serialise an unset field as `null` rely on it."""


def _metadata(*, request: bool) -> dict[str, Any]:
    """The metadata fields: in a request (may be `null`), or in an issued code's record (there only when sent)."""
    fields = {}
    for name, limit in METADATA_LIMITS.items():
        limit_text = (
            f"At most {limit} bytes of UTF-8: `maxLength` counts characters, so a text within it that has "
            "multi-byte characters can still be too long (400)."
        )
        if request:
            fields[name] = {
                "type": ["string", "null"],
                "maxLength": limit,
                "description": f"Stored with the code. {limit_text} {NULL_IS_ABSENT}",
            }
        else:
            fields[name] = {"type": "string", "maxLength": limit, "description": "as sent; absent when not sent"}
    return fields


def _schemas() -> dict[str, Any]:
    pool_definition = {
        "name": _string("the pool's name"),
        "alphabet": _string("the characters the random part is drawn from (a preset's characters, not its name)"),
        "length": _integer("random characters per code (prefix, postfix and check character not counted)", 1),
        "prefix": _string('text before the random part (`""`: none)'),
        "postfix": _string('text after the random part (`""`: none)'),
        "pattern": _nullable(_string("layout of the random part, one `#` per character (e.g. `###-###`); null: none")),
        "check": _nullable(_string(f"the check character's scheme, one of {sorted(SCHEMES)}; null: none")),
        "blocklist": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the pool's own blocked words (no issued code contains one)",
        },
        "defaultBlocklist": _boolean("whether the built-in list of blocked words also applies"),
        "importedOnly": _boolean("codes come only from `unique-codes import`; the refiller never generates any"),
        "example": _string("a code of this format, generated for this answer (not issued, not kept)"),
        "keyspace": _integer("how many codes the format allows"),
        "entropyBits": {"type": "number", "minimum": 0, "description": "log2 of the keyspace, one decimal"},
        "target": _integer("how many available codes the refiller keeps in the pool"),
        "lowWatermark": _integer("below this many available codes, a refill is due"),
        "shards": _integer("partitions the available codes are spread over", 1),
    }
    statistics = {
        "pool": _string("the pool's name (as `name`)"),
        "available": _integer("codes in the pool, ready to be issued"),
        "availableByShard": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "description": "`available` per shard, in shard order",
        },
        "belowLowWatermark": _boolean("`available` is below `lowWatermark`"),
        "usableKeyspace": _integer(
            "the keyspace less the codes the blocklists block (sampled above 10,000 codes), or the codes imported "
            "into an imported-only pool"
        ),
        "issued": _integer("codes issued from the pool, from the ledger the refiller and `import` keep"),
        "fractionUsed": {
            "type": "number",
            "minimum": 0,
            "description": "`issued` over `usableKeyspace` (1 when that is 0), six decimals",
        },
        "issueRatePerHour": _nullable(
            {
                "type": "number",
                "minimum": 0,
                "description": "codes issued per hour over `rateWindowSeconds`; null: no earlier snapshot yet",
            }
        ),
        "rateWindowSeconds": _integer("the seconds the rate looks back over: an hour, or less for a young pool"),
        "forecast": _ref("PoolForecast"),
        "exhausted": _boolean("nothing is available and no refill can add a code (keyspace swept, imports used up)"),
        "swept": _boolean("the refiller has visited every code of the keyspace: no more can be generated"),
        "countsExact": _boolean(
            "whether `available` (and so `issued`) were counted slot by slot; false past 5,000 slots a shard, "
            "where they are estimated from that bounded count"
        ),
        "countsMargin": _integer(
            "0 when the counts are exact; else `available` and `issued` are off by at most "
            "this many codes in 95 % of cases"
        ),
    }
    forecast = {
        "poolDryInSeconds": _nullable(
            _integer("when the pool runs dry at that rate if no refill comes; null: no rate, or a rate of 0")
        ),
        "keyspaceExhaustedInSeconds": _nullable(
            _integer("when the usable keyspace is used up at that rate; null: no rate, or a rate of 0")
        ),
    }
    issued_code = {
        "type": "object",
        "description": "An issued code's record",
        "required": ["code", "pool", "issuedAt"],
        "properties": {
            "code": _string("the code as issued: prefix, laid-out random part, check character and postfix"),
            "pool": _string("the pool that issued it"),
            "issuedAt": {
                "type": "string",
                "format": "date-time",
                "description": "when, in UTC with milliseconds (e.g. `2026-11-28T08:04:41.331Z`)",
            },
            "requestId": _string(
                "the API Gateway request id of the request that issued it; absent when the request had none or "
                f"one longer than {MAX_REQUEST_ID_LENGTH} characters"
            ),
            **_metadata(request=False),
        },
    }
    return {
        "IssueRequest": {
            "type": "object",
            "additionalProperties": False,
            "description": (
                "Every field may be left out; an unknown field is 400. `null` for a string field is the same as "
                "leaving it out."
            ),
            "properties": {
                "pool": _nullable(_string(f"a configured pool's name; left out: the `default` pool. {NULL_IS_ABSENT}")),
                "count": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_COUNT,
                    "default": 1,
                    "description": (
                        "How many codes to claim, all or none in one write. Any JSON number without a fraction "
                        "(JSON has one number type): `3.0` is 3, `3.5` is 400."
                    ),
                },
                **_metadata(request=True),
            },
        },
        "IssuedCode": issued_code,
        "IssuedCodes": {
            "type": "object",
            "description": "The codes of a request with `count` > 1, in one list",
            "required": ["codes"],
            "properties": {"codes": {"type": "array", "items": _ref("IssuedCode")}},
        },
        "Pool": _all_required(pool_definition, "A configured pool: its format and how full the refiller keeps it"),
        "PoolList": _all_required(
            {"pools": {"type": "array", "items": _ref("Pool")}}, "The configured pools, in the pools file's order"
        ),
        "PoolWithStatistics": _all_required(
            {**pool_definition, **statistics},
            "A pool's definition (as in GET /pools) and its statistics (README, Pool statistics)",
        ),
        "PoolForecast": _all_required(forecast, "At the last hour's issue rate"),
        "Error": {
            "type": "object",
            "description": "Every error answer",
            "required": ["error"],
            "properties": {"error": _ref("ErrorDetail")},
        },
        "ErrorDetail": _all_required(
            {
                "code": _string(
                    "what went wrong, for programs: `invalid_request`, `invalid_code`, `pool_not_found`, "
                    "`code_not_found`, `route_not_found`, `method_not_allowed`, `ambiguous_code`, "
                    "`payload_too_large`, `idempotency_key_reused`, `pool_empty`, `pool_exhausted`, "
                    "`claim_contention`, `store_unavailable`, `not_ready`, `internal_error` (more may come)"
                ),
                "message": _string("what went wrong, for people"),
            },
            "The error",
        ),
    }


@cache
def typed_code_pattern() -> str:
    """A code to look up has a character that is neither white space (as `str.strip` reads it) nor a separator:
    text of only those is `400 invalid_request`, not a code (`codepool.queries.lookup_code`)."""
    ignored = sorted({*TYPED_SEPARATORS, *(chr(point) for point in range(sys.maxunicode + 1) if chr(point).isspace())})
    # \uXXXX reaches the Basic Multilingual Plane only; a character past it stands for itself.
    return "[^" + "".join(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else char for char in ignored) + "]"


def openapi_document() -> dict[str, Any]:
    issue_operation = {
        "summary": "Claim one code (or `count` codes, atomically) from a pool",
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
                "description": (
                    f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} bytes; a retry with the same key and body returns the "
                    "same codes; another body is 422"
                ),
            }
        ],
        "requestBody": {
            "required": False,
            "description": (
                f"At most {MAX_BODY_BYTES} bytes; no body and `{{}}` both ask for one code of the default pool. A "
                "`null` body is 400 (versions before 1.1 read it as no body): a body that may be `null` cannot be "
                "described without breaking generated clients' calls that send none."
            ),
            "content": {"application/json": {"schema": _ref("IssueRequest")}},
        },
        "responses": {
            "201": _json(
                "The claimed code, or {codes: [...]} when count > 1",
                {"oneOf": [_ref("IssuedCode"), _ref("IssuedCodes")]},
                headers=REPLAYED,
            ),
            "400": _error("Malformed JSON, a wrong type, an unknown field or a value out of bounds"),
            "404": _error("Unknown pool"),
            "413": _error("Body too large"),
            "422": _error(
                "The Idempotency-Key was used with a different body (`idempotency_key_reused`): a valid request "
                "refused for what an earlier one did, which no schema can tell"
            ),
            "503": UNAVAILABLE,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "unique-codes",
            "version": "1.1.0",
            "description": (
                "Issues codes that are never issued twice, from pre-generated pools. Any other method on a path below "
                "is answered `405 method_not_allowed` with an `Allow` header (components.responses.MethodNotAllowed); "
                "`OPTIONS` is `204` with `Allow`; a path that is not below is `404 route_not_found`. "
                "In request bodies, `null` for an optional string field means the field is left out, and `count` "
                "is any JSON number without a fraction (`2.0` is 2). Answers carry every field described here, and "
                "later versions may add fields: ignore the ones you do not know."
            ),
        },
        "paths": {
            "/codes": {"post": {**issue_operation, "operationId": "issueCodes"}},
            "/": {
                "post": {
                    **issue_operation,
                    "operationId": "issueCodesAtRoot",
                    "description": "Same as POST /codes; kept for the original demo's test event.",
                }
            },
            "/codes/{code}": {
                "get": {
                    "operationId": "lookupCode",
                    "summary": "An issued code's record; the code may be typed in any case, with separators",
                    "description": (
                        "The typed text is resolved against every configured pool's format (case, separators and "
                        "confusable characters such as O for 0 in a pool without O), and only a code issued by a "
                        "pool whose format accepts the text is returned. A wrong check character is `400 "
                        "invalid_code`, answered without reading DynamoDB."
                    ),
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_TYPED_CODE_LENGTH,
                                "pattern": typed_code_pattern(),
                            },
                            "description": "as typed: any case, separators (`-`, `_`, `.`, spaces) anywhere",
                        },
                        {
                            "name": "pool",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "only this pool's codes (needed when the text is a code of two pools)",
                        },
                    ],
                    "responses": {
                        "200": _json("The record", _ref("IssuedCode")),
                        "400": _error("Not a code (`invalid_request`), or a wrong check character (`invalid_code`)"),
                        "404": _error("No such issued code (`code_not_found`), or unknown `pool` (`pool_not_found`)"),
                        "409": _error("The text is an issued code of more than one pool (`ambiguous_code`)"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/pools": {
                "get": {
                    "operationId": "listPools",
                    "summary": "The configured pools",
                    "responses": {"200": _json("Pools", _ref("PoolList")), "503": NOT_READY},
                }
            },
            "/pools/{pool}": {
                "get": {
                    "operationId": "showPool",
                    "summary": "A pool's definition and statistics: how many codes are available, issued, how fast",
                    "parameters": [{"name": "pool", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _json("The pool", _ref("PoolWithStatistics")),
                        "404": _error("Unknown pool"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _json("OpenAPI 3.1", {"type": "object"}), "503": NOT_READY},
                }
            },
        },
        "components": {
            "responses": {"MethodNotAllowed": METHOD_NOT_ALLOWED, "NotReady": NOT_READY},
            "schemas": _schemas(),
        },
    }
