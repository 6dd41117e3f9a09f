"""Split an order across brokers at the exact minimum of the engine's objective.

The objective of sending ``q`` shares to broker ``b`` (INR, floats: this is the inner loop) is::

    f_b(q) = q (a_b + tau_b(n)) + n (brokerage_b(q / n) x g + child_cost) + fixed_b,
    n = ceil(q / freeze_b)

* ``a_b`` (INR a share) gathers what is linear in ``q``: half spread, net slippage, the expected
  non-fill penalty and statutory charges, each weighted by the objective (see ``Valuation``);
* ``tau_b(n)`` (INR a share) values the expected time to fill of a child sent in ``n`` slices:
  ``time_linear x T + time_sqrt x sqrt(T)`` with ``T = time_base + (n - 1) time_pace`` seconds;
* ``brokerage_b(turnover) = clamp(rate x turnover, minimum, cap)`` per order, ``g`` is 1 + GST
  times the objective's weight on charges; ``fixed_b`` is the DP charge of a delivery sell.

Market impact is not here: every broker reaches the same exchange order book, so impact depends
on the order's total quantity only and is the same for every split (the engine adds it).

**Exactness.** On whole lots, ``f_b`` is affine on each *piece*: an interval of lot counts with
one slice count ``n`` and one brokerage regime (minimum, rate, cap). Fix a piece for every
broker of a plan: what is left is a linear programme with one equality (the lots sum to the
order) and boxes, whose optimum (fill the pieces in order of slope) has every broker but at most
one at an end of its piece. So some optimal plan has all brokers but one, the *free* one, at a
piece end (a *breakpoint*). ``optimise`` therefore enumerates, for each free broker, the other
brokers' breakpoints by dynamic programming over ``(brokers used, lots placed)`` (two partial
plans with the same pair have the same completions, so only the cheaper is kept), and gives the
free broker the remaining lots. Partial plans whose cost plus a valid lower bound on the rest
reaches the best complete plan are dropped (branch and bound). The result is the exact optimum
over every plan of at most ``max_brokers`` brokers; no candidate list is pruned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_INF = math.inf

_Pairs = tuple[tuple[int, int], ...]


@dataclass(slots=True)  # not frozen: frozen dataclasses build 3x slower, and this is per call
class BrokerCostModel:
    """One eligible broker's objective for this order, in floats (INR, shares, seconds).

    Attributes
    ----------
    rank
        Position in the broker-id order: the deterministic tie-breaker.
    linear
        INR per share, weighted by the objective: half spread + net slippage + non-fill penalty
        + statutory charges.
    time_base, time_pace
        Expected seconds to fill a child of one slice, and the seconds each further slice adds.
    time_linear, time_sqrt
        The objective's value of time: ``time_linear x T + time_sqrt x sqrt(T)`` INR a share.
    fixed
        INR paid once when the broker is used (DP charge on a delivery sell, weighted).
    child_cost
        INR per child order (slice).
    rate, minimum, cap
        Brokerage of one order: ``clamp(rate x turnover, minimum, cap)`` (rate per INR).
    charge_factor
        ``(1 + GST) x`` the objective's weight on charges, applied to brokerage.
    price
        Reference price (INR a share).
    slice_shares
        Largest child (freeze quantity in whole lots) or ``None``.
    lo_single, lo_split, hi
        Smallest quantity alone, smallest quantity in a split, largest quantity (shares).
    """

    broker_id: str
    rank: int
    linear: float
    time_base: float
    time_pace: float
    time_linear: float
    time_sqrt: float
    fixed: float
    child_cost: float
    rate: float
    minimum: float
    cap: float | None
    charge_factor: float
    price: float
    slice_shares: int | None
    lo_single: int
    lo_split: int
    hi: int

    def children(self, q: int) -> int:
        """Child orders needed for ``q`` shares (slices under the freeze quantity)."""
        return 1 if self.slice_shares is None else -(-q // self.slice_shares)

    def seconds(self, n: int) -> float:
        """Expected seconds to fill a child sent in ``n`` slices."""
        return self.time_base + (n - 1) * self.time_pace

    def per_share(self, n: int) -> float:
        """Slope of the objective (INR a share) while the child has ``n`` slices."""
        t = self.time_base + (n - 1) * self.time_pace
        return self.linear + self.time_linear * t + self.time_sqrt * math.sqrt(t)

    def cost(self, q: int) -> float:
        """Exact objective (INR) of sending ``q > 0`` shares to this broker."""
        n = 1 if self.slice_shares is None else -(-q // self.slice_shares)
        per_order = self.price * q / n * self.rate
        per_order = max(per_order, self.minimum)
        if self.cap is not None and per_order > self.cap:
            per_order = self.cap
        return (
            q * self.per_share(n)
            + n * (per_order * self.charge_factor + self.child_cost)
            + self.fixed
        )

    def floor_per_share(self) -> float:
        """A lower bound on ``cost(q) / q`` less :meth:`floor_fixed` (slopes grow with ``n``).

        Without a cap, ``n`` orders pay at least ``rate x turnover`` in all.
        """
        brokerage = self.rate * self.price * self.charge_factor if self.cap is None else 0.0
        return self.per_share(1) + brokerage

    def floor_fixed(self) -> float:
        """What using the broker costs at least, whatever the quantity (one child, DP)."""
        return self.fixed + self.child_cost

    def breakpoints(self, lot: int) -> list[int]:
        """Ends of the affine pieces of :meth:`cost` within ``[lo_split, hi]``, in lots, sorted.

        Pieces break where the slice count changes and, within a slice count ``n``, where the
        brokerage of one order reaches its minimum or cap (``q = n x minimum / (rate x P)``).
        Around a kink both neighbouring lot counts are ends, so rounding cannot hide one.
        """
        lo, hi = self.lo_split // lot, self.hi // lot
        if lo > hi:
            return []
        points = {lo, hi}
        if self.slice_shares is None:
            pieces = [(1, lo, hi)]
        else:
            s = self.slice_shares // lot
            pieces = [
                (n, max(lo, (n - 1) * s + 1), min(hi, n * s))
                for n in range(-(-lo // s), -(-hi // s) + 1)
            ]
        per_lot = self.rate * self.price * lot
        kinks = [] if per_lot <= 0 else [self.minimum / per_lot]
        if kinks and self.cap is not None:
            kinks.append(self.cap / per_lot)
        for n, start, end in pieces:
            points.add(start)
            points.add(end)
            for kink in kinks:
                edge = math.floor(n * kink)
                if start <= edge < end:
                    points.add(edge)
                    points.add(edge + 1)
        return sorted(points)


@dataclass(frozen=True, slots=True)
class Plan:
    """Shares per broker (parallel to ``models``' ranks) and the plan's exact cost."""

    quantities: _Pairs
    """``(rank, shares)`` pairs, shares > 0, sorted by rank."""
    cost: float


@dataclass(frozen=True, slots=True)
class Optimum:
    """The best plan, and the best plan that does without the best plan's main broker.

    ``runner_up_cost`` is ``inf`` when no plan does without it; ``states`` counts the partial
    plans the search kept (a measure of its work).
    """

    best: Plan
    runner_up_cost: float
    states: int


class _Search:
    """Branch and bound over breakpoints for one set of brokers (see the module docstring)."""

    def __init__(
        self, models: Sequence[BrokerCostModel], total: int, lot: int, max_brokers: int
    ) -> None:
        self.models = models
        self.total = total
        self.lot = lot
        self.max_brokers = max_brokers
        self.best: tuple[float, _Pairs] | None = None
        self.states = 0

    def offer(self, cost: float, pairs: _Pairs) -> None:
        plan = (cost, pairs)
        if self.best is None or plan < self.best:
            self.best = plan

    def run(self, members: Sequence[int]) -> tuple[float, _Pairs] | None:
        models, total = self.models, self.total
        for i in members:
            m = models[i]
            if m.lo_single <= total <= m.hi:
                self.offer(m.cost(total), ((m.rank, total),))
        if self.max_brokers < 2:
            return self.best
        pool = [i for i in members if models[i].lo_split <= min(models[i].hi, total)]
        # Cheapest first: good plans are found early and bound the rest.
        pool.sort(key=lambda i: (models[i].floor_per_share(), i))
        points = {i: models[i].breakpoints(self.lot) for i in pool}
        for free in pool:
            self._free(free, [i for i in pool if i != free], points)
        return self.best

    def _free(self, free: int, others: Sequence[int], points: dict[int, list[int]]) -> None:
        """Plans in which ``free`` takes what the others' breakpoints leave."""
        models, lot = self.models, self.lot
        lots = self.total // lot
        fm = models[free]
        free_lo, free_hi = fm.lo_split // lot, fm.hi // lot
        if free_lo > free_hi:
            return
        room = lots - free_lo
        # floor[k]: least INR a lot for whatever is still unplaced after others[:k].
        floor = [0.0] * (len(others) + 1)
        floor[-1] = fm.floor_per_share() * lot
        for k in range(len(others) - 1, -1, -1):
            floor[k] = min(floor[k + 1], models[others[k]].floor_per_share() * lot)
        base = fm.floor_fixed()
        # (brokers used, lots placed) -> (cost, pairs): equal keys have equal completions.
        states: dict[tuple[int, int], tuple[float, _Pairs]] = {(0, 0): (0.0, ())}
        largest = self.max_brokers - 1
        for k, i in enumerate(others):
            m = models[i]
            rank = m.rank
            step = floor[k + 1]
            grown = dict(states)
            for (used, placed), (cost, pairs) in states.items():
                if used >= largest:
                    continue
                for x in points[i]:
                    if placed + x > room:
                        break
                    c = cost + m.cost(x * lot)
                    key = (used + 1, placed + x)
                    if (
                        self.best is not None
                        and c + base + (lots - placed - x) * step >= self.best[0]
                    ):
                        continue
                    known = grown.get(key)
                    if known is None or c < known[0]:
                        grown[key] = (c, (*pairs, (rank, x * lot)))
            states = grown
        self.states += len(states)
        for (used, placed), (cost, pairs) in states.items():
            rest = lots - placed
            if used and free_lo <= rest <= free_hi:
                self.offer(
                    cost + fm.cost(rest * lot), tuple(sorted((*pairs, (fm.rank, rest * lot))))
                )


def optimise(
    models: Sequence[BrokerCostModel], total: int, lot: int, *, max_brokers: int
) -> Optimum | None:
    """The cheapest plan for ``total`` shares over at most ``max_brokers`` brokers (exact).

    Parameters
    ----------
    models
        Eligible brokers' cost models, sorted by ``rank``.
    total, lot
        Order quantity and the common lot size (shares); ``total`` is a multiple of ``lot``.
    max_brokers
        Largest number of brokers a plan may use.

    Returns
    -------
    Optimum | None
        ``None`` when no plan can fill the order (capacities too small). The runner-up is the
        best plan without the best plan's largest allocation: what the decision's margin is.
    """
    search = _Search(models, total, lot, max_brokers)
    best = search.run(range(len(models)))
    if best is None:
        return None
    main = max(best[1], key=lambda pair: (pair[1], -pair[0]))[0]
    rival = _Search(models, total, lot, max_brokers)
    runner_up = rival.run([i for i in range(len(models)) if models[i].rank != main])
    return Optimum(
        best=Plan(quantities=best[1], cost=best[0]),
        runner_up_cost=_INF if runner_up is None else runner_up[0],
        states=search.states + rival.states,
    )
