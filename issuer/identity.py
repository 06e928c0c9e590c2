"""Who called, as API Gateway's authorizers tell it: the scope of a caller's idempotency keys."""

from __future__ import annotations

import json
from typing import Any


def caller_identity(event: dict[str, Any]) -> str | None:
    """Who the authorizer says called, as an identity that stays the same across credential refreshes:

    - IAM (HTTP API v2 `authorizer.iam`, REST v1 `identity`): the user ARN, or for an assumed role the role's
      session ARN without the session name, which changes per task and on every refresh;
    - JWT (v2 `authorizer.jwt.claims`, REST v1 Cognito `authorizer.claims`): issuer and subject;
    - a Lambda authorizer: its `principalId` (REST v1, and HTTP API v2 with IAM policy responses), or a
      `principalId` in its context; failing that (HTTP API v2 with simple responses, whose event carries only
      the context, as `authorizer.lambda`), the whole context, keys sorted: whatever the authorizer says of the
      caller is who called. So a context must not carry per-request values (a timestamp, a request id): each
      request would then be a caller of its own, and a retry would not find its key. Put a `principalId` in
      the context to name the scope outright.

    None without an authorizer, or with one that says nothing of the caller (an empty context): such callers
    (`unique-codes serve`, a function URL) all share one scope, `codepool.issuing.SHARED_SCOPE`.
    """
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or authorizer.get("claims") or {}
    if claims.get("sub"):
        return f"jwt:{claims.get('iss', '')}|{claims['sub']}"
    arn = (authorizer.get("iam") or {}).get("userArn") or (context.get("identity") or {}).get("userArn")
    if arn:
        return f"iam:{stable_principal(str(arn))}"
    context_of_lambda = authorizer.get("lambda")
    context_of_lambda = context_of_lambda if isinstance(context_of_lambda, dict) else {}
    principal = authorizer.get("principalId") or context_of_lambda.get("principalId")
    if principal:
        return f"lambda:{principal}"
    if context_of_lambda:
        return "lambda-context:" + json.dumps(context_of_lambda, sort_keys=True, separators=(",", ":"), default=str)
    return None


def stable_principal(arn: str) -> str:
    """`arn:aws:sts::123:assumed-role/Role/session` -> `arn:aws:sts::123:assumed-role/Role`; other ARNs as given."""
    prefix, _, resource = arn.partition(":assumed-role/")
    if not resource:
        return arn
    role = resource.split("/", 1)[0]
    return f"{prefix}:assumed-role/{role}"
