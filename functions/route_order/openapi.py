"""Assemble and write the service's OpenAPI document: ``python -m functions.route_order.openapi``.

The trader API's resolver (``route_order``) documents its own routes, statuses and the bearer
scheme; the admin API's resolver (``functions/admin``) its own, merged in.
The broker webhooks live in another function with its own resolver; their operations
are taken from that resolver and given the answers the webhook handler really sends (202
acknowledgements, errors in the one shape) here, so the handler itself needs no documentation
code. The result is written to ``functions/route_order/openapi.json``, which ships with the
function (it serves the file at ``GET /api/v1/openapi.json``); ``docs/openapi.json`` is a link
to it. A test fails when the file is stale.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from functions.route_order.handler import OPENAPI_FILE, openapi_document

# Powertools adds these for its own `{"detail": ...}` 422 body, which no route of ours sends.
POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
ERROR_REF = "#/components/schemas/ErrorBody"

WEBHOOK_ERRORS: dict[int, str] = {
    400: "Malformed or implausible report (`field` names what)",
    401: "Bad signature, checksum or path token",
    404: "Unknown broker",
    405: "Method not allowed; `Allow` lists the methods",
    500: "Internal error (a bug; logged)",
    503: "Postgres or the event bus does not answer; the broker retries",
}


class QuarantineInfo(BaseModel):
    """Why an authentic report was held instead of applied (``docs/execution-tracking.md``)."""

    reason: str = Field(description="the rule the report broke, e.g. OVERFILL, SIDE_MISMATCH")
    field: str | None = Field(default=None, description="the report field at fault")
    message: str | None = None


class WebhookAck(BaseModel):
    """What a broker webhook answers (202), so the broker stops retrying."""

    status: Literal["accepted", "duplicate", "ignored", "quarantined"] = Field(
        description="accepted (published), duplicate (already applied), ignored (not an order "
        "we routed, or an update we do not track), quarantined (authentic but impossible: "
        "stored with its reason, never applied)"
    )
    idempotency_key: str | None = Field(default=None, alias="idempotencyKey")
    reason: str | None = Field(default=None, description="why an update is ignored")
    quarantine: QuarantineInfo | None = None


CONNECTION_ERRORS: dict[int, str] = {
    400: "A forged, reused or expired `state`, or the wrong link flow for the broker (`field`)",
    401: "No or an invalid bearer token",
    403: "The token lacks the TRADER group",
    404: "Unknown broker, or no such connection",
    405: "Method not allowed; `Allow` lists the methods",
    422: "The request breaks the schema, or the broker refused the token or exchange",
    500: "Internal error (a bug; logged)",
    503: "Postgres, KMS or the broker does not answer; retry shortly",
}
BODY_ERRORS: dict[int, str] = {
    400: "Body not UTF-8, not JSON or nested too deep",
    413: "Body too large",
    415: "Content-Type is not application/json (UTF-8)",
}


def _connection_paths(schemas: dict[str, Any]) -> dict[str, Any]:
    """broker_connections' operations, answering the models the handler really sends."""
    from functions.broker_connections.handler import app as links
    from shared.services.broker_links import (
        ConnectionList,
        ConnectionView,
        LoginUrl,
        RefreshResult,
    )

    template = "#/components/schemas/{model}"
    for model in (ConnectionList, LoginUrl, RefreshResult, ConnectionView):
        schema = model.model_json_schema(ref_template=template)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    answers = {
        ("get", "callback"): "ConnectionView",
        ("put", ""): "ConnectionView",
        ("delete", ""): "ConnectionView",
        ("post", "login"): "LoginUrl",
        ("post", "refresh"): "RefreshResult",
        ("get", "broker-connections"): "ConnectionList",
    }
    generated: dict[str, Any] = json.loads(links.get_openapi_json_schema())
    # The request bodies' schemas (AccessTokenBody); Powertools' own are dropped later.
    schemas.update(generated.get("components", {}).get("schemas", {}))
    paths: dict[str, Any] = generated["paths"]
    for path, item in paths.items():
        last = path.rsplit("/", 1)[-1]
        for method, operation in item.items():
            answer = answers.get((method, last)) or answers[(method, "")]
            operation["tags"] = ["broker connections"]
            operation["security"] = [{"bearerAuth": []}]
            ok = {"application/json": {"schema": {"$ref": template.format(model=answer)}}}
            operation["responses"] = {
                "200": {"description": "OK", "content": ok},
                **{str(s): _error(text) for s, text in CONNECTION_ERRORS.items()},
            }
            if "requestBody" in operation:  # the handler's screen reads the body first
                operation["responses"].update(
                    {str(s): _error(text) for s, text in BODY_ERRORS.items()}
                )
    return paths


def document() -> dict[str, Any]:
    """The whole service's OpenAPI document: trader API, health, this document, webhooks."""
    doc: dict[str, Any] = json.loads(openapi_document())
    doc["paths"].update(_webhook_paths())
    schemas: dict[str, Any] = doc["components"]["schemas"]
    admin = _admin_document()
    doc["paths"].update(admin["paths"])
    for name, schema in admin["components"]["schemas"].items():
        schemas.setdefault(name, schema)
    doc["paths"].update(_connection_paths(schemas))
    schemas["WebhookAck"] = WebhookAck.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    for operation in _operations(doc):
        responses = operation["responses"]
        if _refers(responses.get("422", {}), "HTTPValidationError"):
            # Routes without parameters cannot answer 422; the others answer ErrorBody.
            if operation.get("parameters") or operation.get("requestBody"):
                responses["422"] = _error("The request breaks the schema (`details` names it)")
            else:
                del responses["422"]
    for name in POWERTOOLS_ERROR_SCHEMAS:
        schemas.pop(name, None)
    if "HTTPValidationError" in json.dumps(doc):  # pragma: no cover - guards Powertools updates
        raise RuntimeError("a response still refers to Powertools' validation error schema")
    return doc


def _webhook_paths() -> dict[str, Any]:
    from functions.broker_webhook.handler import app as webhooks

    paths: dict[str, Any] = json.loads(webhooks.get_openapi_json_schema())["paths"]
    for item in paths.values():
        for operation in item.values():
            operation["tags"] = ["broker webhooks"]
            operation["security"] = []
            operation["responses"] = {
                "202": {
                    "description": "Accepted (or ignored: updates the router does not track)",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/WebhookAck"}}
                    },
                },
                "422": _error("A path parameter breaks its pattern"),
                **{str(s): _error(text) for s, text in WEBHOOK_ERRORS.items()},
            }
    return paths


def _admin_document() -> dict[str, Any]:
    # The admin function's own resolver documents its routes; merged here so the service has
    # one document (``docs/api.md``, "Admin API").
    from functions.admin.handler import openapi_paths

    return openapi_paths()


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in doc["paths"].values() for op in item.values()]


def _error(description: str) -> dict[str, Any]:
    schema = {"schema": {"$ref": ERROR_REF}}
    return {"description": description, "content": {"application/json": schema}}


def _refers(response: dict[str, Any], schema: str) -> bool:
    return f"#/components/schemas/{schema}" in json.dumps(response)


def render() -> str:
    """The document as committed: indented, keys sorted, one trailing newline."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    """Regenerate the document (``docs/openapi.json`` links to the file written)."""
    OPENAPI_FILE.write_text(render())
    print(f"wrote {OPENAPI_FILE}")


if __name__ == "__main__":
    main()
