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

Hostile inputs (many brokers with many different slice sizes) could make the search long, so a
call has a budget: past ``BUDGET`` partial plans it only keeps those that can beat the best plan
by ``TOLERANCE`` (0.1 %), and past ``CAP`` only a beam of the most promising; ``gap_bound``
reports what was proven. Realistic orders stay far below the budget (docs/routing-engine.md).
"""

from __future__ import annotations

import itertools
import math
import operator
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass

_INF = math.inf
_SLOPE = operator.itemgetter(0)
_WIDTH = operator.itemgetter(1)
BUDGET = 5_000
"""Partial plans a call may try before it settles for a plan within ``TOLERANCE``."""
TOLERANCE = 1e-3
"""Relative gap to the optimum allowed once the budget is spent: 0.1 %."""
CAP = 30_000
"""Partial plans a call may try in full: beyond it only the ``BEAM`` most promising partial plans
of each step go on, and the gap is what the relaxation proves (hostile inputs only: many
brokers with many different slices)."""
BEAM = 48
_SLACK = 1e-9
"""Relative margin above the best plan before a bound prunes: rounding never hides a better plan."""

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
    gap_bound: float
    """Proven relative gap of ``best`` to the optimum: 0 when the search stayed within its
    budget, ``TOLERANCE`` when it finished after it, else what the relaxation proves."""


_Pieces = tuple[list[tuple[int, float]], list[tuple[float, int, int]]]
"""A broker's ``(lots, cost)`` breakpoints and its hull's ``(slope, lots, owner)`` segments."""
_States = dict[tuple[int, int], tuple[float, _Pairs]]
"""Partial plans: (brokers used, lots placed) -> (cost, pairs). Equal keys have equal
completions, so only the cheaper partial plan of a key is kept."""


class _Search:
    """Branch and bound over breakpoints for one set of brokers (see the module docstring).

    Brokers are taken cheapest first. For the ``k``-th broker as the free one, the partial plans
    over the brokers before it are shared with every later free broker (the *prefix*); they are
    extended over the brokers after it, and the free broker takes what is left.
    """

    def __init__(
        self,
        models: Sequence[BrokerCostModel],
        total: int,
        lot: int,
        max_brokers: int,
        *,
        banned: int | None = None,
        incumbent: tuple[float, _Pairs] | None = None,
        pieces: dict[int, _Pieces] | None = None,
        bounds: dict[tuple[int, int], _Bound] | None = None,
        work: int = 0,
    ) -> None:
        self.models = models
        self.total = total
        self.lot = lot
        self.lots = total // lot
        self.max_brokers = max_brokers
        self.banned = banned
        self.best = incumbent
        self.offered: list[tuple[float, _Pairs]] = []
        """Every complete plan offered: where a runner-up's search starts."""
        self.states = 0
        self.work = work
        """Partial plans tried so far in this call (kept or pruned)."""
        self.capped = False
        self.floor = _INF
        """A lower bound on every plan of the search: the least single plan and relaxation."""
        self.pieces = {} if pieces is None else pieces
        """Per broker index: its ``(lots, cost)`` at each breakpoint and its hull segments."""
        self.bounds = {} if bounds is None else bounds
        """``(broker, free broker)``: the bound on the brokers after it, and the free one."""

    def offer(self, cost: float, pairs: _Pairs) -> None:
        plan = (cost, pairs)
        self.offered.append(plan)
        if self.best is None or plan < self.best:
            self.best = plan

    def without(self, rank: int) -> tuple[float, _Pairs] | None:
        """The best plan offered that does not use broker ``rank``."""
        return min((p for p in self.offered if all(r != rank for r, _ in p[1])), default=None)

    def limit(self) -> float:
        """Partial plans whose bound exceeds this cannot beat the best plan.

        Once the searches of a call have tried ``BUDGET`` partial plans, only by ``TOLERANCE``.
        """
        if self.best is None:
            return _INF
        margin = _SLACK if self.work <= BUDGET else -TOLERANCE
        return self.best[0] + margin * abs(self.best[0])

    def run(self) -> tuple[float, _Pairs] | None:
        members = [i for i, m in enumerate(self.models) if m.rank != self.banned]
        self._offer_singles(members)
        if self.max_brokers < 2:
            return self.best
        pool = self._split_pool(members)
        table = [self.pieces[i][0] for i in pool]
        hulls = [self.pieces[i][1] for i in pool]
        suffix = _suffix_bounds(hulls)
        self.floor = min(self.floor, suffix[0].at(self.lots))
        self._offer_relaxed(suffix[0])
        self._search(pool, table, hulls, suffix)
        return self.best

    def _offer_singles(self, members: Sequence[int]) -> None:
        """Every broker that can take the whole order alone."""
        for i in members:
            m = self.models[i]
            if m.lo_single <= self.total <= m.hi:
                self.offer(m.cost(self.total), ((m.rank, self.total),))
                self.floor = min(self.floor, m.cost(self.total))

    def _split_pool(self, members: Sequence[int]) -> list[int]:
        """The brokers that can be part of a split, cheapest first, their pieces computed."""
        models, lot = self.models, self.lot
        pool = [i for i in members if models[i].lo_split <= min(models[i].hi, self.total)]
        # Cheapest first: good plans are found early and bound the rest.
        pool.sort(key=lambda i: (models[i].floor_per_share(), i))
        for i in pool:
            if i not in self.pieces:
                # Each broker's cost at each of its breakpoints, once a call.
                points = [(x, models[i].cost(x * lot)) for x in models[i].breakpoints(lot)]
                self.pieces[i] = (points, _segments(_lower_hull([(0, 0.0), *points]), i))
        return pool

    def _search(
        self,
        pool: Sequence[int],
        table: Sequence[list[tuple[int, float]]],
        hulls: Sequence[list[tuple[float, int, int]]],
        suffix: Sequence[_Bound],
    ) -> None:
        """For each free broker, the best plan with every other broker at a breakpoint."""
        prefix: _States = {(0, 0): (0.0, ())}
        for k, free in enumerate(pool):
            if not prefix:
                break  # no plan over the brokers before this one can still win
            states = prefix
            # After pool[t], what is left goes to pool[t + 1:] and the free broker.
            for t in range(k + 1, len(pool)):
                if not states:
                    break
                # A search without one broker reuses the bound of the search with it: the bound
                # over more brokers is lower, so it is still a bound.
                rest = self.bounds.get((pool[t], free))
                if rest is None:
                    rest = self.bounds[pool[t], free] = suffix[t + 1].adding(hulls[k])
                states = self._extend(states, pool[t], table[t], rest)
            self._finish(states, self.models[free])
            if k + 1 < len(pool):
                prefix = self._extend(prefix, free, table[k], suffix[k + 1])

    def _offer_relaxed(self, bound: _Bound) -> None:
        """Offer the relaxation's optimum when it is a plan: often it is the optimum itself."""
        shares = [(self.models[i], n * self.lot) for i, n in bound.argmin(self.lots).items()]
        if 2 <= len(shares) <= self.max_brokers and all(m.lo_split <= q <= m.hi for m, q in shares):
            self.offer(
                math.fsum(m.cost(q) for m, q in shares),
                tuple(sorted((m.rank, q) for m, q in shares)),
            )

    def _extend(
        self, states: _States, i: int, points: list[tuple[int, float]], rest: _Bound
    ) -> _States:
        """The partial plans with broker ``i`` at each of its breakpoints, or unused."""
        lots, lot = self.lots, self.lot
        rank = self.models[i].rank
        limit = self.limit()
        largest = self.max_brokers - 1
        # Without broker i, what is left goes to ``rest``'s brokers only.
        grown = {
            key: value
            for key, value in states.items()
            if value[0] + rest.at(lots - key[1]) <= limit
        }
        for (used, placed), (cost, pairs) in states.items():
            if used >= largest:
                continue
            self.work += len(points)
            for x, fx in points:
                left = lots - placed - x
                if left < 1:
                    break
                c = cost + fx
                if c + rest.at(left) > limit:
                    continue
                key = (used + 1, placed + x)
                known = grown.get(key)
                if known is None or c < known[0]:
                    grown[key] = (c, (*pairs, (rank, x * lot)))
        if self.work > CAP:
            # Past the cap, only the most promising partial plans go on (a beam): the search
            # still ends with a good plan, but proves only what the relaxation proves.
            self.capped = True
            kept = sorted(grown.items(), key=lambda item: item[1][0] + rest.at(lots - item[0][1]))
            return dict(kept[:BEAM])
        return grown

    def _finish(self, states: _States, free: BrokerCostModel) -> None:
        """Complete each partial plan by giving the free broker what is left."""
        lot = self.lot
        lo, hi = free.lo_split // lot, free.hi // lot
        self.states += len(states)
        for (used, placed), (cost, pairs) in states.items():
            left = self.lots - placed
            if used and lo <= left <= hi:
                self.offer(
                    cost + free.cost(left * lot), tuple(sorted((*pairs, (free.rank, left * lot))))
                )


def _lower_hull(points: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """Vertices of the lower convex hull of ``(lots, cost)`` points sorted by lots.

    From ``(0, 0)`` and a broker's breakpoints: the cost is affine between breakpoints, so the
    hull is below it everywhere on ``{0} + [lo, hi]``.
    """
    hull: list[tuple[int, float]] = []
    for x, y in points:
        if hull and hull[-1][0] == x:
            continue  # sorted by (x, y): the first point at x is the lowest
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            if (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) > 0:
                break
            hull.pop()
        hull.append((x, y))
    return hull


def _segments(hull: Sequence[tuple[int, float]], owner: int) -> list[tuple[float, int, int]]:
    """A broker's hull as ``(slope, lots, owner)`` segments, in increasing slope."""
    return [
        ((y1 - y0) / (x1 - x0), x1 - x0, owner) for (x0, y0), (x1, y1) in itertools.pairwise(hull)
    ]


class _Bound:
    """A lower bound on the cost of placing ``r`` lots on a set of brokers.

    The least sum of the brokers' hulls (convex, each up to its ``hi``) over shares summing to
    ``r``: the segments taken cheapest slope first (the linear programme's greedy optimum).
    Dropping the limit on the number of brokers only lowers it. ``inf`` beyond the capacity.
    """

    __slots__ = ("_costs", "_lengths", "_segments")

    def __init__(self, segments: list[tuple[float, int, int]]) -> None:
        self._segments = segments
        # C-level loops: bounds are built for every broker after each free broker.
        slopes = list(map(_SLOPE, segments))
        widths = list(map(_WIDTH, segments))
        self._lengths = list(itertools.accumulate(widths))
        self._costs = list(itertools.accumulate(map(operator.mul, slopes, widths)))

    def adding(self, segments: list[tuple[float, int, int]]) -> _Bound:
        """The bound with one more broker's hull segments."""
        merged = self._segments.copy()
        for segment in segments:
            insort(merged, segment)
        return _Bound(merged)

    def at(self, lots: float) -> float:
        """The bound for ``lots`` lots (0 for none, ``inf`` beyond the brokers' capacity)."""
        if lots <= 0:
            return 0.0
        k = bisect_left(self._lengths, lots)
        if k == len(self._lengths):
            return _INF
        before: float = self._lengths[k - 1] if k else 0
        cost = self._costs[k - 1] if k else 0.0
        return cost + (lots - before) * self._segments[k][0]

    def argmin(self, lots: int) -> dict[int, int]:
        """Lots per owner at the bound's optimum for ``lots`` (empty beyond the capacity).

        A broker's segments are taken in order (its slopes increase), so each owner's lots end
        on its hull; all but the last owner's end on a vertex, a breakpoint.
        """
        shares: dict[int, int] = {}
        left = lots
        for _, width, owner in self._segments:
            if left <= 0:
                return shares
            take = min(width, left)
            shares[owner] = shares.get(owner, 0) + take
            left -= take
        return shares if left <= 0 else {}


def _gap_bound(search: _Search, best: float) -> float:
    """What the search proves about the best plan's gap to the optimum (relative)."""
    if search.capped:
        return max(0.0, (best - search.floor) / abs(search.floor)) if search.floor else _INF
    return 0.0 if search.work <= BUDGET else TOLERANCE


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
    best = search.run()
    if best is None:
        return None
    main = max(best[1], key=lambda pair: (pair[1], -pair[0]))[0]
    # The best plan seen without the main broker is where the runner-up's search starts.
    rival = _Search(
        models,
        total,
        lot,
        max_brokers,
        banned=main,
        incumbent=search.without(main),
        pieces=search.pieces,
        bounds=search.bounds,
        work=search.work,
    )
    runner_up = rival.run()
    return Optimum(
        best=Plan(quantities=best[1], cost=best[0]),
        runner_up_cost=_INF if runner_up is None else runner_up[0],
        states=search.states + rival.states,
        gap_bound=_gap_bound(search, best[0]),
    )


def _suffix_bounds(hulls: Sequence[list[tuple[float, int, int]]]) -> list[_Bound]:
    """``[k]`` bounds the cost of placing lots on the brokers from ``k`` on (:class:`_Bound`)."""
    suffix = [_Bound([])]
    for k in range(len(hulls) - 1, -1, -1):
        suffix.append(suffix[-1].adding(hulls[k]))
    suffix.reverse()
    return suffix
