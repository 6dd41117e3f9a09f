"""migrate: a CloudFormation custom resource that applies the schema migrations at deploy time."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import get_secret
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.postgres.migrations import apply_migrations
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
    """Apply pending migrations on Create and Update; nothing on Delete (data outlives stacks)."""
    request_type = event.get("RequestType", "Create")
    if request_type == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    applied = apply_migrations(database_url(get_settings()))
    logger.info("migrations applied", applied=applied)
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Applied": ",".join(applied) or "none"}}
