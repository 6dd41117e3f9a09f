"""Data: Aurora Serverless v2, RDS Proxy, rotation, ElastiCache Serverless, migrations."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template

from tests.infra.conftest import function_by_handler, one


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
