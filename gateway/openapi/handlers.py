"""``GET /openapi.json`` and ``GET /docs`` (Swagger UI served from this machine, no outside network).

The Swagger UI assets come from the ``swagger-ui-bundle`` package and are served under
``/docs/static/``. Without that package ``/docs`` still answers, with a plain page that lists
the operations and links the document.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from pathlib import Path

from aiohttp import web

# A module reference, not its names: spec imports route modules that import this one.
from gateway.openapi import spec

try:  # an optional asset package: the API works without it
    from swagger_ui_bundle import swagger_ui_path
except ImportError:  # pragma: no cover - exercised only where the package is missing
    swagger_ui_path = None

#: Where the Swagger UI files are served from (a static route, not an API operation).
STATIC_PREFIX = "/docs/static"
STATIC_ROUTE_NAME = "openapi-docs-static"

routes = web.RouteTableDef()


@lru_cache(maxsize=1)
def _document() -> bytes:
    return json.dumps(spec.build_spec(), separators=(",", ":")).encode()


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.0 document of this API."""
    return web.Response(
        body=_document(),
        content_type="application/json",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Order fleet API</title>
  <link rel="stylesheet" href="{static}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{static}/favicon-32x32.png">
  <style>body {{ margin: 0; }}</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{static}/swagger-ui-bundle.js"></script>
  <script src="{static}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      validatorUrl: null,
      persistAuthorization: true
    }});
  </script>
</body>
</html>
"""


def _plain_page() -> str:
    """A readable page with no scripts: every operation and its summary."""
    rows = []
    for path, operations in spec.build_spec()["paths"].items():
        for method, op in operations.items():
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td></tr>"
            )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Order fleet API</title></head>'
        '<body><h1>Order fleet API</h1><p>The full description: <a href="/openapi.json">/openapi.json</a> '
        "(OpenAPI 3.0). Install <code>swagger-ui-bundle</code> for the interactive page.</p>"
        f"<table>{''.join(rows)}</table></body></html>"
    )


@lru_cache(maxsize=1)
def _docs_page() -> str:
    if swagger_ui_path is None:
        return _plain_page()
    return _SWAGGER_PAGE.format(static=STATIC_PREFIX)


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    """The API description as a page (Swagger UI)."""
    return web.Response(text=_docs_page(), content_type="text/html")


if swagger_ui_path is not None:
    routes.static(STATIC_PREFIX, Path(str(swagger_ui_path)), name=STATIC_ROUTE_NAME)
