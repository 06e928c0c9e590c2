"""Who called, as API Gateway's authorizers tell it: the scope of a caller's idempotency keys."""

from __future__ import annotations

from typing import Any


def caller_identity(event: dict[str, Any]) -> str | None:
    """Who the authorizer says called, as an identity that stays the same across credential refreshes:

    - IAM (HTTP API v2 `authorizer.iam`, REST v1 `identity`): the user ARN, or for an assumed role the role's
      session ARN without the session name, which changes per task and on every refresh;
    - JWT (v2 `authorizer.jwt.claims`, REST v1 Cognito `authorizer.claims`): issuer and subject;
    - a Lambda authorizer: its `principalId` (REST v1), or `principalId` in its context (HTTP API v2).

    None without an authorizer (`unique-codes serve`): every caller shares one key space.
    """
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or authorizer.get("claims") or {}
    if claims.get("sub"):
        return f"jwt:{claims.get('iss', '')}|{claims['sub']}"
    arn = (authorizer.get("iam") or {}).get("userArn") or (context.get("identity") or {}).get("userArn")
    if arn:
        return f"iam:{stable_principal(str(arn))}"
    principal = authorizer.get("principalId") or (authorizer.get("lambda") or {}).get("principalId")
    return f"lambda:{principal}" if principal else None


def stable_principal(arn: str) -> str:
    """`arn:aws:sts::123:assumed-role/Role/session` -> `arn:aws:sts::123:assumed-role/Role`; other ARNs as given."""
    prefix, _, resource = arn.partition(":assumed-role/")
    if not resource:
        return arn
    role = resource.split("/", 1)[0]
    return f"{prefix}:assumed-role/{role}"
