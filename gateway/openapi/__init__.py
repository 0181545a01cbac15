"""The API's own description: ``GET /openapi.json`` (OpenAPI 3.0.3) and a readable ``GET /docs`` page.

:mod:`gateway.openapi.spec` holds the paths, operations, parameters and response codes;
:mod:`gateway.openapi.components` generates every body schema (requests, answers, problems) and the
query parameters' schemas from the msgspec types that read or write them;
:mod:`gateway.openapi.handlers` serves the document and the Swagger UI page.
``tests/integration/test_openapi.py`` keeps it true: every route the app registers is described,
and nothing else.
"""
