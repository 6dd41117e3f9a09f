"""The web dashboard's hosting: private bucket, CloudFront with OAC, upload, sign-in, CORS."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.infra.support import one, resources


def _distribution(template: Template) -> tuple[str, dict[str, Any]]:
    return one(template, "AWS::CloudFront::Distribution")


def test_the_bucket_is_private_encrypted_and_tls_only(dev: Template) -> None:
    # GIVEN the stack WHEN synthesized THEN the dashboard bucket blocks all public access
    buckets = resources(dev, "AWS::S3::Bucket")
    assert len(buckets) == 1
    props = next(iter(buckets.values()))["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # and its policy denies plain HTTP and admits CloudFront for this distribution only
    statements = next(iter(resources(dev, "AWS::S3::BucketPolicy").values()))["Properties"][
        "PolicyDocument"
    ]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    distribution_id, _ = _distribution(dev)
    reads = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert len(reads) == 1
    assert reads[0]["Action"] == "s3:GetObject"
    assert distribution_id in json.dumps(reads[0]["Condition"])
    assert not [
        s
        for s in statements
        if s.get("Principal") in ("*", {"AWS": "*"}) and s["Effect"] == "Allow"
    ]


def test_cloudfront_reads_through_origin_access_control(dev: Template) -> None:
    # GIVEN the distribution WHEN synthesized THEN its S3 origin signs with an OAC (no OAI)
    oac_id, oac = one(dev, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    _, distribution = _distribution(dev)
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    # and serves index.html at / over HTTPS only, with the security headers policy
    assert config["DefaultRootObject"] == "index.html"
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    _, headers = one(dev, "AWS::CloudFront::ResponseHeadersPolicy")
    security = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    # No CDN at run time: scripts and styles come from the distribution only.
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert security["FrameOptions"]["FrameOption"] == "DENY"


def test_the_build_and_its_configuration_are_uploaded(dev: Template) -> None:
    # GIVEN the stack WHEN synthesized THEN a deployment uploads web/dist and config.json
    # naming the API, the socket and the Cognito hosted UI, and invalidates the unhashed files
    _, upload = one(dev, "Custom::CDKBucketDeployment")
    props = upload["Properties"]
    assert len(props["SourceObjectKeys"]) == 2
    assert props["DistributionPaths"] == ["/index.html", "/config.json"]
    # config.json's deploy-time values: the HTTP and WebSocket APIs, the client, the hosted UI
    markers = json.dumps(props["SourceMarkers"])
    apis = resources(dev, "AWS::ApiGatewayV2::Api")
    for api_id in apis:
        assert f'{{"Ref": "{api_id}"}}' in markers
    client_id, _ = one(dev, "AWS::Cognito::UserPoolClient")
    assert f'{{"Ref": "{client_id}"}}' in markers
    assert ".amazoncognito.com" in markers


def test_the_app_client_signs_in_with_code_and_pkce(dev: Template) -> None:
    # GIVEN the user pool client WHEN synthesized THEN the hosted UI's code flow, no secret,
    # returning to the CloudFront URL
    distribution_id, _ = _distribution(dev)
    dev.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "AllowedOAuthFlows": ["code"],
            "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthScopes": Match.array_with(["openid", "email"]),
            "GenerateSecret": False,
            "SupportedIdentityProviders": ["COGNITO"],
            "CallbackURLs": [
                {
                    "Fn::Join": [
                        "",
                        ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}, "/"],
                    ]
                }
            ],
        },
    )
    _, domain = one(dev, "AWS::Cognito::UserPoolDomain")
    assert "order-router-dev-" in json.dumps(domain["Properties"]["Domain"])


def test_cors_admits_the_distribution_and_the_admin_methods(dev: Template) -> None:
    # GIVEN the HTTP API WHEN synthesized THEN the dashboard's origin may call it, PUT included
    distribution_id, _ = _distribution(dev)
    dev.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {
            "ProtocolType": "HTTP",
            "CorsConfiguration": Match.object_like(
                {
                    "AllowOrigins": Match.array_with(
                        [
                            {
                                "Fn::Join": [
                                    "",
                                    ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}],
                                ]
                            }
                        ]
                    ),
                    "AllowMethods": Match.array_with(["GET", "POST", "PUT", "PATCH", "DELETE"]),
                }
            ),
        },
    )


def test_the_dashboard_url_is_an_output(dev: Template) -> None:
    # GIVEN the stack WHEN synthesized THEN the outputs name the dashboard and the hosted UI
    outputs = dev.find_outputs("*")
    assert "DashboardUrl" in outputs
    assert "HostedUiUrl" in outputs
