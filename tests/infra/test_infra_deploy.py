"""What CloudFormation, Lambda, API Gateway and EventBridge refuse or regret at deploy time, which cfn-lint,
checkov and the SAM transform all pass (issue 17): each test reads the template as AWS's documentation does.

The built artifact's pools file (item 2) is checked in test_infra_artifact.py, the published versions (item 6)
also in test_infra_sam_transform.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cfn_eval import parameter_values, resolve
from code_actions import REPO_ROOT, client_operations

from codepool.errors import ClaimContentionError
from localdev.schema import load_template

RULE_FUNCTIONS = {
    "Fn::And",
    "Fn::Contains",
    "Fn::EachMemberEquals",
    "Fn::EachMemberIn",
    "Fn::Equals",
    "Fn::Not",
    "Fn::Or",
    "Fn::RefAll",
    "Fn::ValueOf",
    "Fn::ValueOfAll",
}
"""The CloudFormation template reference's "Rule functions": with `Ref`, all a rule may use. Anything else
(Fn::Join, Fn::If, Condition, ...) makes CloudFormation refuse the whole template when it creates the change
set ("Following functions are not supported in the Rules block"), whatever the rule's condition says."""
JWT = {"AuthType": "JWT", "JwtIssuer": "https://issuer.example", "JwtAudience": "client-1"}
TABLE_IMPORT_TEMPLATE = REPO_ROOT / "infra" / "table-import.yaml"


def _intrinsics(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _intrinsics(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                yield key
            yield from _intrinsics(value)


# -- 1. Rules ------------------------------------------------------------------------------------------------


def test_rules_use_only_ref_and_the_rule_functions(template: dict[str, Any]) -> None:
    rules = template["Rules"]
    assert rules
    for name, rule in rules.items():
        assert set(rule) <= {"RuleCondition", "Assertions"}, name
        used = set(_intrinsics(rule))
        assert used <= RULE_FUNCTIONS | {"Ref"}, f"rule {name} uses {sorted(used - RULE_FUNCTIONS - {'Ref'})}"


def _rule_value(node: Any, parameters: dict[str, Any]) -> Any:
    """A rule's condition or assertion as CloudFormation evaluates it (the functions this template uses)."""
    if not isinstance(node, dict):
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        return parameters[argument]
    values = [_rule_value(item, parameters) for item in argument]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Contains":
        return values[1] in values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    raise AssertionError(f"no evaluator for {function}")


def _failed_assertions(template: dict[str, Any], **values: Any) -> list[str]:
    parameters = parameter_values(template, **values)
    failed = []
    for rule in template["Rules"].values():
        if _rule_value(rule.get("RuleCondition", True), parameters):
            failed += [a["AssertDescription"] for a in rule["Assertions"] if not _rule_value(a["Assert"], parameters)]
    return failed


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({}, False),  # the default IAM deploy: the rule does not apply
        (JWT, False),
        ({**JWT, "JwtAudience": "client-1,client-2"}, False),
        ({**JWT, "JwtIssuer": ""}, True),
        ({**JWT, "JwtAudience": ""}, True),
        ({**JWT, "JwtAudience": "client-1,"}, True),
    ],
)
def test_jwt_rule_still_refuses_incomplete_settings(
    template: dict[str, Any], values: dict[str, str], refused: bool
) -> None:
    assert bool(_failed_assertions(template, **values)) is refused


# -- 3. The table's identity ---------------------------------------------------------------------------------


def test_table_has_a_fixed_name_from_a_parameter(template: dict[str, Any]) -> None:
    """A Retain'ed table with a generated name survives `sam delete`, and the next deploy would create a new,
    empty table beside it, from which codes issued from the old one could be issued again. A fixed name makes
    that deploy fail instead, and lets the kept table be imported (infra/README.md "Clean up")."""
    table = template["Resources"]["CodesTable"]
    assert table["DeletionPolicy"] == "Retain"
    name = table["Properties"]["TableName"]
    assert resolve(template, name, parameter_values(template, TableName="kept-codes")) == "kept-codes"
    assert resolve(template, name, parameter_values(template)) == {"Fn::Sub": "${AWS::StackName}-codes"}
    pattern = template["Parameters"]["TableName"]["AllowedPattern"]
    for accepted in ("", "UniqueCodes", "unique-codes-prod.v2"):
        assert re.fullmatch(pattern, accepted), accepted
    for refused in ("ab", "a table", "x" * 256):
        assert not re.fullmatch(pattern, refused), refused


def test_table_import_template_defines_the_same_table(template: dict[str, Any]) -> None:
    """The template `infra/README.md` imports a kept table with must define it exactly as the stack does, so the
    `sam deploy` that follows the import changes nothing on the table."""
    imported = load_template(TABLE_IMPORT_TEMPLATE)
    assert "Transform" not in imported
    assert set(imported["Resources"]) == {"CodesTable"}
    assert imported["Resources"]["CodesTable"] == template["Resources"]["CodesTable"]
    assert imported["Parameters"] == {"TableName": template["Parameters"]["TableName"]}
    assert imported["Conditions"] == {"HasTableName": template["Conditions"]["HasTableName"]}


# -- 4. The refiller's reserved concurrency ------------------------------------------------------------------


def test_refiller_reserved_concurrency_is_a_parameter_and_zero_reserves_none(template: dict[str, Any]) -> None:
    """Lambda refuses a reservation that leaves less than its minimum unreserved (100 on a 1,000 quota; new
    accounts may have 10 in all), so a low-quota account deploys with 0: no ReservedConcurrentExecutions."""
    refiller = template["Resources"]["RefillerFunction"]["Properties"]
    parameter = template["Parameters"]["RefillerReservedConcurrency"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 1, 0)
    by_default = resolve(template, refiller, parameter_values(template))
    assert by_default["ReservedConcurrentExecutions"] == 1
    none = resolve(template, refiller, parameter_values(template, RefillerReservedConcurrency="0"))
    assert "ReservedConcurrentExecutions" not in none
    two = resolve(template, refiller, parameter_values(template, RefillerReservedConcurrency="2"))
    assert two["ReservedConcurrentExecutions"] == "2"


# -- 5. The access log group ---------------------------------------------------------------------------------


def test_access_log_group_is_a_vended_logs_group(resources: dict[str, Any]) -> None:
    """API Gateway adds every other access-log group to the account's CloudWatch Logs resource policy (at most
    5,120 characters); groups under /aws/vendedlogs/ need no entry."""
    destination = resources["HttpApiStage"]["Properties"]["AccessLogSettings"]["DestinationArn"]
    assert destination == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    name = resources["HttpApiAccessLogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"]
    assert name.startswith("/aws/vendedlogs/"), name


# -- 6. Published versions -----------------------------------------------------------------------------------


def test_every_published_function_publishes_on_any_property_change(resources: dict[str, Any]) -> None:
    published = {n: r for n, r in resources.items() if "AutoPublishAlias" in r.get("Properties", {})}
    assert set(published) == {"IssuerFunction"}
    for name, function in published.items():
        assert function["Properties"]["AutoPublishAliasAllProperties"] is True, name
        assert function["DeletionPolicy"] == "Delete", f"{name}: replaced versions (and snapshots) would be kept"


# -- 7. The refill schedule ----------------------------------------------------------------------------------

ACCEPTED_SCHEDULES = [
    "rate(1 minute)",
    "rate(2 minutes)",
    "rate(5 minutes)",
    "rate(10 minutes)",
    "rate(1 hour)",
    "rate(12 hours)",
    "rate(1 day)",
    "rate(7 days)",
    "cron(0/10 * * * ? *)",
    "cron(15 2 ? * MON-FRI *)",
]
REFUSED_SCHEDULES = [
    "rate(1 minutes)",
    "rate(1 hours)",
    "rate(1 days)",
    "rate(5 minute)",
    "rate(2 hour)",
    "rate(0 minutes)",
    "rate(05 minutes)",
    "rate(5 seconds)",
    "rate(5minutes)",
    "cron(0/10 * * * ?)",
    "every 5 minutes",
    "",
]


@pytest.mark.parametrize("schedule", ACCEPTED_SCHEDULES)
def test_schedule_pattern_accepts_what_eventbridge_accepts(template: dict[str, Any], schedule: str) -> None:
    assert re.fullmatch(template["Parameters"]["RefillSchedule"]["AllowedPattern"], schedule)


@pytest.mark.parametrize("schedule", REFUSED_SCHEDULES)
def test_schedule_pattern_refuses_what_eventbridge_refuses(template: dict[str, Any], schedule: str) -> None:
    """EventBridge: the unit is singular when the value is 1 and plural above; a cron expression has six fields."""
    assert not re.fullmatch(template["Parameters"]["RefillSchedule"]["AllowedPattern"], schedule)


# -- 8. SnapStart, 10. logs and tracing ----------------------------------------------------------------------


def test_snapstart_can_be_turned_off_where_the_region_lacks_it(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["IssuerSnapStart"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("PublishedVersions", ["PublishedVersions", "None"])
    issuer = template["Resources"]["IssuerFunction"]["Properties"]
    off = resolve(template, issuer, parameter_values(template, IssuerSnapStart="None"))
    assert off["SnapStart"] == {"ApplyOn": "None"}


@pytest.mark.parametrize("function", ["IssuerFunction", "RefillerFunction"])
def test_functions_log_json(resources: dict[str, Any], function: str) -> None:
    assert resources[function]["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"


def test_tracing_is_a_parameter_with_its_permissions_only_when_active(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["Tracing"] == {"Ref": "Tracing"}
    assert template["Parameters"]["Tracing"]["Default"] == "PassThrough"
    policy = template["Resources"]["TracingPolicy"]
    assert policy["Condition"] == "UseActiveTracing"
    assert template["Conditions"]["UseActiveTracing"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    assert policy["Properties"]["Roles"] == [{"Ref": "IssuerRole"}, {"Ref": "RefillerRole"}]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    # X-Ray's write actions support no resource-level permissions; nothing else may ride along on "*".
    assert statement == {
        "Effect": "Allow",
        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        "Resource": "*",
    }


# -- 9. Alarms on real metrics -------------------------------------------------------------------------------


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _emitted_metrics() -> set[str]:
    """Metric names the handlers emit through Powertools (EMF, namespace UniqueCodes)."""
    names: set[str] = set()
    for module in ("issuer/app.py", "refiller/app.py"):
        names |= set(re.findall(r'add_metric\(\s*name="(\w+)"', (REPO_ROOT / module).read_text(encoding="utf-8")))
    return names


def _filter_metrics(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        transformation["MetricName"]: resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Logs::MetricFilter"
        for transformation in resource["Properties"]["MetricTransformations"]
    }


def test_issue_17_alarms_exist(resources: dict[str, Any]) -> None:
    assert {
        "IssuerErrorsAlarm",
        "IssuerThrottlesAlarm",
        "IssuerErrorLogsAlarm",
        "ClaimContentionAlarm",
        "ClaimThrottlesAlarm",
        "IssuerPoolExhaustedAlarm",
        "Api5xxAlarm",
        "ApiLatencyAlarm",
        "TableThrottlesAlarm",
        "TableSystemErrorsAlarm",
    } <= set(_alarms(resources))


def test_every_alarm_notifies_the_alarm_action_and_is_in_the_runbook(resources: dict[str, Any]) -> None:
    guide = (REPO_ROOT / "infra" / "README.md").read_text(encoding="utf-8")
    for name, alarm in _alarms(resources).items():
        for actions in ("AlarmActions", "OKActions"):
            expected = {"Fn::If": ["HasAlarmAction", [{"Ref": "AlarmActionArn"}], {"Ref": "AWS::NoValue"}]}
            assert alarm[actions] == expected, name
        assert f"| `{name}` |" in guide, f"{name} has no runbook line in infra/README.md"


def test_custom_metric_alarms_watch_metrics_the_code_or_a_filter_emits(resources: dict[str, Any]) -> None:
    """A metric nobody emits leaves its alarm silent forever (or breaching, with missing data breaching)."""
    emitted = _emitted_metrics() | set(_filter_metrics(resources))
    for name, alarm in _alarms(resources).items():
        if alarm.get("Namespace") == "UniqueCodes":
            assert alarm["MetricName"] in emitted, f"{name}: nothing emits {alarm['MetricName']}"
        for query in alarm.get("Metrics", []):
            expression = query.get("Expression", "")
            if expression.startswith("SELECT"):
                metric = re.match(r"SELECT \w+\((\w+)\) FROM (?:SCHEMA\()?UniqueCodes", expression)
                assert metric is not None, f"{name}: {expression}"
                assert metric.group(1) in _emitted_metrics(), f"{name}: nothing emits {metric.group(1)}"
                service = re.search(r"WHERE service = '(\w+)'", expression)
                assert service is not None
                source = (REPO_ROOT / service.group(1) / "app.py").read_text(encoding="utf-8")
                assert f'name="{metric.group(1)}"' in source, f"{name}: the {service.group(1)} never emits it"


def test_metric_filters_match_what_the_issuer_logs(resources: dict[str, Any]) -> None:
    filters = _filter_metrics(resources)
    source = (REPO_ROOT / "issuer" / "app.py").read_text(encoding="utf-8")
    contention = filters["ClaimContentionAnswers"]
    assert contention["LogGroupName"] == {"Ref": "IssuerLogGroup"}
    assert contention["FilterPattern"] == f'{{ $.error = "{ClaimContentionError.code}" }}'
    # The domain error handler logs 5xx answers with extra={"error": error.code, ...}, at warning or error.
    assert 'extra={"error": error.code' in source
    errors = filters["IssuerErrorLogs"]
    assert errors["FilterPattern"] == '{ $.level = "ERROR" }'
    assert 'logger.error("request not served: an operator must act"' in source


def test_system_errors_alarm_covers_every_operation_the_code_sends(resources: dict[str, Any]) -> None:
    alarm = _alarms(resources)["TableSystemErrorsAlarm"]
    operations = set()
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            assert metric["MetricName"] == "SystemErrors"
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert dimensions["TableName"] == {"Ref": "CodesTable"}
            operations.add(dimensions["Operation"])
            assert f"FILL({query['Id']}, 0)" in alarm["Metrics"][-1]["Expression"]
    assert operations == client_operations()


def test_api_alarms_watch_this_api(resources: dict[str, Any]) -> None:
    api = {"Name": "ApiId", "Value": {"Ref": "HttpApi"}}
    alarms = _alarms(resources)
    assert alarms["ApiLatencyAlarm"]["Dimensions"] == [api]
    for query in alarms["Api5xxAlarm"]["Metrics"]:
        if "MetricStat" in query:
            assert query["MetricStat"]["Metric"]["Dimensions"] == [api]
            assert query["MetricStat"]["Metric"]["MetricName"] in {"5xx", "Count"}  # HTTP API names, not 5XXError


# -- 10. Dashboard; 11. the low-watermark alarms on a first deploy -------------------------------------------


def test_dashboard_body_is_json_and_shows_what_the_issue_asks(template: dict[str, Any]) -> None:
    dashboard = template["Resources"]["Dashboard"]["Properties"]
    body = dashboard["DashboardBody"]["Fn::Sub"]
    references = set(re.findall(r"\$\{([\w:]+)\}", body))
    assert references <= set(template["Resources"]) | {"AWS::Region"}, references
    widgets = json.loads(re.sub(r"\$\{[\w:]+\}", "x", body))["widgets"]
    text = json.dumps(widgets)
    for metric in ("CodesIssued", "PoolAvailable", "IntegrationLatency", "4xx", "5xx", "RefillWritten", "Duration"):
        assert metric in text, metric
    for percentile in ("p50", "p99"):
        assert f'"stat": "{percentile}"' in text
    for query in re.findall(r"SELECT \w+\((\w+)\)", text):
        assert query in _emitted_metrics(), query


def test_first_deploy_behaviour_of_the_low_watermark_alarms_is_documented(resources: dict[str, Any]) -> None:
    """The table starts empty, so both low-watermark alarms fire once on the first deploy (missing data is
    breaching, and the first refill starts from depth 0); the guide says so and how to keep it quiet."""
    for name in ("PoolsLowAlarm", "DefaultPoolLowAlarm"):
        assert _alarms(resources)[name]["TreatMissingData"] == "breaching"
    guide = (REPO_ROOT / "infra" / "README.md").read_text(encoding="utf-8")
    assert "first deploy" in guide.lower()
    assert "PoolsLowAlarm" in guide
    assert "DefaultPoolLowAlarm" in guide
