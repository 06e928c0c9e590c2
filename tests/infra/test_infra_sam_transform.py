"""The SAM template becomes plain CloudFormation offline (samtranslator, the library CloudFormation's
`AWS::Serverless` transform runs), with the schedule, the HTTP API's routes and its authorizer."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cfn_eval import parameter_values, resolve
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from issuer.openapi import openapi_document


class NoManagedPolicies(ManagedPolicyLoader):  # type: ignore[misc]  # samtranslator ships no type hints
    """The template attaches no managed policy, so the loader must never be asked (it would call IAM)."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)

    def load(self) -> dict[str, str]:
        raise AssertionError("the template should not need AWS managed policies")


def _translate(template: dict[str, Any]) -> dict[str, Any]:
    # `sam package` replaces the local CodeUri with the uploaded artifact's S3 location.
    template = copy.deepcopy(template)
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts-bucket/unique-codes.zip"
    translated: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return translated


@pytest.fixture
def cloudformation(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # The translator derives AWS::Region and AWS::Partition from a boto3 session; nothing is sent anywhere.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return _translate(template)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_no_sam_resource_is_left(cloudformation: dict[str, Any]) -> None:
    assert "Transform" not in cloudformation
    kinds = {resource["Type"] for resource in cloudformation["Resources"].values()}
    assert not [kind for kind in kinds if kind.startswith("AWS::Serverless::")]


def test_both_functions_use_the_same_code(cloudformation: dict[str, Any]) -> None:
    functions = _of_type(cloudformation, "AWS::Lambda::Function")
    assert set(functions) == {"IssuerFunction", "RefillerFunction"}
    codes = [f["Properties"]["Code"] for f in functions.values()]
    assert codes[0] == codes[1] == {"S3Bucket": "artifacts-bucket", "S3Key": "unique-codes.zip"}


def test_schedule_rule_invokes_the_refiller(cloudformation: dict[str, Any]) -> None:
    (rule,) = _of_type(cloudformation, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "RefillSchedule"}
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RefillerFunction", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["RefillerFailureQueue", "Arn"]}
    permissions = _of_type(cloudformation, "AWS::Lambda::Permission").values()
    assert any(p["Properties"]["Principal"] == "events.amazonaws.com" for p in permissions)


def test_refiller_failures_go_to_the_queue(cloudformation: dict[str, Any]) -> None:
    (config,) = _of_type(cloudformation, "AWS::Lambda::EventInvokeConfig").values()
    on_failure = config["Properties"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["RefillerFailureQueue", "Arn"]}


def test_api_routes_are_the_routes_the_issuer_serves(cloudformation: dict[str, Any]) -> None:
    routes = {r["Properties"]["RouteKey"] for r in _of_type(cloudformation, "AWS::ApiGatewayV2::Route").values()}
    served = {f"{method.upper()} {path}" for path, item in openapi_document()["paths"].items() for method in item}
    assert routes == served


def test_every_route_requires_the_chosen_authorizer(cloudformation: dict[str, Any]) -> None:
    (name, authorizer) = next(iter(_of_type(cloudformation, "AWS::ApiGatewayV2::Authorizer").items()))
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    assert authorizer["Condition"] == "UseJwtAuth"
    for route in _of_type(cloudformation, "AWS::ApiGatewayV2::Route").values():
        properties = route["Properties"]
        assert properties["AuthorizationType"] == {"Fn::If": ["UseJwtAuth", "JWT", "AWS_IAM"]}
        assert properties["AuthorizerId"]["Fn::If"][1] == {"Ref": name}


def test_api_invokes_the_snapstart_alias(cloudformation: dict[str, Any]) -> None:
    (alias_name, alias) = next(iter(_of_type(cloudformation, "AWS::Lambda::Alias").items()))
    assert alias["Properties"]["FunctionName"] == {"Ref": "IssuerFunction"}
    (version,) = _of_type(cloudformation, "AWS::Lambda::Version").values()
    assert version["Properties"]["FunctionName"] == {"Ref": "IssuerFunction"}
    issuer = cloudformation["Resources"]["IssuerFunction"]["Properties"]
    assert issuer["SnapStart"] == {"ApplyOn": {"Ref": "IssuerSnapStart"}}
    assert cloudformation["Parameters"]["IssuerSnapStart"]["Default"] == "PublishedVersions"
    (integration,) = _of_type(cloudformation, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"] == {"Ref": alias_name}


def test_route_scopes_survive_the_transform(cloudformation: dict[str, Any]) -> None:
    """The scope parameters and conditions reach CloudFormation, and each route's scopes follow its parameter."""
    wiring = {
        "POST /codes": "IssueScope",
        "POST /": "IssueScope",
        "GET /codes/{code}": "ReadCodesScope",
        "GET /pools": "ReadPoolsScope",
        "GET /pools/{pool}": "ReadPoolsScope",
    }
    assert set(wiring.values()) <= set(cloudformation["Parameters"])
    values = {"IssueScope": "codes/issue", "ReadCodesScope": "codes/read", "ReadPoolsScope": "pools/read"}
    parameters = parameter_values(
        cloudformation, AuthType="JWT", JwtIssuer="https://issuer.example", JwtAudience="client-1", **values
    )
    for route in _of_type(cloudformation, "AWS::ApiGatewayV2::Route").values():
        properties = resolve(cloudformation, route["Properties"], parameters)
        parameter = wiring.get(properties["RouteKey"])
        assert properties.get("AuthorizationScopes") == ([values[parameter]] if parameter else None)


def test_issuer_environment_merges_the_globals(cloudformation: dict[str, Any]) -> None:
    """SAM merges the function's own variables (the request budget) with the Globals' (the table)."""
    variables = cloudformation["Resources"]["IssuerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": "CodesTable"}
    assert variables["REQUEST_BUDGET_SECONDS"] == {"Ref": "RequestBudgetSeconds"}


def _issuer_versions(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _of_type(translated, "AWS::Lambda::Version")


ISSUER_CHANGES = {
    "timeout": lambda issuer, template: issuer.update(Timeout=9),
    "role": lambda issuer, template: issuer.update(Role={"Fn::GetAtt": ["RefillerRole", "Arn"]}),
    "log level": lambda issuer, template: issuer["LoggingConfig"].update(ApplicationLogLevel="WARN"),
    "description": lambda issuer, template: issuer.update(Description="changed"),
    "runtime (Globals)": lambda issuer, template: template["Globals"]["Function"].update(Runtime="python3.13"),
}


@pytest.mark.parametrize("change", sorted(ISSUER_CHANGES))
def test_any_change_to_the_issuer_publishes_a_version_the_api_then_calls(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Without AutoPublishAliasAllProperties, SAM publishes only when the code, environment, memory or SnapStart
    change: a new timeout, role or log setting would update $LATEST while the API kept calling the old version."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    before = _translate(template)
    ISSUER_CHANGES[change](template["Resources"]["IssuerFunction"]["Properties"], template)
    after = _translate(template)
    (old,) = _issuer_versions(before)
    (new,) = _issuer_versions(after)
    assert new != old, f"changing the issuer's {change} publishes no new version"
    (alias,) = _of_type(after, "AWS::Lambda::Alias").values()
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [new, "Version"]}


def test_replaced_versions_are_deleted_with_their_snapshots(cloudformation: dict[str, Any]) -> None:
    """SAM retains every published version by default; each SnapStart version's cached snapshot is billed."""
    (version,) = _issuer_versions(cloudformation).values()
    assert version["DeletionPolicy"] == "Delete"
