"""The HTTP API's OpenAPI 3.1 description, built from the same limits the code enforces."""

from __future__ import annotations

from typing import Any

from codepool.model import MAX_COUNT, MAX_IDEMPOTENCY_KEY_LENGTH, METADATA_LIMITS
from issuer.requests import MAX_BODY_BYTES


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


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


def openapi_document() -> dict[str, Any]:
    metadata = {name: {"type": "string", "maxLength": limit} for name, limit in METADATA_LIMITS.items()}
    issue_body = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "pool": {"type": "string", "default": "default", "description": "name of a configured pool"},
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 1},
            **{
                name: {**schema, "description": f"stored with the code (at most {schema['maxLength']} bytes of UTF-8)"}
                for name, schema in metadata.items()
            },
        },
    }
    issued = {
        "type": "object",
        "required": ["code", "pool", "issuedAt"],
        "properties": {
            "code": {"type": "string"},
            "pool": {"type": "string"},
            "issuedAt": {"type": "string", "format": "date-time"},
            "requestId": {"type": "string"},
            **metadata,
        },
    }
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
            "description": f"at most {MAX_BODY_BYTES} bytes",
            "content": {"application/json": {"schema": issue_body}},
        },
        "responses": {
            "201": _json(
                "The claimed code, or {codes: [...]} when count > 1",
                {
                    "oneOf": [
                        issued,
                        {
                            "type": "object",
                            "required": ["codes"],
                            "properties": {"codes": {"type": "array", "items": issued}},
                        },
                    ]
                },
            ),
            "400": _error("Malformed JSON, a wrong type, an unknown field or a value out of bounds"),
            "404": _error("Unknown pool"),
            "413": _error("Body too large"),
            "422": _error("The Idempotency-Key was used with a different body"),
            "503": UNAVAILABLE,
        },
    }
    pool = {"type": "object", "required": ["name", "alphabet", "length"], "additionalProperties": True}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "unique-codes",
            "version": "1.0.0",
            "description": (
                "Issues codes that are never issued twice, from pre-generated pools. Any other method on a path below "
                "is answered `405 method_not_allowed` with an `Allow` header (components.responses.MethodNotAllowed); "
                "`OPTIONS` is `204` with `Allow`; a path that is not below is `404 route_not_found`."
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
                            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
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
                        "200": _json("The record", issued),
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
                    "responses": {
                        "200": _json(
                            "Pools", {"type": "object", "properties": {"pools": {"type": "array", "items": pool}}}
                        ),
                        "503": NOT_READY,
                    },
                }
            },
            "/pools/{pool}": {
                "get": {
                    "operationId": "showPool",
                    "summary": "A pool's definition and how many codes it has available",
                    "parameters": [{"name": "pool", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("The pool", pool), "404": _error("Unknown pool"), "503": UNAVAILABLE},
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
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                }
            },
        },
    }
