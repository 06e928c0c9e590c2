"""Idempotency scopes: the caller's stable identity, whatever the authorizer and however often it refreshes."""

from __future__ import annotations

from typing import Any

import pytest

from issuer.identity import caller_identity, stable_principal

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


def test_no_authorizer_means_one_shared_scope() -> None:
    assert caller_identity({"requestContext": {"identity": {"sourceIp": "127.0.0.1"}}}) is None
    assert caller_identity({}) is None
