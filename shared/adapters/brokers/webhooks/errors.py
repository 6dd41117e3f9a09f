"""Errors of webhook normalisation (the handler maps both to HTTP 400 by default)."""

from __future__ import annotations

from shared.domain.errors import DomainError, InvalidExecutionReportError
from shared.domain.execution import ExecutionReport


class MalformedPayloadError(DomainError):
    """A webhook body that is not what the broker's format promises.

    ``field`` names the missing or bad field as the broker spells it (``filled_quantity`` for
    Kite, ``filledQty`` for Dhan), so the rejection can be traced to the sender.
    """

    code = "MALFORMED_PAYLOAD"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnsupportedPayloadError(MalformedPayloadError):
    """A well-formed update we do not track (a GTT update, a derivatives segment).

    A subclass so that mapping ``MalformedPayloadError`` to 400 covers it; a handler may prefer
    to acknowledge it with 200 so the broker does not retry or disable the webhook.
    """

    code = "UNSUPPORTED_PAYLOAD"


class ImpossibleReportError(InvalidExecutionReportError):
    """A well-formed report whose own figures cannot be true (filled more than ordered...).

    It carries the report as read, unchecked (``ExecutionReport.model_construct``), so an
    authenticated one can be quarantined with its key, child and figures rather than refused.
    """

    def __init__(self, field: str, reason: str, unchecked: ExecutionReport) -> None:
        super().__init__(field, reason)
        self.unchecked = unchecked
