"""migrate: the deploy-time custom resource, against a real Postgres (moto for Secrets Manager)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from functions.migrate import handler
from local.apigw import LocalLambdaContext
from shared.adapters.postgres.migrations import APP_ROLE
from shared.settings import get_settings
from tests.handlers.test_app_role import as_user


@pytest.fixture
def deploy_env(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database as its owner, and the app role's secret in Secrets Manager."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-south-1",
        "ROUTER_DATABASE_URL": empty_database_url,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="ap-south-1")
        arn = secrets.create_secret(
            Name="order-router/dev/db-app",
            SecretString=json.dumps({"username": APP_ROLE, "password": "rotated-by-aws"}),
        )["ARN"]
        monkeypatch.setenv("ROUTER_DB_APP_SECRET_ARN", arn)
        get_settings.cache_clear()
        yield empty_database_url
    get_settings.cache_clear()


def test_create_migrates_and_grants_the_app_role_and_delete_keeps_the_data(
    deploy_env: str,
) -> None:
    # GIVEN an empty database
    # WHEN CloudFormation creates the resource, updates it, and deletes the stack
    context: Any = LocalLambdaContext("migrate")
    created = handler.lambda_handler({"RequestType": "Create"}, context)
    updated = handler.lambda_handler({"RequestType": "Update"}, context)
    deleted = handler.lambda_handler(
        {"RequestType": "Delete", "PhysicalResourceId": created["PhysicalResourceId"]}, context
    )
    # THEN the schema is applied once, the app role can read and write rows but not delete
    # them, and deleting the stack leaves the data alone
    assert created["Data"]["Applied"].startswith("V001")
    assert updated["Data"]["Applied"] == "none"
    assert deleted == {"PhysicalResourceId": created["PhysicalResourceId"]}
    with psycopg.connect(as_user(deploy_env, APP_ROLE)) as conn:
        conn.execute(
            "INSERT INTO brokers (broker_id, display_name, adapter, webhook_auth, "
            "webhook_secret_ref) VALUES ('b1', 'B1', 'paper', 'HMAC', 'b1')"
        )
        conn.execute("UPDATE brokers SET enabled = false WHERE broker_id = 'b1'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM brokers")
    with psycopg.connect(deploy_env) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
