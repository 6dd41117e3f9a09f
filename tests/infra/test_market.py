"""The market-data function and its EventBridge Scheduler schedules (docs/market-data.md)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.infra.support import actions_of, function_by_handler, policy_statements, resources


def schedules(template: Template) -> dict[str, dict[str, Any]]:
    return {
        res["Properties"]["Target"]["Input"]: res["Properties"]
        for res in resources(template, "AWS::Scheduler::Schedule").values()
    }


def test_two_ist_schedules_invoke_market_refresh_with_their_job(dev: Template) -> None:
    # GIVEN the stack WHEN synthesized THEN the instruments job runs twice before the 09:00
    # pre-open and the statistics job every minute of the session, weekdays, in IST
    function_id, _ = function_by_handler(dev, "market_refresh")
    by_input = schedules(dev)
    instruments = by_input['{"job":"instruments"}']
    statistics = by_input['{"job":"statistics"}']
    assert instruments["ScheduleExpression"] == "cron(40,55 8 ? * MON-FRI *)"
    assert statistics["ScheduleExpression"] == "cron(* 9-15 ? * MON-FRI *)"
    for props in (instruments, statistics):
        assert props["ScheduleExpressionTimezone"] == "Asia/Kolkata"
        assert props["State"] == "ENABLED"
        assert props["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert statistics["Target"]["RetryPolicy"] == {
        "MaximumEventAgeInSeconds": 60,
        "MaximumRetryAttempts": 0,
    }
    assert instruments["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_the_scheduler_role_may_invoke_only_market_refresh(dev: Template) -> None:
    # GIVEN the schedules' role WHEN synthesized THEN it may invoke the function and no more
    function_id, _ = function_by_handler(dev, "market_refresh")
    role_ids = {p["Target"]["RoleArn"]["Fn::GetAtt"][0] for p in schedules(dev).values()}
    statements = [
        statement
        for policy in resources(dev, "AWS::IAM::Policy").values()
        if any({"Ref": r} in policy["Properties"]["Roles"] for r in role_ids)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert actions_of(statements) == {"lambda:InvokeFunction"}
    for statement in statements:
        targets = statement["Resource"]
        targets = targets if isinstance(targets, list) else [targets]
        # the function's ARN, and "<arn>:*" (its versions and aliases), which LambdaInvoke adds
        assert all(function_id in str(t) for t in targets)


def test_market_refresh_reads_the_platform_token_never_the_brokers(dev: Template) -> None:
    # GIVEN the function WHEN synthesized THEN market data comes from Kite with the platform
    # token in a secret of its own; the brokers' credentials stay out of reach; it publishes
    # and pushes nothing
    function_id, fn = function_by_handler(dev, "market_refresh")
    variables = fn["Properties"]["Environment"]["Variables"]
    assert variables["ROUTER_MARKET_DATA_SOURCE"] == "kite"
    assert "ROUTER_BROKER_SECRETS_ARN" not in variables
    assert "ROUTER_REDIS_URL" in variables
    secrets = dev.find_resources("AWS::SecretsManager::Secret")
    market_secret = next(k for k in secrets if k.startswith("MarketDataSecret"))
    broker_secret = next(k for k in secrets if k.startswith("Brokers"))
    statements = policy_statements(dev, function_id)
    assert variables["ROUTER_MARKET_DATA_SECRET_ARN"] == {"Ref": market_secret}
    assert market_secret in str(statements)
    assert broker_secret not in str(statements)
    actions = actions_of(statements)
    assert "events:PutEvents" not in actions
    assert "execute-api:ManageConnections" not in actions


def test_route_order_quotes_from_kite_too(dev: Template) -> None:
    # GIVEN routing and risk WHEN synthesized THEN their quotes come from the same source
    _, fn = function_by_handler(dev, "route_order")
    assert fn["Properties"]["Environment"]["Variables"]["ROUTER_MARKET_DATA_SOURCE"] == "kite"


def test_admin_may_run_the_market_jobs_on_demand(dev: Template) -> None:
    # GIVEN the admin function WHEN synthesized THEN it reads market data as market_refresh does,
    # within API Gateway's 29 s, and its POST market/refresh route exists
    function_id, fn = function_by_handler(dev, "admin")
    assert fn["Properties"]["Environment"]["Variables"]["ROUTER_MARKET_DATA_SOURCE"] == "kite"
    assert fn["Properties"]["Timeout"] == 29
    assert "secretsmanager:GetSecretValue" in actions_of(policy_statements(dev, function_id))
    routes = {
        r["Properties"]["RouteKey"] for r in resources(dev, "AWS::ApiGatewayV2::Route").values()
    }
    assert "POST /api/v1/admin/market/refresh" in routes
