"""What a template says for given parameter values: Conditions evaluated, `Fn::If` chosen, `AWS::NoValue` dropped.

Covers the intrinsics the template's conditions and conditional properties use (Ref to a parameter, Condition,
Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Join); anything else, and a Ref to a resource, is left as is.
"""

from __future__ import annotations

from typing import Any

_NO_VALUE = object()


def parameter_values(template: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Each parameter's value as `Ref` gives it: `values` over the defaults (a CommaDelimitedList is a list)."""
    resolved: dict[str, Any] = {}
    for name, parameter in template.get("Parameters", {}).items():
        value = values.pop(name, parameter.get("Default"))
        if parameter["Type"] == "CommaDelimitedList" and isinstance(value, str):
            value = value.split(",")
        resolved[name] = value
    assert not values, f"no such parameters: {sorted(values)}"
    return resolved


def resolve(template: dict[str, Any], node: Any, parameters: dict[str, Any]) -> Any:
    conditions: dict[str, Any] = template.get("Conditions", {})

    def condition(name: str) -> bool:
        return bool(value(conditions[name]))

    def value(item: Any) -> Any:
        if isinstance(item, list):
            return [v for v in (value(x) for x in item) if v is not _NO_VALUE]
        if not isinstance(item, dict):
            return item
        if len(item) == 1:
            ((function, argument),) = item.items()
            if function == "Ref" and argument == "AWS::NoValue":
                return _NO_VALUE
            if function == "Ref" and argument in parameters:
                return parameters[argument]
            if function == "Condition":
                return condition(argument)
            if function == "Fn::If":
                name, when_true, when_false = argument
                return value(when_true if condition(name) else when_false)
            if function == "Fn::Equals":
                left, right = (value(x) for x in argument)
                return left == right
            if function == "Fn::Not":
                return not value(argument[0])
            if function == "Fn::And":
                return all(value(x) for x in argument)
            if function == "Fn::Or":
                return any(value(x) for x in argument)
            if function == "Fn::Join":
                separator, items = argument
                return separator.join(str(x) for x in value(items))
        return {k: v for k, v in ((k, value(x)) for k, x in item.items()) if v is not _NO_VALUE}

    return value(node)
