"""How the HTTP handlers answer domain errors: one status table and one body shape.

Every error body is ``{"error": {"code": "...", "message": "...", ...}}`` so clients branch on
``code``; 503 answers carry ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from shared.adapters.brokers.webhooks.errors import MalformedPayloadError
from shared.domain.errors import (
    AuthenticationError,
    ConflictError,
    DataUnavailableError,
    DomainError,
    ForbiddenError,
    InvalidExecutionReportError,
    InvalidOrderError,
    NoEligibleBrokerError,
    NotFoundError,
    RiskRejectedError,
)

STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (NoEligibleBrokerError, 422),
    (InvalidOrderError, 422),
    (RiskRejectedError, 422),
    (InvalidExecutionReportError, 400),
    (MalformedPayloadError, 400),
    (DataUnavailableError, 503),
)

RETRY_AFTER_S = 5


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": {"code": code, "message": message, **extra}}


def status_of(error: DomainError) -> int:
    """HTTP status of a domain error (500 for one no table row covers: a bug)."""
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(error, kind)), 500)


def describe(error: DomainError) -> tuple[int, dict[str, Any]]:
    """Status and body of a domain error, with the fields each kind carries."""
    status = status_of(error)
    extra: dict[str, Any] = {}
    message = str(error)
    if isinstance(error, NoEligibleBrokerError):
        extra["reasons"] = error.reasons
    elif isinstance(error, InvalidOrderError):
        extra["field"] = error.field
        message = error.message
    elif isinstance(error, RiskRejectedError):
        extra.update(rule=error.rule, field=error.field)
        message = error.message
    elif isinstance(error, InvalidExecutionReportError | MalformedPayloadError):
        extra["field"] = error.field
        message = error.reason
    field = getattr(error, "field", None)
    if field is not None and "field" not in extra:
        extra["field"] = field
    if status == 503:
        message = "the service is temporarily unavailable; retry shortly"
    if status == 500:
        message = "internal error"
    return status, error_body(error.code, message, **extra)
