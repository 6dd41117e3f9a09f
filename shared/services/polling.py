"""Reconciliation by polling: children no terminal report settled are asked for at their brokers.

A broker's postback can be lost (its retries exhausted, our endpoint down, a postback that came
before we stored the broker's order id and matched no child), and a timed-out child whose cancel
was not confirmed waits for a word that may never come. On each run (the ``reconcile`` schedule
in AWS, a timer in local mode) the poller takes the children still working or timed out whose
placement is older than a bound, reads each order's history at its broker, and publishes every
state not yet applied as an ``ExecutionReported`` event, the same event a postback would have
become (:func:`shared.services.webhooks.reported_event`). The execution tracker applies it
exactly once by its report key, whichever of the postback and the poll comes first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from shared.domain.contracts import DomainEvent
from shared.domain.settlement import LookupOutcome
from shared.ports import (
    BrokerOrderPoller,
    EventPublisher,
    ExecutionRepository,
    Outbox,
    QuietChildren,
)
from shared.services.webhooks import reported_event


@dataclass
class PollReport:
    """What one polling run did (the handler's metrics)."""

    polled: int = 0
    """Children asked for at their brokers."""
    recovered: int = 0
    """Reports published that no postback had brought."""
    not_found: int = 0
    """Children their broker holds no order for (a timed-out placement that never arrived)."""
    unanswered: int = 0
    """Children whose broker could not be asked (outage, timeout, no credentials)."""


class ChildPoller:
    """Polls the brokers for children without a terminal report.

    Parameters
    ----------
    children
        Children to poll, least recently polled first (stamped as they are taken).
    brokers
        Reads a child's order history at its broker.
    executions
        Which report keys are applied already (those are not published again).
    publisher, outbox
        Each recovered report is stored in the outbox, then published; what fails to publish
        stays for the relay.
    older_than_s
        The bound: a child is polled once placed (and last polled) this long ago.
    max_age_s
        Children placed longer ago are left alone (a day order ends with its day).
    timeout_s
        Per-broker call timeout.
    batch
        Children taken per run.
    """

    def __init__(
        self,
        *,
        children: QuietChildren,
        brokers: BrokerOrderPoller,
        executions: ExecutionRepository,
        publisher: EventPublisher,
        outbox: Outbox,
        older_than_s: float,
        max_age_s: float,
        timeout_s: float,
        batch: int = 100,
    ) -> None:
        self._children = children
        self._brokers = brokers
        self._executions = executions
        self._publisher = publisher
        self._outbox = outbox
        self._older_than_s = older_than_s
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._batch = batch

    def run(self, *, time_left_s: float = float("inf")) -> PollReport:
        """Poll one batch of quiet children, stopping when the time is up.

        Parameters
        ----------
        time_left_s
            Stop starting new look-ups after this many seconds (the rest stay for the next run:
            a child taken but not asked is polled again once the bound has passed).

        Returns
        -------
        PollReport
            Counts of children polled and reports recovered.

        Raises
        ------
        DataUnavailableError
            Postgres is unreachable; the next run tries again.
        """
        report = PollReport()
        deadline = time.monotonic() + time_left_s
        quiet = self._children.take_quiet(
            older_than_s=self._older_than_s, max_age_s=self._max_age_s, limit=self._batch
        )
        for child in quiet:
            if time.monotonic() >= deadline:
                break
            report.polled += 1
            lookup = self._brokers.poll(child, timeout_s=self._timeout_s)
            if lookup.outcome is LookupOutcome.UNKNOWN:
                report.unanswered += 1
                continue
            if lookup.outcome is LookupOutcome.NOT_FOUND:
                report.not_found += 1
                continue
            applied = self._executions.applied_keys({r.idempotency_key for r in lookup.reports})
            fresh: dict[str, DomainEvent] = {}
            for polled in lookup.reports:
                if polled.idempotency_key not in applied:
                    fresh.setdefault(polled.idempotency_key, reported_event(child, polled))
            report.recovered += len(fresh)
            self._publish(list(fresh.values()))
        return report

    def _publish(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        # In the outbox first: a publish that fails is left to the relay, never lost.
        self._outbox.add(events)
        failed = {e.event_id for e in self._publisher.publish(events)}
        self._outbox.mark_published([e.event_id for e in events if e.event_id not in failed])
        if failed:
            self._outbox.mark_failed(list(failed), "publish after poll failed")
