"""The web dashboard: a private S3 bucket behind CloudFront (Origin Access Control).

``make web`` builds ``web/dist``; this construct uploads it with a ``config.json`` naming the
API, the WebSocket and the Cognito hosted UI (the same file local mode serves, with
``"auth": "cognito"``), and invalidates the two files that are not content-hashed. See
``docs/dashboard.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra import nag
from infra.config import DeployConfig

DIST_DIR = Path(__file__).resolve().parents[1] / "web" / "dist"

#: What the browser may load: the bundle from this origin, API calls and the socket to AWS.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https://*.amazonaws.com wss://*.amazonaws.com "
    "https://*.amazoncognito.com; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

_LOGS_REASON = (
    "Static, content-hashed files readable by anyone who reaches the page; what a trader does "
    "is an API call, logged by the HTTP API's access logs and the functions."
)


class DashboardHosting(Construct):
    """The bucket and the distribution; :meth:`deploy` uploads the build once the API exists.

    Attributes
    ----------
    bucket
        Private bucket (all public access blocked, TLS only), read by CloudFront alone.
    distribution
        Serves ``index.html`` at ``/`` over HTTPS with security headers.
    url
        ``https://<distribution domain>``: the dashboard's origin (CORS, Cognito callbacks).

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options (prod retains nothing here: the files are rebuilt from git).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=True,
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=cdk.Duration.days(30))],
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CONTENT_SECURITY_POLICY, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment=f"order-router-{config.stage} dashboard",
            default_root_object="index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_200,
            default_behavior=cloudfront.BehaviorOptions(
                # Origin Access Control: the bucket policy admits this distribution only.
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
            ),
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        self._acknowledge()

    def deploy(self, config_json: Mapping[str, object], *, dist_dir: Path = DIST_DIR) -> None:
        """Upload the build and its ``config.json``; invalidate what is not content-hashed.

        Parameters
        ----------
        config_json
            The dashboard's ``config.json`` (tokens resolve at deploy time).
        dist_dir
            The build (``make web``).

        Raises
        ------
        FileNotFoundError
            When the dashboard is not built.
        """
        if not (dist_dir / "index.html").is_file():
            raise FileNotFoundError(f"{dist_dir} has no index.html: run `make web` first")
        s3deploy.BucketDeployment(
            self,
            "Upload",
            destination_bucket=self.bucket,
            sources=[
                s3deploy.Source.asset(str(dist_dir)),
                s3deploy.Source.json_data("config.json", dict(config_json)),
            ],
            distribution=self.distribution,
            distribution_paths=["/index.html", "/config.json"],
            memory_limit=256,
        )
        # The upload and auto-delete functions belong to aws-cdk-lib (singletons per stack).
        for function in _cdk_owned_functions(cdk.Stack.of(self)):
            for check, reason in nag.CDK_PROVIDER_FUNCTION.items():
                nag.skip_checkov(function, check, reason)
            owner = function.node.scope
            assert owner is not None  # a CfnResource always has a scope
            nag.acknowledge(
                owner,
                "IAM4",
                "aws-cdk-lib's upload function only writes its own logs with this policy.",
                finding=nag.LAMBDA_BASIC_POLICY,
            )
            for finding in self._wildcards():
                nag.acknowledge(
                    owner,
                    "IAM5",
                    "aws-cdk-lib's upload function copies the build from the CDK asset bucket "
                    "into the dashboard bucket (object wildcards on those two buckets only) and "
                    "invalidates the distribution (no resource-level invalidation permission).",
                    finding=finding,
                )
            nag.acknowledge(
                owner,
                "L1",
                "The upload function's runtime is chosen and kept current by aws-cdk-lib.",
            )
            role = owner.node.try_find_child("ServiceRole")
            policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
            if policy is not None:
                nag.skip_checkov(
                    policy,
                    "CKV_AWS_111",
                    "Writes are to the dashboard bucket's objects only; the one unconstrained "
                    "action is cloudfront:CreateInvalidation, which has no resource-level form.",
                )

    def _wildcards(self) -> list[str]:
        stack = cdk.Stack.of(self)
        assets = (
            f"cdk-{cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER}-assets-"
            f"{stack.account}-{stack.region}"
        )
        actions = ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
        return [
            "Resource::*",
            f"Resource::arn:aws:s3:::{assets}/*",
            f"Resource::{nag.logical_ref(stack, self.bucket.bucket_arn)}/*",
            *(f"Action::{action}" for action in actions),
        ]

    def _acknowledge(self) -> None:
        nag.skip_checkov(self.bucket, "CKV_AWS_18", _LOGS_REASON)
        nag.acknowledge(self.bucket, "S1", _LOGS_REASON)
        nag.skip_checkov(self.distribution, "CKV_AWS_86", _LOGS_REASON)
        nag.acknowledge(self.distribution, "CFR3", _LOGS_REASON)
        waf = (
            "The distribution serves static files only; the API behind the dashboard has its "
            "own throttling (stage limits) and JWT authorizer, which a WAF here would not see."
        )
        for check in ("CKV_AWS_68", "CKV2_AWS_47"):
            nag.skip_checkov(self.distribution, check, waf)
        nag.acknowledge(self.distribution, "CFR2", waf)
        geo = "Traders and operators may sign in from anywhere; Cognito decides who gets in."
        nag.skip_checkov(self.distribution, "CKV_AWS_374", geo)
        nag.acknowledge(self.distribution, "CFR1", geo)
        certificate = (
            "The default *.cloudfront.net certificate: a custom domain and ACM certificate are "
            "a deployment choice (docs/dashboard.md); the viewer policy still forces HTTPS."
        )
        for check in ("CKV2_AWS_42", "CKV_AWS_174"):
            nag.skip_checkov(self.distribution, check, certificate)
        nag.acknowledge(self.distribution, "CFR4", certificate)
        nag.skip_checkov(
            self.distribution,
            "CKV_AWS_310",
            "One origin: the bucket is regional and S3's own availability covers it; a second "
            "origin would need cross-region replication for static files rebuilt from git.",
        )


_CDK_OWNED = ("Custom::CDKBucketDeployment", "Custom::S3AutoDeleteObjectsCustomResourceProvider")


def _cdk_owned_functions(stack: cdk.Stack) -> list[cdk.CfnResource]:
    return [
        node
        for node in stack.node.find_all()
        if isinstance(node, cdk.CfnResource)
        and node.cfn_resource_type == "AWS::Lambda::Function"
        and any(part in node.node.path for part in _CDK_OWNED)
    ]
