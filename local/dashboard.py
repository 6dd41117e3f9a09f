"""The web dashboard in local mode: its files at ``/``, its configuration and a local sign-in.

In AWS the dashboard's files are on S3 behind CloudFront and traders sign in with the Cognito
hosted UI (``infra/dashboard.py``). Here the public HTTP server serves the same build
(``web/dist``, made by ``make web``) next to the API, so the API calls are same-origin, and:

* ``GET /config.json`` tells the dashboard where the API and the WebSocket are and that sign-in
  is the local issuer's (in AWS the stack writes the same file with the Cognito settings);
* ``POST /auth/local/sign-in`` ``{"user": "trader-1", "groups": ["TRADER"]}`` mints a token
  from the local issuer (:func:`local.tokens.issue_local_token`) for the chosen user and groups.
  It is refused (403) unless the handlers' stage is ``local``: the route exists only in this
  server, which never ships to Lambda, and even here it needs the local stage.

See ``docs/dashboard.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from local.tokens import issue_local_token
from shared.http import error_body

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "web" / "dist"
"""Where ``make web`` (``npm ci && npm run build`` in ``web/``) writes the dashboard."""
CONFIG_PATH = "/config.json"
SIGN_IN_PATH = "/auth/local/sign-in"
GROUPS = frozenset({"TRADER", "ADMIN"})
SIGN_IN_TTL_S = 8 * 3600
"""A trading day: the local dashboard has no refresh token, it signs in again."""
_USER = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Order router dashboard</title></head><body><main>
<h1>The dashboard is not built</h1>
<p>Run <code>make web</code> (or <code>make run</code>, which builds it) and reload.</p>
</main></body></html>"""


def dashboard_routes(
    *,
    dist: Path,
    ws_url: str,
    stage: Callable[[], str | None],
    secret: Callable[[], str],
    issuer: str,
    audience: str,
) -> list[BaseRoute]:
    """Starlette routes serving the dashboard, its configuration and the local sign-in.

    Parameters
    ----------
    dist
        The built dashboard (``index.html`` and ``assets/``).
    ws_url
        The local WebSocket server's URL, written into ``/config.json``.
    stage
        The handlers' stage (read on each sign-in, so a non-local stage refuses it).
    secret
        The local issuer's HS256 secret.
    issuer, audience
        ``iss`` and ``aud`` of minted tokens (the ones the local verifier accepts).

    Returns
    -------
    list[BaseRoute]
        ``/``, ``/assets/*``, ``/config.json`` and ``POST /auth/local/sign-in``.
    """
    config = {"auth": "local", "apiBase": "/api/v1", "wsUrl": ws_url, "signIn": SIGN_IN_PATH}

    async def index(_: Request) -> Response:
        page = dist / "index.html"
        if not page.is_file():
            return Response(_NOT_BUILT, status_code=503, media_type="text/html")
        return FileResponse(page, headers={"cache-control": "no-cache"})

    async def configuration(_: Request) -> Response:
        return JSONResponse(config, headers={"cache-control": "no-store"})

    async def sign_in(request: Request) -> Response:
        if stage() != "local":
            return _error(403, "FORBIDDEN", "local sign-in exists only in the local stage")
        parsed = _sign_in_request(await request.body())
        if isinstance(parsed, Response):
            return parsed
        user, groups = parsed
        token = issue_local_token(
            secret(),
            user_id=user,
            groups=groups,
            issuer=issuer,
            audience=audience,
            ttl_s=SIGN_IN_TTL_S,
        )
        return JSONResponse(
            {"idToken": token, "user": user, "groups": list(groups), "expiresIn": SIGN_IN_TTL_S},
            headers={"cache-control": "no-store"},
        )

    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET", "HEAD"]),
        Route(CONFIG_PATH, configuration, methods=["GET"]),
        Route(SIGN_IN_PATH, sign_in, methods=["POST"]),
    ]
    if (dist / "assets").is_dir():
        routes.append(Mount("/assets", app=StaticFiles(directory=dist / "assets"), name="assets"))
    return routes


def _sign_in_request(body: bytes) -> tuple[str, tuple[str, ...]] | Response:
    try:
        payload: Any = json.loads(body or b"null")
    except ValueError:
        return _error(400, "INVALID_JSON", "the body is not JSON")
    if not isinstance(payload, dict):
        return _error(422, "VALIDATION_ERROR", "expected {user, groups}", field="body")
    user = payload.get("user")
    groups = payload.get("groups", ["TRADER"])
    if not isinstance(user, str) or not _USER.match(user):
        return _error(422, "VALIDATION_ERROR", "user: 1-64 of [A-Za-z0-9._@-]", field="user")
    if (
        not isinstance(groups, list)
        or not groups
        or not all(isinstance(g, str) and g in GROUPS for g in groups)
    ):
        return _error(
            422, "VALIDATION_ERROR", f"groups: a non-empty list of {sorted(GROUPS)}", field="groups"
        )
    return user, tuple(dict.fromkeys(groups))


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    return JSONResponse(error_body(code, message, **extra), status_code=status)
