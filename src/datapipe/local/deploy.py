"""Deploying a cloud assembly into the embedded emulator, without CloudFormation.

moto's own CloudFormation puts state machines into a backend that cannot execute them and skips bucket policies,
so the deployer evaluates each template itself (parameters, rules, conditions, intrinsic functions, exports) and
creates every resource with the service's own API, in dependency order. What the emulator cannot create is
reported as "not emulated", never dropped silently.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from datapipe.errors import DatapipeError
from datapipe.local.assembly import CloudAssembly, FileAsset, StackArtifact, read_assembly

# The emulator plays an environment bootstrapped with a recent `cdk bootstrap` (templates require 6 or more).
BOOTSTRAP_VERSION = "30"
CREATED = "created"
NOT_EMULATED = "not emulated"
SKIPPED = "skipped"

ClientFactory = Callable[[str], Any]
BATCH_SERVICE_ROLE_PATH = "/aws-service-role/batch.amazonaws.com/"


class DeployError(DatapipeError):
    """A template cannot be evaluated, or the emulator refused one of its resources."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


class _NoValue:
    """`AWS::NoValue`: the property it stands for is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# ---------------------------------------------------------------------------------------------------------------------
# What a deployment produced


@dataclass(frozen=True)
class DeployedResource:
    stack_name: str
    logical_id: str
    resource_type: str
    physical_id: str
    status: str  # CREATED, NOT_EMULATED or SKIPPED
    note: str = ""


@dataclass
class DeployedStack:
    artifact_id: str
    stack_name: str
    stack_id: str
    resources: list[DeployedResource] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        for resource in self.resources:
            if resource.logical_id == logical_id:
                return resource.physical_id
        raise KeyError(f"stack '{self.stack_name}' has no resource '{logical_id}'")


@dataclass
class Deployment:
    account: str
    region: str
    stacks: list[DeployedStack] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)
    uploaded_assets: list[str] = field(default_factory=list)  # s3://bucket/key
    notes: list[str] = field(default_factory=list)  # assembly-level remarks (e.g. Docker image assets)

    def stack(self, name_or_id: str) -> DeployedStack:
        for stack in self.stacks:
            if name_or_id in (stack.stack_name, stack.artifact_id):
                return stack
        raise KeyError(f"no deployed stack '{name_or_id}'")

    @property
    def resources(self) -> list[DeployedResource]:
        return [resource for stack in self.stacks for resource in stack.resources]

    def resources_of_type(self, resource_type: str) -> list[DeployedResource]:
        return [resource for resource in self.resources if resource.resource_type == resource_type]

    @property
    def not_emulated(self) -> list[DeployedResource]:
        return [resource for resource in self.resources if resource.status == NOT_EMULATED]

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "stacks": [
                {
                    "stackName": stack.stack_name,
                    "stackId": stack.stack_id,
                    "outputs": stack.outputs,
                    "resources": [
                        {
                            "logicalId": resource.logical_id,
                            "type": resource.resource_type,
                            "physicalId": resource.physical_id,
                            "status": resource.status,
                            **({"note": resource.note} if resource.note else {}),
                        }
                        for resource in stack.resources
                    ],
                }
                for stack in self.stacks
            ],
            "exports": self.exports,
            "uploadedAssets": self.uploaded_assets,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------------------------------
# Template evaluation


@dataclass
class _Created:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = CREATED
    note: str = ""
    finalize: Callable[[], Any] | None = None  # configuration that must wait for the rest of the stack


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
        self.resources: dict[str, _Created] = {}
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
        return str(separator).join(_text(item) for item in items)

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


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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


# ---------------------------------------------------------------------------------------------------------------------
# Resources


@dataclass
class ResourceRequest:
    """One resource to create: its resolved properties and what a handler needs around them."""

    logical_id: str
    resource_type: str
    properties: dict[str, Any]
    stack_name: str
    account: str
    region: str
    partition: str
    client: ClientFactory

    def generated_name(self, max_length: int = 64, *, lowercase: bool = False, separator: str = "-") -> str:
        """A CloudFormation-like name `<stack>-<LogicalId>-<SUFFIX>`, stable for a given stack and logical id."""
        suffix = hashlib.sha256(f"{self.stack_name}/{self.logical_id}".encode()).hexdigest()[:12].upper()
        head = f"{self.stack_name}{separator}{self.logical_id}"[: max_length - len(suffix) - 1]
        name = f"{head}{separator}{suffix}"
        return name.lower() if lowercase else name

    def name(self, key: str, max_length: int = 64, *, lowercase: bool = False) -> str:
        given = self.properties.get(key)
        return str(given) if given else self.generated_name(max_length, lowercase=lowercase)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def get(self, key: str, default: Any = None) -> Any:
        return self.properties.get(key, default)


Handler = Callable[[ResourceRequest], _Created]


def _pick(source: Mapping[str, Any], keys: str) -> dict[str, Any]:
    """The entries of `source` named in the space-separated `keys` (CloudFormation and the API agree on them)."""
    return {key: source[key] for key in keys.split() if key in source}


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _tag_map(tags: Iterable[Mapping[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {tag["Key"]: tag["Value"] for tag in tags}


def _tag_list(tags: Any) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in _tag_map(tags).items()]


def _camel(value: Any, *, keep_values_of: frozenset[str] = frozenset({"Tags", "Parameters", "Options"})) -> Any:
    """CloudFormation's PascalCase keys -> the camelCase of the Batch/Step Functions APIs (user maps untouched)."""
    if isinstance(value, list):
        return [_camel(item) for item in value]
    if isinstance(value, dict):
        return {
            key[:1].lower() + key[1:]: item if key in keep_values_of else _camel(item) for key, item in value.items()
        }
    return value


def _bucket(r: ResourceRequest) -> _Created:
    s3 = r.client("s3")
    name = r.name("BucketName", 63, lowercase=True)
    create: dict[str, Any] = {"Bucket": name}
    if r.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": r.region}
    s3.create_bucket(**create)
    if "VersioningConfiguration" in r.properties:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": r.properties["VersioningConfiguration"]["Status"]}
        )
    if "BucketEncryption" in r.properties:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **_pick(rule, "BucketKeyEnabled"),
            }
            for rule in r.properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in r.properties:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=r.properties["PublicAccessBlockConfiguration"]
        )
    if "OwnershipControls" in r.properties:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=r.properties["OwnershipControls"])
    if "LifecycleConfiguration" in r.properties:
        rules = [_lifecycle_rule(rule) for rule in r.properties["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "NotificationConfiguration" in r.properties:
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=_bucket_notifications(r.properties["NotificationConfiguration"])
        )
    if r.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(r.get("Tags"))})
    return _Created(
        name,
        {
            "Arn": f"arn:{r.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{r.region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{r.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{r.region}.amazonaws.com",
        },
        finalize=_bucket_logging(r, name),
    )


def _bucket_logging(r: ResourceRequest, name: str) -> Callable[[], None] | None:
    """Access logging, applied once the stack's other resources exist.

    S3 checks that the target bucket lets the logging service write, and the target's bucket policy is a
    separate resource that templates do not order before the source bucket.
    """
    logging = r.get("LoggingConfiguration") or {}
    if "DestinationBucketName" not in logging:
        return None
    status = {
        "LoggingEnabled": {
            "TargetBucket": logging["DestinationBucketName"],
            "TargetPrefix": logging.get("LogFilePrefix", ""),
        }
    }
    return lambda: r.client("s3").put_bucket_logging(Bucket=name, BucketLoggingStatus=status)


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "Transitions" in rule:
        converted["Transitions"] = [
            {"Days": t["TransitionInDays"], "StorageClass": t["StorageClass"]} for t in rule["Transitions"]
        ]
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        }
    elif "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return converted


def _bucket_notifications(config: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        converted["EventBridgeConfiguration"] = {}
    for source, target, arn_key in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function"),
        ("QueueConfigurations", "QueueConfigurations", "Queue"),
        ("TopicConfigurations", "TopicConfigurations", "Topic"),
    ):
        if source in config:
            converted[target] = [
                {
                    f"{arn_key}Arn" if arn_key != "Function" else "LambdaFunctionArn": item[arn_key],
                    "Events": [item["Event"]],
                }
                | ({"Filter": {"Key": {"FilterRules": item["Filter"]["S3Key"]["Rules"]}}} if "Filter" in item else {})
                for item in config[source]
            ]
    return converted


def _bucket_policy(r: ResourceRequest) -> _Created:
    """The policy as far as the emulator can evaluate it.

    moto checks a bucket policy on object requests but has none of the request context that conditions read
    (aws:SecureTransport, s3:TlsVersion, aws:SourceArn, ...), and it treats any matching conditioned statement as a
    denial. Applied as written, the TLS-only statements every bucket carries would refuse every object request. So
    conditioned Deny statements are left out, conditioned Allow statements (e.g. the grant to the S3 logging
    service) keep their effect without the condition, and both are named in the deployment report. The emulator
    does not check identity policies either (moto's default), so local runs are not an access-control test.
    """
    document = r.get("PolicyDocument")
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    kept: list[dict[str, Any]] = []
    changes: list[str] = []
    for statement in statements:
        if "Condition" not in statement:
            kept.append(statement)
        elif statement.get("Effect") == "Deny":
            changes.append(f"left out: {_statement_summary(statement)}")
        else:
            kept.append({key: value for key, value in statement.items() if key != "Condition"})
            changes.append(f"condition not checked: {_statement_summary(statement)}")
    if kept:
        r.client("s3").put_bucket_policy(Bucket=r.get("Bucket"), Policy=json.dumps({**document, "Statement": kept}))
    return _Created(r.generated_name(), note="; ".join(changes))


def _statement_summary(statement: Mapping[str, Any]) -> str:
    keys = sorted({key for condition in statement["Condition"].values() for key in condition})
    return f"{statement.get('Effect')} {statement.get('Action')} if {', '.join(keys)}"


def _role(r: ResourceRequest) -> _Created:
    iam = r.client("iam")
    name = r.name("RoleName", 64)
    create: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": _json_text(r.get("AssumeRolePolicyDocument")),
        "Path": r.get("Path", "/"),
        **_pick(r.properties, "Description MaxSessionDuration PermissionsBoundary"),
    }
    if r.get("Tags"):
        create["Tags"] = _tag_list(r.get("Tags"))
    role = iam.create_role(**create)["Role"]
    for policy_arn in r.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    for policy in r.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=_json_text(policy["PolicyDocument"])
        )
    return _Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


def _attach_to_principals(r: ResourceRequest, attach: Callable[[str, str], None]) -> None:
    for kind in ("Roles", "Users", "Groups"):
        for name in r.get(kind, []):
            attach(kind, name)


def _policy(r: ResourceRequest) -> _Created:
    iam = r.client("iam")
    name, document = r.get("PolicyName"), _json_text(r.get("PolicyDocument"))
    put = {"Roles": iam.put_role_policy, "Users": iam.put_user_policy, "Groups": iam.put_group_policy}
    keys = {"Roles": "RoleName", "Users": "UserName", "Groups": "GroupName"}
    _attach_to_principals(
        r, lambda kind, principal: put[kind](**{keys[kind]: principal}, PolicyName=name, PolicyDocument=document)
    )
    return _Created(r.generated_name())


def _managed_policy(r: ResourceRequest) -> _Created:
    iam = r.client("iam")
    policy = iam.create_policy(
        PolicyName=r.name("ManagedPolicyName", 128),
        PolicyDocument=_json_text(r.get("PolicyDocument")),
        Path=r.get("Path", "/"),
        **_pick(r.properties, "Description"),
    )["Policy"]
    attach = {"Roles": iam.attach_role_policy, "Users": iam.attach_user_policy, "Groups": iam.attach_group_policy}
    keys = {"Roles": "RoleName", "Users": "UserName", "Groups": "GroupName"}
    _attach_to_principals(r, lambda kind, principal: attach[kind](**{keys[kind]: principal}, PolicyArn=policy["Arn"]))
    return _Created(policy["Arn"], {"PolicyArn": policy["Arn"], "PolicyId": policy["PolicyId"]})


def _instance_profile(r: ResourceRequest) -> _Created:
    iam = r.client("iam")
    name = r.name("InstanceProfileName", 128)
    profile = iam.create_instance_profile(InstanceProfileName=name, Path=r.get("Path", "/"))["InstanceProfile"]
    for role in r.get("Roles", []):
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return _Created(name, {"Arn": profile["Arn"]})


def _function(r: ResourceRequest) -> _Created:
    lambda_ = r.client("lambda")
    name = r.name("FunctionName", 64)
    code = r.get("Code", {})
    if "ZipFile" in code:
        code = {"ZipFile": _inline_code_zip(code["ZipFile"], r.get("Runtime", ""), r.get("Handler", "index.handler"))}
    create: dict[str, Any] = {
        "FunctionName": name,
        "Code": code,
        **_pick(
            r.properties,
            "Runtime Role Handler Description Timeout MemorySize Environment Architectures TracingConfig "
            "EphemeralStorage LoggingConfig PackageType DeadLetterConfig VpcConfig KmsKeyArn ImageConfig",
        ),
    }
    note = ""
    layers = r.get("Layers", [])
    own_layers = [arn for arn in layers if f":{r.account}:layer:" in arn]
    if own_layers:
        create["Layers"] = own_layers
    if len(own_layers) < len(layers):
        # Public layers (e.g. the Powertools managed layer) live in other accounts; in-process runs import the
        # packages installed with datapipe instead.
        note = "layers of other accounts not attached: " + ", ".join(a for a in layers if a not in own_layers)
    if r.get("Tags"):
        create["Tags"] = _tag_map(r.get("Tags"))
    function = lambda_.create_function(**create)
    return _Created(name, {"Arn": function["FunctionArn"]}, note=note)


def _inline_code_zip(source: str, runtime: str, handler: str) -> bytes:
    module = handler.rsplit(".", 1)[0] or "index"
    suffix = ".py" if runtime.startswith("python") else ".js"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(module + suffix, source)
    return buffer.getvalue()


def _permission(r: ResourceRequest) -> _Created:
    statement_id = r.generated_name(100)
    r.client("lambda").add_permission(
        FunctionName=r.get("FunctionName"),
        StatementId=statement_id,
        **_pick(r.properties, "Action Principal SourceArn SourceAccount PrincipalOrgID"),
    )
    return _Created(statement_id)


def _layer_version(r: ResourceRequest) -> _Created:
    layer = r.client("lambda").publish_layer_version(
        LayerName=r.name("LayerName", 64),
        Content=r.get("Content"),
        **_pick(r.properties, "Description CompatibleRuntimes CompatibleArchitectures LicenseInfo"),
    )
    return _Created(layer["LayerVersionArn"], {"LayerVersionArn": layer["LayerVersionArn"]})


def _event_source_mapping(r: ResourceRequest) -> _Created:
    mapping = r.client("lambda").create_event_source_mapping(
        **_pick(r.properties, "EventSourceArn FunctionName BatchSize Enabled StartingPosition")
    )
    return _Created(mapping["UUID"], {"Id": mapping["UUID"]})


def _log_group(r: ResourceRequest) -> _Created:
    logs = r.client("logs")
    name = r.name("LogGroupName", 512)
    create: dict[str, Any] = {"logGroupName": name}
    if r.get("Tags"):
        create["tags"] = _tag_map(r.get("Tags"))
    logs.create_log_group(**create)
    if r.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(r.get("RetentionInDays")))
    return _Created(name, {"Arn": r.arn("logs", f"log-group:{name}:*")})


def _state_machine(r: ResourceRequest) -> _Created:
    sfn = r.client("stepfunctions")
    if "DefinitionString" in r.properties:
        definition = str(r.get("DefinitionString"))
    elif "Definition" in r.properties:
        definition = json.dumps(r.get("Definition"))
    elif "DefinitionS3Location" in r.properties:
        location = r.get("DefinitionS3Location")
        body = (
            r.client("s3")
            .get_object(
                Bucket=location["Bucket"],
                Key=location["Key"],
                **({"VersionId": location["Version"]} if "Version" in location else {}),
            )["Body"]
            .read()
        )
        definition = body.decode()
    else:
        raise DeployError(f"state machine '{r.logical_id}' has no definition")
    for key, value in (r.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + key + "}", _text(value))
    name = r.name("StateMachineName", 80)
    create: dict[str, Any] = {
        "name": name,
        "definition": definition,
        "roleArn": r.get("RoleArn"),
        "type": r.get("StateMachineType", "STANDARD"),
    }
    if "LoggingConfiguration" in r.properties:
        create["loggingConfiguration"] = _camel(r.get("LoggingConfiguration"))
    if "TracingConfiguration" in r.properties:
        create["tracingConfiguration"] = _camel(r.get("TracingConfiguration"))
    if r.get("Tags"):
        create["tags"] = [{"key": k, "value": v} for k, v in _tag_map(r.get("Tags")).items()]
    machine = sfn.create_state_machine(**create)
    arn = machine["stateMachineArn"]
    return _Created(
        arn, {"Arn": arn, "Name": name, "StateMachineRevisionId": machine.get("stateMachineVersionArn", arn)}
    )


def _activity(r: ResourceRequest) -> _Created:
    create: dict[str, Any] = {"name": r.name("Name", 80)}
    if r.get("Tags"):
        create["tags"] = [{"key": k, "value": v} for k, v in _tag_map(r.get("Tags")).items()]
    arn = r.client("stepfunctions").create_activity(**create)["activityArn"]
    return _Created(arn, {"Arn": arn, "Name": create["name"]})


def _event_bus(r: ResourceRequest) -> _Created:
    name = r.get("Name")
    arn = r.client("events").create_event_bus(Name=name)["EventBusArn"]
    return _Created(name, {"Arn": arn, "Name": name})


def _rule(r: ResourceRequest) -> _Created:
    events = r.client("events")
    name = r.name("Name", 64)
    bus = r.get("EventBusName")
    put: dict[str, Any] = {"Name": name, **_pick(r.properties, "ScheduleExpression State Description RoleArn")}
    if bus:
        put["EventBusName"] = bus.rsplit("/", 1)[-1]
    if "EventPattern" in r.properties:
        put["EventPattern"] = _json_text(r.get("EventPattern"))
    arn = events.put_rule(**put)["RuleArn"]
    targets = [dict(target) for target in r.get("Targets", [])]
    for target in targets:
        if "Input" in target:
            target["Input"] = _json_text(target["Input"])
    if targets:
        events.put_targets(Rule=name, Targets=targets, **({"EventBusName": put["EventBusName"]} if bus else {}))
    physical_id = f"{put['EventBusName']}|{name}" if bus and put["EventBusName"] != "default" else name
    return _Created(physical_id, {"Arn": arn})


def _topic(r: ResourceRequest) -> _Created:
    sns = r.client("sns")
    name = r.name("TopicName", 256)
    attributes = {
        key: _text(value)
        for key, value in _pick(r.properties, "DisplayName KmsMasterKeyId FifoTopic ContentBasedDeduplication").items()
    }
    create: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if r.get("Tags"):
        create["Tags"] = _tag_list(r.get("Tags"))
    arn = sns.create_topic(**create)["TopicArn"]
    for subscription in r.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return _Created(arn, {"TopicArn": arn, "TopicName": name})


def _subscription(r: ResourceRequest) -> _Created:
    attributes = {
        key: _json_text(r.get(key)) if key in ("FilterPolicy", "RedrivePolicy") else _text(r.get(key))
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
        if key in r.properties
    }
    subscription = r.client("sns").subscribe(
        TopicArn=r.get("TopicArn"),
        Protocol=r.get("Protocol"),
        Endpoint=r.get("Endpoint"),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    return _Created(subscription["SubscriptionArn"])


def _topic_policy(r: ResourceRequest) -> _Created:
    for topic in r.get("Topics", []):
        r.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=_json_text(r.get("PolicyDocument"))
        )
    return _Created(r.generated_name())


SQS_ATTRIBUTES = (
    "DelaySeconds MaximumMessageSize MessageRetentionPeriod ReceiveMessageWaitTimeSeconds VisibilityTimeout "
    "KmsMasterKeyId KmsDataKeyReusePeriodSeconds SqsManagedSseEnabled FifoQueue ContentBasedDeduplication "
    "RedrivePolicy RedriveAllowPolicy"
)


def _queue(r: ResourceRequest) -> _Created:
    sqs = r.client("sqs")
    name = r.get("QueueName") or r.generated_name(80 - 5 if r.get("FifoQueue") else 80)
    if r.get("FifoQueue") and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: _json_text(r.get(key)) if key.startswith("Redrive") else _text(r.get(key))
        for key in SQS_ATTRIBUTES.split()
        if key in r.properties
    }
    create: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if r.get("Tags"):
        create["tags"] = _tag_map(r.get("Tags"))
    url = sqs.create_queue(**create)["QueueUrl"]
    arn = r.arn("sqs", name)
    return _Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _queue_policy(r: ResourceRequest) -> _Created:
    for queue_url in r.get("Queues", []):
        r.client("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": _json_text(r.get("PolicyDocument"))}
        )
    return _Created(r.generated_name())


def _schedule_group(r: ResourceRequest) -> _Created:
    name = r.name("Name", 64)
    arn = r.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
    return _Created(name, {"Arn": arn})


def _schedule(r: ResourceRequest) -> _Created:
    name = r.name("Name", 64)
    create: dict[str, Any] = {
        "Name": name,
        **_pick(
            r.properties,
            "GroupName ScheduleExpression ScheduleExpressionTimezone FlexibleTimeWindow Target State Description "
            "StartDate EndDate KmsKeyArn",
        ),
    }
    arn = r.client("scheduler").create_schedule(**create)["ScheduleArn"]
    return _Created(name, {"Arn": arn})


def _compute_environment(r: ResourceRequest) -> _Created:
    create = _camel(_pick(r.properties, "Type State ComputeResources ServiceRole Tags"))
    create["computeEnvironmentName"] = r.name("ComputeEnvironmentName", 128)
    create["type"] = create["type"].upper()
    if "serviceRole" not in create:
        create["serviceRole"] = _batch_service_linked_role(r)
    arn = r.client("batch").create_compute_environment(**create)["computeEnvironmentArn"]
    return _Created(arn, {"ComputeEnvironmentArn": arn})


def _batch_service_linked_role(r: ResourceRequest) -> str:
    """Without a ServiceRole, AWS Batch uses its service-linked role, creating it on first use; moto needs it named."""
    iam = r.client("iam")
    existing = iam.list_roles(PathPrefix=BATCH_SERVICE_ROLE_PATH)["Roles"]
    if existing:
        return str(existing[0]["Arn"])
    return str(iam.create_service_linked_role(AWSServiceName="batch.amazonaws.com")["Role"]["Arn"])


def _job_queue(r: ResourceRequest) -> _Created:
    create = _camel(_pick(r.properties, "State Priority ComputeEnvironmentOrder SchedulingPolicyArn Tags"))
    create["jobQueueName"] = r.name("JobQueueName", 128)
    arn = r.client("batch").create_job_queue(**create)["jobQueueArn"]
    return _Created(arn, {"JobQueueArn": arn, "JobQueueName": create["jobQueueName"]})


def _job_definition(r: ResourceRequest) -> _Created:
    create = _camel(
        _pick(
            r.properties,
            "Type ContainerProperties Parameters RetryStrategy Timeout PlatformCapabilities PropagateTags Tags "
            "SchedulingPriority",
        )
    )
    create["jobDefinitionName"] = r.name("JobDefinitionName", 128)
    arn = r.client("batch").register_job_definition(**create)["jobDefinitionArn"]
    return _Created(arn, {"JobDefinitionArn": arn})


def _repository(r: ResourceRequest) -> _Created:
    create: dict[str, Any] = {"repositoryName": r.name("RepositoryName", 256, lowercase=True)}
    create.update(_camel(_pick(r.properties, "ImageTagMutability ImageScanningConfiguration EncryptionConfiguration")))
    if r.get("Tags"):
        create["tags"] = _tag_list(r.get("Tags"))
    repository = r.client("ecr").create_repository(**create)["repository"]
    return _Created(
        repository["repositoryName"], {"Arn": repository["repositoryArn"], "RepositoryUri": repository["repositoryUri"]}
    )


def _ec2_tags(r: ResourceRequest, resource_type: str) -> list[dict[str, Any]]:
    tags = _tag_list(r.get("Tags"))
    return [{"ResourceType": resource_type, "Tags": tags}] if tags else []


def _vpc(r: ResourceRequest) -> _Created:
    ec2 = r.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock=r.get("CidrBlock"),
        InstanceTenancy=r.get("InstanceTenancy", "default"),
        TagSpecifications=_ec2_tags(r, "vpc"),
    )["Vpc"]
    vpc_id = vpc["VpcId"]
    for key in ("EnableDnsSupport", "EnableDnsHostnames"):
        if key in r.properties:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{key: {"Value": bool(r.get(key))}})
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"]
    return _Created(
        vpc_id,
        {
            "VpcId": vpc_id,
            "CidrBlock": vpc["CidrBlock"],
            "CidrBlockAssociations": [a["AssociationId"] for a in vpc.get("CidrBlockAssociationSet", [])],
            "DefaultSecurityGroup": groups[0]["GroupId"] if groups else "",
            "DefaultNetworkAcl": acls[0]["NetworkAclId"] if acls else "",
            "Ipv6CidrBlocks": [],
        },
    )


def _subnet(r: ResourceRequest) -> _Created:
    ec2 = r.client("ec2")
    subnet = ec2.create_subnet(
        VpcId=r.get("VpcId"),
        CidrBlock=r.get("CidrBlock"),
        TagSpecifications=_ec2_tags(r, "subnet"),
        **_pick(r.properties, "AvailabilityZone"),
    )["Subnet"]
    if r.get("MapPublicIpOnLaunch"):
        ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    return _Created(
        subnet["SubnetId"],
        {
            "SubnetId": subnet["SubnetId"],
            "AvailabilityZone": subnet["AvailabilityZone"],
            "VpcId": subnet["VpcId"],
            "CidrBlock": subnet["CidrBlock"],
            "NetworkAclAssociationId": "",
            "Ipv6CidrBlocks": [],
        },
    )


def _internet_gateway(r: ResourceRequest) -> _Created:
    gateway = r.client("ec2").create_internet_gateway(TagSpecifications=_ec2_tags(r, "internet-gateway"))
    gateway_id = gateway["InternetGateway"]["InternetGatewayId"]
    return _Created(gateway_id, {"InternetGatewayId": gateway_id})


def _gateway_attachment(r: ResourceRequest) -> _Created:
    if r.get("InternetGatewayId"):
        r.client("ec2").attach_internet_gateway(InternetGatewayId=r.get("InternetGatewayId"), VpcId=r.get("VpcId"))
    else:
        r.client("ec2").attach_vpn_gateway(VpnGatewayId=r.get("VpnGatewayId"), VpcId=r.get("VpcId"))
    return _Created(r.generated_name())


def _route_table(r: ResourceRequest) -> _Created:
    table = r.client("ec2").create_route_table(VpcId=r.get("VpcId"), TagSpecifications=_ec2_tags(r, "route-table"))
    table_id = table["RouteTable"]["RouteTableId"]
    return _Created(table_id, {"RouteTableId": table_id})


def _route(r: ResourceRequest) -> _Created:
    r.client("ec2").create_route(
        **_pick(
            r.properties,
            "RouteTableId DestinationCidrBlock DestinationIpv6CidrBlock GatewayId NatGatewayId InstanceId "
            "NetworkInterfaceId VpcPeeringConnectionId TransitGatewayId VpcEndpointId EgressOnlyInternetGatewayId",
        )
    )
    return _Created(r.generated_name())


def _route_table_association(r: ResourceRequest) -> _Created:
    association = r.client("ec2").associate_route_table(RouteTableId=r.get("RouteTableId"), SubnetId=r.get("SubnetId"))
    return _Created(association["AssociationId"], {"Id": association["AssociationId"]})


def _eip(r: ResourceRequest) -> _Created:
    address = r.client("ec2").allocate_address(
        Domain=r.get("Domain", "vpc"), TagSpecifications=_ec2_tags(r, "elastic-ip")
    )
    return _Created(address["PublicIp"], {"AllocationId": address["AllocationId"], "PublicIp": address["PublicIp"]})


def _nat_gateway(r: ResourceRequest) -> _Created:
    gateway = r.client("ec2").create_nat_gateway(
        SubnetId=r.get("SubnetId"),
        TagSpecifications=_ec2_tags(r, "natgateway"),
        **_pick(r.properties, "AllocationId ConnectivityType"),
    )["NatGateway"]
    return _Created(gateway["NatGatewayId"], {"NatGatewayId": gateway["NatGatewayId"]})


def _ip_permission(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One CloudFormation ingress/egress rule -> the IpPermissions entry of the EC2 API."""
    permission: dict[str, Any] = {"IpProtocol": str(rule.get("IpProtocol", "-1"))}
    for key in ("FromPort", "ToPort"):
        if key in rule:
            permission[key] = int(rule[key])
    description = _pick(rule, "Description")
    if "CidrIp" in rule:
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"], **description}]
    if "CidrIpv6" in rule:
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **description}]
    for key in ("SourceSecurityGroupId", "DestinationSecurityGroupId"):
        if key in rule:
            permission["UserIdGroupPairs"] = [{"GroupId": rule[key], **description}]
    for key in ("SourcePrefixListId", "DestinationPrefixListId"):
        if key in rule:
            permission["PrefixListIds"] = [{"PrefixListId": rule[key], **description}]
    return permission


def _security_group(r: ResourceRequest) -> _Created:
    ec2 = r.client("ec2")
    create: dict[str, Any] = {
        "GroupName": r.name("GroupName", 255),
        "Description": r.get("GroupDescription", r.logical_id),
        "TagSpecifications": _ec2_tags(r, "security-group"),
        **_pick(r.properties, "VpcId"),
    }
    group_id = ec2.create_security_group(**create)["GroupId"]
    if r.get("SecurityGroupIngress"):
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[_ip_permission(rule) for rule in r.get("SecurityGroupIngress")]
        )
    if "SecurityGroupEgress" in r.properties and r.get("VpcId"):
        # CloudFormation replaces the default allow-all egress rule with the ones given.
        default = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=default)
        ec2.authorize_security_group_egress(
            GroupId=group_id, IpPermissions=[_ip_permission(rule) for rule in r.get("SecurityGroupEgress")]
        )
    return _Created(group_id, {"GroupId": group_id, "VpcId": r.get("VpcId", "")})


def _security_group_rule(direction: str) -> Handler:
    def create(r: ResourceRequest) -> _Created:
        ec2 = r.client("ec2")
        authorize = (
            ec2.authorize_security_group_ingress if direction == "ingress" else ec2.authorize_security_group_egress
        )
        result = authorize(GroupId=r.get("GroupId"), IpPermissions=[_ip_permission(r.properties)])
        rules = result.get("SecurityGroupRules", [])
        rule_id = rules[0]["SecurityGroupRuleId"] if rules else r.generated_name()
        return _Created(rule_id, {"Id": rule_id})

    return create


def _vpc_endpoint(r: ResourceRequest) -> _Created:
    create = _pick(
        r.properties, "VpcId ServiceName VpcEndpointType RouteTableIds SubnetIds SecurityGroupIds PrivateDnsEnabled"
    )
    if "PolicyDocument" in r.properties:
        create["PolicyDocument"] = _json_text(r.get("PolicyDocument"))
    endpoint = r.client("ec2").create_vpc_endpoint(**create)["VpcEndpoint"]
    return _Created(
        endpoint["VpcEndpointId"],
        {
            "Id": endpoint["VpcEndpointId"],
            "CreationTimestamp": str(endpoint.get("CreationTimestamp", "")),
            "DnsEntries": [
                f"{e.get('HostedZoneId', '')}:{e.get('DnsName', '')}" for e in endpoint.get("DnsEntries", [])
            ],
            "NetworkInterfaceIds": endpoint.get("NetworkInterfaceIds", []),
        },
    )


def _flow_log(r: ResourceRequest) -> _Created:
    create: dict[str, Any] = {
        "ResourceIds": [r.get("ResourceId")],
        **_pick(
            r.properties,
            "ResourceType TrafficType LogDestinationType LogDestination LogGroupName DeliverLogsPermissionArn "
            "LogFormat MaxAggregationInterval",
        ),
    }
    flow_log_ids = r.client("ec2").create_flow_logs(**create)["FlowLogIds"]
    return _Created(flow_log_ids[0], {"Id": flow_log_ids[0]})


def _launch_template(r: ResourceRequest) -> _Created:
    template = r.client("ec2").create_launch_template(
        LaunchTemplateName=r.name("LaunchTemplateName", 128), LaunchTemplateData=r.get("LaunchTemplateData", {})
    )["LaunchTemplate"]
    version = str(template["LatestVersionNumber"])
    return _Created(
        template["LaunchTemplateId"],
        {
            "LaunchTemplateId": template["LaunchTemplateId"],
            "LatestVersionNumber": version,
            "DefaultVersionNumber": str(template["DefaultVersionNumber"]),
        },
    )


def _ssm_parameter(r: ResourceRequest) -> _Created:
    name = r.name("Name", 2048)
    r.client("ssm").put_parameter(
        Name=name,
        Value=_text(r.get("Value")),
        Type=r.get("Type", "String"),
        Overwrite=True,
        **_pick(r.properties, "Description AllowedPattern Tier DataType"),
    )
    return _Created(name, {"Type": r.get("Type", "String"), "Value": _text(r.get("Value"))})


def _kms_key(r: ResourceRequest) -> _Created:
    kms = r.client("kms")
    create: dict[str, Any] = _pick(r.properties, "Description KeyUsage KeySpec MultiRegion")
    if "KeyPolicy" in r.properties:
        create["Policy"] = _json_text(r.get("KeyPolicy"))
    if r.get("Tags"):
        create["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in _tag_map(r.get("Tags")).items()]
    key = kms.create_key(**create)["KeyMetadata"]
    if r.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return _Created(key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})


def _kms_alias(r: ResourceRequest) -> _Created:
    r.client("kms").create_alias(AliasName=r.get("AliasName"), TargetKeyId=r.get("TargetKeyId"))
    return _Created(r.get("AliasName"))


ALARM_KEYS = (
    "AlarmDescription ActionsEnabled AlarmActions OKActions InsufficientDataActions MetricName Namespace Statistic "
    "ExtendedStatistic Dimensions Period Unit EvaluationPeriods DatapointsToAlarm Threshold ComparisonOperator "
    "TreatMissingData Metrics ThresholdMetricId"
)


def _alarm(r: ResourceRequest) -> _Created:
    name = r.name("AlarmName", 255)
    r.client("cloudwatch").put_metric_alarm(AlarmName=name, **_pick(r.properties, ALARM_KEYS))
    return _Created(name, {"Arn": r.arn("cloudwatch", f"alarm:{name}")})


def _dashboard(r: ResourceRequest) -> _Created:
    name = r.name("DashboardName", 255)
    r.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=_json_text(r.get("DashboardBody")))
    return _Created(name)


def _cdk_metadata(r: ResourceRequest) -> _Created:
    return _Created(r.generated_name(), status=SKIPPED, note="CDK version-reporting metadata, no AWS resource")


HANDLERS: dict[str, Handler] = {
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::IAM::ManagedPolicy": _managed_policy,
    "AWS::IAM::InstanceProfile": _instance_profile,
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::Permission": _permission,
    "AWS::Lambda::LayerVersion": _layer_version,
    "AWS::Lambda::EventSourceMapping": _event_source_mapping,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::StepFunctions::Activity": _activity,
    "AWS::Events::EventBus": _event_bus,
    "AWS::Events::Rule": _rule,
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::Subscription": _subscription,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SQS::Queue": _queue,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::Scheduler::ScheduleGroup": _schedule_group,
    "AWS::Scheduler::Schedule": _schedule,
    "AWS::Batch::ComputeEnvironment": _compute_environment,
    "AWS::Batch::JobQueue": _job_queue,
    "AWS::Batch::JobDefinition": _job_definition,
    "AWS::ECR::Repository": _repository,
    "AWS::EC2::VPC": _vpc,
    "AWS::EC2::Subnet": _subnet,
    "AWS::EC2::InternetGateway": _internet_gateway,
    "AWS::EC2::VPCGatewayAttachment": _gateway_attachment,
    "AWS::EC2::RouteTable": _route_table,
    "AWS::EC2::Route": _route,
    "AWS::EC2::SubnetRouteTableAssociation": _route_table_association,
    "AWS::EC2::EIP": _eip,
    "AWS::EC2::NatGateway": _nat_gateway,
    "AWS::EC2::SecurityGroup": _security_group,
    "AWS::EC2::SecurityGroupIngress": _security_group_rule("ingress"),
    "AWS::EC2::SecurityGroupEgress": _security_group_rule("egress"),
    "AWS::EC2::VPCEndpoint": _vpc_endpoint,
    "AWS::EC2::FlowLog": _flow_log,
    "AWS::EC2::LaunchTemplate": _launch_template,
    "AWS::SSM::Parameter": _ssm_parameter,
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::Dashboard": _dashboard,
    "AWS::CDK::Metadata": _cdk_metadata,
}


def _not_emulated_reason(resource_type: str) -> str:
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return "custom resource: its provider Lambda is not run at deploy time"
    return "the emulator has no support for this resource type"


# ---------------------------------------------------------------------------------------------------------------------
# The deployer


class Deployer:
    """Deploys every stack of an assembly into the emulator reached through `client`."""

    def __init__(self, client: ClientFactory, *, account: str, region: str, partition: str = "aws") -> None:
        self.client = client
        self.account = account
        self.region = region
        self.partition = partition

    def deploy(self, assembly_dir: Path | str) -> Deployment:
        assembly = read_assembly(Path(assembly_dir))
        self._check_environment(assembly)
        deployment = Deployment(account=self.account, region=self.region)
        self._bootstrap(assembly)
        self._upload_assets(assembly, deployment)
        if assembly.docker_image_assets:
            deployment.notes.append(
                f"{len(assembly.docker_image_assets)} Docker image asset(s) not built: no Docker engine locally"
            )
        for stack in assembly.stacks:
            deployment.stacks.append(self._deploy_stack(stack, deployment))
        return deployment

    def _check_environment(self, assembly: CloudAssembly) -> None:
        for stack in assembly.stacks:
            if stack.account not in (None, self.account) or stack.region not in (None, self.region):
                raise DeployError(
                    f"stack '{stack.stack_name}' targets aws://{stack.account}/{stack.region} but the emulator is "
                    f"aws://{self.account}/{self.region}; synthesize without an account or with these values"
                )

    def _substitute_environment(self, text: str) -> str:
        return (
            text.replace("${AWS::AccountId}", self.account)
            .replace("${AWS::Region}", self.region)
            .replace("${AWS::Partition}", self.partition)
        )

    def _bootstrap(self, assembly: CloudAssembly) -> None:
        """What `cdk bootstrap` leaves behind: the version parameter and the asset buckets the templates name."""
        ssm = self.client("ssm")
        for parameter in {stack.bootstrap_version_parameter for stack in assembly.stacks} - {None}:
            ssm.put_parameter(Name=str(parameter), Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True)
        s3 = self.client("s3")
        existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
        for bucket in sorted({self._substitute_environment(asset.bucket_name) for asset in assembly.file_assets}):
            if bucket not in existing:
                create: dict[str, Any] = {"Bucket": bucket}
                if self.region != "us-east-1":
                    create["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                s3.create_bucket(**create)

    def _upload_assets(self, assembly: CloudAssembly, deployment: Deployment) -> None:
        s3 = self.client("s3")
        for asset in assembly.file_assets:
            bucket = self._substitute_environment(asset.bucket_name)
            key = self._substitute_environment(asset.object_key)
            s3.put_object(Bucket=bucket, Key=key, Body=_asset_bytes(asset))
            deployment.uploaded_assets.append(f"s3://{bucket}/{key}")

    def _parameter_values(self, stack: StackArtifact, template: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, parameter in template.get("Parameters", {}).items():
            if "Default" not in parameter:
                raise DeployError(f"stack '{stack.stack_name}': parameter '{name}' has no default and no value")
            default = parameter["Default"]
            kind = str(parameter.get("Type", "String"))
            if kind.startswith("AWS::SSM::Parameter::Value<"):
                try:
                    default = self.client("ssm").get_parameter(Name=default)["Parameter"]["Value"]
                except ClientError:
                    raise DeployError(
                        f"stack '{stack.stack_name}': parameter '{name}' reads SSM parameter '{default}', "
                        "which does not exist"
                    ) from None
                if kind.endswith("<List<String>>") or kind.endswith("<CommaDelimitedList>"):
                    default = default.split(",")
            elif kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<"):
                default = [item.strip() for item in str(default).split(",")]
            values[name] = default
        return values

    def _check_rules(self, stack: StackArtifact, template: Mapping[str, Any], evaluator: TemplateEvaluator) -> None:
        for rule_name, rule in template.get("Rules", {}).items():
            if "RuleCondition" in rule and not evaluator.resolve(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not evaluator.resolve(assertion["Assert"]):
                    description = assertion.get("AssertDescription", "an assertion failed")
                    raise DeployError(f"stack '{stack.stack_name}': rule {rule_name}: {description}")

    def _deploy_stack(self, stack: StackArtifact, deployment: Deployment) -> DeployedStack:
        template = stack.template()
        stack_id = (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{stack.stack_name}/"
            f"{uuid.uuid5(uuid.NAMESPACE_URL, stack.stack_name)}"
        )
        evaluator = TemplateEvaluator(
            template=template,
            stack_name=stack.stack_name,
            stack_id=stack_id,
            account=self.account,
            region=self.region,
            partition=self.partition,
            exports=deployment.exports,
            stack_outputs={deployed.stack_name: deployed.outputs for deployed in deployment.stacks},
            parameter_values=self._parameter_values(stack, template),
        )
        self._check_rules(stack, template, evaluator)
        deployed = DeployedStack(artifact_id=stack.artifact_id, stack_name=stack.stack_name, stack_id=stack_id)
        resources: dict[str, Any] = template.get("Resources", {})
        for logical_id in creation_order(resources):
            definition = resources[logical_id]
            if "Condition" in definition and not evaluator.condition(definition["Condition"]):
                continue
            created = self._create(stack, logical_id, definition, evaluator)
            evaluator.resources[logical_id] = created
            deployed.resources.append(
                DeployedResource(
                    stack_name=stack.stack_name,
                    logical_id=logical_id,
                    resource_type=definition["Type"],
                    physical_id=created.physical_id,
                    status=created.status,
                    note=created.note,
                )
            )
        for logical_id, created in evaluator.resources.items():
            if created.finalize is not None:
                self._guarded(stack, logical_id, resources[logical_id]["Type"], created.finalize)
        for output_name, output in template.get("Outputs", {}).items():
            if "Condition" in output and not evaluator.condition(output["Condition"]):
                continue
            value = _text(evaluator.resolve(output["Value"]))
            deployed.outputs[output_name] = value
            if "Export" in output:
                export_name = str(evaluator.resolve(output["Export"]["Name"]))
                if export_name in deployment.exports:
                    raise DeployError(f"stack '{stack.stack_name}': export '{export_name}' is already exported")
                deployment.exports[export_name] = value
        return deployed

    def _create(
        self, stack: StackArtifact, logical_id: str, definition: Mapping[str, Any], evaluator: TemplateEvaluator
    ) -> _Created:
        resource_type = definition.get("Type", "")
        request = ResourceRequest(
            logical_id=logical_id,
            resource_type=resource_type,
            properties=evaluator.resolve(definition.get("Properties", {})),
            stack_name=stack.stack_name,
            account=self.account,
            region=self.region,
            partition=self.partition,
            client=self.client,
        )
        handler = HANDLERS.get(resource_type)
        if handler is None:
            return _Created(request.generated_name(), status=NOT_EMULATED, note=_not_emulated_reason(resource_type))
        return self._guarded(stack, logical_id, resource_type, lambda: handler(request))

    def _guarded(self, stack: StackArtifact, logical_id: str, resource_type: str, action: Callable[[], Any]) -> Any:
        """Run `action`, turning what the emulator refuses into a one-line error that names the resource."""
        try:
            return action()
        except (ClientError, BotoCoreError, KeyError, TypeError) as error:
            raise DeployError(
                f"stack '{stack.stack_name}': cannot create {logical_id} ({resource_type}): {_describe(error)}"
            ) from error


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message") or error)
    if isinstance(error, KeyError):
        return f"missing property {error}"
    return str(error)


def _asset_bytes(asset: FileAsset) -> bytes:
    if not asset.source.exists():
        raise DeployError(f"asset {asset.asset_hash}: {asset.source} does not exist in the assembly")
    if asset.packaging == "zip" and asset.source.is_dir():
        return _zip_directory(asset.source)
    return asset.source.read_bytes()


def _zip_directory(directory: Path) -> bytes:
    """A reproducible zip of a directory, as the CDK CLI publishes directory assets."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
