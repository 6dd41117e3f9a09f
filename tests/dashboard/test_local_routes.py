"""Local mode's dashboard routes: the files, /config.json and the local-only sign-in."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from local.dashboard import SIGN_IN_PATH, dashboard_routes
from shared.adapters.auth.jwt_verifier import JwtVerifier

SECRET = "s" * 64
ISSUER = "urn:order-router:local-issuer"
AUDIENCE = "order-router"


def _client(dist: Path, stage: str | None = "local") -> httpx.AsyncClient:
    routes = dashboard_routes(
        dist=dist,
        ws_url="ws://127.0.0.1:9",
        stage=lambda: stage,
        secret=lambda: SECRET,
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    app = Starlette(routes=routes)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash")


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>dash</title>")
    (tmp_path / "assets" / "app.js").write_text("console.log('x')")
    return tmp_path


async def test_files_and_configuration(dist: Path) -> None:
    # GIVEN a built dashboard WHEN its page, an asset and its configuration are asked for
    client = _client(dist)
    page = await client.get("/")
    asset = await client.get("/assets/app.js")
    config = await client.get("/config.json")
    # THEN they are served, the configuration naming the local issuer, the API and the socket
    assert page.status_code == 200
    assert "dash" in page.text
    assert asset.status_code == 200
    assert config.json() == {
        "auth": "local",
        "apiBase": "/api/v1",
        "wsUrl": "ws://127.0.0.1:9",
        "signIn": SIGN_IN_PATH,
    }
    assert (await client.get("/assets/missing.js")).status_code == 404


async def test_an_unbuilt_dashboard_says_how_to_build_it(tmp_path: Path) -> None:
    # GIVEN no build WHEN the page is asked for THEN 503 naming `make web`
    answer = await _client(tmp_path).get("/")
    assert answer.status_code == 503
    assert "make web" in answer.text


async def test_sign_in_mints_a_token_the_verifier_accepts(dist: Path) -> None:
    # GIVEN local mode WHEN an operator signs in with both groups
    answer = await _client(dist).post(
        SIGN_IN_PATH, json={"user": "op-1", "groups": ["TRADER", "ADMIN"]}
    )
    # THEN the token is the local issuer's, for that user and those groups
    assert answer.status_code == 200
    token = answer.json()["idToken"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == "op-1"
    assert claims["cognito:groups"] == ["TRADER", "ADMIN"]
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=None, local_secret=SECRET)
    assert verifier.verify(token) is not None


@pytest.mark.parametrize("stage", ["dev", "prod", "test", None])
async def test_sign_in_is_refused_outside_the_local_stage(dist: Path, stage: str | None) -> None:
    # GIVEN a stage other than local WHEN someone signs in THEN 403 and no token
    answer = await _client(dist, stage).post(SIGN_IN_PATH, json={"user": "x", "groups": ["ADMIN"]})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "FORBIDDEN"
    assert "idToken" not in answer.text


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[]", 422, "body"),
        (b'{"groups": ["TRADER"]}', 422, "user"),
        (b'{"user": "a b", "groups": ["TRADER"]}', 422, "user"),
        (b'{"user": "' + b"u" * 65 + b'"}', 422, "user"),
        (b'{"user": "u", "groups": []}', 422, "groups"),
        (b'{"user": "u", "groups": ["ROOT"]}', 422, "groups"),
        (b'{"user": "u", "groups": "TRADER"}', 422, "groups"),
    ],
)
async def test_bad_sign_in_requests(
    dist: Path, body: bytes, status: int, field: str | None
) -> None:
    # GIVEN local mode WHEN the body is malformed THEN 400/422 naming the field, no token
    answer = await _client(dist).post(SIGN_IN_PATH, content=body)
    assert answer.status_code == status
    assert answer.json()["error"].get("field") == field
    assert "idToken" not in answer.text
