"""GET /admin/alarms in the stack: named alarms, the admin function's settings and its one grant."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from infra.observability import alarm_name_prefix
from shared.domain.alarms import ALARM_DEFINITIONS
from tests.infra.support import actions_of, function_by_handler, policy_statements, resources


def _describe_statements(template: Template, function_id: str) -> list[dict[str, Any]]:
    return [
        s
        for s in policy_statements(template, function_id)
        if "cloudwatch:DescribeAlarms" in actions_of([s])
    ]


def test_every_alarm_is_named_with_the_stage_prefix(dev: Template) -> None:
    # GIVEN the stack WHEN synthesized THEN each defined alarm is named <prefix><name>, so the
    # admin function can list them by prefix and match them to their definitions
    names = sorted(
        a["Properties"]["AlarmName"] for a in resources(dev, "AWS::CloudWatch::Alarm").values()
    )
    prefix = alarm_name_prefix("dev")
    assert names == sorted(f"{prefix}{d.name}" for d in ALARM_DEFINITIONS)


def test_only_the_admin_function_may_describe_the_stacks_alarms(dev: Template) -> None:
    # GIVEN the stack WHEN synthesized
    admin_id, admin = function_by_handler(dev, "admin")
    # THEN the admin function may describe alarms, on this stack's alarm ARNs only
    (statement,) = _describe_statements(dev, admin_id)
    assert statement["Action"] == "cloudwatch:DescribeAlarms"
    assert statement["Effect"] == "Allow"
    resource = json.dumps(statement["Resource"])
    assert ":cloudwatch:" in resource
    assert f":alarm:{alarm_name_prefix('dev')}*" in resource
    assert statement["Resource"] != "*"
    # AND it is told where to read them
    env = admin["Properties"]["Environment"]["Variables"]
    assert env["ROUTER_ALARM_SOURCE"] == "cloudwatch"
    assert env["ROUTER_ALARM_NAME_PREFIX"] == alarm_name_prefix("dev")
    # AND no other function may describe alarms at all
    for logical_id, fn in resources(dev, "AWS::Lambda::Function").items():
        if logical_id != admin_id and "Role" in fn["Properties"]:
            role = fn["Properties"]["Role"]
            if isinstance(role, dict) and "Fn::GetAtt" in role:
                assert not _describe_statements(dev, logical_id), logical_id


def test_sign_in_round_trip_is_configured_for_the_distribution(dev: Template) -> None:
    # GIVEN the stack (a live Cognito round trip needs AWS: this checks what synthesis can)
    (distribution_id,) = resources(dev, "AWS::CloudFront::Distribution")
    (pool_id,) = resources(dev, "AWS::Cognito::UserPool")
    ((_, client),) = resources(dev, "AWS::Cognito::UserPoolClient").items()
    ((domain_id, domain),) = resources(dev, "AWS::Cognito::UserPoolDomain").items()
    ((client_id, _),) = resources(dev, "AWS::Cognito::UserPoolClient").items()
    cloudfront = {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}, "/"]]
    }
    # THEN the hosted UI sends the code back to, and signs out to, the CloudFront domain
    props = client["Properties"]
    assert props["CallbackURLs"] == [cloudfront]
    assert props["LogoutURLs"] == [cloudfront]
    # AND the client and the hosted UI domain belong to the one user pool
    assert props["UserPoolId"] == {"Ref": pool_id}
    assert domain["Properties"]["UserPoolId"] == {"Ref": pool_id}
    # AND the dashboard's config.json names that hosted UI domain and that client
    ((_, upload),) = resources(dev, "Custom::CDKBucketDeployment").items()
    markers = json.dumps(upload["Properties"]["SourceMarkers"])
    assert ".amazoncognito.com" in markers
    assert f'{{"Ref": "{domain_id}"}}' in markers
    assert f'{{"Ref": "{client_id}"}}' in markers
