"""The API's description: ``/openapi.json`` and the Swagger UI page
``/docs``, served from this process alone (the Swagger UI files come from
the ``swagger-ui-bundle-v2`` package, not from a CDN), so the page works on
a machine without internet access.

``pdp control --docs`` chooses: ``open`` (default; no key needed), ``key``
(``/openapi.json`` needs an API key like ``/api/``; the page, which holds
nothing about the API, asks for the key and sends it) or ``off`` (neither
is served)."""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable
from functools import cache

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

__all__ = ["DOCS_MODES", "OPENAPI_PATH", "docs_routes"]

DOCS_MODES = ("open", "key", "off")
OPENAPI_PATH = "/openapi.json"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pdp control plane API</title>
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
const needsKey = %(needs_key)s;
let key = sessionStorage.getItem("pdp-api-key");
if (needsKey && !key) {
  key = window.prompt("API key (sent as X-API-Key) to read the API description");
  if (key) sessionStorage.setItem("pdp-api-key", key);
}
window.ui = SwaggerUIBundle({
  url: "%(openapi)s",
  dom_id: "#swagger-ui",
  requestInterceptor: (request) => {
    if (key && !request.headers["X-API-Key"]) request.headers["X-API-Key"] = key;
    return request;
  },
});
</script>
</body>
</html>
"""


@cache
def _asset(name: str) -> bytes:
    vendor = importlib.resources.files("swagger_ui_bundle") / "vendor"
    for directory in vendor.iterdir():
        if directory.name.startswith("swagger-ui-"):
            return (directory / name).read_bytes()
    raise FileNotFoundError(f"swagger-ui-bundle holds no {name}")


def docs_routes(mode: str) -> APIRouter:
    """``/docs`` and its files; none when ``mode`` is ``off``."""
    router = APIRouter(include_in_schema=False)
    if mode == "off":
        return router
    page = _PAGE % {"needs_key": "true" if mode == "key" else "false", "openapi": OPENAPI_PATH}

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    for name, media_type in _ASSETS.items():
        router.add_api_route(f"/docs/{name}", _asset_route(name, media_type), methods=["GET"])
    return router


def _asset_route(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    # A closure, not default arguments: FastAPI would read those from the query.
    async def asset() -> Response:
        return Response(
            _asset(name), media_type=media_type, headers={"Cache-Control": "max-age=86400"}
        )

    return asset
