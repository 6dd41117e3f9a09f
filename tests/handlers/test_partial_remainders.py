"""Partial-fill remainders are re-routed, end to end with the paper brokers on real Postgres.

Every paper broker fills part of each child and cancels the rest (partialFillRate 1): the
remainder goes to the next broker, which fills part of it, and so on until no broker is left.
"""

from __future__ import annotations

from typing import Any

from functions.route_order import handler as route_order
from local import seed
from shared.domain.contracts import DetailType
from shared.domain.execution import ExecutionReport
from shared.wiring import Wiring
from tests.handlers.support import API, RELIABLE, call

SMART = f"{API}/orders/smart"


def rows(wiring: Wiring, sql: str, *params: Any) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        return list(conn.execute(sql, params).fetchall())


def every_broker_part_fills(wiring: Wiring) -> None:
    for config in seed.seed_brokers():
        wiring.brokers.upsert(
            config.model_copy(
                update={
                    "rate_limit_per_s": 100_000,
                    "adapter_config": {
                        **config.adapter_config,
                        **RELIABLE,
                        "partialFillRate": 1.0,
                    },
                }
            )
        )


def test_each_remainder_goes_to_the_next_broker_and_the_order_never_over_fills(
    wiring: Wiring,
) -> None:
    # GIVEN brokers that each fill 30-90 % of a child and cancel the rest
    every_broker_part_fills(wiring)
    body = {"symbol": "RELIANCE", "side": "BUY", "quantity": 500, "orderType": "MARKET"}
    # WHEN an order is routed and its postbacks tracked
    status, result, _ = call(route_order, "POST", SMART, body={**body, "clientOrderId": "part"})
    assert status == 200, result
    details = rows(
        wiring,
        "SELECT detail FROM event_outbox WHERE detail_type = %s ORDER BY id",
        DetailType.EXECUTION_REPORTED,
    )
    wiring.tracker.track_batch(
        [ExecutionReport.model_validate(d["detail"]["report"]) for d in details]
    )
    # THEN each cascade carries exactly the unfilled remainder of the child it came from
    children = rows(
        wiring,
        "SELECT child_order_id, broker_id, quantity, filled_quantity, status, attempt"
        " FROM child_orders ORDER BY attempt, child_order_id",
    )
    assert {c["status"] for c in children} == {"CANCELLED"}
    cascades = result["cascades"]
    assert cascades, "a partial fill's remainder must be re-routed"
    for cascade in cascades:
        assert cascade["reason"] == "partial fill: unfilled remainder re-routed"
    by_attempt: dict[int, list[dict[str, Any]]] = {}
    for child in children:
        by_attempt.setdefault(child["attempt"], []).append(child)
    for attempt, kids in by_attempt.items():
        if attempt == 1:
            continue
        before = by_attempt[attempt - 1]
        assert sum(k["quantity"] for k in kids) <= sum(
            b["quantity"] - b["filled_quantity"] for b in before
        )
    # AND no broker got the same order twice, and the order never holds more than it asked
    brokers = [c["broker_id"] for c in children if c["attempt"] > 1]
    assert len(brokers) == len(set(brokers))
    filled = sum(c["filled_quantity"] for c in children)
    assert 0 < filled <= 500
    assert rows(wiring, "SELECT status FROM orders") == [{"status": "COMPLETED"}]
    assert result["status"] == "ROUTED"
