"""infra/template.yaml says what issue 3 asks for, and agrees with the code it deploys."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from cfn_eval import parameter_values, resolve
from code_actions import REPO_ROOT

FUNCTIONS = ("IssuerFunction", "RefillerFunction")
# Which scope parameter each route requires with AuthType=JWT (None: any accepted token). Every route the
# template declares must be listed, so a new route cannot ship without a decision.
ROUTE_SCOPES = {
    "POST /codes": "IssueScope",
    "POST /": "IssueScope",
    "GET /codes/{code}": "ReadCodesScope",
    "GET /pools": "ReadPoolsScope",
    "GET /pools/{pool}": "ReadPoolsScope",
    "GET /openapi.json": None,
}
SCOPE_PARAMETERS = {"IssueScope", "ReadCodesScope", "ReadPoolsScope"}
JWT_SETTINGS = {"AuthType": "JWT", "JwtIssuer": "https://issuer.example", "JwtAudience": "client-1"}


def _function_setting(template: dict[str, Any], function: str, name: str) -> Any:
    """A function property, falling back to the template's Globals as SAM does."""
    properties = template["Resources"][function]["Properties"]
    return properties.get(name, template.get("Globals", {}).get("Function", {}).get(name))


def test_template_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert {"CodesTable", *FUNCTIONS, "HttpApi", "HttpApiStage"} <= set(template["Resources"])


def test_both_functions_share_one_code_artifact(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for function in FUNCTIONS:
        assert resources[function]["Type"] == "AWS::Serverless::Function"
        assert "CodeUri" not in resources[function]["Properties"], f"{function} overrides the shared CodeUri"
        assert "Layers" not in resources[function]["Properties"]
    assert _function_setting(template, FUNCTIONS[0], "CodeUri") == ".."
    build = [{k: v for k, v in resources[f]["Metadata"].items() if k != "checkov"} for f in FUNCTIONS]
    assert build[0] == build[1] == {"BuildMethod": "makefile", "ContextPath": ".", "ProjectRootDirectory": ".."}
    assert (REPO_ROOT / "infra" / "Makefile").read_text(encoding="utf-8").count("build-IssuerFunction")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_resolves_to_an_importable_lambda_handler(template: dict[str, Any], function: str) -> None:
    handler = template["Resources"][function]["Properties"]["Handler"]
    module_name, _, attribute = handler.rpartition(".")
    assert attribute == "lambda_handler"
    target = getattr(importlib.import_module(module_name), attribute)
    assert callable(target)
    assert list(inspect.signature(target).parameters) == ["event", "context"]
    packaged = re.findall(r"cp -R ([\w ]+) ", (REPO_ROOT / "infra" / "Makefile").read_text(encoding="utf-8"))
    assert module_name.split(".")[0] in packaged[0].split(), f"infra/Makefile does not ship {module_name}"


def test_handlers_differ(template: dict[str, Any]) -> None:
    handlers = {template["Resources"][f]["Properties"]["Handler"] for f in FUNCTIONS}
    assert handlers == {"issuer.app.lambda_handler", "refiller.app.lambda_handler"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_runtime_architecture_and_memory(template: dict[str, Any], function: str) -> None:
    runtime = _function_setting(template, function, "Runtime")
    assert re.fullmatch(r"python3\.(1[2-9])", runtime)
    assert _function_setting(template, function, "Architectures") == ["arm64"]
    assert _function_setting(template, function, "MemorySize") == {"Ref": "MemorySize"}
    assert template["Parameters"]["MemorySize"]["Default"] == 512
    lambda_python = re.search(r"LAMBDA_PYTHON_VERSION := (\S+)", (REPO_ROOT / "infra" / "Makefile").read_text())
    assert lambda_python is not None
    assert runtime == f"python{lambda_python.group(1)}", "infra/Makefile builds wheels for another Python"


@pytest.mark.parametrize(("function", "log_group"), [(f, f.replace("Function", "LogGroup")) for f in FUNCTIONS])
def test_each_function_logs_to_a_log_group_with_retention(
    template: dict[str, Any], function: str, log_group: str
) -> None:
    resources = template["Resources"]
    assert resources[function]["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": log_group}
    assert resources[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_environment_names_are_the_ones_the_code_reads(template: dict[str, Any]) -> None:
    config_source = (REPO_ROOT / "codepool" / "config.py").read_text(encoding="utf-8")
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    assert variables["TABLE_NAME"] == {"Ref": "CodesTable"}
    for function in FUNCTIONS:
        variables |= template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    for name in variables:
        assert f'"{name}"' in config_source, f"the template sets {name}, which codepool/config.py never reads"


def test_issuer_timeout_backs_up_the_request_budget(template: dict[str, Any]) -> None:
    """The per-request deadline ends a brown-out as our 503; the function timeout is only the backstop, above
    the largest budget, and below the HTTP API's integration timeout so callers get the function's answer."""
    from codepool.deadline import DEFAULT_REQUEST_BUDGET_SECONDS, RESPONSE_MARGIN_SECONDS

    issuer = template["Resources"]["IssuerFunction"]["Properties"]
    budget = template["Parameters"]["RequestBudgetSeconds"]
    assert issuer["Environment"]["Variables"]["REQUEST_BUDGET_SECONDS"] == {"Ref": "RequestBudgetSeconds"}
    assert budget["Default"] == DEFAULT_REQUEST_BUDGET_SECONDS
    assert 1 <= budget["MinValue"] <= budget["Default"] <= budget["MaxValue"]
    assert budget["MaxValue"] + RESPONSE_MARGIN_SECONDS < issuer["Timeout"]
    integration_timeout = template["Resources"]["HttpApiIntegration"]["Properties"]["TimeoutInMillis"]
    assert issuer["Timeout"] * 1000 < integration_timeout <= 30_000


def test_scope_parameters_default_to_no_scope(template: dict[str, Any]) -> None:
    for name in SCOPE_PARAMETERS:
        parameter = template["Parameters"][name]
        assert (parameter["Type"], parameter["Default"]) == ("String", ""), name
        pattern = parameter["AllowedPattern"]
        for scope in ("", "unique-codes/issue", "https://api.example.com/codes.read"):
            assert re.fullmatch(pattern, scope), f"{name} refuses {scope!r}"
        for scope in ("two scopes", 'say"what'):
            assert not re.fullmatch(pattern, scope), f"{name} accepts {scope!r}"


def _routes(template: dict[str, Any], **values: Any) -> dict[str, dict[str, Any]]:
    """Route key -> the route's properties as CloudFormation deploys them with these parameter values."""
    parameters = parameter_values(template, **values)
    return {
        r["Properties"]["RouteKey"]: resolve(template, r["Properties"], parameters)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }


def test_every_route_has_a_scope_decision(template: dict[str, Any]) -> None:
    assert set(_routes(template)) == set(ROUTE_SCOPES)
    assert {p for p in ROUTE_SCOPES.values() if p} == SCOPE_PARAMETERS


def test_with_jwt_each_route_requires_the_scope_of_its_parameter(template: dict[str, Any]) -> None:
    scopes = {name: f"unique-codes/{name}" for name in SCOPE_PARAMETERS}
    routes = _routes(template, **JWT_SETTINGS, **scopes)
    for route, parameter in ROUTE_SCOPES.items():
        assert routes[route]["AuthorizationType"] == "JWT"
        expected = [scopes[parameter]] if parameter else None
        assert routes[route].get("AuthorizationScopes") == expected, route


@pytest.mark.parametrize("set_scope", sorted(SCOPE_PARAMETERS))
def test_an_empty_scope_parameter_requires_no_scope(template: dict[str, Any], set_scope: str) -> None:
    routes = _routes(template, **JWT_SETTINGS, **{set_scope: "unique-codes/only"})
    for route, parameter in ROUTE_SCOPES.items():
        expected = ["unique-codes/only"] if parameter == set_scope else None
        assert routes[route].get("AuthorizationScopes") == expected, route


def test_scopes_never_apply_to_iam_routes(template: dict[str, Any]) -> None:
    """API Gateway takes AuthorizationScopes on JWT routes only; with AWS_IAM, per-route access is the callers'
    execute-api:Invoke policy (infra/README.md)."""
    routes = _routes(template, AuthType="IAM", **dict.fromkeys(SCOPE_PARAMETERS, "unique-codes/x"))
    for route, properties in routes.items():
        assert properties["AuthorizationType"] == "AWS_IAM"
        assert "AuthorizationScopes" not in properties, route
        assert "AuthorizerId" not in properties, route


def test_table_is_durable_and_encrypted(resources: dict[str, Any]) -> None:
    table = resources["CodesTable"]
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["TimeToLiveSpecification"]["Enabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_issuer_uses_snapstart_through_an_alias(template: dict[str, Any], resources: dict[str, Any]) -> None:
    issuer = resources["IssuerFunction"]["Properties"]
    assert resolve(template, issuer["SnapStart"], parameter_values(template)) == {"ApplyOn": "PublishedVersions"}
    assert issuer["AutoPublishAlias"]
    assert resources["HttpApiIntegration"]["Properties"]["IntegrationUri"] == {"Ref": "IssuerFunction.Alias"}
    assert resources["IssuerInvokePermission"]["Properties"]["FunctionName"] == {"Ref": "IssuerFunction.Alias"}


def test_snapstart_is_safe_because_nothing_connects_or_draws_codes_at_import() -> None:
    """The handler modules only build a lazy holder at import; the container is made in the first invocation."""
    for module_name in ("issuer.app", "refiller.app"):
        module = importlib.import_module(module_name)
        assert module.container._container is None, f"{module_name} built its container at import time"


def test_refiller_runs_on_a_schedule_with_a_failure_destination(template: dict[str, Any]) -> None:
    refiller = template["Resources"]["RefillerFunction"]["Properties"]
    schedule = refiller["Events"]["RefillSchedule"]
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == {"Ref": "RefillSchedule"}
    assert schedule["Properties"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["RefillerFailureQueue", "Arn"]}
    on_failure = refiller["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["RefillerFailureQueue", "Arn"]}}
    assert resolve(template, refiller, parameter_values(template))["ReservedConcurrentExecutions"] == 1
    assert re.fullmatch(
        template["Parameters"]["RefillSchedule"]["AllowedPattern"], template["Parameters"]["RefillSchedule"]["Default"]
    )


def test_api_throttles_every_route(resources: dict[str, Any]) -> None:
    settings = resources["HttpApiStage"]["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert resources["HttpApiStage"]["Properties"]["AccessLogSettings"]["DestinationArn"]


def test_authorizer_is_chosen_by_a_parameter(template: dict[str, Any]) -> None:
    assert set(template["Parameters"]["AuthType"]["AllowedValues"]) == {"IAM", "JWT"}
    routes = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert routes
    for route in routes:
        assert route["AuthorizationType"] == {"Fn::If": ["UseJwtAuth", "JWT", "AWS_IAM"]}, route["RouteKey"]
        assert route["AuthorizerId"] == {"Fn::If": ["UseJwtAuth", {"Ref": "JwtAuthorizer"}, {"Ref": "AWS::NoValue"}]}


def _metric_source(module: str) -> str:
    return (REPO_ROOT / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8")


def test_pool_alarm_watches_the_metric_the_refiller_emits(resources: dict[str, Any]) -> None:
    alarm = resources["DefaultPoolLowAlarm"]["Properties"]
    source = _metric_source("refiller.app")
    declared = re.search(r'Metrics\(namespace="([^"]+)", service="([^"]+)"\)', source)
    assert declared is not None
    assert alarm["Namespace"] == declared.group(1)
    assert f'name="{alarm["MetricName"]}"' in source
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    # Powertools adds `service` to the dimensions the handler sets, and CloudWatch matches the exact set.
    assert dimensions == {"pool": "default", "service": declared.group(2)}
    assert 'add_dimension(name="pool"' in source
    assert alarm["Threshold"] == {"Ref": "DefaultPoolLowWatermark"}
    assert alarm["ComparisonOperator"] == "LessThanThreshold"


def test_one_alarm_covers_every_pools_low_watermark(resources: dict[str, Any]) -> None:
    """The refiller reports how many pools started a run below their own low watermark, on every run, with the
    `service` dimension only; a period with no report is breaching (a refiller that stopped is trouble too)."""
    alarm = resources["PoolsLowAlarm"]["Properties"]
    source = _metric_source("refiller.app")
    declared = re.findall(r'Metrics\(namespace="([^"]+)", service="([^"]+)"\)', source)
    assert declared
    # A metric nobody emits would keep the alarm breaching (missing data) forever.
    assert f'"{alarm["MetricName"]}"' in source, f"refiller/app.py never emits {alarm['MetricName']}"
    assert alarm["MetricName"] == "PoolsBelowLowWatermark"
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert (alarm["Namespace"], dimensions.get("service")) in declared
    assert dimensions == {"service": "refiller"}
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum",
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert alarm["Period"] == {"Ref": "PoolAlarmPeriodSeconds"}
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "breaching"
    assert "stopped" in alarm["AlarmDescription"]
    for actions in ("AlarmActions", "OKActions"):
        assert alarm[actions] == resources["DefaultPoolLowAlarm"]["Properties"][actions]


def test_pool_alarm_default_threshold_is_the_default_pools_low_watermark(template: dict[str, Any]) -> None:
    from codepool.config import DEFAULT_POOL

    assert template["Parameters"]["DefaultPoolLowWatermark"]["Default"] == DEFAULT_POOL.low_watermark


def test_refiller_failures_raise_alarms(resources: dict[str, Any]) -> None:
    errors = resources["RefillerErrorsAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "RefillerFunction"}}]
    queue = resources["RefillerFailureQueueAlarm"]["Properties"]
    assert queue["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["RefillerFailureQueue", "QueueName"]}


def test_outputs_give_the_api_url_and_the_table_name(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert "${HttpApi}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["TableName"]["Value"] == {"Ref": "CodesTable"}
