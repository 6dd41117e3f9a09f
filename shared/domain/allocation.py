"""Split an order across brokers by minimising its expected total cost.

The cost of sending ``q`` shares to broker ``b`` (INR, floats: this is the inner loop) is::

    c_b(q) = a_b q + k_b q^1.5 + n_b(q) (brokerage_b(per order) x 1.18 + child_cost) + fixed_b

* ``a_b`` (INR a share) gathers the linear parts: half spread, the broker's historical slippage net
  of price improvement, the expected non-fill penalty, statutory charges and the objective's
  score premium;
* ``k_b q^1.5`` is square-root impact, ``q x P x Y sigma sqrt(q / V_b)``;
* ``n_b(q) = ceil(q / freeze)`` child orders, each paying brokerage ``clamp(rate x turnover,
  min, cap)`` plus GST and a fixed per-child cost; ``fixed_b`` is the DP charge of a delivery sell.

Without the per-order terms the problem is convex and separable: its optimum equalises marginal
cost ``a_b + 1.5 k_b sqrt(q_b)`` across the brokers used (water-filling), solved here in closed
form per active set. The per-order terms make it non-convex, so broker subsets are enumerated by
branch and bound: a subset's lower bound is its certain fixed costs plus the continuous
water-filling optimum; only subsets whose bound beats the best exact plan so far are turned into
whole lots and refined by pairwise lot exchanges. Subsets are queued under a closed-form key below
their bound and solved only when they reach the front, which takes the same subsets as solving
them all (see ``_SubsetQueue``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

_INF = math.inf
_EPS = 1e-9
_KEY_SLACK = 1e-3
"""Relative slack of a subset's closed-form key below its bound (see ``_SubsetQueue``)."""
_CONDITION = 1e6
"""Largest ``A^2 w / lo`` for which keys are used (see ``_SubsetQueue._well_conditioned``)."""


@dataclass(slots=True)  # not frozen: frozen dataclasses build 3x slower, and this is per call
class BrokerCostModel:
    """One eligible broker's cost function for this order, in floats (INR and shares).

    Attributes
    ----------
    rank
        Position in the broker-id order: the deterministic tie-breaker.
    linear
        INR per share: half spread + net slippage + non-fill penalty + statutory + premium.
    lb_linear
        ``linear`` plus brokerage per share when brokerage has no cap (it is then at least
        ``rate x turnover``), for the lower bound.
    impact
        ``k`` of ``k q^1.5`` (INR).
    fixed
        INR paid once when the broker is used (DP charge on a delivery sell).
    lb_fixed
        Cost certain as soon as the broker is used: ``fixed`` + one child + the least brokerage
        one order can cost.
    child_cost, rate, minimum, cap, gst_factor, price
        Per-child cost, brokerage rate (per INR), minimum and cap (INR), 1 + GST, reference price.
    slice_shares
        Largest child (freeze quantity in whole lots) or ``None``.
    lo_single, lo_split, hi
        Smallest quantity alone, smallest quantity in a split, largest quantity (shares).
    """

    broker_id: str
    rank: int
    linear: float
    lb_linear: float
    impact: float
    fixed: float
    lb_fixed: float
    child_cost: float
    rate: float
    minimum: float
    cap: float | None
    gst_factor: float
    price: float
    slice_shares: int | None
    lo_single: int
    lo_split: int
    hi: int

    @property
    def weight(self) -> float:
        """``1 / (1.5 k)^2``: ``q(lam) = weight x (lam - a)^2`` inverts the marginal cost."""
        slope = 1.5 * self.impact
        return 1.0 / (slope * slope)

    def children(self, q: int) -> int:
        """Child orders needed for ``q`` shares (slices under the freeze quantity)."""
        return 1 if self.slice_shares is None else -(-q // self.slice_shares)

    def cost(self, q: int) -> float:
        """Exact expected cost (INR) of sending ``q > 0`` shares to this broker."""
        n = 1 if self.slice_shares is None else -(-q // self.slice_shares)
        per_order = self.price * q / n * self.rate
        per_order = max(per_order, self.minimum)
        if self.cap is not None and per_order > self.cap:
            per_order = self.cap
        return (
            q * (self.linear + self.impact * math.sqrt(q))
            + n * (per_order * self.gst_factor + self.child_cost)
            + self.fixed
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Shares per broker (parallel to ``models``' ranks) and the plan's exact cost."""

    quantities: tuple[tuple[int, int], ...]
    """``(rank, shares)`` pairs, shares > 0, sorted by rank."""
    cost: float


@dataclass(frozen=True, slots=True)
class Optimum:
    """The best plan and the cost of the best other plan evaluated (``inf`` if none)."""

    best: Plan
    runner_up_cost: float
    subsets_evaluated: int


def _level(
    levels: Sequence[float], weights: Sequence[float], free: Sequence[int], remaining: float
) -> float:
    """Marginal-cost level ``lam`` at which the free brokers take ``remaining`` shares.

    ``q_b(lam) = w_b (lam - a_b)^2`` for ``lam > a_b`` (``w_b = 1 / (1.5 k_b)^2``); on an active
    set (the brokers with the smallest ``a_b``) the sum is quadratic in ``lam``:
    ``lam = mean + sqrt((R - S) / W)`` with ``W = sum(w)``, ``mean`` the ``w``-weighted mean of
    ``a`` and ``S = sum(w (a - mean)^2)``, accumulated with West's update (stable when ``w`` is
    huge). Brokers join in order of ``a_b`` until the level stops above the next one's ``a``.
    """
    if remaining <= 0:
        return -_INF
    total_w = mean = spread = 0.0
    lam = -_INF
    last = len(free) - 1
    for pos, j in enumerate(free):
        w = weights[j]
        a = levels[j]
        total_w += w
        delta = a - mean
        mean += w * delta / total_w
        spread += w * delta * (a - mean)
        gap = remaining - spread
        lam = mean + math.sqrt(gap / total_w if gap > 0 else 0.0)
        if pos == last or lam <= levels[free[pos + 1]]:
            break
    return lam


def waterfill(
    levels: Sequence[float],
    weights: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    total: float,
) -> tuple[list[float], float] | None:
    """Continuous optimum of the convex part with box constraints.

    Minimises ``sum(a_j q_j + k_j q_j^1.5)`` subject to ``sum(q_j) = total`` and
    ``lows[j] <= q_j <= highs[j]``, where ``a_j = levels[j]`` and ``weights[j] = 1 / (1.5 k_j)^2``.
    Bounds are handled by the Bitran-Hax rule: solve without them, fix the violators of the side
    whose total violation is larger at their bound, solve again (at most ``len(levels)`` rounds).

    Returns
    -------
    tuple[list[float], float] | None
        Quantities and the convex cost, or ``None`` when the bounds make it infeasible.
    """
    if sum(lows) > total + _EPS or sum(highs) < total - _EPS:
        return None
    size = len(levels)
    q = [0.0] * size
    free = sorted(range(size), key=levels.__getitem__)
    remaining = float(total)
    while free:
        lam = _level(levels, weights, free, remaining)
        low: list[int] = []
        high: list[int] = []
        d_low = d_high = 0.0
        for j in free:
            x = lam - levels[j]
            x = weights[j] * x * x if x > 0 else 0.0
            q[j] = x
            if x < lows[j]:
                low.append(j)
                d_low += lows[j] - x
            elif x > highs[j]:
                high.append(j)
                d_high += x - highs[j]
        if not low and not high:
            break
        fixed = (low if d_low >= d_high else []) + (high if d_high >= d_low else [])
        for j in fixed:
            q[j] = lows[j] if j in low else highs[j]
            remaining -= q[j]
        free = [j for j in free if j not in fixed]
    value = 0.0
    for j in range(size):
        # k = 2 / (3 sqrt(w)): the impact coefficient recovered from the weight.
        value += q[j] * (levels[j] + math.sqrt(q[j] / weights[j]) / 1.5)
    return q, value


def _integerise(
    models: Sequence[BrokerCostModel],
    members: Sequence[int],
    start: Sequence[float],
    *,
    lows: Sequence[int],
    highs: Sequence[int],
    lot: int,
    total: int,
) -> tuple[float, tuple[tuple[int, int], ...]]:
    """Whole lots near ``start``, then pairwise lot exchanges while the exact cost falls.

    ``lows``/``highs``/``total`` are in lots. Rounding down and handing out the remainder by
    exact marginal cost is optimal for the convex part; the exchanges (steps of 4^k lots down to
    one) repair what the per-order brokerage and slicing terms change.

    Returns
    -------
    tuple[float, tuple[tuple[int, int], ...]]
        The plan's exact cost and its ``(rank, shares)`` pairs sorted by rank.
    """
    size = len(members)
    ms = [models[i] for i in members]
    x = [min(max(int(start[j] / lot), lows[j]), highs[j]) for j in range(size)]
    costs = [ms[j].cost(x[j] * lot) for j in range(size)]
    deficit = total - sum(x)
    while deficit:
        step = max(1, abs(deficit) // size)
        sign = 1 if deficit > 0 else -1
        best_j, best_delta, best_cost = -1, _INF, 0.0
        for j in range(size):
            nxt = x[j] + sign * step
            if lows[j] <= nxt <= highs[j]:
                cost = ms[j].cost(nxt * lot)
                delta = sign * (cost - costs[j])
                if delta < best_delta:
                    best_j, best_delta, best_cost = j, delta, cost
        if best_j < 0:  # pragma: no cover - feasibility was checked before
            break
        x[best_j] += sign * step
        costs[best_j] = best_cost
        deficit -= sign * step
    _exchange(ms, x, costs, lows=lows, highs=highs, lot=lot)
    pairs = tuple(sorted((ms[j].rank, x[j] * lot) for j in range(size)))
    return math.fsum(costs), pairs


def _exchange(
    ms: Sequence[BrokerCostModel],
    x: list[int],
    costs: list[float],
    *,
    lows: Sequence[int],
    highs: Sequence[int],
    lot: int,
) -> None:
    """Move one lot from one broker to another while it lowers the exact cost (in place).

    Starting from the rounded water-filling optimum, one-lot exchanges reach the integer optimum
    of the convex part; they also repair small non-convex effects (brokerage minimum and cap)
    but not a jump across a freeze-quantity boundary (at most one child's cost). At most 16
    sweeps of O(size^2) comparisons.
    """
    size = len(ms)

    # Each broker's cost one lot down and one lot up (inf where its bounds forbid the move),
    # kept current as lots move: a sweep compares every ordered pair, but only a move changes
    # what a cost evaluation would return.
    def down(k: int) -> float:
        return ms[k].cost((x[k] - 1) * lot) if x[k] - 1 >= lows[k] else _INF

    def up(k: int) -> float:
        return ms[k].cost((x[k] + 1) * lot) if x[k] + 1 <= highs[k] else _INF

    downs = [down(k) for k in range(size)]
    ups = [up(k) for k in range(size)]
    for _ in range(16):
        moved = False
        for i in range(size):
            if x[i] - 1 < lows[i]:
                continue
            for j in range(size):
                if i == j or x[j] + 1 > highs[j]:
                    continue
                if downs[i] + ups[j] < costs[i] + costs[j] - _EPS:
                    x[i] -= 1
                    x[j] += 1
                    costs[i], costs[j] = downs[i], ups[j]
                    downs[i], ups[i], downs[j], ups[j] = down(i), up(i), down(j), up(j)
                    moved = True
                    if x[i] - 1 < lows[i]:
                        break
        if not moved:
            return


def _ranked_candidates(
    models: Sequence[BrokerCostModel],
    pool: Sequence[int],
    *,
    total: int,
    lot: int,
    parts: int,
    count: int,
) -> list[int]:
    """The ``count`` brokers of ``pool`` cheapest per share at an even ``parts``-way split.

    Returned in rank order.
    """
    even = max(lot, total // parts // lot * lot)

    def per_share(i: int) -> tuple[float, int]:
        m = models[i]
        q = min(max(even, m.lo_split), m.hi)
        return (m.cost(q) / q, m.rank)

    return sorted(sorted(pool, key=per_share)[:count])


class _SubsetQueue:
    """Subsets of 2 to ``largest`` candidates in order of their water-filling bound, solved lazily.

    The search takes subsets in order of ``(bound, subset)`` and stops at the first bound that
    reaches the best exact plan, so most subsets' water-filling would be solved only to be
    dropped. Each subset first enters the queue under a closed-form key below its bound, and is
    solved (re-entering under its bound) only when that key comes first. A subset is therefore
    taken exactly when the search that solves every subset would take it, provided the key is
    below the bound *as computed*. That holds when water-filling is well conditioned; when it is
    not (an impact near the 1e-9 floor makes ``w`` huge and the computed bound can fall far below
    the true one), every key is ``-inf`` and all subsets are solved before any is taken.
    """

    def __init__(
        self,
        models: Sequence[BrokerCostModel],
        candidates: Sequence[int],
        total: int,
        largest: int,
        incumbent: float | None,
    ) -> None:
        self._candidates = candidates
        self._total = float(total)
        self._levels = [models[i].lb_linear for i in candidates]
        self._weights = [models[i].weight for i in candidates]
        self._lows = [float(models[i].lo_split) for i in candidates]
        self._highs = [float(models[i].hi) for i in candidates]
        relaxed_all = waterfill(
            self._levels, self._weights, [0.0] * len(candidates), self._highs, self._total
        )
        # Any subset's convex part costs at least the optimum over all candidates without
        # minimum child sizes: a bound that is free to compute and prunes whole subsets.
        floor_all = _INF if relaxed_all is None else relaxed_all[1]
        keyed = self._well_conditioned()
        lb_fixed = [models[i].lb_fixed for i in candidates]
        terms = list(zip(lb_fixed, self._levels, self._weights, strict=True))
        # Entries are (key, positions into the sorted candidates, fixed, solution or None);
        # positions order like the model indices, and (key, positions) is unique in the queue.
        self._queue: list[tuple[float, tuple[int, ...], float, list[float] | None]] = []
        for r in range(2, largest + 1):
            for chosen in combinations(range(len(candidates)), r):
                fixed, least, weight = 0.0, _INF, 0.0
                for k in chosen:
                    broker_fixed, level, w = terms[k]
                    fixed += broker_fixed
                    least = min(least, level)
                    weight += w
                if incumbent is not None and fixed + floor_all >= incumbent:
                    continue
                key = fixed + self._key(least, weight) if keyed else -_INF
                self._queue.append((key, chosen, fixed, None))
        heapq.heapify(self._queue)

    def _well_conditioned(self) -> bool:
        """Whether rounding moves every computed bound by far less than the key's slack.

        With ``A`` the largest ``|a|``, rounding in water-filling can move the quantity it hands
        out by about ``A^2 w / lo`` ulps of a broker's smallest child ``lo``. Up to
        ``_CONDITION`` (about 1e-10 relative) the computed bound stays far inside
        ``_KEY_SLACK``; errors only become visible near ``1e11``.
        """
        scale = max(abs(a) for a in self._levels) ** 2
        return all(
            scale * w <= _CONDITION * lo for w, lo in zip(self._weights, self._lows, strict=True)
        )

    def _key(self, least: float, weight: float) -> float:
        """A closed-form value below ``waterfill``'s cost for a subset, without solving it.

        For ``q >= 0`` summing to ``Q``: ``sum(a q) >= min(a) Q`` (``least`` is the smallest
        ``a``) and, by Holder's inequality, ``sum(k q^1.5) >= Q^1.5 / (1.5 sqrt(sum(w)))``
        (``weight`` is ``sum(w)``); less a relative slack for rounding.
        """
        total = self._total
        impact = total * math.sqrt(total / weight) / 1.5
        return least * total + impact - _KEY_SLACK * (abs(least) * total + impact)

    def pop(self, limit: float | None) -> tuple[tuple[int, ...], list[float]] | None:
        """The next subset (model indices) and its continuous optimum.

        ``None`` when no bound is below ``limit``, the best exact plan's cost (``None`` before
        there is one).
        """
        queue = self._queue
        while queue and (limit is None or queue[0][0] < limit):
            _, chosen, fixed, start = heapq.heappop(queue)
            if start is not None:
                return tuple([self._candidates[k] for k in chosen]), start
            relaxed = waterfill(
                [self._levels[k] for k in chosen],
                [self._weights[k] for k in chosen],
                [self._lows[k] for k in chosen],
                [self._highs[k] for k in chosen],
                self._total,
            )
            if relaxed is not None:
                heapq.heappush(queue, (fixed + relaxed[1], chosen, fixed, relaxed[0]))
        return None


def optimise(
    models: Sequence[BrokerCostModel],
    total: int,
    lot: int,
    *,
    max_brokers: int,
    max_candidates: int,
) -> Optimum | None:
    """The cheapest plan for ``total`` shares over at most ``max_brokers`` brokers.

    Parameters
    ----------
    models
        Eligible brokers' cost models, sorted by ``rank``.
    total, lot
        Order quantity and the common lot size (shares); ``total`` is a multiple of ``lot``.
    max_brokers
        Largest number of brokers a plan may use.
    max_candidates
        Splits are searched over the best ``max_candidates`` brokers only, ranked by their cost
        per share at an even split; this bounds the subsets enumerated to
        ``sum(C(K, r) for r in 2..max_brokers)`` (25 for K = 5, max_brokers = 4).

    Returns
    -------
    Optimum | None
        ``None`` when no plan can fill the order (capacities too small).
    """
    # Plans are compared as (cost, quantities) and only the best becomes a ``Plan``.
    best: tuple[float, tuple[tuple[int, int], ...]] | None = None
    runner_up = _INF

    def offer(plan: tuple[float, tuple[tuple[int, int], ...]]) -> None:
        nonlocal best, runner_up
        if best is None or plan < best:
            if best is not None:
                runner_up = min(runner_up, best[0])
            best = plan
        else:
            runner_up = min(runner_up, plan[0])

    for m in models:
        if m.lo_single <= total <= m.hi:
            offer((m.cost(total), ((m.rank, total),)))
    evaluated = len(models)

    pool = [i for i, m in enumerate(models) if m.lo_split <= min(m.hi, total)]
    largest = min(max_brokers, len(pool), max_candidates)
    if largest >= 2:
        candidates = _ranked_candidates(
            models, pool, total=total, lot=lot, parts=largest, count=max_candidates
        )
        queue = _SubsetQueue(models, candidates, total, largest, None if best is None else best[0])
        while (entry := queue.pop(None if best is None else best[0])) is not None:
            subset, start = entry
            offer(
                _integerise(
                    models,
                    subset,
                    start,
                    lows=[models[i].lo_split // lot for i in subset],
                    highs=[models[i].hi // lot for i in subset],
                    lot=lot,
                    total=total // lot,
                )
            )
            evaluated += 1
    if best is None:
        return None
    return Optimum(
        best=Plan(quantities=best[1], cost=best[0]),
        runner_up_cost=runner_up,
        subsets_evaluated=evaluated,
    )
