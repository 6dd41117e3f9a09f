"""broker_webhook: brokers post execution reports here (no JWT: each broker proves itself).

``POST /api/v1/webhooks/brokers/{brokerId}`` for brokers that sign (HMAC headers, Kite's
checksum) and ``.../{brokerId}/{token}`` for brokers that cannot sign (a secret path token).
Every authenticated, well-formed report answers 202: accepted (an ``ExecutionReported`` event),
a duplicate of an applied one, ignored (not our order) or quarantined (impossible for its child:
held with its reason, never applied). Bad bytes answer 400 in the one error shape.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.domain.contracts import ApiPath, resolver_path
from shared.domain.errors import DomainError, MalformedPayloadError, UnsupportedPayloadError
from shared.domain.models import BROKER_ID_PATTERN
from shared.http import describe, install_error_handlers
from shared.observability import NAMESPACE, SERVICE, count_quarantined, traced

app = APIGatewayHttpResolver(enable_validation=True)
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
install_error_handlers(app, logger)

BrokerId = Annotated[str, Path(alias="brokerId", title="Broker Id", pattern=BROKER_ID_PATTERN)]


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The request body as the broker sent it, never decoded as text.

    ``event.decoded_body`` decodes to ``str`` and raises ``UnicodeDecodeError`` on bytes that
    are not UTF-8; signatures are over bytes, and the parser answers 400 for such a body.

    Raises
    ------
    MalformedPayloadError
        A base64 body that does not decode (API Gateway never sends one).
    """
    body = event.body or ""
    if not event.is_base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise MalformedPayloadError("body", "not valid base64") from exc


def _receive(broker_id: str, token: str | None) -> Response[dict[str, Any]]:
    from shared.wiring import get_wiring

    event = app.current_event
    outcome = get_wiring().webhooks.receive(
        broker_id, token=token, headers=dict(event.headers or {}), body=raw_body(event)
    )
    metrics.add_metric(f"Webhook_{outcome.status}", MetricUnit.Count, 1)
    logger.info(
        "webhook",
        broker_id=broker_id,
        status=outcome.status,
        key=outcome.idempotency_key,
        reason=outcome.reason,
    )
    body: dict[str, Any] = {"status": outcome.status, "idempotencyKey": outcome.idempotency_key}
    if outcome.status == "quarantined":
        # 202 all the same: the broker must stop retrying a report that will never apply.
        count_quarantined(metrics, [outcome.reason or "UNKNOWN"])
        body["quarantine"] = {
            "reason": outcome.reason,
            "field": outcome.field,
            "message": outcome.message,
        }
    return Response(status_code=202, content_type="application/json", body=body)


@app.post(resolver_path(ApiPath.SIGNED_WEBHOOK))
def handle_post_signed_webhook(broker_id: BrokerId) -> Response[dict[str, Any]]:
    """A webhook from a broker that signs (HMAC headers or Kite's checksum)."""
    return _receive(broker_id, None)


@app.post(resolver_path(ApiPath.TOKEN_WEBHOOK))
def handle_post_token_webhook(
    broker_id: BrokerId, token: Annotated[str, Path(min_length=16, max_length=256)]
) -> Response[dict[str, Any]]:
    """A webhook from a broker that cannot sign, authenticated by a secret path token."""
    return _receive(broker_id, token)


@app.exception_handler(UnsupportedPayloadError)
def handle_unsupported(error: UnsupportedPayloadError) -> Response[dict[str, Any]]:
    """Updates we do not track (GTT, derivatives) are acknowledged so the broker stops retrying."""
    logger.info("webhook ignored", reason=str(error))
    return Response(
        status_code=202,
        content_type="application/json",
        body={"status": "ignored", "reason": str(error)},
    )


@app.exception_handler(DomainError)
def handle_domain_error(error: DomainError) -> Response[dict[str, Any]]:
    """401 bad signature or token, 404 unknown broker, 400 malformed payload, 503 data down."""
    status, body = describe(error)
    metrics.add_metric("WebhookRejected", MetricUnit.Count, 1)
    logger.warning("webhook refused", status=status, code=error.code)
    headers = {"Retry-After": "5"} if status == 503 else None
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
