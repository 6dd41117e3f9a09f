"""APIs: JWT on trader routes only, throttled webhooks, CORS, access logs, WebSocket routes."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from infra.apis import ADMIN_ROUTES, PUBLIC_ROUTES, TRADER_ROUTES, WEBHOOK_RATE, WEBHOOK_ROUTES
from infra.capacity import for_stage
from shared.domain.contracts import ApiPath
from tests.infra.support import DASHBOARD, function_by_handler, one, resources


def _routes(template: Template) -> dict[str, dict[str, object]]:
    return {
        str(r["Properties"]["RouteKey"]): r["Properties"]
        for r in resources(template, "AWS::ApiGatewayV2::Route").values()
    }


def test_trader_routes_require_the_cognito_jwt(dev: Template) -> None:
    # GIVEN the HTTP API WHEN synthesized THEN every trader route uses the JWT authorizer
    routes = _routes(dev)
    jwt_id, authorizer = one(dev, "AWS::ApiGatewayV2::Authorizer")
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    issuer = authorizer["Properties"]["JwtConfiguration"]["Issuer"]
    assert "cognito-idp" in str(issuer)
    for method, path in TRADER_ROUTES:
        route = routes[f"{method.value} {path}"]
        assert route["AuthorizationType"] == "JWT"
        assert route["AuthorizerId"] == {"Ref": jwt_id}


def test_admin_routes_require_the_cognito_jwt_and_go_to_the_admin_function(dev: Template) -> None:
    # GIVEN the HTTP API WHEN synthesized THEN every admin route uses the same JWT authorizer
    routes = _routes(dev)
    jwt_id, _ = one(dev, "AWS::ApiGatewayV2::Authorizer")
    assert ADMIN_ROUTES
    for method, path in ADMIN_ROUTES:
        route = routes[f"{method.value} {path}"]
        assert route["AuthorizationType"] == "JWT"
        assert route["AuthorizerId"] == {"Ref": jwt_id}
    # AND the ADMIN group the function requires exists in the pool
    dev.has_resource_properties("AWS::Cognito::UserPoolGroup", {"GroupName": "ADMIN"})


def test_webhook_and_health_routes_have_no_jwt(dev: Template) -> None:
    # GIVEN brokers and probes WHEN synthesized THEN their routes carry no authorizer
    routes = _routes(dev)
    public = [f"GET {p}" for p in PUBLIC_ROUTES]
    assert f"GET {ApiPath.OPENAPI}" in public
    for key in [*(f"POST {p}" for p in WEBHOOK_ROUTES), *public]:
        assert routes[key]["AuthorizationType"] == "NONE"
        assert "AuthorizerId" not in routes[key]


def test_http_stage_throttles_webhooks_and_logs_access(dev: Template) -> None:
    # GIVEN the $default stage WHEN synthesized THEN webhooks have their own limits, logs on
    dev.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "RouteSettings": {
                f"POST {WEBHOOK_ROUTES[0]}": Match.object_like(
                    {"ThrottlingRateLimit": WEBHOOK_RATE}
                ),
                f"POST {WEBHOOK_ROUTES[1]}": Match.object_like(
                    {"ThrottlingRateLimit": WEBHOOK_RATE}
                ),
            },
        },
    )


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_http_stage_throttle_is_the_capacity_tables(
    request: pytest.FixtureRequest, stage: str
) -> None:
    # GIVEN a stage's capacity table WHEN its template is synthesized
    template: Template = request.getfixturevalue(stage)
    sizes = for_stage("prod" if stage == "prod" else "dev")
    # THEN the $default stage is throttled at its steady rate and burst
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "DefaultRouteSettings": Match.object_like(
                {
                    "ThrottlingRateLimit": sizes.api_rate_per_s,
                    "ThrottlingBurstLimit": sizes.api_burst,
                }
            ),
        },
    )


def test_prod_admits_1000_orders_per_second_and_bursts_above() -> None:
    # GIVEN the prod table WHEN read THEN >= 1,000 requests/s steady, a burst above it, and
    # route_order reserves the containers that rate needs at the design duration
    prod = for_stage("prod")
    assert prod.api_rate_per_s >= 1000
    assert prod.api_burst > prod.api_rate_per_s
    assert prod.function("route_order").reserved_concurrency >= prod.route_order_concurrency_needed


def test_cors_allows_the_dashboard_origin(prod: Template) -> None:
    # GIVEN dashboardOrigin WHEN synthesized THEN it and the stack's own dashboard (CloudFront,
    # tests/infra/test_dashboard.py) are the only allowed origins
    prod.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {
            "ProtocolType": "HTTP",
            "CorsConfiguration": Match.object_like(
                {"AllowOrigins": [DASHBOARD, Match.object_like({"Fn::Join": Match.any_value()})]}
            ),
        },
    )


def test_trader_group_exists(dev: Template) -> None:
    # GIVEN the user pool WHEN synthesized THEN the TRADER group exists; no self sign-up
    dev.has_resource_properties("AWS::Cognito::UserPoolGroup", {"GroupName": "TRADER"})
    dev.has_resource_properties(
        "AWS::Cognito::UserPool",
        {"AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}},
    )


def test_prod_user_pool_requires_mfa(prod: Template) -> None:
    # GIVEN prod WHEN synthesized THEN traders need a TOTP second factor
    prod.has_resource_properties("AWS::Cognito::UserPool", {"MfaConfiguration": "ON"})


def test_websocket_routes_go_to_ws_connect_with_access_logs(dev: Template) -> None:
    # GIVEN the WebSocket API WHEN synthesized THEN the three routes exist and the stage logs
    routes = _routes(dev)
    assert {"$connect", "$disconnect", "$default"} <= set(routes)
    dev.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {"StageName": "dev", "AccessLogSettings": Match.object_like({"Format": Match.any_value()})},
    )
    ws_id, _ = function_by_handler(dev, "ws_connect")
    ws_routes = [routes[k] for k in ("$connect", "$disconnect", "$default")]
    integrations = resources(dev, "AWS::ApiGatewayV2::Integration")
    for route in ws_routes:
        target = route["Target"]["Fn::Join"][1][1]["Ref"]  # type: ignore[index]
        assert ws_id in str(integrations[target]["Properties"]["IntegrationUri"])
