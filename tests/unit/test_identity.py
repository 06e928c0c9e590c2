"""Idempotency scopes: the caller's stable identity, whatever the authorizer and however often it refreshes."""

from __future__ import annotations

from typing import Any

import pytest

from issuer.identity import caller_identity, stable_principal
from tests.support.events import load_event

ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/Checkout/i-0abc-task-17"
REFRESHED = "arn:aws:sts::123456789012:assumed-role/Checkout/i-0abc-task-18"


def v2_iam(arn: str) -> dict[str, Any]:
    return {"version": "2.0", "requestContext": {"authorizer": {"iam": {"userArn": arn, "accountId": "123456789012"}}}}


def v1_iam(arn: str) -> dict[str, Any]:
    return {"requestContext": {"identity": {"userArn": arn}}}


@pytest.mark.parametrize("shape", [v2_iam, v1_iam])
def test_an_assumed_role_keeps_its_scope_across_sessions(shape: Any) -> None:
    assert caller_identity(shape(ROLE_SESSION)) == caller_identity(shape(REFRESHED))
    assert caller_identity(shape(ROLE_SESSION)) == "iam:arn:aws:sts::123456789012:assumed-role/Checkout"
    other_role = ROLE_SESSION.replace("Checkout", "Reporting")
    assert caller_identity(shape(other_role)) != caller_identity(shape(ROLE_SESSION))


def test_users_keep_their_full_arn() -> None:
    user = "arn:aws:iam::123456789012:user/alice"
    assert stable_principal(user) == user
    assert caller_identity(v2_iam(user)) == f"iam:{user}"


def test_jwt_scope_is_issuer_and_subject() -> None:
    def jwt(iss: str, sub: str) -> dict[str, Any]:
        return {"requestContext": {"authorizer": {"jwt": {"claims": {"iss": iss, "sub": sub}, "scopes": []}}}}

    assert caller_identity(jwt("https://idp-a", "alice")) == "jwt:https://idp-a|alice"
    assert caller_identity(jwt("https://idp-a", "alice")) != caller_identity(jwt("https://idp-b", "alice"))
    cognito_v1 = {"requestContext": {"authorizer": {"claims": {"iss": "https://idp-a", "sub": "alice"}}}}
    assert caller_identity(cognito_v1) == "jwt:https://idp-a|alice"


def test_lambda_authorizers_scope_by_principal() -> None:
    assert caller_identity({"requestContext": {"authorizer": {"principalId": "acct-7"}}}) == "lambda:acct-7"
    v2 = {"requestContext": {"authorizer": {"lambda": {"principalId": "acct-7"}}}}
    assert caller_identity(v2) == "lambda:acct-7"


def test_a_v2_lambda_authorizer_with_simple_responses_scopes_by_its_context() -> None:
    """HTTP API payload 2.0 with simple responses: `{"isAuthorized": true, "context": {...}}` arrives as
    `requestContext.authorizer.lambda`, with no principalId. Its context is who called."""
    event = load_event("http-api-v2-lambda-authorizer.json")
    alice = caller_identity(event)
    assert alice is not None
    assert caller_identity(load_event("http-api-v2-lambda-authorizer.json")) == alice  # stable across requests
    event["requestContext"]["authorizer"]["lambda"]["userId"] = "user-0b1e"
    assert caller_identity(event) not in (None, alice)
    reordered = load_event("http-api-v2-lambda-authorizer.json")
    context = reordered["requestContext"]["authorizer"]["lambda"]
    reordered["requestContext"]["authorizer"]["lambda"] = dict(reversed(context.items()))
    assert caller_identity(reordered) == alice  # the context's key order is not part of the identity


def test_a_lambda_authorizers_principal_id_alone_is_the_scope() -> None:
    event = load_event("http-api-v2-lambda-authorizer.json")
    event["requestContext"]["authorizer"]["lambda"]["principalId"] = "acct-7"
    assert caller_identity(event) == "lambda:acct-7"


def test_a_lambda_authorizer_context_cannot_pose_as_another_kind_of_identity() -> None:
    context = {"requestContext": {"authorizer": {"lambda": {"x": "acct-7"}}}}
    assert caller_identity(context) != "lambda:acct-7"
    assert caller_identity({"requestContext": {"authorizer": {"lambda": {}}}}) is None


def test_no_authorizer_means_one_shared_scope() -> None:
    assert caller_identity({"requestContext": {"identity": {"sourceIp": "127.0.0.1"}}}) is None
    assert caller_identity({}) is None
