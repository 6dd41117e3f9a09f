"""Broker health probes: a broker in an outage is found healthy again without risking an order.

Learning treats a run of consecutive timeouts that its broker's own record makes unlikely as an
**outage episode** (``shared.domain.learning.is_outage``), not as per-order reliability: the
router leaves the broker while the timeouts count, and forgets them once the broker answers
again. A broker nobody sends orders to cannot answer an order, so the scheduled market refresh
(every minute in AWS, on a timer in local mode) probes each broker in an outage with a cheap
read (:class:`shared.ports.BrokerHealthProbe`); an answer ends the episode and refreshes the
cached profiles of the symbols it changed. See docs/routing-engine.md, "Outages".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from shared.domain.errors import DataUnavailableError
from shared.ports import BrokerHealth, OutageLedger


@dataclass
class ProbeReport:
    """What one round of probes found, by broker id."""

    recovered: list[str] = field(default_factory=list)
    """Answered: their outage episode is forgotten."""
    down: list[str] = field(default_factory=list)
    """Did not answer: the episode goes on."""
    unknown: list[str] = field(default_factory=list)
    """Have no probe (or none here): their episode ends with their next answered order."""

    def as_dict(self) -> dict[str, list[str]]:
        """The report as plain data (a job's answer, a log line)."""
        return {"recovered": self.recovered, "down": self.down, "unknown": self.unknown}


class HealthProbe:
    """Probes every broker in an outage episode and forgets the episodes of those that answer.

    Parameters
    ----------
    ledger
        Which brokers are in an outage, and forgetting one (the profile repository).
    brokers
        The probe of each broker (the gateway registry).
    on_recovered
        Called with the symbols whose profiles a recovery rewrote (refreshes their cache).
    timeout_s
        How long a probe may take (the placement timeout: an answer later than that is one an
        order would not have had either).
    """

    def __init__(
        self,
        *,
        ledger: OutageLedger,
        brokers: BrokerHealth,
        on_recovered: Callable[[Sequence[str]], None],
        timeout_s: float,
    ) -> None:
        self._ledger = ledger
        self._brokers = brokers
        self._on_recovered = on_recovered
        self._timeout_s = timeout_s

    def run(self) -> ProbeReport:
        """Probe each broker in an outage once.

        Raises
        ------
        DataUnavailableError
            When Postgres cannot be reached (the next run tries again).
        """
        report = ProbeReport()
        for broker_id in self._ledger.brokers_in_outage():
            answered = self._brokers.probe(broker_id, timeout_s=self._timeout_s)
            if answered is None:
                report.unknown.append(broker_id)
                continue
            if not answered:
                report.down.append(broker_id)
                continue
            changed = self._ledger.recover(broker_id)
            report.recovered.append(broker_id)
            symbols = sorted({symbol for _, symbol in changed})
            # The database holds the recovery; a cache that cannot be refreshed catches up
            # within its TTL.
            with suppress(DataUnavailableError):
                if symbols:
                    self._on_recovered(symbols)
        return report
