"""Capacity: reserved concurrency and pool sizes fit the RDS Proxy's connection budget."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from aws_cdk.assertions import Template

from infra.capacity import (
    ACCOUNT_CONCURRENCY,
    CAPACITY,
    UNRESERVED_MINIMUM,
    FunctionCapacity,
    StageCapacity,
    for_stage,
    markdown_table,
)
from infra.config import Stage
from tests.infra.support import ROOT, one, resources


def _functions(template: Template) -> dict[str, dict[str, Any]]:
    """The service's functions by name (``functions.<name>.handler.lambda_handler``)."""
    found = {}
    for res in resources(template, "AWS::Lambda::Function").values():
        handler = res["Properties"].get("Handler", "")
        if handler.startswith("functions."):
            found[handler.split(".")[1]] = res["Properties"]
    return found


def _capacity(stage: str) -> StageCapacity:
    return CAPACITY[cast(Stage, stage)]


def _template(request: pytest.FixtureRequest, stage: str) -> Template:
    template: Template = request.getfixturevalue(stage)
    return template


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_function_has_its_reserved_concurrency_and_pool(
    request: pytest.FixtureRequest, stage: str
) -> None:
    # GIVEN a stage's template WHEN its functions are read
    functions = _functions(_template(request, stage))
    table = _capacity(stage).functions
    # THEN every function has a row, and its reserved concurrency and pool size are the row's
    assert set(functions) == set(table)
    for name, props in functions.items():
        assert props["ReservedConcurrentExecutions"] == table[name].reserved_concurrency, name
        pool = props["Environment"]["Variables"].get("ROUTER_DB_POOL_MAX")
        expected = table[name].db_pool_max
        assert pool == (None if expected is None else str(expected)), name


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_peak_connections_fit_the_proxy_budget_read_from_the_template(
    request: pytest.FixtureRequest, stage: str
) -> None:
    # GIVEN the cluster's capacity range and the proxy's share, as synthesized
    template = _template(request, stage)
    _, cluster = one(template, "AWS::RDS::DBCluster")
    scaling = cluster["Properties"]["ServerlessV2ScalingConfiguration"]
    proxy_id, _ = one(template, "AWS::RDS::DBProxy")
    _, group = one(template, "AWS::RDS::DBProxyTargetGroup")
    percent = group["Properties"]["ConnectionPoolConfigurationInfo"]["MaxConnectionsPercent"]
    budget = StageCapacity(
        aurora_min_acu=scaling["MinCapacity"],
        aurora_max_acu=scaling["MaxCapacity"],
        proxy_max_connections_percent=percent,
        functions={},
    ).proxy_budget
    # WHEN every function that connects through the proxy is at its reserved concurrency
    proxy_endpoint = {"Fn::GetAtt": [proxy_id, "Endpoint"]}
    peak = 0
    reserved = 0
    for props in _functions(template).values():
        variables = props["Environment"]["Variables"]
        reserved += props["ReservedConcurrentExecutions"]
        if variables.get("ROUTER_DB_HOST") == proxy_endpoint:
            peak += props["ReservedConcurrentExecutions"] * int(variables["ROUTER_DB_POOL_MAX"])
    # THEN the connections they can hold fit the budget, and the account keeps its minimum
    assert 0 < peak <= budget
    assert peak == _capacity(stage).proxy_peak
    assert reserved <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM


def test_budgets_follow_aurora_max_connections() -> None:
    # GIVEN the two stages WHEN their budgets are derived THEN they match the documented values
    dev, prod = for_stage("dev"), for_stage("prod")
    assert (dev.max_connections, dev.proxy_budget) == (823, 658)
    # A minimum below 1 ACU caps Aurora PostgreSQL at 2,000 although 16 ACU documents 3,360.
    assert (prod.max_connections, prod.proxy_budget) == (2000, 1600)
    assert StageCapacity(1, 16, 80, {}).max_connections == 3360


def test_an_over_committed_table_is_refused() -> None:
    # GIVEN a table whose peak exceeds the budget, one that reserves the whole account, and
    # one with an undocumented capacity
    greedy = StageCapacity(0, 4, 80, {"route_order": FunctionCapacity(400, 2)})
    hoarder = StageCapacity(0.5, 16, 80, {"ws_connect": FunctionCapacity(950)})
    odd = StageCapacity(0, 5, 80, {})
    # WHEN / THEN each is refused with the numbers
    with pytest.raises(ValueError, match=r"800 connections .* budget is 658"):
        greedy.check()
    with pytest.raises(ValueError, match="unreserved"):
        hoarder.check()
    with pytest.raises(ValueError, match="no documented max_connections for 5"):
        odd.check()
    with pytest.raises(KeyError, match="no row"):
        greedy.function("reconcile")


def test_a_throttle_route_order_cannot_serve_is_refused() -> None:
    # GIVEN 1,000 requests/s of 0.25 s each against 200 reserved route_order containers, and a
    # burst no larger than the steady rate
    short = StageCapacity(
        0.5, 16, 80, {"route_order": FunctionCapacity(200, 2)}, api_rate_per_s=1000, api_burst=2000
    )
    flat = StageCapacity(0.5, 16, 80, {}, api_rate_per_s=1000, api_burst=1000)
    # WHEN / THEN each is refused with the numbers
    with pytest.raises(ValueError, match="need 250 route_order containers, 200 are reserved"):
        short.check()
    with pytest.raises(ValueError, match="must exceed the rate"):
        flat.check()


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_documented_table_is_the_table(stage: str) -> None:
    # GIVEN docs/infrastructure.md WHEN its capacity rows are read THEN they are the code's
    doc = (ROOT / "docs" / "infrastructure.md").read_text()
    capacity = _capacity(stage)
    for name, row in capacity.functions.items():
        pool = "none" if row.db_pool_max is None else str(row.db_pool_max)
        pattern = rf"\| {stage} \| `{name}` \| {pool} \| {row.reserved_concurrency} \|"
        assert re.search(pattern, doc), pattern
    assert f"| {stage} | **sum through the proxy** |" in doc
    assert f"**{capacity.proxy_peak}** of {capacity.proxy_budget}" in doc


def test_the_documented_table_is_generated_from_the_code_verbatim() -> None:
    # GIVEN the capacity table generated from infra/capacity.py (python -m infra.capacity)
    generated = markdown_table()
    # WHEN docs/infrastructure.md is read
    doc = (ROOT / "docs" / "infrastructure.md").read_text()
    # THEN it holds the generated table and paragraph verbatim (regenerate it after an edit)
    assert generated in doc, "docs/infrastructure.md is stale: paste `python -m infra.capacity`"
    # AND every row of the table is derived: each function of each stage, the sums, the budgets
    for stage, table in CAPACITY.items():
        for name, row in table.functions.items():
            assert f"| {stage} | `{name}` |" in generated
            assert f"| {row.reserved_concurrency} |" in generated
        assert f"**{table.proxy_peak}** of {table.proxy_budget} |" in generated


def test_a_changed_row_changes_the_generated_table() -> None:
    # GIVEN prod's track_execution reserved 40 instead of 25
    prod = CAPACITY["prod"]
    functions = {**prod.functions, "track_execution": FunctionCapacity(40, 2)}
    changed: dict[Stage, StageCapacity] = {
        "prod": StageCapacity(
            aurora_min_acu=prod.aurora_min_acu,
            aurora_max_acu=prod.aurora_max_acu,
            proxy_max_connections_percent=prod.proxy_max_connections_percent,
            functions=functions,
            api_rate_per_s=prod.api_rate_per_s,
            api_burst=prod.api_burst,
        )
    }
    # WHEN the table is generated THEN the row, the sum and the account paragraph follow
    table = markdown_table(changed)
    assert "| prod | `track_execution` | 2 | 40 | 80 |" in table
    assert f"**{prod.proxy_peak + 30}** of {prod.proxy_budget} |" in table
    assert f"{prod.reserved_total + 15} in prod" in table
    assert table not in (ROOT / "docs" / "infrastructure.md").read_text()
