"""Network: VPC, NAT with static Elastic IPs, VPC endpoints and the security groups."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.config import DeployConfig

POSTGRES_PORT = 5432
REDIS_PORT = 6379
HTTPS_PORT = 443


class Network(Construct):
    """A two-AZ VPC whose functions reach brokers from whitelisted static IPs.

    Since April 2026 Indian brokers accept API orders only from a whitelisted static IP, so
    egress goes through NAT gateways bound to Elastic IPs that this construct owns (and retains
    outside dev: a new IP would have to be re-registered with every broker).

    Security groups reference each other only: functions → RDS Proxy on 5432, functions →
    cache on 6379, proxy → database on 5432; nothing admits a CIDR.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options (stage, NAT count).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        removal = cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
        self.eips = [
            ec2.CfnEIP(
                self,
                f"NatEip{i + 1}",
                domain="vpc",
                tags=[cdk.CfnTag(key="Name", value=f"order-router-{config.stage}-nat-{i + 1}")],
            )
            for i in range(config.nat_gateways)
        ]
        for eip in self.eips:
            eip.apply_removal_policy(removal)

        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=config.nat_gateways,
            nat_gateway_provider=ec2.NatProvider.gateway(
                eip_allocation_ids=[eip.attr_allocation_id for eip in self.eips]
            ),
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
                )
            },
        )
        # restrictDefaultSecurityGroup: CDK's provider function empties the default group.
        provider = cdk.Stack.of(self).node.try_find_child(
            "Custom::VpcRestrictDefaultSGCustomResourceProvider"
        )
        if provider is not None:
            handler = provider.node.find_child("Handler")
            for check, reason in nag.CDK_PROVIDER_FUNCTION.items():
                if check != "CKV_AWS_173":  # it has no environment
                    nag.skip_checkov(handler, check, reason)
        self.app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.data_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.functions_sg = self._sg("FunctionsSg", "Lambda functions of the order router")
        self.proxy_sg = self._sg("ProxySg", "RDS Proxy: Postgres from the functions")
        self.database_sg = self._sg("DatabaseSg", "Aurora: Postgres from the proxy and migrations")
        self.cache_sg = self._sg("CacheSg", "ElastiCache Serverless: Redis from the functions")
        self.endpoints_sg = self._sg("EndpointsSg", "Interface endpoints: HTTPS from the VPC")
        self.migrations_sg = self._sg("MigrationsSg", "Migration function: Postgres admin")
        self.rotation_sg = self._sg("RotationSg", "Secret rotation: Postgres admin")

        # Brokers, the WebSocket management API and AWS APIs are all HTTPS; nothing else leaves.
        self.functions_sg.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "HTTPS: brokers, AWS APIs via NAT"
        )
        self._allow(self.functions_sg, self.proxy_sg, POSTGRES_PORT, "functions to RDS Proxy")
        self._allow(self.functions_sg, self.cache_sg, REDIS_PORT, "functions to cache (TLS)")
        self._allow(self.proxy_sg, self.database_sg, POSTGRES_PORT, "proxy to Aurora")
        for admin in (self.migrations_sg, self.rotation_sg):
            # Migrations hold long DDL transactions and rotation changes the password the proxy
            # uses, so both talk to the writer directly instead of through the proxy.
            self._allow(admin, self.database_sg, POSTGRES_PORT, "admin to Aurora")
        for client in (self.functions_sg, self.migrations_sg, self.rotation_sg):
            self._allow(client, self.endpoints_sg, HTTPS_PORT, "to AWS interface endpoints")

        # EventBridge and Secrets Manager stay on the AWS network. The WebSocket management API
        # goes through the NAT on purpose: an execute-api endpoint with private DNS would capture
        # every *.execute-api name in the VPC and break calls to the public (regional) APIs.
        for name, service in (
            ("SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER),
            ("EventBridge", ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE),
        ):
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.app_subnets,
                security_groups=[self.endpoints_sg],
                private_dns_enabled=True,
                # Only the security groups allowed above may connect, not the whole VPC CIDR.
                open=False,
            )

        cdk.CfnOutput(
            scope,
            "BrokerEgressIps",
            value=cdk.Fn.join(",", [eip.ref for eip in self.eips]),
            description="Static egress IPs to whitelist with every broker",
        )

    def _sg(self, construct_id: str, description: str) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self,
            construct_id,
            vpc=self.vpc,
            description=description,
            allow_all_outbound=False,
        )

    @staticmethod
    def _allow(
        source: ec2.SecurityGroup, dest: ec2.SecurityGroup, port: int, description: str
    ) -> None:
        # One call adds the egress on the source and the ingress on the destination, as separate
        # rule resources (inline rules that reference each other would form a cycle).
        source.connections.allow_to(dest, ec2.Port.tcp(port), description)
