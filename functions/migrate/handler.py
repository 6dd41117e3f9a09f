"""migrate: a CloudFormation custom resource that applies the schema migrations at deploy time."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import get_secret
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.postgres.migrations import apply_migrations, ensure_app_role
from shared.observability import SERVICE
from shared.settings import Settings, get_settings

logger = Logger(service=SERVICE)
PHYSICAL_ID = "order-router-schema"


def database_url(settings: Settings) -> str:
    """URL of the database as its owner: the URL setting, or the admin secret in AWS."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    if settings.db_secret_arn is None or settings.db_host is None:
        raise ValueError("no database configured")
    secret = get_secret(settings.db_secret_arn, transform="json")
    user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
    return (
        f"postgresql://{user}:{password}@{settings.db_host}:{settings.db_port}/"
        f"{settings.db_name}?sslmode=require"
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Apply pending migrations and the app role's grants on Create and Update.

    Nothing happens on Delete: data outlives stacks.
    """
    request_type = event.get("RequestType", "Create")
    if request_type == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    settings = get_settings()
    url = database_url(settings)
    applied = apply_migrations(url)
    logger.info("migrations applied", applied=applied)
    if settings.db_app_secret_arn is not None:
        # The services log in as this role (through the proxy); only this function holds the
        # owner's secret.
        app = get_secret(settings.db_app_secret_arn, transform="json")
        ensure_app_role(url, username=app["username"], password=app["password"])
        logger.info("application role granted", username=app["username"])
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Applied": ",".join(applied) or "none"}}
