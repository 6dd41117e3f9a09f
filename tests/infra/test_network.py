"""Network: two AZs, NAT with static EIPs (output), endpoints, SG-to-SG rules only."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template

from tests.infra.support import one, resources


def _sg_id(template: Template, description: str) -> str:
    for logical_id, res in resources(template, "AWS::EC2::SecurityGroup").items():
        if res["Properties"]["GroupDescription"] == description:
            return logical_id
    raise AssertionError(description)


def test_vpc_spans_two_azs_with_private_subnets(dev: Template) -> None:
    # GIVEN the dev stack WHEN synthesized THEN one VPC has app and data subnets in 2 AZs
    one(dev, "AWS::EC2::VPC")
    subnets = resources(dev, "AWS::EC2::Subnet").values()
    azs = {s["Properties"]["AvailabilityZone"] for s in subnets}
    assert azs == {"ap-south-1a", "ap-south-1b"}
    private = [s for s in subnets if not s["Properties"]["MapPublicIpOnLaunch"]]
    assert len(private) == 4


def test_nat_uses_static_eip_and_outputs_it(dev: Template, prod: Template) -> None:
    # GIVEN dev (1 NAT) and prod (2 NATs) WHEN synthesized
    # THEN every NAT gateway is bound to an EIP of ours, output for broker whitelisting
    for template, count in ((dev, 1), (prod, 2)):
        eips = resources(template, "AWS::EC2::EIP")
        nats = resources(template, "AWS::EC2::NatGateway")
        assert len(nats) == count
        allocated = {n["Properties"]["AllocationId"]["Fn::GetAtt"][0] for n in nats.values()}
        assert allocated <= set(eips)
        template.has_output("BrokerEgressIps", {"Value": Match.any_value()})


def test_prod_retains_the_whitelisted_eip(prod: Template, dev: Template) -> None:
    # GIVEN a broker whitelisted the IP WHEN the prod stack is deleted THEN the EIP stays
    prod.has_resource("AWS::EC2::EIP", {"DeletionPolicy": "Retain"})
    dev.has_resource("AWS::EC2::EIP", {"DeletionPolicy": "Delete"})


def test_endpoints_for_secrets_manager_and_eventbridge(dev: Template) -> None:
    # GIVEN private functions WHEN synthesized THEN they reach both services via endpoints
    names = [
        str(e["Properties"]["ServiceName"])
        for e in resources(dev, "AWS::EC2::VPCEndpoint").values()
    ]
    assert any("secretsmanager" in n for n in names)
    assert any("events" in n for n in names)


def test_data_ports_open_only_to_security_groups(dev: Template) -> None:
    # GIVEN the functions SG WHEN synthesized THEN the proxy admits it on 5432, the cache on 6379
    functions = _sg_id(dev, "Lambda functions of the order router")
    proxy = _sg_id(dev, "RDS Proxy: Postgres from the functions")
    cache = _sg_id(dev, "ElastiCache Serverless: Redis from the functions")
    dev.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 5432,
            "ToPort": 5432,
            "GroupId": {"Fn::GetAtt": [proxy, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [functions, "GroupId"]},
        },
    )
    dev.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 6379,
            "ToPort": 6379,
            "GroupId": {"Fn::GetAtt": [cache, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [functions, "GroupId"]},
        },
    )


def test_no_ingress_rule_admits_a_cidr(dev: Template) -> None:
    # GIVEN every security group WHEN synthesized THEN no ingress names an address range
    inline = [
        rule
        for sg in resources(dev, "AWS::EC2::SecurityGroup").values()
        for rule in sg["Properties"].get("SecurityGroupIngress", [])
    ]
    standalone = [
        r["Properties"] for r in resources(dev, "AWS::EC2::SecurityGroupIngress").values()
    ]
    rules = inline + standalone
    assert rules
    assert all("CidrIp" not in r and "CidrIpv6" not in r for r in rules)
