"""Data: Aurora Serverless v2, RDS Proxy, rotation, ElastiCache Serverless, migrations."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from shared.settings import APP_DB_ROLE, Settings
from tests.infra.support import function_by_handler, one, policy_statements, resources


def test_aurora_postgres_serverless_v2_encrypted(dev: Template) -> None:
    # GIVEN the dev stack WHEN synthesized THEN Aurora PG 17 SLv2 is encrypted, IAM auth on
    _, cluster = one(dev, "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["EngineVersion"].startswith("17.")
    assert props["StorageEncrypted"] is True
    assert "ServerlessV2ScalingConfiguration" in props
    dev.has_resource_properties("AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless"})


def test_prod_database_is_protected(prod: Template, dev: Template) -> None:
    # GIVEN prod WHEN synthesized THEN deletion protection and a final snapshot; dev neither
    prod.has_resource(
        "AWS::RDS::DBCluster",
        {
            "DeletionPolicy": "Snapshot",
            "Properties": Match.object_like({"DeletionProtection": True}),
        },
    )
    dev.has_resource(
        "AWS::RDS::DBCluster",
        {
            "DeletionPolicy": "Delete",
            "Properties": Match.object_like({"DeletionProtection": False}),
        },
    )
    assert len(prod.find_resources("AWS::RDS::DBInstance")) == 2


def test_proxy_requires_tls_and_secret_rotates(dev: Template) -> None:
    # GIVEN the cluster WHEN synthesized THEN a TLS-only proxy and a 30-day rotation exist
    dev.has_resource_properties(
        "AWS::RDS::DBProxy", {"EngineFamily": "POSTGRESQL", "RequireTLS": True}
    )
    dev.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {"RotationRules": {"ScheduleExpression": "rate(30 days)"}},
    )


def test_proxy_sets_the_statement_timeout_so_clients_never_pin(dev: Template) -> None:
    # GIVEN the proxy WHEN synthesized THEN its target group runs the functions' statement
    # timeout on every database connection it opens (a client's SET would pin it)
    _, group = one(dev, "AWS::RDS::DBProxyTargetGroup")
    info = group["Properties"]["ConnectionPoolConfigurationInfo"]
    timeout = Settings.model_fields["db_statement_timeout_ms"].default
    assert info["InitQuery"] == f"SET statement_timeout = {timeout}"


def test_cache_is_serverless_valkey_reached_over_tls(dev: Template) -> None:
    # GIVEN the cache WHEN synthesized THEN it is serverless and functions get a rediss:// URL
    _, cache = one(dev, "AWS::ElastiCache::ServerlessCache")
    assert cache["Properties"]["Engine"] == "valkey"
    _, fn = function_by_handler(dev, "route_order")
    url = fn["Properties"]["Environment"]["Variables"]["ROUTER_REDIS_URL"]
    assert url["Fn::Join"][1][0] == "rediss://"
    assert url["Fn::Join"][1][-1] == ":6379/0"


def test_migrations_run_at_deploy_after_the_database(dev: Template) -> None:
    # GIVEN the migrate function WHEN synthesized THEN a custom resource keyed by the migration
    # files' hash invokes it (through the provider) once the cluster exists
    _, resource = one(dev, "Custom::Migrations")
    assert len(resource["Properties"]["MigrationsHash"]) == 64
    assert any(dep.startswith("DatabaseCluster") for dep in resource["DependsOn"])
    migrate_id, migrate = function_by_handler(dev, "migrate")
    env = migrate["Properties"]["Environment"]["Variables"]
    assert "Endpoint.Address" in str(env["ROUTER_DB_HOST"])  # the writer, not the proxy
    dev.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {"USER_ON_EVENT_FUNCTION_ARN": {"Fn::GetAtt": [migrate_id, "Arn"]}}
                )
            }
        },
    )


def _secret_reads(template: Template, function: str) -> str:
    statements = policy_statements(template, function_by_handler(template, function)[0])
    return json.dumps([s["Resource"] for s in statements if "GetSecretValue" in str(s["Action"])])


def test_services_log_in_as_the_app_role_and_only_migrate_holds_the_owner(dev: Template) -> None:
    # GIVEN the database secrets WHEN synthesized THEN the app role's secret is rotated
    # (multi-user, by the admin secret), served by the proxy and read by the services; the
    # admin secret is read by migrate alone
    secrets = {
        v["Properties"]["Name"]: json.dumps(v["Properties"])
        for v in resources(dev, "AWS::SecretsManager::Secret").values()
    }
    assert f'\\"username\\":\\"{APP_DB_ROLE}\\"' in secrets["order-router/dev/db-app"]
    # The admin secret and its attachment are both named after the cluster's secret.
    admin = "DatabaseClusterSecret"
    schedules = resources(dev, "AWS::SecretsManager::RotationSchedule").values()
    assert len(list(schedules)) == 2
    _, proxy = one(dev, "AWS::RDS::DBProxy")
    assert len(proxy["Properties"]["Auth"]) == 2
    for function in (
        "route_order",
        "broker_webhook",
        "track_execution",
        "outbox_relay",
        "reconcile",
        "rollup_analytics",
    ):
        reads = _secret_reads(dev, function)
        assert admin not in reads, function
        assert "DatabaseAppSecret" in reads, function
        env = function_by_handler(dev, function)[1]["Properties"]["Environment"]["Variables"]
        assert "DatabaseAppSecret" in json.dumps(env["ROUTER_DB_SECRET_ARN"])
    migrate_reads = _secret_reads(dev, "migrate")
    assert admin in migrate_reads
    assert "DatabaseAppSecret" in migrate_reads
    # AND the role exists before its first rotation, and a new secret re-runs migrate
    migrations_id, migrations = one(dev, "Custom::Migrations")
    assert "DatabaseAppSecret" in json.dumps(migrations["Properties"]["AppSecretArn"])
    [app_schedule] = [
        s
        for s in resources(dev, "AWS::SecretsManager::RotationSchedule").values()
        if "DatabaseAppSecret" in json.dumps(s["Properties"]["SecretId"])
    ]
    assert migrations_id in app_schedule.get("DependsOn", [])
