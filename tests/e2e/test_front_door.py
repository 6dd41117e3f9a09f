"""Local mode's HTTP front door: every answer it or a function gives is in the one error shape.

Unknown paths, wrong and unusual methods, unsupported media types, bodies over API Gateway's
10 MB, missing tokens; plus the OpenAPI document and the offline Swagger UI page.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.domain.contracts import API_PREFIX, ApiPath
from shared.http import API_GATEWAY_MAX_BODY_BYTES
from tests.e2e.support import API, Runtime


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """``status`` with ``{"error": {"code": code, "message": ...}}`` and nothing else."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


@pytest.mark.parametrize("path", ["/nothing", "/api/v2/orders", f"{API}/nothing", "/api/v1/"])
def test_unknown_paths_are_404(runtime: Runtime, path: str) -> None:
    # GIVEN a path no route serves (inside or outside the API)
    response = httpx.get(f"{runtime.api}{path}", headers=runtime.auth("door-1"))
    # THEN 404 in the one shape
    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", f"{API}/orders/smart", "POST"),
        ("DELETE", f"{API}/orders/ord-1", "GET"),
        ("QUERY", ApiPath.HEALTH, "GET"),
        ("TRACE", f"{API}/brokers/profiles", "GET"),
        ("PUT", ApiPath.OPENAPI, "GET"),
    ],
)
def test_wrong_methods_are_405_with_allow(
    runtime: Runtime, method: str, path: str, allow: str
) -> None:
    # GIVEN a path that exists, asked with another method (QUERY and TRACE too)
    response = httpx.request(method, f"{runtime.api}{path}", headers=runtime.auth("door-2"))
    # THEN 405 with Allow, in the one shape
    error = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == allow
    assert error["allow"] == [allow]


def test_a_form_body_on_an_order_route_is_415(runtime: Runtime) -> None:
    # GIVEN an order sent as curl -d sends it (a form)
    response = httpx.post(
        f"{runtime.api}{API}/orders/analyze",
        content=b"symbol=RELIANCE&side=BUY&quantity=1",
        headers={**runtime.auth("door-3"), "content-type": "application/x-www-form-urlencoded"},
    )
    # THEN 415
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_body_over_api_gateways_limit_is_413(runtime: Runtime) -> None:
    # GIVEN a body past 10 MB (on a webhook route, which has no smaller limit of its own)
    body = b"x" * (API_GATEWAY_MAX_BODY_BYTES + 1)
    # WHEN it is posted
    response = httpx.post(
        f"{runtime.api}{ApiPath.SIGNED_WEBHOOK.format(brokerId='zerodha')}", content=body
    )
    # THEN the front door answers 413 without invoking the function
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_a_missing_token_is_401_in_the_one_shape(runtime: Runtime) -> None:
    # GIVEN no token; WHEN a trader route is called
    response = httpx.get(f"{runtime.api}{API}/analytics/execution")
    # THEN 401 with API Gateway's www-authenticate header and the one body shape
    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_the_openapi_document_is_public(runtime: Runtime) -> None:
    # GIVEN no token; WHEN the document is fetched
    response = httpx.get(f"{runtime.api}{ApiPath.OPENAPI}")
    # THEN it is the OpenAPI 3.1 document with the bearer scheme and the error schema
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
    assert "ErrorBody" in document["components"]["schemas"]


def test_the_docs_page_works_offline(runtime: Runtime) -> None:
    # GIVEN local mode; WHEN the interactive docs page is fetched
    response = httpx.get(f"{runtime.api}{API_PREFIX}/docs")
    # THEN it is Swagger UI with its script and styles inline: nothing loads from a CDN
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle" in page
    assert "<script src=" not in page
    assert "<link rel='stylesheet'" not in page
    assert '"bearerAuth"' in page
