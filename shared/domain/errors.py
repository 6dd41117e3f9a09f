"""Domain errors. Adapters translate driver errors into these; handlers map them to HTTP codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.domain.execution import ExecutionReport


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    code: str = "DOMAIN_ERROR"


class InvalidOrderError(DomainError):
    """An order the router cannot accept; ``field`` names the offending field (camelCase)."""

    code = "INVALID_ORDER"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NoEligibleBrokerError(DomainError):
    """No broker can take the order; ``reasons`` maps every broker id to why it was excluded."""

    code = "NO_ELIGIBLE_BROKER"

    def __init__(self, reasons: Mapping[str, str]) -> None:
        detail = "; ".join(f"{broker}: {reason}" for broker, reason in sorted(reasons.items()))
        super().__init__(f"no broker can take this order ({detail or 'no brokers configured'})")
        self.reasons = dict(reasons)


class NotFoundError(DomainError):
    """The thing asked for does not exist, or belongs to someone else."""

    code = "NOT_FOUND"


class ConflictError(DomainError):
    """The request conflicts with stored state (an idempotency key reused with another body)."""

    code = "CONFLICT"


class DataUnavailableError(DomainError):
    """The source of truth (Postgres) cannot be reached; the caller may retry later."""

    code = "DATA_UNAVAILABLE"


class CacheUnavailableError(DomainError):
    """The cache (Redis) cannot be reached; callers fall back to the source of truth."""

    code = "CACHE_UNAVAILABLE"


class InvalidExecutionReportError(DomainError):
    """An execution report that cannot be true (zero price, filled more than ordered...)."""

    code = "INVALID_EXECUTION_REPORT"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class AuthenticationError(DomainError):
    """A caller whose identity could not be verified (bad signature, token, checksum)."""

    code = "UNAUTHENTICATED"


class ForbiddenError(DomainError):
    """An authenticated caller without the right to do this."""

    code = "FORBIDDEN"


class IdentityProviderUnavailableError(DomainError):
    """The JWKS endpoint cannot be reached: the caller may be legitimate, retry later (503)."""

    code = "IDENTITY_PROVIDER_UNAVAILABLE"


class RiskRejectedError(DomainError):
    """An order a pre-trade risk rule refuses (``shared.domain.risk``); nothing is stored."""

    code = "RISK_REJECTED"

    def __init__(self, rule: str, field: str | None, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.field = field
        self.message = message


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


class InvalidRequestError(DomainError):
    """A well-formed request whose value the service cannot use (a tampered cursor): 422."""

    code = "INVALID_REQUEST"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidLinkError(DomainError):
    """A broker link step that cannot be accepted (400).

    A forged, reused or expired OAuth ``state``, a missing ``request_token``/``code``, or the
    wrong flow for the broker.
    """

    code = "INVALID_LINK"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LinkRefusedError(DomainError):
    """The broker refused the session exchange or the token: nothing is stored (422)."""

    code = "LINK_REFUSED"


class MarketDataUnavailableError(DomainError):
    """The market-data source cannot be reached or refused the call (a reason, never a 500)."""

    code = "MARKET_DATA_UNAVAILABLE"


class MonitoringUnavailableError(DataUnavailableError):
    """The alarms' source (CloudWatch, or local mode's metric store) cannot be read (503)."""

    code = "MONITORING_UNAVAILABLE"
