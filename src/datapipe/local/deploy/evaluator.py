"""The CloudFormation template evaluator: intrinsic functions, conditions, and the order of creation."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from datapipe.local.deploy.model import CREATED, NO_VALUE, Created, DeployError
from datapipe.local.deploy.values import text

SUB_PATTERN = re.compile(r"\$\{([^}]*)\}")


class TemplateEvaluator:
    """Resolves intrinsic functions of one stack against what has been created so far."""

    def __init__(
        self,
        *,
        template: Mapping[str, Any],
        stack_name: str,
        stack_id: str,
        account: str,
        region: str,
        partition: str,
        exports: Mapping[str, str],
        stack_outputs: Mapping[str, Mapping[str, str]] | None = None,
        parameter_values: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.account = account
        self.region = region
        self.partition = partition
        self.exports = exports
        self.stack_outputs = stack_outputs or {}
        self.pseudo: dict[str, Any] = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": stack_id,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self.parameters: dict[str, Any] = dict(parameter_values or {})
        self.resources: dict[str, Created] = {}
        self.conditions: dict[str, bool] = {}
        self._condition_definitions: Mapping[str, Any] = template.get("Conditions", {})

    # -- conditions --------------------------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            if name not in self._condition_definitions:
                raise DeployError(f"stack '{self.stack_name}': condition '{name}' is not defined")
            self.conditions[name] = bool(self.resolve(self._condition_definitions[name]))
        return self.conditions[name]

    # -- intrinsic functions -----------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            function = self._FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.resources[name].physical_id
        raise DeployError(f"stack '{self.stack_name}': Ref to '{name}', which is neither a parameter nor a resource")

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        else:
            logical_id, attribute = argument[0], self.resolve(argument[1])
        resource = self.resources.get(logical_id)
        if resource is None:
            raise DeployError(f"stack '{self.stack_name}': Fn::GetAtt of '{logical_id}', which is not a resource")
        if attribute in resource.attributes:
            return resource.attributes[attribute]
        if resource.status != CREATED:
            return f"{resource.physical_id}.{attribute}"  # a not-emulated resource has no real attributes
        raise DeployError(f"stack '{self.stack_name}': resource '{logical_id}' has no attribute '{attribute}' here")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self._get_att(name))
            return str(self._ref(name))

        return SUB_PATTERN.sub(replace, text)

    def _join(self, argument: Any) -> str:
        separator, items = argument[0], self.resolve(argument[1])
        return str(separator).join(text(item) for item in items)

    def _select(self, argument: Any) -> Any:
        index, items = int(self.resolve(argument[0])), self.resolve(argument[1])
        if not 0 <= index < len(items):
            raise DeployError(f"stack '{self.stack_name}': Fn::Select index {index} is outside a list of {len(items)}")
        return items[index]

    def _split(self, argument: Any) -> list[str]:
        return str(self.resolve(argument[1])).split(argument[0])

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _import_value(self, argument: Any) -> str:
        name = self.resolve(argument)
        if name not in self.exports:
            raise DeployError(f"stack '{self.stack_name}': Fn::ImportValue '{name}' is not exported by any stack")
        return self.exports[name]

    def _get_stack_output(self, argument: Any) -> str:
        """CDK's "weak" cross-stack references read another stack's output directly, without an export."""
        source = self.resolve(argument)
        stack_name, output_name = source.get("StackName"), source.get("OutputName")
        outputs = self.stack_outputs.get(stack_name)
        if outputs is None:
            raise DeployError(f"stack '{self.stack_name}': Fn::GetStackOutput of stack '{stack_name}', not deployed")
        if output_name not in outputs:
            raise DeployError(f"stack '{self.stack_name}': stack '{stack_name}' has no output '{output_name}'")
        return outputs[output_name]

    def _find_in_map(self, argument: Any) -> Any:
        map_name, top, second = (self.resolve(a) for a in argument[:3])
        try:
            return self.template["Mappings"][map_name][top][second]
        except KeyError:
            raise DeployError(
                f"stack '{self.stack_name}': Fn::FindInMap {map_name}/{top}/{second} does not exist"
            ) from None

    def _get_azs(self, argument: Any) -> list[str]:
        region = self.resolve(argument) or self.region
        return [f"{region}{zone}" for zone in "abc"]

    def _cidr(self, argument: Any) -> list[str]:
        block, count, bits = self.resolve(argument[0]), int(self.resolve(argument[1])), int(self.resolve(argument[2]))
        network = ipaddress.ip_network(block)
        return [
            str(subnet)
            for _, subnet in zip(range(count), network.subnets(new_prefix=network.max_prefixlen - bits), strict=False)
        ]

    _FUNCTIONS: ClassVar[dict[str, Callable[[TemplateEvaluator, Any], Any]]] = {
        "Ref": lambda self, a: self._ref(a),
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": lambda self, a: self.resolve(a[0]) == self.resolve(a[1]),
        "Fn::Not": lambda self, a: not self.resolve(a[0]),
        "Fn::And": lambda self, a: all(self.resolve(c) for c in a),
        "Fn::Or": lambda self, a: any(self.resolve(c) for c in a),
        "Condition": lambda self, a: self.condition(a),
        "Fn::Contains": lambda self, a: self.resolve(a[1]) in self.resolve(a[0]),
        "Fn::ImportValue": _import_value,
        "Fn::GetStackOutput": _get_stack_output,
        "Fn::FindInMap": _find_in_map,
        "Fn::GetAZs": _get_azs,
        "Fn::Cidr": _cidr,
        "Fn::Base64": lambda self, a: base64.b64encode(str(self.resolve(a)).encode()).decode(),
        "Fn::ToJsonString": lambda self, a: json.dumps(self.resolve(a), separators=(",", ":")),
        "Fn::Length": lambda self, a: len(self.resolve(a)),
    }


def references(value: Any) -> set[str]:
    """Names a template fragment refers to through Ref, Fn::GetAtt and Fn::Sub (pseudo-parameters included)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                found.add(argument)
            elif key == "Fn::GetAtt":
                found.add(argument.split(".", 1)[0] if isinstance(argument, str) else argument[0])
            elif key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
                for name in SUB_PATTERN.findall(text):
                    if not name.startswith("!") and name not in variables:
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
            else:
                found |= references(argument)
    return found


def creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids so that every resource comes after those it references or DependsOn (template order otherwise)."""
    dependencies: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        explicit = [depends_on] if isinstance(depends_on, str) else list(depends_on)
        for name in explicit:
            if name not in resources:
                raise DeployError(f"resource '{logical_id}' DependsOn '{name}', which is not in the template")
        names = set(explicit) | references({k: v for k, v in resource.items() if k != "DependsOn"})
        dependencies[logical_id] = {n for n in names if n in resources and n != logical_id}
    ordered: list[str] = []
    state: dict[str, str] = {}

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if state.get(logical_id) == "done":
            return
        if state.get(logical_id) == "visiting":
            raise DeployError(f"resources depend on each other in a cycle: {' -> '.join((*path, logical_id))}")
        state[logical_id] = "visiting"
        for dependency in sorted(dependencies[logical_id], key=list(resources).index):
            visit(dependency, (*path, logical_id))
        state[logical_id] = "done"
        ordered.append(logical_id)

    for logical_id in resources:
        visit(logical_id, ())
    return ordered
