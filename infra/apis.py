"""APIs: the HTTP API (traders, broker webhooks, health) and the WebSocket API."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import capacity, nag
from infra.auth import TraderAuth
from infra.config import DeployConfig
from shared.domain.contracts import ApiPath

TRADER_ROUTES: tuple[tuple[apigwv2.HttpMethod, ApiPath], ...] = (
    (apigwv2.HttpMethod.POST, ApiPath.SMART_ORDER),
    (apigwv2.HttpMethod.POST, ApiPath.ANALYZE_ORDER),
    (apigwv2.HttpMethod.GET, ApiPath.ORDER),
    (apigwv2.HttpMethod.GET, ApiPath.ORDERS),
    (apigwv2.HttpMethod.GET, ApiPath.EXECUTION_ANALYTICS),
    (apigwv2.HttpMethod.GET, ApiPath.BROKER_PROFILES),
)
"""route_order's routes behind the JWT authorizer."""
ADMIN_ROUTES: tuple[tuple[apigwv2.HttpMethod, ApiPath], ...] = (
    (apigwv2.HttpMethod.GET, ApiPath.ADMIN_BROKERS),
    (apigwv2.HttpMethod.POST, ApiPath.ADMIN_BROKERS),
    (apigwv2.HttpMethod.PATCH, ApiPath.ADMIN_BROKER),
    (apigwv2.HttpMethod.PUT, ApiPath.ADMIN_BROKER_STATUS),
    (apigwv2.HttpMethod.GET, ApiPath.ADMIN_PROFILES),
    (apigwv2.HttpMethod.GET, ApiPath.ADMIN_QUARANTINE),
    (apigwv2.HttpMethod.GET, ApiPath.ADMIN_AUDIT),
    (apigwv2.HttpMethod.GET, ApiPath.ADMIN_CONNECTIONS),
    (apigwv2.HttpMethod.POST, ApiPath.ADMIN_MARKET_REFRESH),
    (apigwv2.HttpMethod.GET, ApiPath.ADMIN_ALARMS),
)
"""The admin function's routes, behind the same JWT authorizer; the function requires ADMIN."""


CONNECTION_ROUTES: tuple[tuple[apigwv2.HttpMethod, ApiPath], ...] = (
    (apigwv2.HttpMethod.GET, ApiPath.BROKER_CONNECTIONS),
    (apigwv2.HttpMethod.POST, ApiPath.BROKER_CONNECTION_LOGIN),
    (apigwv2.HttpMethod.GET, ApiPath.BROKER_CONNECTION_CALLBACK),
    (apigwv2.HttpMethod.PUT, ApiPath.BROKER_CONNECTION),
    (apigwv2.HttpMethod.POST, ApiPath.BROKER_CONNECTION_REFRESH),
    (apigwv2.HttpMethod.DELETE, ApiPath.BROKER_CONNECTION),
)
"""broker_connections' routes behind the JWT authorizer."""
WEBHOOK_ROUTES = (ApiPath.SIGNED_WEBHOOK, ApiPath.TOKEN_WEBHOOK)
"""broker_webhook's POST routes (no authorizer: each broker proves itself)."""
PUBLIC_ROUTES = (ApiPath.HEALTH, ApiPath.OPENAPI)
"""GET routes of route_order without an authorizer: the health check and the API document."""

#: The tighter throttle of unauthenticated broker webhooks, and the WebSocket stage's. The HTTP
#: stage's own comes from infra/capacity.py, sized with route_order's reserved concurrency.
WEBHOOK_RATE, WEBHOOK_BURST = 50, 100
WS_RATE, WS_BURST = 500, 1000

_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
        "sub": "$context.authorizer.claims.sub",
    }
)
_WS_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "eventType": "$context.eventType",
        "connectionId": "$context.connectionId",
        "status": "$context.status",
        "integrationError": "$context.integrationErrorMessage",
    }
)


def _access_logs(
    scope: Construct, stage: apigwv2.HttpStage | apigwv2.WebSocketStage, fmt: str, days: int
) -> logs.LogGroup:
    log_group = logs.LogGroup(
        scope,
        "AccessLogs",
        retention=_retention(days),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    cfn = cast(apigwv2.CfnStage, stage.node.default_child)
    cfn.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
        destination_arn=log_group.log_group_arn, format=fmt
    )
    return log_group


def _retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays.THREE_MONTHS if days >= 90 else logs.RetentionDays.TWO_WEEKS


class HttpApi(Construct):
    """The HTTP API: JWT-protected trader routes, throttled webhooks, open health check.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options (CORS origin, stage).
    auth
        The trader user pool, whose tokens the JWT authorizer accepts.
    route_order, broker_webhook, broker_connections
        The functions behind the trader, webhook and broker-connection routes.
    admin
        The function behind the admin routes (the ADMIN group is checked by the function: an
        HTTP API JWT authorizer checks scopes, not Cognito groups).
    dashboard_urls
        More origins allowed by CORS: the dashboard's CloudFront URL.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        auth: TraderAuth,
        route_order: lambda_.IFunction,
        broker_webhook: lambda_.IFunction,
        broker_connections: lambda_.IFunction,
        admin: lambda_.IFunction | None = None,
        dashboard_urls: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        sizes = capacity.for_stage(config.stage)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=f"order-router-{config.stage}",
            create_default_stage=False,
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=[config.dashboard_origin, *dashboard_urls],
                # PUT/PATCH/DELETE: the operator view's admin routes (docs/dashboard.md).
                allow_methods=[
                    apigwv2.CorsHttpMethod.GET,
                    apigwv2.CorsHttpMethod.POST,
                    apigwv2.CorsHttpMethod.PUT,
                    apigwv2.CorsHttpMethod.PATCH,
                    apigwv2.CorsHttpMethod.DELETE,
                    apigwv2.CorsHttpMethod.OPTIONS,
                ],
                allow_headers=["authorization", "content-type", "idempotency-key"],
                max_age=cdk.Duration.hours(1),
            ),
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=sizes.api_rate_per_s, burst_limit=sizes.api_burst
            ),
        )
        self.access_logs = _access_logs(
            self, self.stage, _ACCESS_LOG_FORMAT, 90 if config.is_prod else 14
        )
        cfn_stage = cast(apigwv2.CfnStage, self.stage.node.default_child)
        # Webhooks carry no JWT, so a per-route limit caps what a forged flood can cost.
        cfn_stage.route_settings = {
            f"POST {path}": {
                "ThrottlingRateLimit": WEBHOOK_RATE,
                "ThrottlingBurstLimit": WEBHOOK_BURST,
            }
            for path in WEBHOOK_ROUTES
        }

        jwt = authorizers.HttpJwtAuthorizer("TraderJwt", auth.issuer, jwt_audience=[auth.audience])
        trader_integration = integrations.HttpLambdaIntegration("RouteOrder", route_order)
        webhook_integration = integrations.HttpLambdaIntegration("BrokerWebhook", broker_webhook)
        for method, path in TRADER_ROUTES:
            self.api.add_routes(
                path=str(path), methods=[method], integration=trader_integration, authorizer=jwt
            )
        if admin is not None:
            admin_integration = integrations.HttpLambdaIntegration("Admin", admin)
            for method, path in ADMIN_ROUTES:
                self.api.add_routes(
                    path=str(path), methods=[method], integration=admin_integration, authorizer=jwt
                )
        connections = integrations.HttpLambdaIntegration("BrokerConnections", broker_connections)
        for method, path in CONNECTION_ROUTES:
            self.api.add_routes(
                path=str(path), methods=[method], integration=connections, authorizer=jwt
            )
        # The webhook routes must exist before the stage's route settings refer to them.
        webhook_routes = [
            route
            for path in WEBHOOK_ROUTES
            for route in self.api.add_routes(
                path=str(path), methods=[apigwv2.HttpMethod.POST], integration=webhook_integration
            )
        ]
        for route in webhook_routes:
            self.stage.node.add_dependency(route)
        public = [
            route
            for path in PUBLIC_ROUTES
            for route in self.api.add_routes(
                path=str(path), methods=[apigwv2.HttpMethod.GET], integration=trader_integration
            )
        ]
        for route in [*webhook_routes, *public]:
            nag.acknowledge(
                route,
                "APIG4",
                "Brokers authenticate by signature or secret path token checked in "
                "broker_webhook (they cannot send Cognito JWTs); the health check and the "
                "OpenAPI document are public by design. All are throttled.",
            )
        self.url = self.stage.url


class WebSocketApi(Construct):
    """The WebSocket API whose connections receive routing and execution updates.

    ``$connect`` carries the trader's JWT in the query string (browsers cannot set headers on a
    WebSocket handshake); ``ws_connect`` verifies it against the pool's JWKS.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options.
    ws_connect
        The function behind ``$connect``, ``$disconnect`` and ``$default``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        ws_connect: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        integration = integrations.WebSocketLambdaIntegration("WsConnect", ws_connect)
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=f"order-router-{config.stage}-ws",
            connect_route_options=apigwv2.WebSocketRouteOptions(integration=integration),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(integration=integration),
            default_route_options=apigwv2.WebSocketRouteOptions(integration=integration),
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=config.stage,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=WS_RATE, burst_limit=WS_BURST),
        )
        self.access_logs = _access_logs(
            self, self.stage, _WS_ACCESS_LOG_FORMAT, 90 if config.is_prod else 14
        )
        # WebSocket (unlike HTTP) API logging needs the account's API Gateway CloudWatch role.
        role = iam.Role(
            self,
            "ApiGatewayLogsRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        account = apigw.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        self.stage.node.add_dependency(account)
        nag.acknowledge(
            role,
            "IAM4",
            "The AWS-managed policy is the documented role for API Gateway access logging.",
            finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs",
        )
        nag.acknowledge(
            self.api,
            "APIG4",
            "$connect verifies the trader's JWT (query string) in ws_connect against Cognito's "
            "JWKS; $disconnect and $default only run on an already accepted connection.",
        )
        self.url = self.stage.url
        #: https://{api-id}.execute-api.{region}.amazonaws.com/{stage}: the management API.
        self.management_endpoint = self.stage.callback_url

    def grant_push(self, function: lambda_.IFunction) -> None:
        """Allow ``function`` to post to (and close) this API's connections.

        Parameters
        ----------
        function
            A function that pushes messages to WebSocket clients.
        """
        self.stage.grant_management_api_access(function)
        stack = cdk.Stack.of(self)
        api = nag.logical_ref(stack, self.api.api_id)
        nag.acknowledge(
            function,
            "IAM5",
            "Connection ids are created at run time; the grant is limited to this API's stage "
            "@connections resource.",
            finding=f"Resource::arn:{stack.partition}:execute-api:{stack.region}:"
            f"{stack.account}:{api}/{self.stage.stage_name}/*/@connections/*",
        )
