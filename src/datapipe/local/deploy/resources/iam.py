"""IAM roles, inline and managed policies, instance profiles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import json_text, pick, tag_list


def _role(r: ResourceRequest) -> Created:
    iam = r.client("iam")
    name = r.name("RoleName", 64)
    create: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json_text(r.get("AssumeRolePolicyDocument")),
        "Path": r.get("Path", "/"),
        **pick(r.properties, "Description MaxSessionDuration PermissionsBoundary"),
    }
    if r.get("Tags"):
        create["Tags"] = tag_list(r.get("Tags"))
    role = iam.create_role(**create)["Role"]
    for policy_arn in r.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    for policy in r.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json_text(policy["PolicyDocument"])
        )
    return Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


def _attach_to_principals(r: ResourceRequest, attach: Callable[[str, str], None]) -> None:
    for kind in ("Roles", "Users", "Groups"):
        for name in r.get(kind, []):
            attach(kind, name)


def _policy(r: ResourceRequest) -> Created:
    iam = r.client("iam")
    name, document = r.get("PolicyName"), json_text(r.get("PolicyDocument"))
    put = {"Roles": iam.put_role_policy, "Users": iam.put_user_policy, "Groups": iam.put_group_policy}
    keys = {"Roles": "RoleName", "Users": "UserName", "Groups": "GroupName"}
    _attach_to_principals(
        r, lambda kind, principal: put[kind](**{keys[kind]: principal}, PolicyName=name, PolicyDocument=document)
    )
    return Created(r.generated_name())


def _managed_policy(r: ResourceRequest) -> Created:
    iam = r.client("iam")
    policy = iam.create_policy(
        PolicyName=r.name("ManagedPolicyName", 128),
        PolicyDocument=json_text(r.get("PolicyDocument")),
        Path=r.get("Path", "/"),
        **pick(r.properties, "Description"),
    )["Policy"]
    attach = {"Roles": iam.attach_role_policy, "Users": iam.attach_user_policy, "Groups": iam.attach_group_policy}
    keys = {"Roles": "RoleName", "Users": "UserName", "Groups": "GroupName"}
    _attach_to_principals(r, lambda kind, principal: attach[kind](**{keys[kind]: principal}, PolicyArn=policy["Arn"]))
    return Created(policy["Arn"], {"PolicyArn": policy["Arn"], "PolicyId": policy["PolicyId"]})


def _instance_profile(r: ResourceRequest) -> Created:
    iam = r.client("iam")
    name = r.name("InstanceProfileName", 128)
    profile = iam.create_instance_profile(InstanceProfileName=name, Path=r.get("Path", "/"))["InstanceProfile"]
    for role in r.get("Roles", []):
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return Created(name, {"Arn": profile["Arn"]})


HANDLERS: dict[str, Handler] = {
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::IAM::ManagedPolicy": _managed_policy,
    "AWS::IAM::InstanceProfile": _instance_profile,
}
