"""The stack and the handlers agree on the contracts between them (``shared.domain.contracts``).

The HTTP API's routes are the routes the Powertools resolvers of ``route_order`` and
``broker_webhook`` register, function by function, both ways; the EventBridge rules deliver to
``track_execution`` exactly the events it dispatches on.
"""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from functions.admin import handler as admin
from functions.broker_connections import handler as broker_connections
from functions.broker_webhook import handler as broker_webhook
from functions.route_order import handler as route_order
from functions.track_execution import handler as track_execution
from shared.domain.contracts import TRACKED_EVENTS, ApiPath, DetailType, EventSource
from tests.infra.support import function_by_handler, resources


def resolver_routes(app: APIGatewayHttpResolver) -> set[str]:
    """``METHOD /path/{param}`` of every route a resolver serves, as API Gateway writes keys."""
    # Powertools keeps no public route table; its compiled routes (also read by
    # shared.http.allowed_methods) carry the rule in OpenAPI's {param} form.
    return {f"{r.method} {r.openapi_path}" for r in app._static_routes + app._dynamic_routes}


def stack_routes(template: Template) -> dict[str, set[str]]:
    """The HTTP API's route keys, by the logical id of the function each one invokes."""
    (http_api,) = [
        logical_id
        for logical_id, api in resources(template, "AWS::ApiGatewayV2::Api").items()
        if api["Properties"]["ProtocolType"] == "HTTP"
    ]
    integrations: dict[str, str] = {}
    for logical_id, integration in resources(template, "AWS::ApiGatewayV2::Integration").items():
        props: dict[str, Any] = integration["Properties"]
        if props["ApiId"] == {"Ref": http_api}:
            integrations[logical_id] = props["IntegrationUri"]["Fn::GetAtt"][0]
    by_function: dict[str, set[str]] = {}
    for route in resources(template, "AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        if props["ApiId"] != {"Ref": http_api}:  # the WebSocket API's $connect, $default...
            continue
        (integration_id,) = [
            part["Ref"] for part in props["Target"]["Fn::Join"][1] if isinstance(part, dict)
        ]
        by_function.setdefault(integrations[integration_id], set()).add(props["RouteKey"])
    return by_function


def test_the_stack_routes_exactly_what_each_handler_serves(dev: Template) -> None:
    # GIVEN the synthesized HTTP API and the two functions behind it
    route_order_id, _ = function_by_handler(dev, "route_order")
    webhook_id, _ = function_by_handler(dev, "broker_webhook")
    admin_id, _ = function_by_handler(dev, "admin")
    connections_id, _ = function_by_handler(dev, "broker_connections")
    # WHEN their routes are read from the template and from the Powertools resolvers
    stack = stack_routes(dev)
    # THEN each function gets exactly the routes its resolver registers, and nothing else does
    assert stack == {
        route_order_id: resolver_routes(route_order.app),
        webhook_id: resolver_routes(broker_webhook.app),
        admin_id: resolver_routes(admin.app),
        connections_id: resolver_routes(broker_connections.app),
    }
    # AND every path of the contract is served (none is declared and forgotten)
    served = {key.split(" ", 1)[1] for keys in stack.values() for key in keys}
    assert served == set(ApiPath)


def test_a_route_the_stack_lacks_is_caught() -> None:
    # GIVEN a resolver like route_order's with one route more than the contract
    app = APIGatewayHttpResolver()
    for rule in ("/api/v1/health", "/api/v1/trading/intelligent/orders/<orderId>/cancel"):
        app.get(rule)(lambda: None)
    # WHEN its keys are read THEN the extra route shows up in API Gateway's form
    assert resolver_routes(app) - {f"GET {ApiPath.HEALTH}"} == {f"GET {ApiPath.ORDER}/cancel"}


def test_the_bus_delivers_to_the_tracker_exactly_what_it_dispatches_on(dev: Template) -> None:
    # GIVEN the rules of the custom bus that target track_execution
    tracker_id, _ = function_by_handler(dev, "track_execution")
    pairs = set()
    for rule in resources(dev, "AWS::Events::Rule").values():
        props = rule["Properties"]
        if "EventPattern" not in props:
            continue
        assert [t["Arn"] for t in props["Targets"]] == [{"Fn::GetAtt": [tracker_id, "Arn"]}]
        pattern = props["EventPattern"]
        (source,) = pattern["source"]
        (detail_type,) = pattern["detail-type"]
        pairs.add((EventSource(source), DetailType(detail_type)))
    # WHEN compared with the payload models the handler dispatches on
    handled = track_execution.handled_events()
    # THEN they are the same pairs, and the contract's list of tracked events says so too
    assert pairs == handled == TRACKED_EVENTS
    # (ChildOrderPlaced is tracked for its ORDER_UPDATE pushes: rejects, timeouts, cascades)
    assert (EventSource.ROUTING, DetailType.CHILD_ORDER_PLACED) in handled
