"""Capacity: reserved concurrency, pool sizes and the database connection budget, per stage.

Every number that bounds how many database connections the functions can open lives here, so
that the arithmetic in ``docs/infrastructure.md`` ("Capacity") can be checked against one table:
the cluster's maximum ACU gives Aurora's ``max_connections``, the RDS Proxy may use
``proxy_max_connections_percent`` of it, and each function behind the proxy may hold at most
``reserved_concurrency * db_pool_max`` of those connections at peak. :func:`for_stage` refuses
a table whose peak exceeds the budget, so an over-committed edit fails synthesis.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

from infra.config import Stage

#: Aurora PostgreSQL Serverless v2 ``max_connections`` by maximum ACU (AWS Aurora User Guide,
#: "Maximum connections for Aurora Serverless v2"): ``LEAST(DBInstanceClassMemory/9531392,
#: 5000)`` with the memory of the maximum ACU. Only the documented points are listed.
AURORA_PG_MAX_CONNECTIONS: Mapping[float, int] = {
    1: 189,
    4: 823,
    8: 1669,
    16: 3360,
    32: 5000,
    64: 5000,
    128: 5000,
}
#: With a minimum capacity below 1 ACU (0 or 0.5), Aurora PostgreSQL caps ``max_connections``
#: at 2,000 whatever the maximum.
LOW_MIN_ACU_CAP = 2000

#: Lambda keeps at least this much of an account's concurrency unreserved (of the default 1,000
#: per Region), so reserved concurrency of all functions of an account must stay below the rest.
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100


@dataclass(frozen=True)
class FunctionCapacity:
    """How far one function may scale and what it may hold open.

    Attributes
    ----------
    reserved_concurrency
        Lambda reserved concurrency: the most containers that run at once (and a floor no
        other function can take from it).
    db_pool_max
        ``ROUTER_DB_POOL_MAX`` of each container; ``None`` for a function without a pool
        (``migrate`` opens one direct connection at a time).
    via_proxy
        Whether its connections go through the RDS Proxy (``migrate`` goes to the writer).
    """

    reserved_concurrency: int
    db_pool_max: int | None = None
    via_proxy: bool = True

    @property
    def peak_connections(self) -> int:
        """Connections this function can hold when every container is busy."""
        return self.reserved_concurrency * (self.db_pool_max or 0)


@dataclass(frozen=True)
class StageCapacity:
    """The database size, the proxy's share of it and every function's limits in one stage.

    Attributes
    ----------
    aurora_min_acu, aurora_max_acu
        Serverless v2 capacity range of the cluster.
    proxy_max_connections_percent
        The proxy's ``MaxConnectionsPercent``: the rest of ``max_connections`` is left to
        ``migrate``, secret rotation, the Data API and operators, which reach the writer directly.
    functions
        Limits per function name (folder under ``functions/``).
    api_rate_per_s, api_burst
        The HTTP API stage's throttle: steady requests per second and the token bucket a burst
        may take above it (docs/capacity.md).
    route_order_design_s
        The ``route_order`` duration the throttle is sized with: a smart order's p99 with real
        brokers (the placement round trips dominate; analyze and reads take milliseconds).
    """

    aurora_min_acu: float
    aurora_max_acu: float
    proxy_max_connections_percent: int
    functions: Mapping[str, FunctionCapacity]
    api_rate_per_s: int = 500
    api_burst: int = 1000
    route_order_design_s: float = 0.25

    @property
    def route_order_concurrency_needed(self) -> int:
        """Containers ``route_order`` needs at the steady throttle (Little's law)."""
        return math.ceil(self.api_rate_per_s * self.route_order_design_s)

    @property
    def max_connections(self) -> int:
        """Aurora's ``max_connections`` for this capacity range."""
        try:
            documented = AURORA_PG_MAX_CONNECTIONS[self.aurora_max_acu]
        except KeyError:
            raise ValueError(
                f"no documented max_connections for {self.aurora_max_acu} ACU: use one of "
                f"{sorted(AURORA_PG_MAX_CONNECTIONS)} or add the documented value"
            ) from None
        return min(documented, LOW_MIN_ACU_CAP) if self.aurora_min_acu < 1 else documented

    @property
    def proxy_budget(self) -> int:
        """Database connections the proxy may open."""
        return self.max_connections * self.proxy_max_connections_percent // 100

    @property
    def proxy_peak(self) -> int:
        """Connections the functions behind the proxy can ask for at once, at most."""
        return sum(f.peak_connections for f in self.functions.values() if f.via_proxy)

    @property
    def reserved_total(self) -> int:
        """Reserved concurrency of the stack's functions together."""
        return sum(f.reserved_concurrency for f in self.functions.values())

    def function(self, name: str) -> FunctionCapacity:
        """The limits of one function.

        Raises
        ------
        KeyError
            When the function has no row: every function must be sized here.
        """
        if name not in self.functions:
            raise KeyError(f"{name} has no row in infra/capacity.py: size it before deploying")
        return self.functions[name]

    def check(self) -> None:
        """Refuse a table that over-commits the proxy or the account.

        Raises
        ------
        ValueError
            When the peak exceeds the proxy's budget or the account's reservable concurrency,
            or the API's steady throttle admits more orders than ``route_order``'s reserved
            concurrency can serve (they would be throttled by Lambda as 503s, not by the API
            as 429s), or the burst is not above the steady rate.
        """
        if self.proxy_peak > self.proxy_budget:
            raise ValueError(
                f"functions can open {self.proxy_peak} connections through the proxy, "
                f"its budget is {self.proxy_budget}"
            )
        if self.reserved_total > ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM:
            raise ValueError(
                f"{self.reserved_total} reserved concurrency leaves less than "
                f"{UNRESERVED_MINIMUM} of {ACCOUNT_CONCURRENCY} unreserved"
            )
        self._check_throttle()

    def _check_throttle(self) -> None:
        if self.api_burst <= self.api_rate_per_s:
            raise ValueError(f"burst {self.api_burst} must exceed the rate {self.api_rate_per_s}")
        route = self.functions.get("route_order")
        if route is not None and route.reserved_concurrency < self.route_order_concurrency_needed:
            raise ValueError(
                f"{self.api_rate_per_s} requests/s for {self.route_order_design_s} s each need "
                f"{self.route_order_concurrency_needed} route_order containers, "
                f"{route.reserved_concurrency} are reserved"
            )


# One container serves one invocation at a time and no code path uses the database from two
# threads, so a container holds one connection; the pool allows a second so that a nested use
# waits for nothing. The budget counts both.
_POOL = 2

CAPACITY: Mapping[Stage, StageCapacity] = {
    "dev": StageCapacity(
        aurora_min_acu=0,
        aurora_max_acu=4,
        proxy_max_connections_percent=80,
        functions={
            "route_order": FunctionCapacity(20, _POOL),
            "broker_connections": FunctionCapacity(2, _POOL),
            "broker_webhook": FunctionCapacity(10, _POOL),
            "track_execution": FunctionCapacity(5, _POOL),
            "outbox_relay": FunctionCapacity(1, _POOL),
            "reconcile": FunctionCapacity(1, _POOL),
            "market_refresh": FunctionCapacity(2, _POOL),
            "rollup_analytics": FunctionCapacity(1, _POOL),
            "migrate": FunctionCapacity(1, via_proxy=False),
            "ws_connect": FunctionCapacity(10, _POOL),
            "admin": FunctionCapacity(2, _POOL),
        },
        api_rate_per_s=80,
        api_burst=160,
    ),
    "prod": StageCapacity(
        aurora_min_acu=0.5,
        aurora_max_acu=16,
        proxy_max_connections_percent=80,
        functions={
            "route_order": FunctionCapacity(300, _POOL),
            "broker_connections": FunctionCapacity(10, _POOL),
            "broker_webhook": FunctionCapacity(100, _POOL),
            "track_execution": FunctionCapacity(25, _POOL),
            "outbox_relay": FunctionCapacity(1, _POOL),
            "reconcile": FunctionCapacity(1, _POOL),
            "market_refresh": FunctionCapacity(2, _POOL),
            "rollup_analytics": FunctionCapacity(1, _POOL),
            "migrate": FunctionCapacity(1, via_proxy=False),
            "ws_connect": FunctionCapacity(100, _POOL),
            "admin": FunctionCapacity(5, _POOL),
        },
        # >= 1,000 orders/s steady (the specification), 2x that in a burst: docs/capacity.md.
        api_rate_per_s=1200,
        api_burst=2400,
    ),
}


TABLE_HEADER = (
    "| stage | function | pool per container | reserved concurrency | connections at peak |",
    "| --- | --- | --- | --- | --- |",
)


def markdown_table(capacity: Mapping[Stage, StageCapacity] = CAPACITY) -> str:
    """The capacity table of ``docs/infrastructure.md`` ("Capacity"), generated from ``capacity``.

    The document holds this text verbatim (``tests/infra/test_capacity.py`` compares them), so
    it cannot drift from the numbers the stack is synthesised with. Print it with
    ``python -m infra.capacity``.

    Returns
    -------
    str
        The table, then the paragraph on the account's reserved concurrency.
    """
    lines = list(TABLE_HEADER)
    for stage, table in capacity.items():
        proxied = {n: f for n, f in table.functions.items() if f.via_proxy}
        lines += [
            f"| {stage} | `{name}` | {f.db_pool_max} | {f.reserved_concurrency} | "
            f"{f.peak_connections} |"
            for name, f in proxied.items()
        ]
        lines.append(
            f"| {stage} | **sum through the proxy** | | "
            f"{sum(f.reserved_concurrency for f in proxied.values())} | "
            f"**{table.proxy_peak}** of {table.proxy_budget} |"
        )
        lines += [
            f"| {stage} | `{name}` | {f.db_pool_max or 'none'} | {f.reserved_concurrency} | "
            f"{f.peak_connections or f.reserved_concurrency} (direct to the writer, outside "
            "the proxy) |"
            for name, f in table.functions.items()
            if not f.via_proxy
        ]
    totals = {stage: table.reserved_total for stage, table in capacity.items()}
    floor = {stage: total + UNRESERVED_MINIMUM for stage, total in totals.items()}
    reserved = ", ".join(f"{total} in {stage}" for stage, total in totals.items())
    quotas = " or ".join(f"{q} ({stage})" for stage, q in floor.items())
    largest = max(totals, key=lambda stage: totals[stage])
    paragraph = (
        f"Reserved concurrency of the stack: {reserved}. Lambda keeps {UNRESERVED_MINIMUM} of an "
        f"account's concurrency unreserved, so a deployment needs an account concurrency quota "
        f"of at least {quotas}; new accounts start lower and must ask for the default "
        f"{ACCOUNT_CONCURRENCY:,} first. With {ACCOUNT_CONCURRENCY:,}, {largest} leaves "
        f"{ACCOUNT_CONCURRENCY - totals[largest]} unreserved for everything else in the account."
    )
    lines += ["", textwrap.fill(paragraph, width=98)]
    return "\n".join(lines) + "\n"


def for_stage(stage: Stage) -> StageCapacity:
    """The checked capacity table of a stage.

    Parameters
    ----------
    stage
        ``dev`` or ``prod``.

    Returns
    -------
    StageCapacity
        The table, after :meth:`StageCapacity.check`.
    """
    capacity = CAPACITY[stage]
    capacity.check()
    return capacity


if __name__ == "__main__":
    print(markdown_table(), end="")
