"""Trader identity: a Cognito user pool, the TRADER group and the dashboard's app client."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra import nag
from infra.config import DeployConfig

TRADER_GROUP = "TRADER"
ADMIN_GROUP = "ADMIN"


class TraderAuth(Construct):
    """Cognito user pool of the traders; administrators create users (no self sign-up).

    Attributes
    ----------
    issuer
        The token issuer the JWT authorizer and ``ws_connect`` accept.
    jwks_url
        Where the pool publishes its signing keys.
    audience
        The dashboard app client id (``aud`` of ID tokens, ``client_id`` of access tokens).

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options: prod requires MFA and retains the pool.
    dashboard_urls
        Origins of the web dashboard: its hosted-UI sign-in (authorization code + PKCE)
        returns to ``<url>/`` (docs/dashboard.md).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        dashboard_urls: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "Traders",
            user_pool_name=f"order-router-{config.stage}-traders",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
            ),
            # Traders move money: prod demands a TOTP second factor.
            mfa=cognito.Mfa.REQUIRED if config.is_prod else cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=(
                cognito.FeaturePlan.PLUS if config.is_prod else cognito.FeaturePlan.ESSENTIALS
            ),
            standard_threat_protection_mode=(
                cognito.StandardThreatProtectionMode.FULL_FUNCTION if config.is_prod else None
            ),
            deletion_protection=config.is_prod,
            removal_policy=(
                cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
            ),
        )
        self.group = cognito.UserPoolGroup(
            self,
            "TraderGroup",
            user_pool=self.user_pool,
            group_name=TRADER_GROUP,
            description="May route orders and read their own analytics",
        )
        self.admin_group = cognito.UserPoolGroup(
            self,
            "AdminGroup",
            user_pool=self.user_pool,
            group_name=ADMIN_GROUP,
            description="Operators: broker registry and status, profiles, quarantine, audit",
        )
        self.client = self.user_pool.add_client(
            "Dashboard",
            generate_secret=False,
            # Password auth lets operators fetch a dev token from the CLI; prod keeps SRP only.
            auth_flows=cognito.AuthFlow(user_srp=True, user_password=not config.is_prod),
            prevent_user_existence_errors=True,
            access_token_validity=cdk.Duration.minutes(60),
            id_token_validity=cdk.Duration.minutes(60),
            refresh_token_validity=cdk.Duration.days(1),
            # The dashboard signs in through the hosted UI: code flow, PKCE, no client secret.
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[f"{url}/" for url in dashboard_urls] or None,
                logout_urls=[f"{url}/" for url in dashboard_urls] or None,
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
        )
        self.domain = self.user_pool.add_domain(
            "HostedUi",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"order-router-{config.stage}-{cdk.Aws.ACCOUNT_ID}"
            ),
        )
        #: The hosted UI's base URL (``/oauth2/authorize``, ``/oauth2/token``, ``/logout``).
        self.hosted_ui_url = self.domain.base_url()
        region = cdk.Stack.of(self).region
        self.issuer = f"https://cognito-idp.{region}.amazonaws.com/{self.user_pool.user_pool_id}"
        self.jwks_url = f"{self.issuer}/.well-known/jwks.json"
        self.audience = self.client.user_pool_client_id

        if not config.is_prod:
            nag.acknowledge(
                self.user_pool,
                "COG2",
                "Dev pools hold test traders only; prod requires TOTP MFA.",
            )
            for rule in ("COG3", "COG8"):
                nag.acknowledge(
                    self.user_pool,
                    rule,
                    "The Plus feature plan (threat protection) is paid; prod enables it.",
                )
