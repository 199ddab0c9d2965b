"""Amazon EC2 networking: VPCs, subnets, routes, gateways, EIPs, security groups, endpoints, flow logs, templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import json_text, pick, tag_list


def _ec2_tags(r: ResourceRequest, resource_type: str) -> list[dict[str, Any]]:
    tags = tag_list(r.get("Tags"))
    return [{"ResourceType": resource_type, "Tags": tags}] if tags else []


def _vpc(r: ResourceRequest) -> Created:
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
    return Created(
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


def _subnet(r: ResourceRequest) -> Created:
    ec2 = r.client("ec2")
    subnet = ec2.create_subnet(
        VpcId=r.get("VpcId"),
        CidrBlock=r.get("CidrBlock"),
        TagSpecifications=_ec2_tags(r, "subnet"),
        **pick(r.properties, "AvailabilityZone"),
    )["Subnet"]
    if r.get("MapPublicIpOnLaunch"):
        ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    return Created(
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


def _internet_gateway(r: ResourceRequest) -> Created:
    gateway = r.client("ec2").create_internet_gateway(TagSpecifications=_ec2_tags(r, "internet-gateway"))
    gateway_id = gateway["InternetGateway"]["InternetGatewayId"]
    return Created(gateway_id, {"InternetGatewayId": gateway_id})


def _gateway_attachment(r: ResourceRequest) -> Created:
    if r.get("InternetGatewayId"):
        r.client("ec2").attach_internet_gateway(InternetGatewayId=r.get("InternetGatewayId"), VpcId=r.get("VpcId"))
    else:
        r.client("ec2").attach_vpn_gateway(VpnGatewayId=r.get("VpnGatewayId"), VpcId=r.get("VpcId"))
    return Created(r.generated_name())


def _route_table(r: ResourceRequest) -> Created:
    table = r.client("ec2").create_route_table(VpcId=r.get("VpcId"), TagSpecifications=_ec2_tags(r, "route-table"))
    table_id = table["RouteTable"]["RouteTableId"]
    return Created(table_id, {"RouteTableId": table_id})


def _route(r: ResourceRequest) -> Created:
    r.client("ec2").create_route(
        **pick(
            r.properties,
            "RouteTableId DestinationCidrBlock DestinationIpv6CidrBlock GatewayId NatGatewayId InstanceId "
            "NetworkInterfaceId VpcPeeringConnectionId TransitGatewayId VpcEndpointId EgressOnlyInternetGatewayId",
        )
    )
    return Created(r.generated_name())


def _route_table_association(r: ResourceRequest) -> Created:
    association = r.client("ec2").associate_route_table(RouteTableId=r.get("RouteTableId"), SubnetId=r.get("SubnetId"))
    return Created(association["AssociationId"], {"Id": association["AssociationId"]})


def _eip(r: ResourceRequest) -> Created:
    address = r.client("ec2").allocate_address(
        Domain=r.get("Domain", "vpc"), TagSpecifications=_ec2_tags(r, "elastic-ip")
    )
    return Created(address["PublicIp"], {"AllocationId": address["AllocationId"], "PublicIp": address["PublicIp"]})


def _nat_gateway(r: ResourceRequest) -> Created:
    gateway = r.client("ec2").create_nat_gateway(
        SubnetId=r.get("SubnetId"),
        TagSpecifications=_ec2_tags(r, "natgateway"),
        **pick(r.properties, "AllocationId ConnectivityType"),
    )["NatGateway"]
    return Created(gateway["NatGatewayId"], {"NatGatewayId": gateway["NatGatewayId"]})


def _ip_permission(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One CloudFormation ingress/egress rule -> the IpPermissions entry of the EC2 API."""
    permission: dict[str, Any] = {"IpProtocol": str(rule.get("IpProtocol", "-1"))}
    for key in ("FromPort", "ToPort"):
        if key in rule:
            permission[key] = int(rule[key])
    description = pick(rule, "Description")
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


def _security_group(r: ResourceRequest) -> Created:
    ec2 = r.client("ec2")
    create: dict[str, Any] = {
        "GroupName": r.name("GroupName", 255),
        "Description": r.get("GroupDescription", r.logical_id),
        "TagSpecifications": _ec2_tags(r, "security-group"),
        **pick(r.properties, "VpcId"),
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
    return Created(group_id, {"GroupId": group_id, "VpcId": r.get("VpcId", "")})


def _security_group_rule(direction: str) -> Handler:
    def create(r: ResourceRequest) -> Created:
        ec2 = r.client("ec2")
        authorize = (
            ec2.authorize_security_group_ingress if direction == "ingress" else ec2.authorize_security_group_egress
        )
        result = authorize(GroupId=r.get("GroupId"), IpPermissions=[_ip_permission(r.properties)])
        rules = result.get("SecurityGroupRules", [])
        rule_id = rules[0]["SecurityGroupRuleId"] if rules else r.generated_name()
        return Created(rule_id, {"Id": rule_id})

    return create


def _vpc_endpoint(r: ResourceRequest) -> Created:
    create = pick(
        r.properties, "VpcId ServiceName VpcEndpointType RouteTableIds SubnetIds SecurityGroupIds PrivateDnsEnabled"
    )
    if "PolicyDocument" in r.properties:
        create["PolicyDocument"] = json_text(r.get("PolicyDocument"))
    endpoint = r.client("ec2").create_vpc_endpoint(**create)["VpcEndpoint"]
    return Created(
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


def _flow_log(r: ResourceRequest) -> Created:
    create: dict[str, Any] = {
        "ResourceIds": [r.get("ResourceId")],
        **pick(
            r.properties,
            "ResourceType TrafficType LogDestinationType LogDestination LogGroupName DeliverLogsPermissionArn "
            "LogFormat MaxAggregationInterval",
        ),
    }
    flow_log_ids = r.client("ec2").create_flow_logs(**create)["FlowLogIds"]
    return Created(flow_log_ids[0], {"Id": flow_log_ids[0]})


def _launch_template(r: ResourceRequest) -> Created:
    template = r.client("ec2").create_launch_template(
        LaunchTemplateName=r.name("LaunchTemplateName", 128), LaunchTemplateData=r.get("LaunchTemplateData", {})
    )["LaunchTemplate"]
    version = str(template["LatestVersionNumber"])
    return Created(
        template["LaunchTemplateId"],
        {
            "LaunchTemplateId": template["LaunchTemplateId"],
            "LatestVersionNumber": version,
            "DefaultVersionNumber": str(template["DefaultVersionNumber"]),
        },
    )


HANDLERS: dict[str, Handler] = {
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
}
